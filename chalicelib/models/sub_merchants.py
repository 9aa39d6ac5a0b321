"""Sub-merchants (子商户): the small merchants a provider brings onto WeChat Pay and Alipay."""
from __future__ import annotations

from pynamodb.attributes import (BooleanAttribute, ListAttribute, MapAttribute, NumberAttribute, UnicodeAttribute,
                                 VersionAttribute)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class ByProvider(GlobalSecondaryIndex):
    """A provider's sub-merchants; `provider_key` is "<owner account>#<sp_mchid>"."""

    class Meta:
        index_name = "by-provider"
        projection = AllProjection()

    provider_key = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class BySubServiceProvider(GlobalSecondaryIndex):
    """What a sub-service-provider may see: the sub-merchants attributed to it (sparse)."""

    class Meta:
        index_name = "by-sub-service-provider"
        projection = AllProjection()

    ssp_account_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


def _by_name(index_name: str, hash_name: str, why: str) -> GlobalSecondaryIndex:
    """A list index: the sub-merchants sharing `hash_name`, in name order, so a name prefix is
    a `begins_with` key condition and every page reads only what it returns."""
    meta = type("Meta", (), {"index_name": index_name, "projection": AllProjection()})
    return type(f"ByName_{hash_name}", (GlobalSecondaryIndex,), {
        "__doc__": why, "Meta": meta, hash_name: UnicodeAttribute(hash_key=True),
        "name": UnicodeAttribute(range_key=True)})()


class AlipayRefreshDue(GlobalSecondaryIndex):
    """C5.5: sparse index of Alipay authorizations the refresh sweep must look at. Only a
    merchant whose tokens can still be refreshed carries `alipay_refresh_shard`; the sweep
    queries each shard for `alipay_refresh_due_at <= now`, so it never reads the table."""

    class Meta:
        index_name = "alipay-refresh-due"
        projection = KeysOnlyProjection()

    alipay_refresh_shard = UnicodeAttribute(hash_key=True)
    alipay_refresh_due_at = NumberAttribute(range_key=True)


class AlipayRefreshFailure(MapAttribute):
    """Why the last refresh of the tokens failed; cleared by the next success."""

    reason = UnicodeAttribute()
    code = UnicodeAttribute()
    at = NumberAttribute()
    will_retry = BooleanAttribute()


class AlipayAuthorization(MapAttribute):
    """C5.5: the merchant's authorization of its provider's Alipay ISV app. The two tokens
    are KMS ciphertexts (chalicelib/secrets.py), never plain text."""

    user_id = UnicodeAttribute()
    """The merchant's Alipay PID (2088...): cleared with the tokens, never edited."""
    auth_app_id = UnicodeAttribute()
    isv_app_id = UnicodeAttribute()
    """The provider's app the tokens were issued to: they work with no other."""
    app_auth_token = UnicodeAttribute()
    app_refresh_token = UnicodeAttribute()
    expires_at = NumberAttribute()
    re_expires_at = NumberAttribute()
    authorized_at = NumberAttribute()
    refreshed_at = NumberAttribute(null=True)
    refresh_failure = AlipayRefreshFailure(null=True)


