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


FILTERED_READ_FACTOR = 2
"""A page whose query has a filter condition reads at most this many times `limit` items."""
MAX_CALLS_PER_PAGE = 4


@dataclass
class Page:
    data: list
    next_cursor: str | None
    partial: bool = False
    """The page stopped at its read budget before it was full: more may match after the cursor."""
    total: int | None = None
    """How many items the whole list has, when a counter already kept says so (else None)."""
    items_read: int = 0
    """Items DynamoDB evaluated for this page (its ScannedCount): what the page cost."""

    def body(self, render: Callable[[Any], dict]) -> dict:
        return {"data": [render(item) for item in self.data], "has_more": self.next_cursor is not None,
                "next_cursor": self.next_cursor, "partial": self.partial, "total": self.total}


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


def _query_scope(list_name: str, source, hash_key: str, range_key_condition) -> str:
    """The list name a cursor is sealed under, narrowed to the query it continues: the index,
    its key and the key condition. A start key from another filter of the same list would be
    refused by DynamoDB ("outside query boundaries"); sealed so, it is a 400 on `cursor`."""
    index = getattr(getattr(source, "Meta", None), "index_name", None) or "table"
    return f"{list_name}|{index}|{hash_key}|{range_key_condition}"


def query_page(source, hash_key: str, list_name: str, limit: int, cursor: str | None, *,
               range_key_condition=None, filter_condition=None, newest_first: bool = False) -> Page:
    """One page of a key (or index) condition query that reads a bounded number of items.

    Without a filter the page is one Query of `limit` items. With one, DynamoDB's `Limit`
    counts the items it evaluates before filtering, so the page reads at most
    `FILTERED_READ_FACTOR * limit` items in at most `MAX_CALLS_PER_PAGE` calls, each asking
    only for as many as the page still lacks (so it never overfills and the cursor is
    DynamoDB's own), and stops there: a page with fewer items (or none) and a cursor is
    `partial`, never read "until the page is full".
    """
    budget = limit * (FILTERED_READ_FACTOR if filter_condition is not None else 1)
    model = getattr(source, "_model", source)
    list_name = _query_scope(list_name, source, hash_key, range_key_condition)
    results = source.query(hash_key, range_key_condition=range_key_condition, filter_condition=filter_condition,
                           scan_index_forward=not newest_first, page_size=limit,
                           last_evaluated_key=decode_cursor(cursor, list_name))
    pages, items, read = results.page_iter, [], 0
    for _ in range(MAX_CALLS_PER_PAGE):
        answer = pages.next()
        read += answer.get("ScannedCount", 0)
        items += [model.from_raw_data(raw) for raw in answer.get("Items", [])]
        if pages.last_evaluated_key is None or len(items) >= limit or read >= budget:
            break
        pages.page_size = min(limit - len(items), budget - read)
    last_key = pages.last_evaluated_key
    return Page(items, seal(list_name, last_key) if last_key else None,
                partial=last_key is not None and len(items) < limit, items_read=read)
