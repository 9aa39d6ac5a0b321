"""The outbox: work that must follow a state change, written in the change's transaction."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class PendingItems(GlobalSecondaryIndex):
    """Sparse index of items not yet handed to the queue: only they carry `pending_shard`,
    so the sweep queries each shard for old enough items and never reads the table."""

    class Meta:
        index_name = "outbox-pending"
        projection = KeysOnlyProjection()

    pending_shard = UnicodeAttribute(hash_key=True)
    created_at = NumberAttribute(range_key=True)


class OutboxItem(Model):
    """One piece of follow-up work. `item_id` is derived from what caused it ("order_paid#<out_trade_no>"),
    so the transaction's `does_not_exist` condition makes it exist at most once."""

    Meta = table_meta("outbox_table")

    item_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()  # order_paid | refund_succeeded
    account_id = UnicodeAttribute()
    out_trade_no = UnicodeAttribute()
    out_refund_no = UnicodeAttribute(null=True)
    """A refund_succeeded item's refund."""
    created_at = NumberAttribute()
    pending_shard = UnicodeAttribute(null=True)
    handed_over_at = NumberAttribute(null=True)
    done_at = NumberAttribute(null=True)
    counted_at = NumberAttribute(null=True)
    """When its amounts were added to the daily totals (once: the condition of that transaction)."""

    pending = PendingItems()