class SubMerchant(Model):
    Meta = table_meta("sub_merchants_table")

    account_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)
    sp_mchid = UnicodeAttribute()
    provider_key = UnicodeAttribute()
    ssp_account_id = UnicodeAttribute(null=True)
    order_prefix = UnicodeAttribute()
    name = UnicodeAttribute()
    short_name = UnicodeAttribute(null=True)
    admin_name = UnicodeAttribute(null=True)
    admin_email = UnicodeAttribute(null=True)
    admin_phone = UnicodeAttribute(null=True)
    sub_mchid = UnicodeAttribute(null=True)
    logo_url = UnicodeAttribute(null=True)
    ad_image_url = UnicodeAttribute(null=True)
    ad_link_url = UnicodeAttribute(null=True)
    remark = UnicodeAttribute(null=True)
    pay_limit_fen = NumberAttribute(null=True)
    """The merchant's own cap on one payment (fen); the smaller of it and its provider's applies."""
    channel = UnicodeAttribute()  # official_direct | maidan
    source = UnicodeAttribute()  # manual | maidan
    maidan_opened = BooleanAttribute(null=True)
    maidan_updated_at = UnicodeAttribute(null=True)
    """When 买单 last changed the merchant, as 买单 says (RFC 3339)."""
    sync_job = UnicodeAttribute(null=True)
    sync_outcome = UnicodeAttribute(null=True)
    """created | updated: what `sync_job` did to this record, so a page redone after a worker
    died counts each merchant as the first attempt did."""
    reattribution_jobs = ListAttribute(of=UnicodeAttribute, default=list)
    """Re-attribution jobs of this merchant not yet ended: the first runs, the rest wait."""
    keys = MapAttribute(default=dict)  # auth_key ciphertext, public key PEM, reset time
    alipay = AlipayAuthorization(null=True)
    alipay_refresh_shard = UnicodeAttribute(null=True)
    alipay_refresh_due_at = NumberAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()
    channel_key = UnicodeAttribute(null=True)
    """"<account>#<channel>"; this and the three keys below are derived from the record on
    every put (`serialize`), so no writer has to remember them; only an update that changes
    `ssp_account_id` in place must also set them (`attribution_actions`)."""
    provider_channel_key = UnicodeAttribute(null=True)
    """"<account>#<sp_mchid>#<channel>"."""
    ssp_key = UnicodeAttribute(null=True)
    """"<account>#<sub-service-provider account>"; absent when none (a sparse index)."""
    ssp_channel_key = UnicodeAttribute(null=True)
    """"<account>#<sub-service-provider account>#<channel>"; absent when none."""

    by_provider = ByProvider()
    by_sub_service_provider = BySubServiceProvider()
    alipay_refresh_due = AlipayRefreshDue()
    by_account_name = _by_name("by-account-name", "account_id", "All of an account's sub-merchants.")
    by_channel_name = _by_name("by-channel-name", "channel_key", "An account's sub-merchants of one channel.")
    by_provider_name = _by_name("by-provider-name", "provider_key", "A provider's sub-merchants.")
    by_provider_channel_name = _by_name("by-provider-channel-name", "provider_channel_key",
                                        "A provider's sub-merchants of one channel.")
    by_ssp_name = _by_name("by-ssp-name", "ssp_key",
                           "An account's sub-merchants attributed to one sub-service-provider.")
    by_ssp_channel_name = _by_name("by-ssp-channel-name", "ssp_channel_key",
                                   "An account's sub-merchants of one sub-service-provider and channel.")
    by_member_name = _by_name("by-member-name", "ssp_account_id",
                              "What a sub-service-provider sees: every merchant attributed to it, of any owner.")

    def serialize(self, null_check: bool = True) -> dict:
        """Every put (save, transaction, BatchWriteItem) serializes here: the list keys are
        set from the record first, so a new or re-saved record is always in its indexes."""
        self.channel_key = f"{self.account_id}#{self.channel}"
        self.provider_channel_key = f"{self.account_id}#{self.sp_mchid}#{self.channel}"
        self.ssp_key, self.ssp_channel_key = _ssp_keys(self.account_id, self.ssp_account_id, self.channel)
        return super().serialize(null_check=null_check)

    def attribution_actions(self, ssp_account_id: str | None) -> list:
        """The update actions that attribute this merchant to `ssp_account_id` (None: to no
        one), its list keys included."""
        ssp_key, ssp_channel_key = _ssp_keys(self.account_id, ssp_account_id, self.channel)
        if ssp_account_id is None:
            return [SubMerchant.ssp_account_id.remove(), SubMerchant.ssp_key.remove(),
                    SubMerchant.ssp_channel_key.remove()]
        return [SubMerchant.ssp_account_id.set(ssp_account_id), SubMerchant.ssp_key.set(ssp_key),
                SubMerchant.ssp_channel_key.set(ssp_channel_key)]


def _ssp_keys(account_id: str, ssp_account_id: str | None, channel: str) -> tuple[str | None, str | None]:
    if not ssp_account_id:
        return None, None
    return f"{account_id}#{ssp_account_id}", f"{account_id}#{ssp_account_id}#{channel}"
