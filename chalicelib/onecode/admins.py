"""Merchant admins (SPEC C5.7, H3): the provider's two codes, more admins invited by an admin,
removal and refund permission under the last-admin rules, the merchant as customers see it.

The rules "never the last admin" and "never the last admin with refund permission" hold
under concurrency: a removal (or revocation of refund permission) is one transaction that
also checks, unchanged, every other admin it counted on. Two admins removing each other at
once: one transaction commits, the other's check fails and nothing of it is written.
"""
from __future__ import annotations

import secrets

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import audit, sub_merchants
from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes, fields
from chalicelib.onecode.access import Actor, audited
from chalicelib.onecode.writes import conditional_update, transact
from chalicelib.onecode.models import INVITE_PREFIX, PEOPLE_FROM, SETUP_KEY, MerchantAdmin, MerchantSetup

MAX_ADMINS = 50
"""Admins (and pending invites) per merchant: a page lists them all in one bounded query."""
PROVIDER = "provider"


def _invite(merchant: SubMerchant, invited_by: str, name: str | None) -> tuple[MerchantAdmin, QrCode]:
    invite_key = INVITE_PREFIX + secrets.token_hex(8)
    code = codes.activation_code(codes.MERCHANT_ADMIN_ACTIVATION, merchant.account_id, merchant.merchant_id,
                                 invite_key)
    invite = MerchantAdmin(merchant_id=merchant.merchant_id, member_key=invite_key, admin_id="a_" + secrets.token_hex(8),
                           account_id=merchant.account_id, name=name, can_refund=True,
                           activation_code_id=code.code_id, invited_by=invited_by, created_at=now())
    return invite, code


def people(merchant_id: str) -> list[MerchantAdmin]:
    """The merchant's admins and pending invites, oldest first (at most MAX_ADMINS + 1 read)."""
    found = MerchantAdmin.query(merchant_id, MerchantAdmin.member_key >= PEOPLE_FROM, consistent_read=True,
                                limit=MAX_ADMINS + 1)
    return sorted(found, key=lambda admin: (admin.created_at, admin.admin_id))


def _setup(merchant_id: str) -> MerchantSetup | None:
    try:
        return MerchantSetup.get(merchant_id, SETUP_KEY, consistent_read=True)
    except DoesNotExist:
        return None


def setup_codes(account_id: str, merchant_id: str) -> dict:
    """C5.7: the merchant's admin activation code and management code, issued the first time
    the provider asks (not at sync: 20,000 synced merchants must not mean 40,000 codes). Two
    first asks at once agree on one pair: the setup item is written only if absent."""
    merchant = sub_merchants.get(account_id, merchant_id)
    setup = _setup(merchant_id)
    if setup is None:
        invite, activation = _invite(merchant, PROVIDER, None)
        management = codes.permanent_code(codes.MERCHANT_MANAGEMENT, account_id, merchant_id)
        setup = MerchantSetup(merchant_id=merchant_id, account_id=account_id, management_code_id=management.code_id,
                              provider_invite_key=invite.member_key, provider_invite_code_id=activation.code_id,
                              created_at=now())
        try:
            with transaction() as tx:
                tx.save(setup, condition=MerchantSetup.member_key.does_not_exist())
                tx.save(invite, condition=MerchantAdmin.member_key.does_not_exist())
                tx.save(activation, condition=QrCode.code_id.does_not_exist())
                tx.save(management, condition=QrCode.code_id.does_not_exist())
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            setup = _setup(merchant_id)
        else:
            audit.record(account_id, account_id, f"sub_merchant#{merchant_id}", "onecode.codes_issued", {})
    return _setup_view(setup)


def _provider_invite(setup: MerchantSetup) -> MerchantAdmin | None:
    if not setup.provider_invite_key:
        return None
    try:
        return MerchantAdmin.get(setup.merchant_id, setup.provider_invite_key, consistent_read=True)
    except DoesNotExist:
        return None


def _setup_view(setup: MerchantSetup) -> dict:
    invite = _provider_invite(setup)
    activation_id = invite.activation_code_id if invite else setup.provider_invite_code_id
    views = codes.find_views([activation_id, setup.management_code_id])
    activation = views.get(activation_id)
    if activation is not None and invite is None and activation["state"] == "pending":
        activation["state"] = "used"
    return {"object": "setup_codes", "merchant_id": setup.merchant_id, "admin_activation": activation,
            "management": views.get(setup.management_code_id)}


