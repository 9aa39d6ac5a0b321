"""P7: orders for the console, scoped: the owning account, or the sub-service-provider the
order is attributed to. Unknown and foreign orders answer the same "not found".

And for the phone roles of the one-code setup: a merchant admin reads the merchant's orders,
a store manager the store's, a clerk the store's only while on shift. Each is one bounded
index query (`orders-by-merchant`, `orders-by-store`), newest first.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist

from chalicelib import pagination, sub_merchants
from chalicelib.errors import Forbidden, NotFound
from chalicelib.models.orders import Order, Refund
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import lookup
from chalicelib.onecode.access import ADMIN, CLERK, Actor, RoleTooLow
from chalicelib.onecode.models import Staff, Store

MERCHANT_ORDERS_LIST = "merchant-orders"
PHONE_ORDERS_LIST = "phone-orders"


class ClerkOffShift(Forbidden):
    """A clerk reads the store's orders only while on shift: off shift, the phone in a
    pocket (or a former colleague's) shows no takings. The message is the phone's words."""

    def __init__(self) -> None:
        super().__init__("店员需要上班打卡后才能查看门店订单，请先在门店页面上班打卡。", code="clerk_off_shift")


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


def for_phone(actor: Actor, limit: int, cursor: str | None) -> pagination.Page:
    """The orders this phone role may read: the store's for anyone acting in a store (an
    admin, a manager, a clerk on shift, read when `actor` was made, strongly consistent),
    the merchant's for an admin acting for the merchant."""
    if actor.store_id is None:
        if actor.role != ADMIN:
            raise RoleTooLow(ADMIN)
        return pagination.query_page(Order.by_merchant, actor.merchant_id, PHONE_ORDERS_LIST, limit, cursor,
                                     newest_first=True)
    if actor.role == CLERK and (actor.staff is None or not actor.staff.on_shift):
        raise ClerkOffShift()
    return pagination.query_page(Order.by_store, actor.store_id, PHONE_ORDERS_LIST, limit, cursor,
                                 newest_first=True)


def order_view(order: Order) -> dict:
    """An order as the console API answers it; `refunding_no` names the refund in progress
    (the console says why no other refund can start)."""
    return {"object": "order", "out_trade_no": order.out_trade_no, "state": order.state, "channel": order.channel,
            "wallet": order.wallet, "total": int(order.total), "refunded": int(order.refunded or 0),
            "refunding_no": order.refunding_no, "sp_mchid": order.sp_mchid, "sub_mchid": order.sub_mchid,
            "merchant_id": order.merchant_id, "sub_service_provider": order.ssp_account_id, "store_id": order.store_id,
            "clerk_id": order.clerk_id, "device_id": order.device_id, "code_id": order.code_id, "source": order.source,
            "remark": order.remark, "upstream_trade_no": order.upstream_trade_no, "created_at": order.created_at,
            "time_expire": order.time_expire, "paid_at": order.paid_at, "closed_at": order.closed_at}


def refund_view(refund: Refund) -> dict:
    return {"object": "refund", "out_refund_no": refund.out_refund_no, "out_trade_no": refund.out_trade_no,
            "amount": int(refund.amount), "state": refund.state, "reason": refund.reason, "channel": refund.channel,
            "sp_mchid": refund.sp_mchid, "merchant_id": refund.merchant_id, "store_id": refund.store_id,
            "clerk_id": refund.clerk_id, "code_id": refund.code_id, "sub_service_provider": refund.ssp_account_id,
            "requested_by": refund.requested_by, "requested_by_name": refund.requested_by_name,
            "created_at": refund.created_at, "succeeded_at": refund.succeeded_at, "failed_at": refund.failed_at,
            "abnormal_at": refund.abnormal_at, "failure": refund.failure}


def named_view(order: Order) -> dict:
    """The console's order detail: `order_view` with the names of its merchant, store and
    clerk (None for one removed since), so the page shows who and where, not ids. The merchant
    and the store in one BatchGet; a clerk-code order's clerk from the store's staff (keyed
    by openid, not staff id: one bounded query of one store)."""
    wanted = [(SubMerchant, order.account_id, order.merchant_id)] + \
        ([(Store, order.store_id, None)] if order.store_id else [])
    merchant, store = [*lookup.get_many(wanted), None][:2]
    clerk = next(iter(Staff.query(order.store_id, filter_condition=Staff.staff_id == order.clerk_id)), None) \
        if order.store_id and order.clerk_id else None
    return order_view(order) | {"merchant_name": merchant.name if merchant else None,
                                "store_name": store.name if store else None, "clerk_name": clerk.name if clerk else None}
