"""BatchWriteItem with the retry DynamoDB asks for: what it leaves unprocessed (throttling,
a partition at its limit) is sent again after an exponential backoff, never dropped."""
from __future__ import annotations

import time

from pynamodb.models import Model

BATCH_LIMIT = 25
MAX_ROUNDS = 8


class UnprocessedItems(Exception):
    """DynamoDB kept refusing part of a batch through every retry: the caller fails the page
    (its message is retried), since half a page must not be reported as written."""


def put_all(model: type[Model], items: list[Model]) -> int:
    """Put every item of `model`'s table, 25 per call; returns the number of calls made."""
    connection = model._get_connection()
    table = model.Meta.table_name
    calls = 0
    for start in range(0, len(items), BATCH_LIMIT):
        pending = [item.serialize() for item in items[start:start + BATCH_LIMIT]]
        for round_number in range(MAX_ROUNDS):
            if round_number:
                time.sleep(min(0.05 * 2 ** round_number, 2.0))
            answer = connection.batch_write_item(put_items=pending) or {}
            calls += 1
            unprocessed = answer.get("UnprocessedItems", {}).get(table, [])
            pending = [request["PutRequest"]["Item"] for request in unprocessed]
            if not pending:
                break
        else:
            raise UnprocessedItems(f"{len(pending)} item(s) of {table} stayed unprocessed after {MAX_ROUNDS} calls")
    return calls
