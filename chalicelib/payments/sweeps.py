"""P4 close and P5 catch-up (B2), one sweep through the sparse index of open orders.

An unpaid order carries `open_shard` and `check_at` (first: a few minutes after creation).
Every minute the sweep queries each shard for `check_at <= now` — never the table — and
asks the channel about each order: paid → the settle path of the notifications (so a lost
notification loses no payment); past `time_expire` → closed at the channel, then locally;
otherwise looked at again later. Every write is conditional on the order still being open.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import settings
from chalicelib.log import logger
from chalicelib.models.base import condition_failed, now
from chalicelib.models.orders import Order
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.payments import channels, settle

MAX_ORDERS_PER_RUN = 200


def sweep_open_orders(at: int | None = None) -> dict:
    at = now() if at is None else at
    counts = {"examined": 0, "paid": 0, "closed": 0, "later": 0, "failed": 0}
    for shard in range(settings.current().order_sweep_shards):
        for key in Order.open_by_check.query(str(shard), Order.check_at <= at, limit=MAX_ORDERS_PER_RUN):
            counts["examined"] += 1
            try:
                counts[_check(key.out_trade_no, at)] += 1
            except Exception as exc:  # one order's channel trouble must not stop the others
                counts["failed"] += 1
                logger.warning("open order check failed", extra={"out_trade_no": key.out_trade_no,
                                                                   "error": type(exc).__name__})
    return counts


def _check(out_trade_no: str, at: int) -> str:
    try:
        order = Order.get(out_trade_no, consistent_read=True)
    except DoesNotExist:
        return "later"
    if order.state != settle.NOTPAY:
        return "later"
    merchant = SubMerchant.get(order.account_id, order.merchant_id)
    provider = Provider.get(order.account_id, order.sp_mchid)
    state = channels.query(order, merchant, provider)
    if state.paid:
        return _settle(order, state)
    if state.finished_unpaid:
        return _close_locally(order)
    if order.time_expire is not None and at >= order.time_expire:
        try:
            channels.close(order, merchant, provider)
        except channels.AlreadyPaid:
            return _after_refused_close(order, channels.query(order, merchant, provider), at)
        return _close_locally(order)
    _look_again(order, at)
    return "later"


def _close_locally(order: Order) -> str:
    """The channel will never take this payment (it closed the order, or refused it): close
    ours without asking it to close again (Alipay answers a close of a closed trade with
    ACQ.TRADE_STATUS_ERROR, the same answer as for a paid one)."""
    return "closed" if settle.close_locally(order) else "later"


def _after_refused_close(order: Order, state: channels.ChannelState, at: int) -> str:
    """The channel would not close the order: it was paid meanwhile, or it closed it itself
    (its own expiry racing ours); only an order still payable is looked at again."""
    if state.paid:
        return _settle(order, state)
    if state.finished_unpaid:
        return _close_locally(order)
    _look_again(order, at)
    return "later"


def _settle(order: Order, state: channels.ChannelState) -> str:
    outcome = settle.settle(settle.Payment(out_trade_no=order.out_trade_no, channel=order.channel, sp_mchid=None,
                                           sub_mchid=None, amount_fen=state.amount_fen or 0,
                                           upstream_trade_no=state.upstream_trade_no), "query")
    return "paid" if outcome in (settle.PAID_NOW, settle.DUPLICATE) else "failed"


def _look_again(order: Order, at: int) -> None:
    """Next look: one catch-up interval on, but no later than the order's expiry."""
    next_at = at + settings.current().order_catch_up_after_seconds
    if order.time_expire is not None:
        next_at = min(next_at, int(order.time_expire))
    try:
        order.update(actions=[Order.check_at.set(max(next_at, at + 1))],
                     condition=(Order.state == settle.NOTPAY) & Order.open_shard.exists(), add_version_condition=False)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
