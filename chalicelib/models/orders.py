"""Orders and refunds, as the payments feature keeps them.

Each is one item whose `ssp_account_id` says which sub-service-provider it counts for, so
moving a merchant's history (B3) rewrites one attribute per item and no query can ever see
an order twice. `created_key` ("<created_at, 10 digits>#<number>") orders the indexes by
time and stays unique.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta


def _by_time(name: str, hash_name: str) -> GlobalSecondaryIndex:
    """An index of one table's items by `hash_name`, in time order (`created_key`): by merchant
    is what re-attribution pages through; by sub-service-provider is what its lists read
    (sparse: items of no sub-service-provider are not in it)."""
    meta = type("Meta", (), {"index_name": name, "projection": AllProjection()})
    return type(f"Index_{hash_name}", (GlobalSecondaryIndex,), {
        "Meta": meta, hash_name: UnicodeAttribute(hash_key=True), "created_key": UnicodeAttribute(range_key=True)})()


class OpenOrdersByCheck(GlobalSecondaryIndex):
    """P4/P5: sparse index of the orders a sweep must still look at. Only an unpaid order
    carries `open_shard`; settling or closing it removes the attribute, so the sweep queries
    each shard for `check_at <= now` and never reads the table."""

    class Meta:
        index_name = "open-orders-by-check"
        projection = KeysOnlyProjection()

    open_shard = UnicodeAttribute(hash_key=True)
    check_at = NumberAttribute(range_key=True)


class Order(Model):
    """P1: one order per payment attempt. `state` NOTPAY → SUCCESS (paid) or CLOSED; the
    channel ids (`prepay_id`, `upstream_trade_no`) are set once the channel has answered."""

    Meta = table_meta("orders_table")

    out_trade_no = UnicodeAttribute(hash_key=True)
    account_id = UnicodeAttribute()
    sp_mchid = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    ssp_account_id = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    clerk_id = UnicodeAttribute(null=True)
    code_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute()  # official_direct | maidan | alipay
    state = UnicodeAttribute()  # NOTPAY | SUCCESS | CLOSED | PAYERROR
    total = NumberAttribute()  # fen
    refunded = NumberAttribute(default=0)  # fen, refunds that succeeded
    refunding_no = UnicodeAttribute(null=True)
    """P6: the out_refund_no of the one refund in progress; a new refund is refused while set."""
    device_id = UnicodeAttribute(null=True)
    """C6: the store device the payment was taken on (none of the code payments has one)."""
    description = UnicodeAttribute(null=True)
    payer_id = UnicodeAttribute(null=True)
    upstream_trade_no = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    paid_at = NumberAttribute(null=True)
    created_key = UnicodeAttribute()
    attributed_by = UnicodeAttribute(null=True)
    """The re-attribution job that last moved it."""
    sub_mchid = UnicodeAttribute(null=True)
    source = UnicodeAttribute(null=True)  # store_code | clerk_code
    wallet = UnicodeAttribute(null=True)  # wechat | alipay
    payer_app_id = UnicodeAttribute(null=True)
    """The appid `payer_id` (an openid) was issued for; the Alipay app for a buyer id."""
    remark = UnicodeAttribute(null=True)
    attempt_id = UnicodeAttribute(null=True)
    """The pay page's id of this attempt: the same attempt always maps to this out_trade_no."""
    time_expire = NumberAttribute(null=True)
    prepay_id = UnicodeAttribute(null=True)
    closed_at = NumberAttribute(null=True)
    settled_by = UnicodeAttribute(null=True)  # notification | query
    open_shard = UnicodeAttribute(null=True)
    check_at = NumberAttribute(null=True)
    version = VersionAttribute()

    by_account = _by_time("orders-by-account", "account_id")
    """C6: every order of the console account that owns the provider."""
    by_merchant = _by_time("orders-by-merchant", "merchant_id")
    by_sub_service_provider = _by_time("orders-by-sub-service-provider", "ssp_account_id")
    by_store = _by_time("orders-by-store", "store_id")
    """P7: the store's orders for its manager and clerks (sparse: orders of no store are not in it)."""
    open_by_check = OpenOrdersByCheck()


class ProcessingRefundsByCheck(GlobalSecondaryIndex):
    """P6: sparse index of refunds still processing at their channel: only they carry
    `check_shard`, so the refund query sweep never reads the table."""

    class Meta:
        index_name = "refunds-processing-by-check"
        projection = KeysOnlyProjection()

    check_shard = UnicodeAttribute(hash_key=True)
    check_at = NumberAttribute(range_key=True)


class Refund(Model):
    """P6: one refund of a paid order; `state` PROCESSING → SUCCESS or FAILED, or PROCESSING →
    ABNORMAL (WeChat Pay could not pay it out; still open until the merchant handles it at
    WeChat Pay) → SUCCESS or FAILED."""

    Meta = table_meta("refunds_table")

    out_refund_no = UnicodeAttribute(hash_key=True)
    out_trade_no = UnicodeAttribute()
    account_id = UnicodeAttribute()
    sp_mchid = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    ssp_account_id = UnicodeAttribute(null=True)
    amount = NumberAttribute()  # fen
    state = UnicodeAttribute()  # PROCESSING | ABNORMAL | SUCCESS | FAILED
    created_at = NumberAttribute()
    succeeded_at = NumberAttribute(null=True)
    created_key = UnicodeAttribute()
    attributed_by = UnicodeAttribute(null=True)
    version = VersionAttribute()

    store_id = UnicodeAttribute(null=True)
    clerk_id = UnicodeAttribute(null=True)
    code_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    check_shard = UnicodeAttribute(null=True)
    check_at = NumberAttribute(null=True)
    sub_mchid = UnicodeAttribute(null=True)
    """The order's WeChat Pay / 买单 sub_mchid: a refund notification must name it."""
    reason = UnicodeAttribute(null=True)
    """What the requester typed (≤ 80 characters); sent to the channel, shown on the order."""
    requested_by = UnicodeAttribute(null=True)
    """Who asked: the console account id, or "<role>#<admin or staff id>" (never an openid)."""
    requested_by_name = UnicodeAttribute(null=True)
    failed_at = NumberAttribute(null=True)
    abnormal_at = NumberAttribute(null=True)
    """When WeChat Pay first said ABNORMAL (kept after a later SUCCESS, as history)."""
    failure = UnicodeAttribute(null=True)
    """Why the channel refused (or, while ABNORMAL, what the merchant must do), in Chinese."""
    upstream_refund_id = UnicodeAttribute(null=True)
    settled_by = UnicodeAttribute(null=True)  # channel_answer | notification | query

    by_order = _by_time("refunds-by-order", "out_trade_no")
    by_account = _by_time("refunds-by-account", "account_id")
    by_merchant = _by_time("refunds-by-merchant", "merchant_id")
    by_sub_service_provider = _by_time("refunds-by-sub-service-provider", "ssp_account_id")
    processing_by_check = ProcessingRefundsByCheck()
