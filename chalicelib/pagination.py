"""Opaque cursor pagination: the cursor is a DynamoDB LastEvaluatedKey sealed with AES-GCM.

Sealing (not just signing) keeps the keys a list pages through (account ids, openids, sort
keys) out of URLs and logs, and stops a caller from steering a query into another tenant's
partition with a hand-made cursor. The list's name and the account that asked for the page
are the AEAD's associated data: a cursor works only in its own list and only for its own
account; anywhere else it is refused with 400 `param: cursor`.

The account comes from `read_as`, which the console's route wrapper calls once per request,
so no list function has to pass it along. The key is derived from the platform signing key
(HKDF-SHA256 with its own label), so no new secret needs configuring.
"""
from __future__ import annotations

import base64
import binascii
import contextvars
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chalicelib import settings
from chalicelib.errors import InvalidField

MAX_LIMIT = 100
_NONCE_BYTES = 12
_reader: contextvars.ContextVar[str] = contextvars.ContextVar("cursor_reader", default="")


@dataclass
class Page:
    data: list
    next_cursor: str | None

    def body(self, render: Callable[[Any], dict]) -> dict:
        return {"data": [render(item) for item in self.data], "has_more": self.next_cursor is not None,
                "next_cursor": self.next_cursor}


def read_as(account_id: str) -> None:
    """Bind the cursors of this request (made and accepted) to the account that asks."""
    _reader.set(account_id)


def parse_limit(raw: str | None, default: int = 20) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidField("limit", "limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidField("limit", f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _cipher() -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"cloudpay pagination cursor v1").derive(settings.current().platform_signing_key)
    return AESGCM(key)


def _bound_to(list_name: str) -> bytes:
    return json.dumps([list_name, _reader.get()]).encode()


def seal(list_name: str, key: dict) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _cipher().encrypt(nonce, json.dumps(key, separators=(",", ":")).encode(), _bound_to(list_name))
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, list_name: str) -> dict | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        opened = _cipher().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound_to(list_name))
        return json.loads(opened)
    except (binascii.Error, ValueError, InvalidTag):
        raise InvalidField("cursor", "cursor is not one this list returned to this account") from None


def page_of(results: Iterable, list_name: str) -> Page:
    """Collect a PynamoDB query result (already limited) into a Page with the next cursor."""
    items = list(results)
    last_key = getattr(results, "last_evaluated_key", None)
    return Page(items, seal(list_name, last_key) if last_key else None)
