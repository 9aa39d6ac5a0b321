"""QR code records (SPEC §3): every code is an item with a kind, a target and a state."""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class LiveCodesByExpiry(GlobalSecondaryIndex):
    """Sparse index of codes that can still expire: only they carry `expiry_shard`.

    The sweep (B2) queries each shard for `expires_at <= now` and removes the shard
    attribute when it marks a code expired or the code is used, so the index holds only
    live codes and the sweep never reads a whole table.
    """

    class Meta:
        index_name = "live-codes-by-expiry"
        projection = KeysOnlyProjection()

    expiry_shard = UnicodeAttribute(hash_key=True)
    expires_at = NumberAttribute(range_key=True)


class QrCode(Model):
    Meta = table_meta("qr_codes_table")

    code_id = UnicodeAttribute(hash_key=True)
    kind = UnicodeAttribute()
    state = UnicodeAttribute()
    account_id = UnicodeAttribute()
    created_at = NumberAttribute()
    expires_at = NumberAttribute(null=True)
    expiry_shard = UnicodeAttribute(null=True)
    scanned_by = UnicodeAttribute(null=True)
    scanned_at = NumberAttribute(null=True)
    used_by = UnicodeAttribute(null=True)
    used_at = NumberAttribute(null=True)
    replaced_by = UnicodeAttribute(null=True)
    target = UnicodeAttribute(null=True)  # what the code acts on, e.g. a provider's sp_mchid
    result = MapAttribute(null=True)  # what confirming it did, for the console to show
    merchant_id = UnicodeAttribute(null=True)
    store_id = UnicodeAttribute(null=True)
    """One-code setup codes carry where they act, so a scan needs no second look-up to find it."""
    sp_mchid = UnicodeAttribute(null=True)
    """Collection codes: the provider, so a customer's scan reads it in the same batch."""
    member_key = UnicodeAttribute(null=True)
    """Activation codes: the invite they activate. Clerk collection codes: the clerk's key in
    the store's staff (their openid), so a scan reads the clerk in the same batch as the store."""
    purge_at = NumberAttribute(null=True)  # DynamoDB TTL: deleted some time after

    live_by_expiry = LiveCodesByExpiry()
