"""Edits guarded by versions: an edit names the version it starts from, and is saved only
if no one else saved in between (PynamoDB's VersionAttribute makes the save conditional).
The loser of a race gets 409 `version_conflict` and can reload and retry; nothing is lost."""
from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.errors import Conflict, InvalidField
from chalicelib.models.base import condition_failed


def check_version(record, expected, noun: str) -> None:
    if not isinstance(expected, int) or isinstance(expected, bool):
        raise InvalidField("version", f"version is required: the version of the {noun} this edit starts from")
    if expected != record.version:
        raise Conflict(f"the {noun} changed since version {expected} (now {record.version}); "
                       "reload and apply the edit again", param="version", code="version_conflict")


def save_versioned(record, noun: str) -> None:
    try:
        record.save()
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict(f"the {noun} changed while saving; reload and apply the edit again", param="version",
                           code="version_conflict") from None
        raise
