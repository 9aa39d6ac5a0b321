"""P7 on the phone: the order list of a store (`/h5/stores/{id}/orders`, for its admins,
manager and clerks on shift) and of a merchant (`/h5/merchants/{id}/orders`, for its admins).

Who reads what is `queries.for_phone`'s rule; this module only finds the caller's role (the
same way the store and merchant pages do), reads one bounded page and words it: time in
Beijing time, amount in yuan, state in Chinese, the order number to quote on a call. On top,
the summary from the daily totals (C6): today's for a store, today's and this month's for a
merchant (one Query of at most 31 items); each row opens the order (`/h5/orders/{no}`).
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from chalicelib import beijing
from chalicelib.errors import ApiError
from chalicelib.h5 import PageResponse, _page
from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.onecode import merchant_pages, pages, store_pages
from chalicelib.onecode.access import NoRoleHere, as_admin, in_store
from chalicelib.payments import amounts, names, queries, totals

ORDERS_PER_PAGE = 20


def _row(order: Order) -> dict:
    refunded = int(order.refunded or 0)
    state = names.ORDER_STATES.get(order.state, "处理中")
    if refunded:
        state += f"（已退 {amounts.format_yuan(refunded)} 元）"
    return {"time": beijing.date_time(order.created_at),
            "amount": amounts.format_yuan(int(order.total)), "state": state, "paid": order.state == "SUCCESS",
            "wallet": names.WALLETS.get(order.wallet or "", ""), "out_trade_no": order.out_trade_no,
            "href": f"/h5/orders/{quote(order.out_trade_no, safe='')}"}


def _figures(label: str, body: dict) -> dict:
    return {"label": label, "trade": amounts.format_yuan(body["trade_amount"]), "trade_count": body["trade_count"],
            "refund": amounts.format_yuan(body["refund_amount"]), "refund_count": body["refund_count"],
            "net": amounts.format_yuan(body["net_amount"])}


def summaries(scope: str, with_month: bool, at: int | None = None) -> list[dict]:
    """Today's figures (and this month's) of one daily-totals scope, worded for the phone."""
    today = beijing.day_of(now() if at is None else at)
    first = today[:8] + "01" if with_month else today
    month = totals.summarize([scope], first, today).body()
    today_body = dict(month, **{name: month["days"][-1][name] for name in
                                ("trade_amount", "trade_count", "refund_amount", "refund_count")})
    today_body["net_amount"] = today_body["trade_amount"] - today_body["refund_amount"]
    shown = [_figures("今日", today_body)]
    if with_month:
        shown.append(_figures("本月", month))
    return shown


def _with_query(path: str, query: dict) -> str:
    return path + (f"?{urlencode(query)}" if query else "")


def _orders_page(actor, heading: str, subheading: str, back: str, path: str, query: dict,
                 summary: tuple[str, bool]) -> PageResponse:
    try:
        found = queries.for_phone(actor, ORDERS_PER_PAGE, query.get("cursor"))
    except queries.ClerkOffShift as exc:
        return _page(403, "clerk-off-shift", "暂时不能查看订单", exc.message)
    except ApiError as exc:
        return pages.refusal_page(exc)
    return pages.html("phone_orders.html", title=f"{heading} · 订单", heading=heading, subheading=subheading,
                      back=back, orders=[_row(order) for order in found.data], summaries=summaries(*summary),
                      next_page=f"{path}?{urlencode({'cursor': found.next_cursor})}" if found.next_cursor else None)


def _signed_in_as(resolve, path: str, cookie: str | None, query: dict):
    """(actor, None) for the caller's role that `resolve(openid)` finds, else (None, the page:
    WeChat sign-in coming back to this list, or the no-role page)."""
    identity, login = pages.identity_or_login(cookie, _with_query(path, query))
    if login is not None:
        return None, login
    try:
        return resolve(identity.openid), None
    except NoRoleHere:
        return None, pages.no_role_page()


def store_orders_page(store_id: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/stores/{id}/orders[?cursor=]: the store's orders, newest first."""
    query = dict(query or {})
    path = f"{store_pages.path_of(store_id)}/orders"
    found, refusal = _signed_in_as(lambda openid: in_store(store_id, openid), path, cookie, query)
    if refusal is not None:
        return refusal
    actor, store = found
    return _orders_page(actor, store.name, "门店订单", store_pages.path_of(store_id), path, query,
                        (totals.store_scope(store_id), False))


def merchant_orders_page(merchant_id: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/merchants/{id}/orders[?cursor=]: every order of the merchant, for its admins."""
    query = dict(query or {})
    path = f"{merchant_pages.path_of(merchant_id)}/orders"
    actor, refusal = _signed_in_as(lambda openid: as_admin(merchant_id, openid), path, cookie, query)
    if refusal is not None:
        return refusal
    return _orders_page(actor, "全部订单", "商户所有门店的订单", merchant_pages.path_of(merchant_id), path, query,
                        (totals.merchant_scope(merchant_id), True))
