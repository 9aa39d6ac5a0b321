"""H5 shift summary: at clock-out, the store's takings since the previous clock-out of anyone
in the store (the hand-over between clerks), or since this shift began when nobody clocked
out before; shown on the store page and sent to the clerk as a template message.

The window is bounded inside the clock-out request: it starts at the later of the previous
clock-out and LOOKBACK_SECONDS before this shift began (a previous clock-out weeks ago would
otherwise read weeks of orders), and the read stops at MAX_ORDERS_READ orders (the figures
then say "至少"). The previous clock-out is one Query of the sparse `ended-shifts-by-store`
index (newest before this one). The orders are one index query of `orders-by-store` over the
creation times that can have been paid in the window (an order is paid at most
`order_expire_seconds` after it is created), filtered to the ones paid inside it. The message
is best effort and only to a clerk who keeps messages on: a failed send is logged (never the
openid) and the clock-out stands.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import beijing, settings
from chalicelib.log import logger
from chalicelib.models.orders import Order
from chalicelib.onecode.models import Shift, Staff
from chalicelib.payments import amounts
from chalicelib.upstream import wechat_message

LOOKBACK_SECONDS = 24 * 3600
"""How far before this shift's start the window may reach back to the previous clock-out."""
MAX_ORDERS_READ = 5000
"""Orders the clock-out reads at most (about five Queries of 1,000 small projected items)."""
PAGE_SIZE = 1000


@dataclass
class ShiftTakings:
    since: int
    until: int
    count: int
    amount: int  # fen
    at_least: bool = False
    """True when the read stopped at MAX_ORDERS_READ: the figures are a lower bound."""

    def notice(self) -> str:
        if self.at_least:
            return f"本班收款至少 {self.count} 笔，共至少 {amounts.format_yuan(self.amount)} 元（订单过多，仅统计了一部分）"
        return f"本班收款 {self.count} 笔，共 {amounts.format_yuan(self.amount)} 元"


def window_start(store_id: str, shift: Shift) -> int:
    """The later of the previous clock-out in the store (before this one) and LOOKBACK_SECONDS
    before this shift began; this shift's start when nobody in the store clocked out before."""
    previous = next(iter(Shift.ended_by_store.query(store_id, Shift.ended_at < int(shift.ended_at),
                                                    scan_index_forward=False, limit=1)), None)
    if previous is None:
        return int(shift.started_at)
    return max(int(previous.ended_at), int(shift.started_at) - LOOKBACK_SECONDS)


def takings(store_id: str, shift: Shift) -> ShiftTakings:
    """The store's paid orders from the window's start (exclusive) to this shift's end
    (inclusive), reading at most MAX_ORDERS_READ orders."""
    until = int(shift.ended_at)
    since = window_start(store_id, shift)
    earliest = since - settings.current().order_expire_seconds
    pages = Order.by_store.query(
        store_id, Order.created_key.between(f"{earliest:010d}", f"{until:010d}~"),
        filter_condition=(Order.state == "SUCCESS") & (Order.paid_at > since) & (Order.paid_at <= until),
        attributes_to_get=["total"], page_size=min(PAGE_SIZE, MAX_ORDERS_READ)).page_iter
    count = amount = read = 0
    for page in pages:
        read += page.get("ScannedCount", 0)
        for item in page.get("Items", []):
            count += 1
            amount += int(item["total"]["N"])
        if pages.last_evaluated_key is None:
            break
        if read >= MAX_ORDERS_READ:
            return ShiftTakings(since, until, count, amount, at_least=True)
        pages.page_size = min(PAGE_SIZE, MAX_ORDERS_READ - read)
    return ShiftTakings(since, until, count, amount)


def send(member: Staff, store_name: str, shift: Shift, found: ShiftTakings) -> bool:
    """The summary as the `wechat_shift_summary_template_id` message to the clerk; False
    when the clerk turned messages off or it could not be sent (the clock-out is done all the
    same). The template's number and amount keywords take digits only, so a lower bound says
    "至少" after the store's name."""
    if not member.messages_on or not member.openid:
        return False
    store = store_name[:20] or "门店"
    if found.at_least:
        store = f"{store[:16]}（至少）"
    data = {"thing1": store, "time2": f"{beijing.clock_time(found.since)}~{beijing.clock_time(found.until)}",
            "number3": str(found.count), "amount4": f"{amounts.format_yuan(found.amount)}元"}
    try:
        wechat_message.send_template(member.openid, settings.current().wechat_shift_summary_template_id, data,
                                     client_msg_id=f"shift-summary#{shift.shift_id}")
    except Exception as exc:  # best effort: the clerk has clocked out whatever WeChat answers
        logger.warning("shift summary message not sent", extra={"store_id": shift.store_id,
                                                                 "shift_id": shift.shift_id,
                                                                 "error": type(exc).__name__})
        return False
    return True
