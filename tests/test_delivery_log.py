"""B4/B5: a delivery's attempt log keeps every attempt, even when an attempt that outlived
its claim records itself while the attempt that took over records its own."""
from __future__ import annotations

import pytest

from chalicelib.models.base import now
from chalicelib.models.deliveries import Delivery
from chalicelib.payments import deliveries

pytestmark = pytest.mark.usefixtures("aws")

DELIVERY_ID = "callback#order.paid#M00001LOG0000001"


def a_pending_callback(log_entries: int = 0) -> Delivery:
    at = now()
    delivery = Delivery(delivery_id=DELIVERY_ID, kind=deliveries.CALLBACK, event=deliveries.ORDER_PAID_EVENT,
                        account_id="acct-1", out_trade_no="M00001LOG0000001", sp_mchid="1900000109", payload="{}",
                        state=deliveries.PENDING, attempts=0, created_at=at,
                        log=[deliveries.Attempt(at=at - 1000 + n, status=503) for n in range(log_entries)])
    delivery.save()
    return Delivery.get(DELIVERY_ID, consistent_read=True)


def test_a_late_attempt_and_the_attempt_that_took_over_both_keep_their_log_entries():
    late = a_pending_callback()
    start = int(late.created_at)
    assert deliveries._claim(late, 0, start, manual=False)
    took_over_at = start + deliveries.CLAIM_SECONDS + 1
    current = Delivery.get(DELIVERY_ID, consistent_read=True)
    assert deliveries._claim(current, 1, took_over_at, manual=False)  # the first claim lapsed

    deliveries._record(late, 1, start, {"at": start, "status": 503}, deliveries.RETRY, manual=False)
    deliveries._record(current, 2, took_over_at, {"at": took_over_at, "status": 200}, deliveries.DELIVERED,
                       manual=False)

    stored = Delivery.get(DELIVERY_ID, consistent_read=True)
    assert [(int(e.at), int(e.status)) for e in stored.log] == [(start, 503), (took_over_at, 200)]
    assert (stored.state, int(stored.attempts), stored.claimed_until) == (deliveries.DELIVERED, 2, None)


def test_a_full_log_drops_its_oldest_entries_and_keeps_the_newest():
    delivery = a_pending_callback(log_entries=deliveries.LOG_LIMIT)
    at = int(delivery.created_at)
    assert deliveries._claim(delivery, 0, at, manual=False)

    deliveries._record(delivery, 1, at, {"at": at, "status": 200}, deliveries.DELIVERED, manual=False)

    stored = Delivery.get(DELIVERY_ID, consistent_read=True)
    assert len(stored.log) == deliveries.LOG_LIMIT
    assert (int(stored.log[0].at), int(stored.log[-1].at), int(stored.log[-1].status)) == (at - 999, at, 200)


def test_a_late_record_of_a_delivery_gone_meanwhile_writes_nothing():
    delivery = a_pending_callback()
    Delivery.get(DELIVERY_ID).delete()

    deliveries._record_late(delivery, int(delivery.created_at), {"at": 1, "status": 200}, deliveries.DELIVERED)

    assert Delivery.count(DELIVERY_ID) == 0
