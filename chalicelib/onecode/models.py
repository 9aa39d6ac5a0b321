"""The one-code setup's records (SPEC §2): merchant admins, stores, staff, devices, shifts.

A person's role lives in one item keyed by where it holds (merchant or store) and by who
holds it (`member_key`): the WeChat openid once activated, "invite:<id>" while the
activation code waits to be scanned. So "may this WeChat act here?" is one strongly
consistent GetItem, and a removed clerk loses access with the delete that removes them.
"""
from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import table_meta

INVITE_PREFIX = "invite:"
"""Member keys of people invited but not yet activated; an openid never holds a colon."""


SETUP_KEY = "#setup"
PEOPLE_FROM = "-"
"""Member keys of people sort at or after this (openids are base64url, invites start with
"i"); the merchant's setup item ("#setup") sorts before, so a query of the people skips it."""


class MerchantSetup(Model):
    """C5.7: the merchant's management code and the provider's current admin invite, in the
    merchant-admins table beside the admins (one partition per merchant). Not on the
    sub-merchant record: that one is version-guarded for the console's edits, which a code
    issued on the phone must never make fail."""

    Meta = table_meta("merchant_admins_table")

    merchant_id = UnicodeAttribute(hash_key=True)
    member_key = UnicodeAttribute(range_key=True, default=SETUP_KEY)
    account_id = UnicodeAttribute()
    management_code_id = UnicodeAttribute()
    provider_invite_key = UnicodeAttribute(null=True)
    """The admin invite the provider's activation code belongs to; gone once it is used."""
    provider_invite_code_id = UnicodeAttribute(null=True)
    """That code, kept so the console can still show it as used."""
    display_name = UnicodeAttribute(null=True)
    display_logo_url = UnicodeAttribute(null=True)
    """H3: the name and logo the merchant's admins chose to show customers. Kept here, not on
    the sub-merchant, so a 买单 sync (which rewrites the short name and logo it knows) never
    undoes them and a provider's edit in the console never conflicts with them."""
    created_at = NumberAttribute()
    version = VersionAttribute()


class AdminsByOpenid(GlobalSecondaryIndex):
    """The merchants a WeChat administers ("我的" page); sparse: invites carry no openid."""

    class Meta:
        index_name = "merchant-admins-by-openid"
        projection = AllProjection()

    openid = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute(range_key=True)


class MerchantAdmin(Model):
    Meta = table_meta("merchant_admins_table")

    merchant_id = UnicodeAttribute(hash_key=True)
    member_key = UnicodeAttribute(range_key=True)
    admin_id = UnicodeAttribute()
    """Stable across activation (the member key changes from the invite to the openid)."""
    account_id = UnicodeAttribute()
    """The console account that owns the merchant: audit entries land in its log."""
    name = UnicodeAttribute(null=True)
    openid = UnicodeAttribute(null=True)
    can_refund = BooleanAttribute(default=True)
    activation_code_id = UnicodeAttribute(null=True)
    invited_by = UnicodeAttribute()
    """"provider", or the inviter as the audit log names it ("<role>#<id>"), never an openid."""
    created_at = NumberAttribute()
    activated_at = NumberAttribute(null=True)
    version = VersionAttribute()

    by_openid = AdminsByOpenid()


class StoresByMerchant(GlobalSecondaryIndex):
    """A merchant's stores in the order they were opened (`created_key`)."""

    class Meta:
        index_name = "stores-by-merchant"
        projection = AllProjection()

    merchant_id = UnicodeAttribute(hash_key=True)
    created_key = UnicodeAttribute(range_key=True)


class Store(Model):
    Meta = table_meta("stores_table")

    store_id = UnicodeAttribute(hash_key=True)
    merchant_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    sp_mchid = UnicodeAttribute(null=True)
    """The merchant's provider (fixed for a sub-merchant), copied onto the store's codes."""
    name = UnicodeAttribute()
    province = UnicodeAttribute(null=True)
    city = UnicodeAttribute(null=True)
    district = UnicodeAttribute(null=True)
    address = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    longitude = UnicodeAttribute(null=True)
    latitude = UnicodeAttribute(null=True)
    """Decimal degrees kept as the text typed (validated), never as a float."""
    currency = UnicodeAttribute(default="CNY")
    collection_type = UnicodeAttribute(default="wechat_alipay")
    notify_off_shift = BooleanAttribute(default=False)
    collection_code_id = UnicodeAttribute()
    created_at = NumberAttribute()
    created_key = UnicodeAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()

    by_merchant = StoresByMerchant()


class StaffByOpenid(GlobalSecondaryIndex):
    """The stores a WeChat works in ("我的" page); sparse: invites carry no openid."""

    class Meta:
        index_name = "staff-by-openid"
        projection = AllProjection()

    openid = UnicodeAttribute(hash_key=True)
    store_id = UnicodeAttribute(range_key=True)


class Staff(Model):
    """A store manager or clerk of one store."""

    Meta = table_meta("staff_table")

    store_id = UnicodeAttribute(hash_key=True)
    member_key = UnicodeAttribute(range_key=True)
    staff_id = UnicodeAttribute()
    """Stable across activation; what pages and forms name (never the openid)."""
    merchant_id = UnicodeAttribute()
    account_id = UnicodeAttribute()
    role = UnicodeAttribute()  # manager | clerk
    name = UnicodeAttribute()
    phone = UnicodeAttribute(null=True)
    remark = UnicodeAttribute(null=True)
    openid = UnicodeAttribute(null=True)
    can_refund = BooleanAttribute(default=False)
    messages_on = BooleanAttribute(default=True)
    on_shift = BooleanAttribute(default=False)
    shift_id = UnicodeAttribute(null=True)
    """The open shift while on shift."""
    activation_code_id = UnicodeAttribute(null=True)
    collection_code_id = UnicodeAttribute(null=True)
    """The clerk's personal collection code, issued at activation."""
    invited_by = UnicodeAttribute()
    """"provider", or the inviter as the audit log names it ("<role>#<id>"), never an openid."""
    created_at = NumberAttribute()
    activated_at = NumberAttribute(null=True)
    version = VersionAttribute()

    by_openid = StaffByOpenid()


class Device(Model):
    """A till, POS or phone of a store; `device_id` is the number the merchant gives it."""

    Meta = table_meta("devices_table")

    store_id = UnicodeAttribute(hash_key=True)
    device_id = UnicodeAttribute(range_key=True)
    name = UnicodeAttribute()
    device_type = UnicodeAttribute()  # mobile_terminal | cashier_desk | smart_pos | other
    remark = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    updated_at = NumberAttribute()
    version = VersionAttribute()


class EndedShiftsByStore(GlobalSecondaryIndex):
    """A store's finished shifts by when they ended (sparse: an open shift has no end): the
    shift summary counts orders since the previous clock-out in the store."""

    class Meta:
        index_name = "ended-shifts-by-store"
        projection = AllProjection()

    store_id = UnicodeAttribute(hash_key=True)
    ended_at = NumberAttribute(range_key=True)


class Shift(Model):
    """One clock-in to clock-out of one staff member, kept after it ends."""

    Meta = table_meta("shifts_table")

    staff_ref = UnicodeAttribute(hash_key=True)  # "<store_id>#<staff_id>"
    shift_id = UnicodeAttribute(range_key=True)  # "<started_at, 10 digits>#<random>"
    store_id = UnicodeAttribute()
    staff_id = UnicodeAttribute()
    started_at = NumberAttribute()
    ended_at = NumberAttribute(null=True)

    ended_by_store = EndedShiftsByStore()
