"""H5 shift summary: at clock-out, the store's takings since the previous clock-out of anyone
in the store (the hand-over between clerks), or since this shift began when nobody clocked
out before; shown on the store page and sent to the clerk as a template message.

The previous clock-out is one Query of the sparse `ended-shifts-by-store` index (newest
before this one). The orders are one index query of `orders-by-store` over the creation
times that can have been paid in the window (an order is paid at most `order_expire_seconds`
after it is created), filtered to the ones paid inside it; it reads the shift's orders, a
few hundred for a busy shift. The message is best effort: a failed send is logged (never the
openid) and the clock-out stands.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import settings
from chalicelib.log import logger
from chalicelib.models.orders import Order
from chalicelib.onecode.models import Shift
from chalicelib.payments import amounts
from chalicelib.upstream import wechat_message


@dataclass
class ShiftTakings:
    since: int
    until: int
    count: int
    amount: int  # fen

    def notice(self) -> str:
        return f"本班收款 {self.count} 笔，共 {amounts.format_yuan(self.amount)} 元"


def takings(store_id: str, shift: Shift) -> ShiftTakings:
    """The store's paid orders from the previous clock-out in the store (exclusive) to this
    shift's end (inclusive)."""
    until = int(shift.ended_at)
    previous = next(iter(Shift.ended_by_store.query(store_id, Shift.ended_at < until, scan_index_forward=False,
                                                    limit=1)), None)
    since = int(previous.ended_at) if previous is not None else int(shift.started_at)
    earliest = since - settings.current().order_expire_seconds
    count = amount = 0
    for order in Order.by_store.query(
            store_id, Order.created_key.between(f"{earliest:010d}", f"{until:010d}~"),
            filter_condition=(Order.state == "SUCCESS") & (Order.paid_at > since) & (Order.paid_at <= until),
            attributes_to_get=["total"]):
        count += 1
        amount += int(order.total)
    return ShiftTakings(since, until, count, amount)


def send(openid: str, store_name: str, shift: Shift, found: ShiftTakings, local_time) -> bool:
    """The summary as the `wechat_shift_summary_template_id` message to the clerk; False
    when it could not be sent (the clock-out is done all the same)."""
    data = {"thing1": store_name[:20] or "门店", "time2": f"{local_time(found.since)}~{local_time(found.until)}",
            "number3": str(found.count), "amount4": f"{amounts.format_yuan(found.amount)}元"}
    try:
        wechat_message.send_template(openid, settings.current().wechat_shift_summary_template_id, data,
                                     client_msg_id=f"shift-summary#{shift.shift_id}")
    except Exception as exc:  # best effort: the clerk has clocked out whatever WeChat answers
        logger.warning("shift summary message not sent", extra={"store_id": shift.store_id,
                                                                 "shift_id": shift.shift_id,
                                                                 "error": type(exc).__name__})
        return False
    return True