def reissue_admin_activation(account_id: str, merchant_id: str) -> dict:
    """A new provider activation code; the previous one, if still unused, stops working."""
    merchant = sub_merchants.get(account_id, merchant_id)
    setup_codes(account_id, merchant_id)
    setup = _setup(merchant_id)
    old = _provider_invite(setup)
    invite, code = _invite(merchant, PROVIDER, None)

    def write(tx):
        tx.update(setup, actions=[MerchantSetup.provider_invite_key.set(invite.member_key),
                                  MerchantSetup.provider_invite_code_id.set(code.code_id)])
        tx.save(invite, condition=MerchantAdmin.member_key.does_not_exist())
        tx.save(code, condition=QrCode.code_id.does_not_exist())
        if old is not None:
            tx.delete(old)
    transact(write, "merchant's codes")
    codes.revoke(old.activation_code_id if old else None)
    audit.record(account_id, account_id, f"sub_merchant#{merchant_id}", "onecode.admin_activation_reissued", {})
    return _setup_view(_setup(merchant_id))


def reissue_management(account_id: str, merchant_id: str) -> dict:
    """Revoke the management code (a photo of it leaked, say) and issue a new one."""
    setup_codes(account_id, merchant_id)
    setup = _setup(merchant_id)
    code = codes.permanent_code(codes.MERCHANT_MANAGEMENT, account_id, merchant_id)

    def write(tx):
        tx.update(setup, actions=[MerchantSetup.management_code_id.set(code.code_id)])
        tx.save(code, condition=QrCode.code_id.does_not_exist())
        tx.update(QrCode(setup.management_code_id), actions=codes.revoke_actions(), condition=QrCode.code_id.exists())
    transact(write, "merchant's codes")
    audit.record(account_id, account_id, f"sub_merchant#{merchant_id}", "onecode.management_code_reissued", {})
    return _setup_view(_setup(merchant_id))


def management_code_id(merchant_id: str) -> str | None:
    setup = _setup(merchant_id)
    return setup.management_code_id if setup else None


def invite(actor: Actor, form: dict) -> MerchantAdmin:
    """H3: an admin adds an admin by name; the invite's activation code makes its scanner one."""
    name = fields.text(form, "name", "管理员姓名", 32, required=True)
    if len(people(actor.merchant_id)) >= MAX_ADMINS:
        raise InvalidField("name", f"一个商户最多 {MAX_ADMINS} 位管理员（含待激活）")
    merchant = SubMerchant.get(actor.account_id, actor.merchant_id)
    invite_item, code = _invite(merchant, actor.label, name)

    def write(tx):
        tx.save(invite_item, condition=MerchantAdmin.member_key.does_not_exist())
        tx.save(code, condition=QrCode.code_id.does_not_exist())
    transact(write, "admins")
    audited(actor, f"sub_merchant#{actor.merchant_id}", "merchant_admin.invited",
                 {"admin_id": {"from": None, "to": invite_item.admin_id}, "name": {"from": None, "to": name}})
    return invite_item


def find(merchant_id: str, admin_id: str) -> MerchantAdmin:
    for admin in people(merchant_id):
        if admin.admin_id == admin_id:
            return admin
    raise NotFound("no such admin", param="admin_id")


def reissue_invite_code(actor: Actor, admin_id: str) -> MerchantAdmin:
    """A pending admin's code expired (or leaked): a new code; the old one stops working."""
    invite_item = find(actor.merchant_id, admin_id)
    if invite_item.openid:
        raise InvalidField("admin_id", "该管理员已激活，无需新的激活码")
    code = codes.activation_code(codes.MERCHANT_ADMIN_ACTIVATION, actor.account_id, actor.merchant_id,
                                 invite_item.member_key)
    codes.swap_activation_code(invite_item, MerchantAdmin.activation_code_id, code, "admin")
    audited(actor, f"sub_merchant#{actor.merchant_id}", "merchant_admin.code_reissued",
                 {"admin_id": {"from": None, "to": admin_id}})
    return invite_item


