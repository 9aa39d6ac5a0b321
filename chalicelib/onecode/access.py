"""Who a WeChat user is where (SPEC §1 tenancy, H3-H6): a merchant admin of one merchant, a
store manager or clerk of one store, or nobody there.

Every page and action asks here first, with strongly consistent GetItems on the role items
themselves, so a clerk removed a second ago is refused on the next request. A role that is
not held answers the same "not found" as an unknown merchant or store: a stranger learns
nothing from trying ids.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist

from chalicelib import audit
from chalicelib.errors import Forbidden, NotFound
from chalicelib.onecode import lookup
from chalicelib.onecode.models import MerchantAdmin, Staff, Store

ADMIN, MANAGER, CLERK = "admin", "manager", "clerk"
ROLE_NAMES = {ADMIN: "商户管理员", MANAGER: "店长", CLERK: "店员"}


class NoRoleHere(NotFound):
    """The WeChat holds no role in this merchant or store (or it does not exist)."""

    def __init__(self, param: str = "id") -> None:
        super().__init__("you hold no role here", param=param)


class RoleTooLow(Forbidden):
    """The WeChat holds a role here, but not one that may do this."""

    def __init__(self, needed: str) -> None:
        super().__init__(f"this needs the {needed} role", code="role_required")
        self.needed = needed


@dataclass(frozen=True)
class Actor:
    """A WeChat user acting in one merchant (and, for staff, one store)."""

    openid: str
    role: str
    merchant_id: str
    account_id: str
    name: str | None
    store_id: str | None = None
    staff: Staff | None = None
    admin: MerchantAdmin | None = None

    @property
    def person_id(self) -> str:
        """The stable id of the person acting (admin id or staff id): never the openid."""
        if self.role == ADMIN and self.admin is not None:
            return self.admin.admin_id
        return self.staff.staff_id if self.staff is not None else ""

    @property
    def label(self) -> str:
        """Who made a change, for the audit log: role and stable id. The name someone chose
        goes beside it as data (`actor_name`), so no name can pose as another actor."""
        return f"{self.role}#{self.person_id}"

    @property
    def manages_store(self) -> bool:
        return self.role in (ADMIN, MANAGER)


def _get(model, hash_key: str, range_key: str):
    try:
        return model.get(hash_key, range_key, consistent_read=True)
    except DoesNotExist:
        return None


def admin_record(merchant_id: str, openid: str) -> MerchantAdmin | None:
    return _get(MerchantAdmin, merchant_id, openid)


def staff_record(store_id: str, openid: str) -> Staff | None:
    return _get(Staff, store_id, openid)


def store(store_id: str) -> Store:
    try:
        return Store.get(store_id, consistent_read=True)
    except DoesNotExist:
        raise NoRoleHere("store_id") from None


def as_admin(merchant_id: str, openid: str) -> Actor:
    admin = admin_record(merchant_id, openid)
    if admin is None:
        raise NoRoleHere("merchant_id")
    return Actor(openid, ADMIN, merchant_id, admin.account_id, admin.name, admin=admin)


def in_store(store_id: str, openid: str) -> tuple[Actor, Store]:
    """The caller's role in a store, read in one batch after the store: an admin of its
    merchant acts as admin (and, if also staff there, keeps its own shifts and messages);
    otherwise its staff record says manager or clerk."""
    found = store(store_id)
    member, admin = lookup.get_many([(Staff, store_id, openid), (MerchantAdmin, found.merchant_id, openid)])
    if admin is not None:
        return Actor(openid, ADMIN, found.merchant_id, found.account_id, admin.name, store_id, staff=member,
                     admin=admin), found
    if member is None:
        raise NoRoleHere("store_id")
    return Actor(openid, member.role, found.merchant_id, found.account_id, member.name, store_id, staff=member), found


def require(actor: Actor, *roles: str) -> Actor:
    if actor.role not in roles:
        raise RoleTooLow(roles[0])
    return actor


def audited(actor: Actor, entity: str, action: str, changes: dict) -> None:
    """An audit entry of a change made on the phone, in the log of the merchant's owner."""
    audit.record(actor.account_id, actor.label, entity, action,
                 changes | {"actor_name": {"from": None, "to": actor.name}})
