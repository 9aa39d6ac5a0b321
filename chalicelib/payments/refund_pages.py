"""P6/P7 on the phone: one order's detail (`/h5/orders/{out_trade_no}`) with its refunds, and
the refund form (`POST /h5/orders/{out_trade_no}/refund`) for whoever may refund there.

Who reads: the order's store's admins and manager, its clerks while on shift (the store
list's rule, `queries.for_phone`), and the merchant's admins. Who refunds: `refunds.refusal_for`.
An order the caller may not read answers the same "not found" page as an unknown number.
The refund form carries a single-use nonce from which the refund's out_refund_no is made:
the same form posted again (a double tap, back and resubmit, a webview's retry) answers the
refund it already made; another refund needs the page opened afresh.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib import beijing
from chalicelib.errors import ApiError, InvalidField
from chalicelib.h5 import PageResponse, _page
from chalicelib.models.orders import Order
from chalicelib.onecode import pages, store_pages
from chalicelib.onecode.access import CLERK, NoRoleHere, as_admin, in_store
from chalicelib.payments import amounts, names, queries, refunds

FORM_FIELDS = ("amount", "reason")


def path_of(out_trade_no: str) -> str:
    return f"/h5/orders/{out_trade_no}"


def _reader(out_trade_no: str, cookie: str | None):
    """(actor, order, None) when the phone may read the order, else (None, None, the page)."""
    identity, login = pages.identity_or_login(cookie, path_of(out_trade_no))
    if login is not None:
        return None, None, login
    try:
        order = Order.get(out_trade_no, consistent_read=True)
        actor = in_store(order.store_id, identity.openid)[0] if order.store_id else \
            as_admin(order.merchant_id, identity.openid)
    except (DoesNotExist, NoRoleHere):
        return None, None, pages.no_role_page()
    if actor.merchant_id != order.merchant_id:
        return None, None, pages.no_role_page()
    if actor.role == CLERK and (actor.staff is None or not actor.staff.on_shift):
        return None, None, _page(403, "clerk-off-shift", "暂时不能查看订单", queries.ClerkOffShift().message)
    return actor, order, None


def _context(actor, order: Order, failed: dict | None = None, notice: str | None = None) -> dict:
    refundable = refunds.refundable(order)
    refusal = refunds.refusal_for(actor)
    found = refunds.for_order(order.out_trade_no)
    typed = (failed or {}).get("typed", {})
    return {"title": "订单详情", "order": order, "path": path_of(order.out_trade_no), "notice": notice,
            "amount": amounts.format_yuan(int(order.total)),
            "state": names.ORDER_STATES.get(order.state, "处理中"), "wallet": names.WALLETS.get(order.wallet or "", ""),
            "created": beijing.date_time(order.created_at), "paid_at": beijing.date_time(order.paid_at), "refundable": refundable,
            "refundable_yuan": amounts.format_yuan(refundable), "refunded_yuan": amounts.format_yuan(int(order.refunded or 0)),
            "refunds": [{"amount": amounts.format_yuan(int(r.amount)), "state": names.REFUND_STATES.get(r.state, r.state),
                         "ok": r.state == refunds.SUCCESS, "time": beijing.date_time(r.created_at), "reason": r.reason,
                         "by": r.requested_by_name or "", "failure": r.failure, "no": r.out_refund_no} for r in found],
            "in_progress": bool(order.refunding_no),
            "abnormal": any(r.state == refunds.ABNORMAL for r in found),
            "refund_nonce": typed.get("refund_nonce") or refunds.new_form_nonce(),
            "may_refund": refusal is None and refundable > 0 and not order.refunding_no,
            "why_not": None if refusal is None else ("上班打卡后才能退款。" if refusal.code == "off_shift" else "您没有退款权限。"),
            "csrf": pages.form_token(actor.openid, path_of(order.out_trade_no)),
            "failed": failed or {"errors": {}, "typed": {}},
            "back": f"{store_pages.path_of(order.store_id)}/orders" if order.store_id else "/h5/me"}


def order_page(out_trade_no: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/orders/{out_trade_no}: the order, its refunds and (if allowed) the refund form."""
    actor, order, refused = _reader(out_trade_no, cookie)
    if refused is not None:
        return refused
    return pages.html("phone_order.html", **_context(actor, order, notice=pages.notice_from(query)))


def _notice(refund) -> str:
    amount = amounts.format_yuan(int(refund.amount))
    if refund.state == refunds.SUCCESS:
        return f"已退款 {amount} 元"
    if refund.state == refunds.FAILED:
        return f"退款 {amount} 元未成功：{refund.failure}"
    if refund.state == refunds.ABNORMAL:
        return f"退款 {amount} 元：{refund.failure}"
    return f"退款 {amount} 元已提交，正在处理"


def refund_action(out_trade_no: str, cookie: str | None, form: dict) -> PageResponse:
    """POST /h5/orders/{out_trade_no}/refund {amount in yuan, reason, csrf}: 303 back with a notice."""
    actor, order, refused = _reader(out_trade_no, cookie)
    if refused is not None:
        return refused
    if not pages.form_is_genuine(actor.openid, path_of(order.out_trade_no), form):
        return pages.stale_form_page()
    try:
        requester = refunds.phone_requester(actor, order)
        made = refunds.made_by_form(order, form.get("refund_nonce", ""))
        if made is not None:  # the same form again: its refund, not another one
            return pages.see_other(path_of(order.out_trade_no), _notice(made))
        amount = amounts.parse_yuan(form.get("amount", "").strip(), max(refunds.refundable(order), 1))
        refund = refunds.start(order.out_trade_no, amount, form.get("reason") or None, requester, order=order,
                               form_nonce=form.get("refund_nonce", ""))
    except refunds.RefundNotAllowed as exc:
        text = "上班打卡后才能退款。" if exc.code == "off_shift" else "您没有退款权限，请联系商户管理员或店长。"
        return _page(403, "refund-not-allowed", "不能退款", text)
    except InvalidField as exc:
        if exc.param == "refund_nonce":
            return pages.stale_form_page()
        if exc.param not in FORM_FIELDS:
            return pages.refusal_page(exc)
        message = exc.message if exc.param == "reason" or "金额" in exc.message else \
            f"最多还能退 {amounts.format_yuan(refunds.refundable(order))} 元"
        failed = {"errors": {exc.param: message}, "typed": form}
        return pages.html("phone_order.html", 400, **_context(actor, order, failed))
    except ApiError as exc:
        if getattr(exc, "code", None) == "refund_in_progress":
            return _page(409, "refund-in-progress", "退款处理中", "这笔订单有一笔退款正在处理中，请稍后刷新查看结果。")
        return pages.refusal_page(exc)
    return pages.see_other(path_of(order.out_trade_no), _notice(refund))
