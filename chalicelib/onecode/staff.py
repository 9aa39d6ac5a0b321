"""Store managers and clerks (SPEC H5, H6): invited with an activation code, edited, given or
denied refund permission, promoted, removed; on the clerk's side clock-in, clock-out and
payment messages.

Admins manage everyone in their merchant's stores; a manager manages the clerks of its
store (and promotes them). A removal deletes the role item, revokes the person's codes and
ends an open shift in one transaction: the next request of that WeChat finds no role.
"""
from __future__ import annotations

import secrets

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode import codes, fields
from chalicelib.onecode.access import ADMIN, CLERK, MANAGER, Actor, NoRoleHere, RoleTooLow, audited, require
from chalicelib.onecode.models import INVITE_PREFIX, Shift, Staff, Store
from chalicelib.onecode.writes import conditional_update, transact

MAX_STAFF = 200
"""Managers, clerks and pending invites per store: a page lists them in one bounded query."""
ROLES = (MANAGER, CLERK)


def new_invite(store: Store, role: str, name: str, phone: str | None, remark: str | None,
               invited_by: str) -> tuple[Staff, QrCode]:
    invite_key = INVITE_PREFIX + secrets.token_hex(8)
    kind = codes.STORE_MANAGER_ACTIVATION if role == MANAGER else codes.CLERK_ACTIVATION
    code = codes.activation_code(kind, store.account_id, store.merchant_id, invite_key, store.store_id)
    invite = Staff(store_id=store.store_id, member_key=invite_key, staff_id="t_" + secrets.token_hex(8),
                   merchant_id=store.merchant_id, account_id=store.account_id, role=role, name=name, phone=phone,
                   remark=remark, activation_code_id=code.code_id, invited_by=invited_by, created_at=now())
    return invite, code


def people(store_id: str) -> list[Staff]:
    """Managers first, then clerks, each oldest first (one bounded query of the store)."""
    found = Staff.query(store_id, consistent_read=True, limit=MAX_STAFF + 1)
    return sorted(found, key=lambda member: (member.role != MANAGER, member.created_at, member.staff_id))


def find(store_id: str, staff_id: str) -> Staff:
    for member in people(store_id):
        if member.staff_id == staff_id:
            return member
    raise NotFound("no such staff member", param="staff_id")


def _may_manage(actor: Actor, target: Staff, itself: bool = False) -> None:
    """Admins manage anyone in the store; managers manage clerks, and their own record only
    where `itself` allows it (their name and phone, never their own refund permission,
    promotion or removal: someone above them decides those)."""
    require(actor, ADMIN, MANAGER)
    if actor.role != MANAGER or target.role == CLERK and target.staff_id != actor.person_id:
        return
    if not (itself and target.staff_id == actor.person_id):
        raise RoleTooLow(ADMIN)


def _person(form: dict) -> dict:
    return {"name": fields.text(form, "name", "姓名", 32, required=True), "phone": fields.phone(form),
            "remark": fields.text(form, "remark", "备注", 64)}


def invite(actor: Actor, store: Store, form: dict) -> Staff:
    """H5: a clerk by name, phone and remark; admins may also invite a further manager."""
    require(actor, ADMIN, MANAGER)
    role = form.get("role") or CLERK
    if role not in ROLES:
        raise InvalidField("role", "请选择店员或店长")
    if role == MANAGER:
        require(actor, ADMIN)
    values = _person(form)
    if len(people(store.store_id)) >= MAX_STAFF:
        raise InvalidField("name", f"一个门店最多 {MAX_STAFF} 位店员（含待激活）")
    member, code = new_invite(store, role, values["name"], values["phone"], values["remark"], actor.label)
    member.can_refund = fields.checkbox(form, "can_refund")

    def write(tx):
        tx.save(member, condition=Staff.member_key.does_not_exist())
        tx.save(code, condition=QrCode.code_id.does_not_exist())
    transact(write, "store")
    member.version = 1
    audited(actor, f"store#{store.store_id}", "staff.invited",
                 {"staff_id": {"from": None, "to": member.staff_id}, "role": {"from": None, "to": role},
                  "name": {"from": None, "to": values["name"]}, "can_refund": {"from": None, "to": member.can_refund}})
    return member


def edit(actor: Actor, store: Store, staff_id: str, form: dict) -> Staff:
    member = find(store.store_id, staff_id)
    _may_manage(actor, member, itself=True)
    values = _person(form)
    changes = {name: {"from": getattr(member, name), "to": value} for name, value in values.items()
               if getattr(member, name) != value}
    if changes:
        conditional_update(member, [getattr(Staff, name).set(value) for name, value in values.items()],
                           "staff member")
        audited(actor, f"store#{store.store_id}", "staff.updated",
                     {"staff_id": {"from": None, "to": staff_id}} | changes)
    return member


def set_refund(actor: Actor, store: Store, staff_id: str, allowed: bool) -> Staff:
    member = find(store.store_id, staff_id)
    _may_manage(actor, member)
    if member.can_refund != allowed:
        conditional_update(member, [Staff.can_refund.set(allowed)], "staff member")
        audited(actor, f"store#{store.store_id}", "staff.refund_changed",
                     {"staff_id": {"from": None, "to": staff_id}, "can_refund": {"from": not allowed, "to": allowed}})
    return member


