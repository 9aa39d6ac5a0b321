"""Sub-service-providers (子服务商): console accounts attached to a provider as resellers."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class ByProvider(GlobalSecondaryIndex):
    """A provider's sub-service-providers; `provider_key` is "<owner account>#<sp_mchid>"."""

    class Meta:
        index_name = "by-provider"
        projection = AllProjection()

    provider_key = UnicodeAttribute(hash_key=True)
    member_account_id = UnicodeAttribute(range_key=True)


class SubServiceProvider(Model):
    """Keyed by the member account, so what a sub-service-provider may see is one query."""

    Meta = table_meta("sub_service_providers_table")

    member_account_id = UnicodeAttribute(hash_key=True)
    sp_mchid = UnicodeAttribute(range_key=True)
    provider_key = UnicodeAttribute()
    owner_account_id = UnicodeAttribute()
    name = UnicodeAttribute()
    admin_name = UnicodeAttribute()
    phone = UnicodeAttribute()
    rebate_ratio_bp = NumberAttribute(default=0)
    remark = UnicodeAttribute(null=True)
    merchant_count = NumberAttribute(default=0)
    """Sub-merchants attributed to it; kept in step by the writes that attribute them, so a
    detach can be refused by one condition."""
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()

    by_provider = ByProvider()
