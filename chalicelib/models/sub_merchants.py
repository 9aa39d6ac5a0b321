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

    by_provider = ByProvider()
    by_sub_service_provider = BySubServiceProvider()
    alipay_refresh_due = AlipayRefreshDue()
