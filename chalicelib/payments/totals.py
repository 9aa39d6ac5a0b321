"""C6: daily totals per scope, so a summary reads at most one small item per day and scope
instead of every order.

`record_once` adds a paid order (to the paid day) or a succeeded refund (to the refund's day)
to each scope the order belongs to, in ONE transaction with the outbox item's `counted_at`
(condition: not yet set): a duplicate or concurrent delivery of the item either finds it
counted or loses the transaction, so every amount is added exactly once.

A sub-service-provider has no counters of its own: its summary is the sum over the
merchants attributed to it now (B3 moves a merchant's whole history), so re-attribution
moves no counter. Those per-merchant Queries run SUMMARY_WORKERS at a time: one after
another, 3,000 merchants would take longer than API Gateway's 29 s.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta

from pynamodb.exceptions import TransactWriteError

from chalicelib.beijing import day_of
from chalicelib.models.base import condition_failed, now, pause_before_retry, transaction, transaction_conflicted
from chalicelib.models.daily_totals import DailyTotals
from chalicelib.models.orders import Order, Refund
from chalicelib.payments.models import OutboxItem

MAX_DAYS = 90
CHANNEL_SUFFIX = "|channel#"
RECORD_ATTEMPTS = 4
"""Tries of the counting transaction when another transaction on the same counters (every
payment of an account adds to the same account# and provider# day items) cancels it."""
SUMMARY_WORKERS = 8
"""Daily-totals Queries of one summary in flight at once: fewer than botocore's pool of 10
connections per client (PynamoDB's `max_pool_connections`), so no connection is dropped;
botocore clients are thread-safe and PynamoDB keeps its botocore session per thread."""


def account_scope(account_id: str) -> str:
    return f"account#{account_id}"


def provider_scope(account_id: str, sp_mchid: str) -> str:
    return f"provider#{account_id}#{sp_mchid}"


def merchant_scope(merchant_id: str) -> str:
    return f"merchant#{merchant_id}"


def store_scope(store_id: str) -> str:
    return f"store#{store_id}"


def clerk_scope(store_id: str, clerk_id: str) -> str:
    """Keyed with the store: who may read it is decided by the store alone."""
    return f"clerk#{store_id}#{clerk_id}"


def device_scope(store_id: str, device_id: str) -> str:
    """Device ids are unique only within their store."""
    return f"device#{store_id}#{device_id}"


def code_scope(code_id: str) -> str:
    return f"code#{code_id}"


def with_channel(scope: str, channel: str | None) -> str:
    return f"{scope}{CHANNEL_SUFFIX}{channel}" if channel else scope


def scopes_of(order: Order) -> list[str]:
    """Every counter an order's amounts go to: each scope it belongs to, and each per channel."""
    scopes = [account_scope(order.account_id), provider_scope(order.account_id, order.sp_mchid),
              merchant_scope(order.merchant_id)]
    if order.store_id:
        scopes.append(store_scope(order.store_id))
        if order.clerk_id:
            scopes.append(clerk_scope(order.store_id, order.clerk_id))
        if order.device_id:
            scopes.append(device_scope(order.store_id, order.device_id))
    if order.code_id:
        scopes.append(code_scope(order.code_id))
    return scopes + [with_channel(scope, order.channel) for scope in scopes]


def record_once(item: OutboxItem, order: Order, refund: Refund | None, at: int | None = None) -> bool:
    """Add the item's amounts to the daily totals once; False when it was already counted.

    A paid order counts its total on the day it was paid; a succeeded refund its amount on
    the day it succeeded. Another transaction touching the same counters at the same moment
    cancels this one (TransactionConflict): it is tried again after a short jittered pause,
    RECORD_ATTEMPTS times in all, rather than waiting out the queue's visibility timeout; a
    retry that finds the item counted (a concurrent copy won) answers False. Only a conflict
    that outlasts the attempts raises, and the queue retries the item.
    """
    if item.counted_at is not None:
        return False
    if refund is None:
        day = day_of(order.paid_at or order.created_at)
        actions = (DailyTotals.trade_amount.add(int(order.total)), DailyTotals.trade_count.add(1))
    else:
        day = day_of(refund.succeeded_at or refund.created_at)
        actions = (DailyTotals.refund_amount.add(int(refund.amount)), DailyTotals.refund_count.add(1))
    counted_at = now() if at is None else at
    for attempt in range(RECORD_ATTEMPTS):
        try:
            with transaction() as tx:
                tx.update(item, actions=[OutboxItem.counted_at.set(counted_at)],
                          condition=OutboxItem.counted_at.does_not_exist())
                for scope in scopes_of(order):
                    tx.update(DailyTotals(scope, day), actions=list(actions))
            return True
        except TransactWriteError as exc:
            if condition_failed(exc):
                return False
            if not transaction_conflicted(exc) or attempt == RECORD_ATTEMPTS - 1:
                raise
            pause_before_retry(attempt)
    return False


@dataclass
class Summary:
    from_day: str
    to_day: str
    days: dict = field(default_factory=dict)
    """day -> [trade_amount, trade_count, refund_amount, refund_count]"""

    def add(self, record: DailyTotals) -> None:
        counts = self.days.setdefault(record.day, [0, 0, 0, 0])
        for index, value in enumerate((record.trade_amount, record.trade_count, record.refund_amount,
                                       record.refund_count)):
            counts[index] += int(value or 0)

    def merge(self, days: dict) -> None:
        """Add one scope's day -> counts (a Query's worth) into this summary."""
        for day, counts in days.items():
            total = self.days.setdefault(day, [0, 0, 0, 0])
            for index, value in enumerate(counts):
                total[index] += value

    def body(self) -> dict:
        first, last = date.fromisoformat(self.from_day), date.fromisoformat(self.to_day)
        days = []
        for offset in range((last - first).days + 1):
            day = (first + timedelta(days=offset)).isoformat()
            trade_amount, trade_count, refund_amount, refund_count = self.days.get(day, (0, 0, 0, 0))
            days.append({"day": day, "trade_amount": trade_amount, "trade_count": trade_count,
                         "refund_amount": refund_amount, "refund_count": refund_count})
        totals = {name: sum(row[name] for row in days)
                  for name in ("trade_amount", "trade_count", "refund_amount", "refund_count")}
        return {"object": "transaction_summary", "from_day": self.from_day, "to_day": self.to_day, **totals,
                "net_amount": totals["trade_amount"] - totals["refund_amount"], "days": days}


def _days_of(scope: str, from_day: str, to_day: str) -> dict:
    """One scope's day items from `from_day` to `to_day`, added into day -> counts (at most
    MAX_DAYS small entries, whatever the items)."""
    found = Summary(from_day, to_day)
    for record in DailyTotals.query(scope, DailyTotals.day.between(from_day, to_day)):
        found.add(record)
    return found.days


def summarize(scopes: list[str], from_day: str, to_day: str) -> Summary:
    """The totals of `scopes` (added together) for each day from `from_day` to `to_day`
    inclusive: one Query per scope, at most MAX_DAYS small items each, SUMMARY_WORKERS
    Queries at a time when there are several scopes (a sub-service-provider's merchants)."""
    summary = Summary(from_day, to_day)
    if len(scopes) <= 1:
        for scope in scopes:
            summary.merge(_days_of(scope, from_day, to_day))
        return summary
    with ThreadPoolExecutor(max_workers=SUMMARY_WORKERS, thread_name_prefix="summary") as pool:
        for days in pool.map(lambda scope: _days_of(scope, from_day, to_day), scopes):
            summary.merge(days)
    return summary
