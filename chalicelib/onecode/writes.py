"""The two shapes of every one-code write: an update of a record as it was read, and a
transaction of several; a concurrent change makes either a 409 to reload and retry (Chinese
on the phone: "数据刚刚被其他人修改过"), never a silent overwrite or a half-written change."""
from __future__ import annotations

from pynamodb.exceptions import TransactWriteError, UpdateError

from chalicelib.errors import Conflict
from chalicelib.models.base import condition_failed, transaction


def conditional_update(record, actions: list, noun: str, condition=None) -> None:
    """An update of a record as it was read (its version is the condition): a concurrent
    change makes it a 409 to reload, never a silent overwrite."""
    try:
        record.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if condition_failed(exc):
            raise Conflict(f"the {noun} changed at the same time; reload and try again",
                           code="version_conflict") from None
        raise


def transact(write, noun: str) -> None:
    """Run `write(tx)` as one all-or-nothing transaction."""
    try:
        with transaction() as tx:
            write(tx)
    except TransactWriteError as exc:
        if condition_failed(exc):
            raise Conflict(f"the {noun} changed at the same time; reload and try again",
                           code="version_conflict") from None
        raise
