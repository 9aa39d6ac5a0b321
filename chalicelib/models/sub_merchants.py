"""Sub-merchants (子商户): the small merchants a provider brings onto WeChat Pay and Alipay."""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
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
    sub_mchid = UnicodeAttribute(null=True)
    logo_url = UnicodeAttribute(null=True)
    ad_image_url = UnicodeAttribute(null=True)
    ad_link_url = UnicodeAttribute(null=True)
    remark = UnicodeAttribute(null=True)
    channel = UnicodeAttribute()  # official_direct | maidan
    source = UnicodeAttribute()  # manual | maidan
    keys = MapAttribute(default=dict)  # auth_key ciphertext, public key PEM, reset time
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()

    by_provider = ByProvider()
    by_sub_service_provider = BySubServiceProvider()