def _activated(admins: list[MerchantAdmin]) -> list[MerchantAdmin]:
    return [admin for admin in admins if admin.openid]


def _check_others(tx, others: list[MerchantAdmin]) -> None:
    """Each admin the rule counted on must still be there, unchanged, when this commits."""
    for other in others:
        tx.condition_check(MerchantAdmin, other.merchant_id, other.member_key,
                           condition=MerchantAdmin.version == other.version)


def remove(actor: Actor, admin_id: str) -> MerchantAdmin:
    """Remove an admin or a pending invite: never the last admin, never the last one who may refund."""
    everyone = people(actor.merchant_id)
    target = next((admin for admin in everyone if admin.admin_id == admin_id), None)
    if target is None:
        raise NotFound("no such admin", param="admin_id")
    others = [admin for admin in _activated(everyone) if admin.admin_id != admin_id]
    if target.openid:
        if not others:
            raise Conflict("the last admin of a merchant cannot be removed", param="admin_id", code="last_admin")
        if target.can_refund and not any(admin.can_refund for admin in others):
            raise Conflict("the last admin with refund permission cannot be removed", param="admin_id",
                           code="last_refund_admin")

    def write(tx):
        tx.delete(target)
        if target.openid:
            _check_others(tx, others)
    transact(write, "admins")
    codes.revoke(target.activation_code_id)
    audited(actor, f"sub_merchant#{actor.merchant_id}", "merchant_admin.removed",
                 {"admin_id": {"from": admin_id, "to": None}, "name": {"from": target.name, "to": None}})
    return target


def set_refund(actor: Actor, admin_id: str, allowed: bool) -> MerchantAdmin:
    everyone = people(actor.merchant_id)
    target = next((admin for admin in everyone if admin.admin_id == admin_id), None)
    if target is None:
        raise NotFound("no such admin", param="admin_id")
    if target.can_refund == allowed:
        return target
    others = [admin for admin in _activated(everyone) if admin.admin_id != admin_id]
    if not allowed and target.openid and not any(admin.can_refund for admin in others):
        raise Conflict("the last admin with refund permission keeps it", param="admin_id", code="last_refund_admin")

    def write(tx):
        tx.update(target, actions=[MerchantAdmin.can_refund.set(allowed)])
        if not allowed:
            _check_others(tx, others)
    transact(write, "admins")
    audited(actor, f"sub_merchant#{actor.merchant_id}", "merchant_admin.refund_changed",
                 {"admin_id": {"from": None, "to": admin_id}, "can_refund": {"from": not allowed, "to": allowed}})
    return target


def shown_to_customers(merchant: SubMerchant, setup: MerchantSetup | None) -> tuple[str, str | None]:
    """The merchant's name and logo as customers see them: what its admins chose on the
    phone, else the sub-merchant's short name (or name) and logo."""
    name = (setup.display_name if setup else None) or merchant.short_name or merchant.name
    return name, (setup.display_logo_url if setup else None) or merchant.logo_url


def setup_of(merchant_id: str) -> MerchantSetup | None:
    return _setup(merchant_id)


def update_profile(actor: Actor, form: dict) -> MerchantSetup:
    """H3: the merchant's name and logo as customers see them on the pay page."""
    display_name = fields.text(form, "short_name", "商户简称", 32, required=True)
    logo_url = fields.https_url(form, "logo_url", "商户标志图片地址")
    setup = _setup(actor.merchant_id)
    if setup is None:
        raise NotFound("no such merchant", param="merchant_id")
    before = {"display_name": setup.display_name, "display_logo_url": setup.display_logo_url}
    after = {"display_name": display_name, "display_logo_url": logo_url}
    actions = [MerchantSetup.display_name.set(display_name)]
    actions.append(MerchantSetup.display_logo_url.set(logo_url) if logo_url else MerchantSetup.display_logo_url.remove())
    conditional_update(setup, actions, "merchant")
    audited(actor, f"sub_merchant#{actor.merchant_id}", "sub_merchant.profile_changed",
            {name: {"from": before[name], "to": value} for name, value in after.items() if before[name] != value})
    return _setup(actor.merchant_id)
