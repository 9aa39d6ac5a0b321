"""P7: orders for the console, scoped: the owning account, or the sub-service-provider the
order is attributed to. Unknown and foreign orders answer the same "not found"."""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib import pagination, sub_merchants
from chalicelib.errors import NotFound
from chalicelib.models.orders import Order

MERCHANT_ORDERS_LIST = "merchant-orders"


def for_console(account_id: str, out_trade_no: str) -> Order:
    try:
        order = Order.get(out_trade_no)
    except DoesNotExist:
        order = None
    if order is None or account_id not in (order.account_id, order.ssp_account_id):
        raise NotFound("no such order", param="out_trade_no")
    return order


def merchant_orders(account_id: str, merchant_id: str, limit: int, cursor: str | None) -> pagination.Page:
    """A merchant's orders, newest first; a sub-service-provider sees those attributed to it."""
    merchant, role = sub_merchants.readable(account_id, merchant_id)
    scope = None if role == "owner" else Order.ssp_account_id == account_id
    return pagination.query_page(Order.by_merchant, merchant.merchant_id, MERCHANT_ORDERS_LIST, limit, cursor,
                                 filter_condition=scope, newest_first=True)


def order_view(order: Order) -> dict:
    return {"object": "order", "out_trade_no": order.out_trade_no, "state": order.state, "channel": order.channel,
            "wallet": order.wallet, "total": int(order.total), "refunded": int(order.refunded or 0),
            "sp_mchid": order.sp_mchid, "sub_mchid": order.sub_mchid, "merchant_id": order.merchant_id,
            "sub_service_provider": order.ssp_account_id, "store_id": order.store_id, "clerk_id": order.clerk_id,
            "code_id": order.code_id, "source": order.source, "remark": order.remark,
            "upstream_trade_no": order.upstream_trade_no, "created_at": order.created_at,
            "time_expire": order.time_expire, "paid_at": order.paid_at, "closed_at": order.closed_at}