def promote(actor: Actor, store: Store, staff_id: str) -> Staff:
    """A clerk becomes a store manager (keeping its shifts, codes and settings)."""
    member = find(store.store_id, staff_id)
    require(actor, ADMIN, MANAGER)
    if member.role != CLERK:
        raise InvalidField("staff_id", "只有店员可以升为店长")
    if not member.openid:
        # A pending invite promoted would let a manager hand out manager codes, which only
        # admins may: whoever scanned the clerk code would become a manager.
        raise InvalidField("staff_id", "只有已激活的店员可以升为店长")
    conditional_update(member, [Staff.role.set(MANAGER)], "staff member")
    audited(actor, f"store#{store.store_id}", "staff.promoted",
                 {"staff_id": {"from": None, "to": staff_id}, "role": {"from": CLERK, "to": MANAGER}})
    return member


def reissue_code(actor: Actor, store: Store, staff_id: str) -> Staff:
    """A pending person's code expired (or leaked): a new one; the old one stops working."""
    member = find(store.store_id, staff_id)
    _may_manage(actor, member)
    if member.openid:
        raise InvalidField("staff_id", "该成员已激活，无需新的激活码")
    kind = codes.STORE_MANAGER_ACTIVATION if member.role == MANAGER else codes.CLERK_ACTIVATION
    code = codes.activation_code(kind, store.account_id, store.merchant_id, member.member_key, store.store_id)
    codes.swap_activation_code(member, Staff.activation_code_id, code, "staff member")
    audited(actor, f"store#{store.store_id}", "staff.code_reissued",
                 {"staff_id": {"from": None, "to": staff_id}})
    return member


def remove(actor: Actor, store: Store, staff_id: str) -> Staff:
    member = find(store.store_id, staff_id)
    _may_manage(actor, member)
    at = now()

    def write(tx):
        tx.delete(member)
        if member.on_shift and member.shift_id:
            tx.update(Shift(f"{store.store_id}#{staff_id}", member.shift_id), actions=[Shift.ended_at.set(at)],
                      condition=Shift.ended_at.does_not_exist())
        if member.collection_code_id:
            tx.update(QrCode(member.collection_code_id), actions=codes.revoke_actions(),
                      condition=QrCode.code_id.exists())
    transact(write, "staff member")
    # A pending person's activation code is useless once the invite is gone (activation reads
    # the invite); revoking it too only makes its error page say "revoked" rather than "used".
    codes.revoke(member.activation_code_id if not member.openid else None)
    audited(actor, f"store#{store.store_id}", "staff.removed",
                 {"staff_id": {"from": staff_id, "to": None}, "name": {"from": member.name, "to": None},
                  "role": {"from": member.role, "to": None}})
    return member


def _self(actor: Actor) -> Staff:
    if actor.staff is None:
        raise RoleTooLow(CLERK)
    return actor.staff


def _reread(member: Staff) -> Staff:
    """The staff item as it is now, after a clock write lost a race; a removed person has none."""
    try:
        return Staff.get(member.store_id, member.member_key, consistent_read=True)
    except DoesNotExist:
        raise NoRoleHere("store_id") from None


def clock_in(actor: Actor) -> tuple[Staff, bool]:
    """Start a shift; a second clock-in while on shift changes nothing (answers False)."""
    member = _self(actor)
    if member.on_shift:
        return member, False
    at = now()
    shift = Shift(staff_ref=f"{member.store_id}#{member.staff_id}", shift_id=f"{at:010d}#{secrets.token_hex(3)}",
                  store_id=member.store_id, staff_id=member.staff_id, started_at=at)
    try:
        with transaction() as tx:
            tx.update(member, actions=[Staff.on_shift.set(True), Staff.shift_id.set(shift.shift_id)],
                      condition=Staff.on_shift == False)  # noqa: E712 (a DynamoDB condition, not a comparison)
            tx.save(shift, condition=Shift.shift_id.does_not_exist())
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        if _reread(member).on_shift:
            return member, False
        raise Conflict("the staff member changed at the same time; reload and try again",
                       code="version_conflict") from None
    audited(actor, f"store#{member.store_id}", "staff.clocked_in",
                 {"staff_id": {"from": None, "to": member.staff_id}, "shift_id": {"from": None, "to": shift.shift_id}})
    return member, True


def clock_out(actor: Actor) -> tuple[Staff, Shift | None]:
    """End the open shift (kept with its start and end); off shift already changes nothing."""
    member = _self(actor)
    if not member.on_shift or not member.shift_id:
        return member, None
    at = now()
    shift_id = member.shift_id
    shift = Shift(staff_ref=f"{member.store_id}#{member.staff_id}", shift_id=shift_id)
    try:
        with transaction() as tx:
            tx.update(member, actions=[Staff.on_shift.set(False), Staff.shift_id.remove()],
                      condition=Staff.shift_id == shift_id)
            tx.update(shift, actions=[Shift.ended_at.set(at)], condition=Shift.ended_at.does_not_exist())
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        if not _reread(member).on_shift:
            return member, None
        raise Conflict("the staff member changed at the same time; reload and try again",
                       code="version_conflict") from None
    audited(actor, f"store#{member.store_id}", "staff.clocked_out",
                 {"staff_id": {"from": None, "to": member.staff_id}, "shift_id": {"from": shift_id, "to": None}})
    return member, Shift.get(shift.staff_ref, shift_id, consistent_read=True)


def set_messages(actor: Actor, on: bool) -> Staff:
    member = _self(actor)
    if member.messages_on != on:
        conditional_update(member, [Staff.messages_on.set(on)], "staff member")
        audited(actor, f"store#{member.store_id}", "staff.messages_changed",
                     {"staff_id": {"from": None, "to": member.staff_id}, "messages_on": {"from": not on, "to": on}})
    return member


def shifts(store_id: str, staff_id: str, limit: int = 10) -> list[Shift]:
    """The person's latest shifts, newest first."""
    return list(Shift.query(f"{store_id}#{staff_id}", scan_index_forward=False, limit=limit))
