"""Activation (SPEC H3, H5, H6): the WeChat that confirms an activation code takes the role
its invite was made for, exactly once.

One transaction uses the code (conditional on it being live), deletes the invite (as it was
read) and writes the role under the scanner's openid (only if that WeChat holds no role
there yet). Two phones confirming the same code at once: one transaction commits, the other
is cancelled and its phone is told the code was used.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import qrcodes
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode import codes, fields
from chalicelib.onecode.access import ADMIN, Actor, admin_record, audited, staff_record
from chalicelib.onecode.models import MerchantAdmin, Staff, Store
from chalicelib.qrcodes import CodeUnusable


class AlreadyHoldsRole(Exception):
    """The scanner already holds a role where this code would give one; the code stays unused."""

    def __init__(self, role: str, merchant_id: str, store_id: str | None) -> None:
        super().__init__(role)
        self.role, self.merchant_id, self.store_id = role, merchant_id, store_id


@dataclass(frozen=True)
class Invitation:
    """What an activation code offers: the role, where, and the name it was made for."""

    code: QrCode
    role: str
    merchant_id: str
    store: Store | None
    invite: MerchantAdmin | Staff


def _role_of(kind: str, invite) -> str:
    return ADMIN if kind == codes.MERCHANT_ADMIN_ACTIVATION else invite.role


def invitation(code: QrCode, openid: str) -> Invitation:
    """The live invitation behind a code, for the confirm page; refuses a scanner who already
    holds a role there (AlreadyHoldsRole) and an invite that is gone (CodeUnusable used)."""
    store = None
    try:
        if code.kind == codes.MERCHANT_ADMIN_ACTIVATION:
            invite = MerchantAdmin.get(code.merchant_id, code.member_key, consistent_read=True)
            if admin_record(code.merchant_id, openid) is not None:
                raise AlreadyHoldsRole(ADMIN, code.merchant_id, None)
        else:
            invite = Staff.get(code.store_id, code.member_key, consistent_read=True)
            store = Store.get(code.store_id, consistent_read=True)
            held = staff_record(code.store_id, openid)
            if held is not None:
                raise AlreadyHoldsRole(held.role, code.merchant_id, code.store_id)
    except DoesNotExist:
        raise CodeUnusable("used") from None
    if invite.activation_code_id != code.code_id:
        raise CodeUnusable("revoked")
    return Invitation(code, _role_of(code.kind, invite), code.merchant_id, store, invite)


def activate(code_id: str, kind: str, identity: WechatIdentity, form: dict) -> Invitation:
    """Confirm: the scanner becomes the admin, manager or clerk the invite was made for."""
    code = qrcodes.usable(code_id, kind)
    offer = invitation(code, identity.openid)
    at = now()
    invite = offer.invite
    if kind == codes.MERCHANT_ADMIN_ACTIVATION:
        name = fields.text(form, "name", "您的称呼", 32) or invite.name
        role_item = MerchantAdmin(merchant_id=invite.merchant_id, member_key=identity.openid, admin_id=invite.admin_id,
                                  account_id=invite.account_id, name=name, openid=identity.openid,
                                  can_refund=invite.can_refund, invited_by=invite.invited_by,
                                  created_at=invite.created_at, activated_at=at)
        collection = None
        condition = MerchantAdmin.member_key.does_not_exist()
    else:
        collection = codes.permanent_code(codes.CLERK_COLLECTION, invite.account_id, invite.merchant_id,
                                          invite.store_id, member_key=identity.openid, sp_mchid=offer.store.sp_mchid)
        role_item = Staff(store_id=invite.store_id, member_key=identity.openid, staff_id=invite.staff_id,
                          merchant_id=invite.merchant_id, account_id=invite.account_id, role=invite.role,
                          name=invite.name, phone=invite.phone, remark=invite.remark, openid=identity.openid,
                          can_refund=invite.can_refund, messages_on=fields.checkbox(form, "messages_on"),
                          collection_code_id=collection.code_id, invited_by=invite.invited_by,
                          created_at=invite.created_at, activated_at=at)
        condition = Staff.member_key.does_not_exist()
    try:
        with transaction() as tx:
            tx.update(QrCode(code_id), actions=qrcodes.use_actions(identity.openid, at),
                      condition=qrcodes.use_condition(kind, at))
            tx.delete(invite)
            tx.save(role_item, condition=condition)
            if collection is not None:
                tx.save(collection, condition=QrCode.code_id.does_not_exist())
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        reasons = [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]
        if len(reasons) > 2 and reasons[2] == "ConditionalCheckFailed" and reasons[0] != "ConditionalCheckFailed":
            raise AlreadyHoldsRole(offer.role, offer.merchant_id, invite.store_id if offer.store else None) from None
        qrcodes.usable(code_id, kind)
        raise CodeUnusable("used") from None
    is_admin = offer.role == ADMIN
    actor = Actor(identity.openid, offer.role, offer.merchant_id, invite.account_id, role_item.name,
                  None if is_admin else invite.store_id, staff=None if is_admin else role_item,
                  admin=role_item if is_admin else None)
    audited(actor, f"sub_merchant#{offer.merchant_id}" if is_admin else f"store#{invite.store_id}",
            "merchant_admin.activated" if is_admin else "staff.activated", {"code_id": {"from": None, "to": code_id}})
    return Invitation(code, offer.role, offer.merchant_id, offer.store, role_item)
