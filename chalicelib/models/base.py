"""What every model shares: where its table is, and time as integers."""
from __future__ import annotations

import functools
import random
import time

from chalicelib import settings


def table_meta(setting_name: str) -> type:
    """A PynamoDB Meta for the table whose name is the setting `setting_name`.

    Read at import: Lambda, the local stack and the tests all set the environment first.
    """
    current = settings.current()

    class Meta:
        table_name = getattr(current, setting_name)
        region = current.region

    return Meta


def now() -> int:
    """Seconds since the epoch; every timestamp in the tables is one of these."""
    return int(time.time())


def condition_failed(exc: Exception) -> bool:
    """True when a PynamoDB write failed only because its condition did not hold."""
    code = getattr(exc, "cause_response_code", None)
    if code == "ConditionalCheckFailedException":
        return True
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(reason is not None and reason.code == "ConditionalCheckFailed" for reason in reasons)


def transaction_conflicted(exc: Exception) -> bool:
    """True when DynamoDB cancelled a transaction for another one on the same items at the
    same moment (TransactionConflict): nothing was wrong with it, and trying again may pass."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(reason is not None and reason.code == "TransactionConflict" for reason in reasons)


def pause_before_retry(retried: int) -> None:
    """A short jittered wait before trying again a write that lost a race, `retried` times
    retried before: 20, 40, 80 ms... plus up to 30 ms, so writers that collided do not
    collide again."""
    time.sleep(0.02 * 2 ** retried + random.uniform(0, 0.03))


def transaction():
    """A PynamoDB write transaction in the app's region (all-or-nothing, up to 100 items)."""
    from pynamodb.transactions import TransactWrite

    return TransactWrite(connection=_connection(settings.current().region))


@functools.cache
def _connection(region: str):
    """One connection per container: each new one builds a botocore client (~0.1-0.2 s of
    loading service models), which a warm Lambda should pay once, not once per transaction."""
    from pynamodb.connection import Connection

    return Connection(region=region)
