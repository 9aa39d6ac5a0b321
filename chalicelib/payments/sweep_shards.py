"""What every scheduled sweep over a sharded sparse index shares (the outbox's pending items,
the open orders, the refunds to check, the deliveries due): which shard a key lives in, and
how long a run may go on starting work.

A leaf module: the outbox imports the deliveries, so the deliveries cannot import the
outbox for its shard function.
"""
from __future__ import annotations

import time
import zlib

from chalicelib import settings

SWEEP_BUDGET_SECONDS = 40
"""A sweep starts no work after this long (its Lambda has 55 s); the rest waits for the next run a minute later."""


def shard_of(key: str, shards: int | None = None) -> str:
    return str(zlib.crc32(key.encode()) % (shards or settings.current().order_sweep_shards))


class SweepDeadline:
    """SWEEP_BUDGET_SECONDS of real time from now (read when made, so a test can shorten it)."""

    def __init__(self) -> None:
        self._end = time.monotonic() + SWEEP_BUDGET_SECONDS

    def passed(self) -> bool:
        return time.monotonic() > self._end
