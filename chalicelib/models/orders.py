"""Orders and refunds, as the payments feature keeps them.

Each is one item whose `ssp_account_id` says which sub-service-provider it counts for, so
moving a merchant's history (B3) rewrites one attribute per item and no query can ever see
an order twice. `created_key` ("<created_at, 10 digits>#<number>") orders the indexes by
time and stays unique.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import table_meta


def _by_time(name: str, hash_name: str) -> GlobalSecondaryIndex:
    """An index of one table's items by `hash_name`, in time order (`created_key`): by merchant
    is what re-attribution pages through; by sub-service-provider is what its lists read
    (sparse: items of no sub-service-provider are not in it)."""
    meta = type("Meta", (), {"index_name": name, "projection": AllProjection()})
    return type(f"Index_{hash_name}", (GlobalSecondaryIndex,), {
        "Meta": meta, hash_name: UnicodeAttribute(hash_key=True), "created_key": UnicodeAttribute(range_key=True)})()


class Order(Model):
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
    refunded = NumberAttribute(default=0)  # fen
    description = UnicodeAttribute(null=True)
    payer_id = UnicodeAttribute(null=True)
    upstream_trade_no = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    paid_at = NumberAttribute(null=True)
    created_key = UnicodeAttribute()
    attributed_by = UnicodeAttribute(null=True)
    """The re-attribution job that last moved it."""
    version = VersionAttribute()

    by_merchant = _by_time("orders-by-merchant", "merchant_id")
    by_sub_service_provider = _by_time("orders-by-sub-service-provider", "ssp_account_id")


class Refund(Model):
    Meta = table_meta("refunds_table")

    out_refund_no = UnicodeAttribute(hash_key=True)
    out_trade_no = UnicodeAttribute()
    account_id = UnicodeAttribute()
    sp_mchid = UnicodeAttribute()
    merchant_id = UnicodeAttribute()
    ssp_account_id = UnicodeAttribute(null=True)
    amount = NumberAttribute()  # fen
    state = UnicodeAttribute()  # PROCESSING | SUCCESS | FAILED
    created_at = NumberAttribute()
    succeeded_at = NumberAttribute(null=True)
    created_key = UnicodeAttribute()
    attributed_by = UnicodeAttribute(null=True)
    version = VersionAttribute()

    by_merchant = _by_time("refunds-by-merchant", "merchant_id")
    by_sub_service_provider = _by_time("refunds-by-sub-service-provider", "ssp_account_id")
