"""P3's trigger: follow-up work is an outbox item written in the PAID transaction, handed to
the follow-up queue at once, and swept by schedule for what a crash left behind.

(DynamoDB Streams would be the other way, but moto 5.2.5 does not serve DescribeStream, so
the local stack could not run it.) An item carries `pending_shard` until its follow-up is
done; the sweep queries that sparse index only, for items older than a grace period. The queue's handler is
idempotent (each effect a conditional write), so the rare double hand-over (a sweep racing a
slow request) changes nothing.
"""
from __future__ import annotations

import json

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib import queues, settings
from chalicelib.log import logger
from chalicelib.models.audit import AuditEntry
from chalicelib.models.base import condition_failed, now
from chalicelib.models.orders import Order, Refund
from chalicelib.payments import deliveries, totals
from chalicelib.payments.models import OutboxItem
from chalicelib.payments.sweep_shards import shard_of

ORDER_PAID = "order_paid"
REFUND_SUCCEEDED = "refund_succeeded"
RESEND_AFTER_SECONDS = 300
"""A pending item the sweep sent is sent again only this long after (its message was lost)."""


def order_paid_item(order: Order, at: int) -> OutboxItem:
    return OutboxItem(item_id=f"{ORDER_PAID}#{order.out_trade_no}", kind=ORDER_PAID, account_id=order.account_id,
                      out_trade_no=order.out_trade_no, created_at=at, pending_shard=shard_of(order.out_trade_no))


def refund_succeeded_item(refund: Refund, at: int) -> OutboxItem:
    return OutboxItem(item_id=f"{REFUND_SUCCEEDED}#{refund.out_refund_no}", kind=REFUND_SUCCEEDED,
                      account_id=refund.account_id, out_trade_no=refund.out_trade_no, out_refund_no=refund.out_refund_no,
                      created_at=at, pending_shard=shard_of(refund.out_refund_no))


def enqueue(item_ids: list[str]) -> None:
    """Send the items to the follow-up queue (a seam tests use to play a crash)."""
    queues.send(settings.current().payment_follow_up_queue_url, [{"item_id": item_id} for item_id in item_ids])


def hand_over(item_id: str) -> bool:
    """Send one item to the queue; False when the send failed (the sweep sends it later).
    No write here: the item leaves the pending index when its follow-up is done."""
    try:
        enqueue([item_id])
    except Exception as exc:  # the payment is committed; the sweep finishes this
        logger.warning("outbox hand-over failed; the sweep will retry", extra={"item_id": item_id,
                                                                                "error": type(exc).__name__})
        return False
    return True


def sweep(at: int | None = None) -> dict:
    """Hand over the items still pending after the grace period (their first send failed, or
    its message was lost), shard by shard; an item the sweep sent is not sent again until the
    RESEND_AFTER_SECONDS, so a slow queue is not flooded with copies."""
    at = now() if at is None else at
    current = settings.current()
    cutoff = at - current.outbox_hand_over_grace_seconds
    examined = handed = 0
    for shard in range(current.order_sweep_shards):
        for key in OutboxItem.pending.query(str(shard), OutboxItem.created_at <= cutoff):
            examined += 1
            item = OutboxItem.get(key.item_id, consistent_read=True)
            if item.handed_over_at is not None and item.handed_over_at > at - RESEND_AFTER_SECONDS:
                continue
            if hand_over(item.item_id):
                handed += 1
                try:
                    item.update(actions=[OutboxItem.handed_over_at.set(at)], condition=OutboxItem.pending_shard.exists())
                except UpdateError as exc:
                    if not condition_failed(exc):
                        raise
    return {"examined": examined, "handed_over": handed}


def handle_item(item_id: str) -> str:
    """The follow-up of one item (P3), each step once however often the item is delivered:
    the audit entry of a paid order (its id derived from the order), the clerk messages and
    the provider's callback (one delivery item each, `deliveries.fan_out`), then the daily
    totals (one conditional transaction, `totals.record_once`). Deliveries come before the
    totals, whose day items every payment of the account shares: a contended total delays
    no clerk's message. The item leaves the pending index only when every step is done; a
    failed step raises, and the queue retries (each step finds what it already did)."""
    try:
        item = OutboxItem.get(item_id, consistent_read=True)
    except DoesNotExist:
        return "unknown"
    if item.done_at is not None:
        return "duplicate"
    order = Order.get(item.out_trade_no, consistent_read=True)
    refund = Refund.get(item.out_refund_no, consistent_read=True) if item.kind == REFUND_SUCCEEDED else None
    if item.kind == ORDER_PAID:
        _audit_paid(order)
    deliveries.fan_out(order, refund)
    totals.record_once(item, order, refund)
    try:
        item.update(actions=[OutboxItem.done_at.set(now()), OutboxItem.pending_shard.remove()],
                    condition=OutboxItem.done_at.does_not_exist())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    return "done"


def _audit_paid(order: Order) -> None:
    entry = AuditEntry(account_id=order.account_id, entry_id=f"{int(order.paid_at) * 1000:015d}#paid#{order.out_trade_no}",
                       at=int(order.paid_at), actor=f"channel:{order.channel}", entity=f"order#{order.out_trade_no}",
                       action="order.paid", changes={"state": {"from": "NOTPAY", "to": "SUCCESS"},
                                                     "total": order.total, "merchant_id": order.merchant_id})
    try:
        entry.save(condition=AuditEntry.entry_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise


def handle_messages(event: dict, context) -> dict:
    """The follow-up queue's batch: each record one item id; failures reported per record."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def handle_record(record) -> str:
        outcome = handle_item(json.loads(record.body)["item_id"])
        logger.info("payment follow-up handled", extra={"outcome": outcome, "message_id": record.message_id})
        return outcome

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)
