"""Make moto handle one AWS request at a time, as DynamoDB applies each write atomically.

moto checks a condition and then writes without a lock, so two threads can both pass a
condition that real DynamoDB lets only one pass. Tests of concurrent writes and the local
stack (whose moto server is threaded) would otherwise exercise moto's race, not ours.
"""
from __future__ import annotations

import functools
import threading

_lock = threading.RLock()
_patched = False


def serialize_moto_requests() -> None:
    global _patched
    if _patched:
        return
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def locked(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            with _lock:
                return method(*args, **kwargs)
        return call

    BotocoreStubber.process_request = locked(BotocoreStubber.process_request)
    DomainDispatcherApplication.__call__ = locked(DomainDispatcherApplication.__call__)
    _patched = True
