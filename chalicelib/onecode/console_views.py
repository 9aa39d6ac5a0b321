"""The one-code setup as the console shows it (SPEC C5.7, C8): a merchant's admins, its stores,
a store with its staff and devices, read by the provider that owns the merchant or by the
merchant's sub-service-provider.

Who may read what is decided here once, so that every route answers a foreign id with the
same 404 as an unknown one. Activation codes are credentials (scanning one makes the scanner
an admin, manager or clerk): only the owner gets them; a sub-service-provider sees who is
pending but not their codes. No view ever carries an openid, not even the inviter's.
"""
from __future__ import annotations

from chalicelib import qrcodes, sub_merchants
from chalicelib.errors import NotFound
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import admins, codes, devices, staff, stores
from chalicelib.onecode.models import Device, MerchantAdmin, Staff, Store

OWNER = "owner"
SHARED_CODE_KINDS = (codes.STORE_COLLECTION, codes.CLERK_COLLECTION)
"""Codes a sub-service-provider may fetch images of: collection codes are printed for
customers anyway; activation and management codes stay with the owner."""


def readable_merchant(account_id: str, merchant_id: str) -> str:
    """The caller's role on the merchant (owner or sub_service_provider); else 404."""
    return sub_merchants.readable(account_id, merchant_id)[1]


def readable_store(account_id: str, store_id: str) -> tuple[Store, SubMerchant, str]:
    """A store of a merchant the caller may read. Store ids are global, so the store's own
    merchant is checked against the caller; a foreign store answers like an unknown one."""
    store = stores.get(store_id)
    try:
        merchant, role = sub_merchants.readable(account_id, store.merchant_id)
    except NotFound:
        raise NotFound("no such store", param="store_id") from None
    if merchant.account_id != store.account_id:
        raise NotFound("no such store", param="store_id")
    return store, merchant, role


def readable_code(account_id: str, code_id: str) -> QrCode:
    """A code whose image the caller may fetch: any code it issued, and the collection codes
    of the merchants it is the sub-service-provider of."""
    code = qrcodes.find(code_id)
    if code is not None and code.account_id == account_id:
        return code
    if code is None or code.kind not in SHARED_CODE_KINDS or not code.merchant_id:
        raise NotFound("no such code", param="code_id")
    try:
        merchant, _ = sub_merchants.readable(account_id, code.merchant_id)
    except NotFound:
        raise NotFound("no such code", param="code_id") from None
    if merchant.account_id != code.account_id:
        raise NotFound("no such code", param="code_id")
    return code


def _state(member: MerchantAdmin | Staff) -> str:
    return "active" if member.openid else "pending"


def admin_list(account_id: str, merchant_id: str) -> dict:
    """The merchant's admins and pending invites (the provider's own invite among them)."""
    role = readable_merchant(account_id, merchant_id)
    people = admins.people(merchant_id)
    views = codes.find_views([admin.activation_code_id for admin in people if not admin.openid]) if role == OWNER else {}
    return {"object": "list", "data": [
        {"object": "merchant_admin", "id": admin.admin_id, "name": admin.name, "state": _state(admin),
         "can_refund": admin.can_refund, "created_at": admin.created_at, "activated_at": admin.activated_at,
         "invited_by": "provider" if admin.invited_by == admins.PROVIDER else "merchant_admin",
         "activation_code": None if admin.openid else views.get(admin.activation_code_id)}
        for admin in people]}


def _store_fields(store: Store) -> dict:
    return {"object": "store", "id": store.store_id, "merchant_id": store.merchant_id,
            **{name: getattr(store, name) for name in ("name", "province", "city", "district", "address", "phone",
                                                       "longitude", "latitude", "currency", "collection_type",
                                                       "notify_off_shift", "created_at", "updated_at", "version")}}


def store_page(account_id: str, merchant_id: str, limit: int, cursor: str | None) -> dict:
    """One cursor page of the merchant's stores, each with its collection code (one BatchGet)."""
    readable_merchant(account_id, merchant_id)
    page = stores.list_for_merchant(merchant_id, limit, cursor)
    views = codes.find_views([store.collection_code_id for store in page.data])
    return page.body(lambda store: _store_fields(store) | {"collection_code": views.get(store.collection_code_id)})


def _staff_view(member: Staff, views: dict, with_activation: bool) -> dict:
    return {"object": "staff", "id": member.staff_id, "name": member.name, "role": member.role,
            "state": _state(member), "phone": member.phone, "remark": member.remark, "can_refund": member.can_refund,
            "messages_on": member.messages_on, "on_shift": member.on_shift, "created_at": member.created_at,
            "activated_at": member.activated_at, "collection_code": views.get(member.collection_code_id),
            "activation_code": views.get(member.activation_code_id) if with_activation and not member.openid
            else None}


def _device_view(device: Device) -> dict:
    return {"object": "device", "id": device.device_id, "name": device.name, "device_type": device.device_type,
            "remark": device.remark, "created_at": device.created_at}


def store_detail(account_id: str, store_id: str) -> dict:
    """The store, its collection code, its staff (managers first) and its devices."""
    store, merchant, role = readable_store(account_id, store_id)
    people = staff.people(store_id)
    owner = role == OWNER
    views = codes.find_views([store.collection_code_id]
                             + [member.collection_code_id for member in people]
                             + [member.activation_code_id for member in people if owner and not member.openid])
    return _store_fields(store) | {
        "merchant_name": admins.shown_to_customers(merchant, admins.setup_of(merchant.merchant_id))[0], "access": "full" if owner else "read_only",
        "collection_code": views.get(store.collection_code_id),
        "staff": [_staff_view(member, views, owner) for member in people],
        "devices": [_device_view(device) for device in devices.devices(store_id)]}
