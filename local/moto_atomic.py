"""Make moto handle one AWS request at a time, as DynamoDB applies each write atomically.

moto checks a condition and then writes without a lock, so two threads can both pass a
condition that real DynamoDB lets only one pass. Tests of concurrent writes and the local
stack (whose moto server is threaded) would otherwise exercise moto's race, not ours.

Also: moto's TransactWriteItems deep-copies a whole table for every item of the
transaction, to roll back on failure; a 100-item transaction on a table of 100,000 orders
copies 10 million items. It is made to keep only the items the transaction touches, with
the same all-or-nothing outcome.
"""
from __future__ import annotations

import copy
import functools
import threading
import time

_lock = threading.RLock()
_patched = False
_busy_seconds = 0.0


def busy_seconds() -> float:
    """How long moto has spent serving requests so far (one at a time): benchmarks report it."""
    return _busy_seconds


def serialize_moto_requests() -> None:
    global _patched
    if _patched:
        return
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def locked(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            global _busy_seconds
            with _lock:
                started = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    _busy_seconds += time.perf_counter() - started
        return call

    BotocoreStubber.process_request = locked(BotocoreStubber.process_request)
    DomainDispatcherApplication.__call__ = locked(DomainDispatcherApplication.__call__)
    _roll_back_only_touched_items()
    _patched = True


class _NoTableCopies:
    """Stands in for the `copy` module inside moto's DynamoDB backend during a transaction:
    tables are not copied (the wrapper below keeps the touched items instead)."""

    @staticmethod
    def deepcopy(value):
        return value


def _roll_back_only_touched_items() -> None:
    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    @functools.wraps(original)
    def transact_write_items(self, transact_items):
        before = []
        for entry in transact_items:
            _, operation = next(iter(entry.items()))
            table = self.tables.get(operation.get("TableName"))
            if table is None:
                continue
            key = operation.get("Key") or {name: operation["Item"][name] for name in
                                           filter(None, (table.hash_key_attr, table.range_key_attr))}
            item = self.get_item(table.name, key)
            before.append((table, key, copy.deepcopy(item.to_json()["Attributes"]) if item else None))
        models.copy = _NoTableCopies
        try:
            return original(self, transact_items)
        except Exception:
            for table, key, attributes in reversed(before):
                if attributes is not None:
                    table.put_item(attributes)
                    continue
                range_value = key.get(table.range_key_attr) if table.range_key_attr else None
                table.delete_item(models.DynamoType(key[table.hash_key_attr]),
                                  models.DynamoType(range_value) if range_value else None)
            raise
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = transact_write_items
