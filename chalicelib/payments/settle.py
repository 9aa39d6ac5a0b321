"""The one path to PAID, shared by the notifications (P2) and the catch-up sweep (P5).

The move is a conditional write (state NOTPAY, the version read) in ONE transaction with
the order's outbox item (condition: it does not exist yet), so a paid order always has its
follow-up work and never two. A lost race re-reads the order: already paid is a duplicate.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.log import logger
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.orders import Order
from chalicelib.payments import outbox

NOTPAY = "NOTPAY"
PAID = "SUCCESS"
CLOSED = "CLOSED"

PAID_NOW = "paid"
DUPLICATE = "duplicate"
MISMATCH = "mismatch"
UNKNOWN_ORDER = "unknown_order"
NOT_PAYABLE = "not_payable"


@dataclass(frozen=True)
class Payment:
    """What a verified channel message says was paid."""

    out_trade_no: str
    channel: str
    sp_mchid: str | None
    sub_mchid: str | None
    amount_fen: int
    upstream_trade_no: str | None


def _mismatch(order: Order, payment: Payment) -> str | None:
    """Why a genuine message does not describe this order, or None."""
    if payment.channel != order.channel:
        return "channel"
    if payment.sp_mchid is not None and payment.sp_mchid != order.sp_mchid:
        return "sp_mchid"
    if payment.sub_mchid is not None and payment.sub_mchid != (order.sub_mchid or ""):
        return "sub_mchid"
    if payment.amount_fen != order.total:
        return "amount"
    return None


def settle(payment: Payment, settled_by: str, read: Order | None = None) -> str:
    """Mark the order paid once, with its outbox item, then hand the item over at once.
    `read`: the order as the caller just read it consistently (the transaction's condition
    still decides; a lost race reads it again)."""
    for attempt in range(3):
        try:
            order = read if attempt == 0 and read is not None else Order.get(payment.out_trade_no,
                                                                           consistent_read=True)
        except DoesNotExist:
            return UNKNOWN_ORDER
        why = _mismatch(order, payment)
        if why is not None:
            logger.warning("payment does not match its order; nothing changed",
                           extra={"out_trade_no": order.out_trade_no, "mismatch": why, "settled_by": settled_by})
            return MISMATCH
        if order.state == PAID:
            return DUPLICATE
        if order.state != NOTPAY:
            logger.warning("payment for an order that is not payable; nothing changed",
                           extra={"out_trade_no": order.out_trade_no, "state": order.state})
            return NOT_PAYABLE
        at = now()
        item = outbox.order_paid_item(order, at)
        actions = [Order.state.set(PAID), Order.paid_at.set(at), Order.settled_by.set(settled_by),
                   Order.open_shard.remove(), Order.check_at.remove()]
        if payment.upstream_trade_no:
            actions.append(Order.upstream_trade_no.set(payment.upstream_trade_no))
        try:
            with transaction() as tx:
                tx.update(order, actions=actions, condition=Order.state == NOTPAY)
                tx.save(item, condition=type(item).item_id.does_not_exist())
        except TransactWriteError as exc:
            if condition_failed(exc):
                continue  # someone else moved it: read again
            raise
        logger.info("order paid", extra={"out_trade_no": order.out_trade_no, "settled_by": settled_by})
        outbox.hand_over(item.item_id)
        return PAID_NOW
    return DUPLICATE if Order.get(payment.out_trade_no, consistent_read=True).state == PAID else NOT_PAYABLE


def close_locally(order: Order) -> bool:
    """CLOSED once the channel closed it (or never saw it); False when it moved meanwhile."""
    try:
        order.update(actions=[Order.state.set(CLOSED), Order.closed_at.set(now()), Order.open_shard.remove(),
                              Order.check_at.remove()], condition=Order.state == NOTPAY)
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True
