"""Opaque cursor pagination: the cursor is a signed DynamoDB LastEvaluatedKey.

Signing stops a caller from steering a query into another tenant's partition with a
hand-made cursor; the cursor also names the list it belongs to.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from chalicelib import signed_tokens
from chalicelib.errors import InvalidField

MAX_LIMIT = 100


@dataclass
class Page:
    data: list
    next_cursor: str | None

    def body(self, render: Callable[[Any], dict]) -> dict:
        return {"data": [render(item) for item in self.data], "has_more": self.next_cursor is not None,
                "next_cursor": self.next_cursor}


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


def decode_cursor(cursor: str | None, list_name: str) -> dict | None:
    if not cursor:
        return None
    try:
        data = signed_tokens.verify("cursor", cursor)
    except signed_tokens.BadToken:
        raise InvalidField("cursor", "cursor is not one this list returned") from None
    if data.get("list") != list_name:
        raise InvalidField("cursor", "cursor belongs to another list")
    return data["key"]


def page_of(results: Iterable, list_name: str) -> Page:
    """Collect a PynamoDB query result (already limited) into a Page with the next cursor."""
    items = list(results)
    last_key = getattr(results, "last_evaluated_key", None)
    cursor = signed_tokens.sign("cursor", {"list": list_name, "key": last_key}) if last_key else None
    return Page(items, cursor)
