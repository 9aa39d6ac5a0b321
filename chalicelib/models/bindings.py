"""WeChat users bound to console accounts (C2)."""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class WechatBinding(Model):
    Meta = table_meta("wechat_bindings_table")

    account_id = UnicodeAttribute(hash_key=True)
    openid = UnicodeAttribute(range_key=True)
    unionid = UnicodeAttribute(null=True)
    nickname = UnicodeAttribute(null=True)
    """WeChat's nickname when bound (display-only, never identity); absent on older bindings."""
    bound_at = NumberAttribute()
    code_id = UnicodeAttribute()
