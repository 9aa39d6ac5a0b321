"""Several items of several tables in one BatchGetItem (SPEC H1: a scan is one code read and
one batch read, however many records decide where it goes).

PynamoDB's `Model.batch_get` reads one table; the scan of a collection code needs the
scanner's staff record, their admin record, the store and the sub-merchant at once, so the
request goes through the low-level client of the shared connection and each answer is turned
back into its model with `from_raw_data`. Reads are strongly consistent: a role removed a
second ago is gone on the next scan, as with `access`.
"""
from __future__ import annotations

import time

from chalicelib import settings
from chalicelib.models.base import _connection

MAX_ATTEMPTS = 4
"""Rounds for keys DynamoDB leaves unprocessed (it does so only under throttling)."""


def _key(model, hash_key: str, range_key: str | None) -> dict:
    key = {model._hash_key_attribute().attr_name: {"S": hash_key}}
    if range_key is not None:
        key[model._range_key_attribute().attr_name] = {"S": range_key}
    return key


def get_many(wanted: list[tuple]) -> list:
    """The items of `wanted` — (model, hash key, range key or None) — in that order, None for
    an item that does not exist. All keys here are strings (every one-code key is)."""
    tables: dict[str, dict] = {}
    for model, hash_key, range_key in wanted:
        keys = tables.setdefault(model.Meta.table_name, {"Keys": [], "ConsistentRead": True})["Keys"]
        key = _key(model, hash_key, range_key)
        if key not in keys:
            keys.append(key)
    found: dict[str, list] = {name: [] for name in tables}
    client = _connection(settings.current().region).client
    request = tables
    for attempt in range(MAX_ATTEMPTS):
        if not request:
            break
        if attempt:
            time.sleep(0.05 * 2 ** attempt)
        answer = client.batch_get_item(RequestItems=request)
        for name, items in answer.get("Responses", {}).items():
            found[name].extend(items)
        request = answer.get("UnprocessedKeys") or {}
    else:
        if request:
            raise RuntimeError("DynamoDB left keys unprocessed after retries")
    results = []
    for model, hash_key, range_key in wanted:
        key = _key(model, hash_key, range_key)
        raw = next((item for item in found[model.Meta.table_name]
                    if all(item.get(name) == value for name, value in key.items())), None)
        results.append(model.from_raw_data(raw) if raw is not None else None)
    return results
