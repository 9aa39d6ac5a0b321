"""B4/B5: one delivery per clerk message and per provider callback, with its attempt log.

A delivery's id is derived from what it delivers (`message#<out_trade_no>#<staff_id>`,
`callback#<event>#<out_trade_no or out_refund_no>`), so creating it with `does_not_exist`
makes it exist once however often the follow-up work runs. Only a delivery waiting for its
next attempt carries `due_shard`: the retry sweep queries that sparse index and never reads
the table.
"""
from __future__ import annotations

from pynamodb.attributes import ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class DueDeliveries(GlobalSecondaryIndex):
    """Sparse: the deliveries still pending, by when their next attempt is due."""

    class Meta:
        index_name = "deliveries-due"
        projection = KeysOnlyProjection()

    due_shard = UnicodeAttribute(hash_key=True)
    next_attempt_at = NumberAttribute(range_key=True)


class DeliveriesByOrder(GlobalSecondaryIndex):
    """The order detail's messages and callback log (those of its refunds included)."""

    class Meta:
        index_name = "deliveries-by-order"
        projection = AllProjection()

    out_trade_no = UnicodeAttribute(hash_key=True)
    delivery_id = UnicodeAttribute(range_key=True)


class Attempt(MapAttribute):
    """One try: when, the HTTP status (None when no answer came), how long it took, the first
    200 characters of the answer, and what went wrong in words."""

    at = NumberAttribute()
    status = NumberAttribute(null=True)
    latency_ms = NumberAttribute(null=True)
    answer = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)


class Delivery(Model):
    """`state` pending → delivered | failed | skipped (a clerk no longer to be told).

    `payload` is fixed at creation: a callback's exact JSON body, or a message's template data
    (no openid: the staff record is read when sending, so a removed clerk gets nothing)."""

    Meta = table_meta("deliveries_table")

    delivery_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # callback | clerk_message
    event = UnicodeAttribute()  # order.paid | refund.succeeded
    account_id = UnicodeAttribute()
    out_trade_no = UnicodeAttribute()
    out_refund_no = UnicodeAttribute(null=True)
    sp_mchid = UnicodeAttribute(null=True)
    """A callback's provider: its callback URL and secret are read at each attempt."""
    store_id = UnicodeAttribute(null=True)
    staff_id = UnicodeAttribute(null=True)
    payload = UnicodeAttribute()
    state = UnicodeAttribute()
    attempts = NumberAttribute(default=0)
    """Tries made so far; every write after a try is conditional on it (the claim)."""
    claimed_until = NumberAttribute(null=True)
    """While an attempt is under way: no other attempt (sweep, follow-up, re-send) starts
    before this time; removed when the attempt is recorded, so a crashed one lapses."""
    created_at = NumberAttribute()
    next_attempt_at = NumberAttribute(null=True)
    due_shard = UnicodeAttribute(null=True)
    delivered_at = NumberAttribute(null=True)
    finished_at = NumberAttribute(null=True)
    """When it was delivered, given up (failed) or skipped."""
    log = ListAttribute(of=Attempt, default=list)

    by_order = DeliveriesByOrder()
    due = DueDeliveries()
