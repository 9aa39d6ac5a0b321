"""Service providers (服务商), one per WeChat Pay service-provider mch id, under one account."""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class Provider(Model):
    """Secrets are never stored here in plain text: `secrets` maps a field name to its KMS
    ciphertext and when it was set (chalicelib/secrets.py)."""

    Meta = table_meta("providers_table")

    account_id = UnicodeAttribute(hash_key=True)
    sp_mchid = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    short_name = UnicodeAttribute(null=True)
    source = UnicodeAttribute()  # manual | maidan
    logo_url = UnicodeAttribute(null=True)
    ad_image_url = UnicodeAttribute(null=True)
    ad_link_url = UnicodeAttribute(null=True)
    callback_url = UnicodeAttribute(null=True)
    remark = UnicodeAttribute(null=True)
    wechat = MapAttribute(default=dict)  # public WeChat Pay settings (app_id, serial_no, key ids...)
    alipay = MapAttribute(default=dict)  # public Alipay settings (app_id, partner_id, public key)
    secrets = MapAttribute(default=dict)  # field -> {"ciphertext": str, "set_at": int}
    pay_limit_fen = NumberAttribute(null=True)
    """The most one payment may be at this provider's merchants (fen); None: the platform's."""
    result_slots = MapAttribute(null=True)
    """H8 result page slots: "review" / "coupon" -> {"title", "url"}; `providers.result_slots` reads it."""
    maidan_assistant_bound_at = NumberAttribute(null=True)
    maidan_admin_unionid = UnicodeAttribute(null=True)
    maidan_verified_at = NumberAttribute(null=True)
    """When a 买单 admin's sync by code (C3.2) last proved this account administers it."""
    claim_lost_at = NumberAttribute(null=True)
    """When its 买单 admin's account took over the sp_mchid this account had only typed in."""
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()
