"""Stores (SPEC H4): opened by a merchant admin with their collection code and the store
manager's activation code in the same transaction, edited by admins, their notification
option set by managers too; listed by merchant through an index, a bounded page at a time.
"""
from __future__ import annotations

import secrets

from pynamodb.exceptions import DoesNotExist

from chalicelib import pagination, versioning
from chalicelib.errors import NotFound
from chalicelib.models.base import now, transaction
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes, fields
from chalicelib.onecode.access import ADMIN, MANAGER, Actor, audited, require
from chalicelib.onecode.models import Staff, Store
from chalicelib.onecode.staff import new_invite
from chalicelib.onecode.writes import conditional_update, transact

STORE_LIST = "stores"


def _clean(form: dict) -> dict:
    return {"name": fields.text(form, "name", "门店名称", 32, required=True),
            "province": fields.text(form, "province", "省份", 32),
            "city": fields.text(form, "city", "城市", 32),
            "district": fields.text(form, "district", "区县", 32),
            "address": fields.text(form, "address", "详细地址", 128),
            "phone": fields.phone(form, "phone", "门店电话"),
            "longitude": fields.coordinate(form, "longitude", "经度", 180),
            "latitude": fields.coordinate(form, "latitude", "纬度", 90),
            "currency": fields.choice(form, "currency", "币种", fields.CURRENCIES, "CNY"),
            "collection_type": fields.choice(form, "collection_type", "收款类型", fields.COLLECTION_TYPES,
                                             "wechat_alipay")}


def create(actor: Actor, form: dict) -> tuple[Store, Staff]:
    """H4: a store, its collection code and its manager's invite with an activation code."""
    require(actor, ADMIN)
    values = _clean(form)
    manager_name = fields.text(form, "manager_name", "店长姓名", 32) or "店长"
    manager_phone = fields.phone(form, "manager_phone", "店长电话")
    at = now()
    store_id = "s_" + secrets.token_hex(8)
    sp_mchid = SubMerchant.get(actor.account_id, actor.merchant_id).sp_mchid
    collection = codes.permanent_code(codes.STORE_COLLECTION, actor.account_id, actor.merchant_id, store_id,
                                      sp_mchid=sp_mchid)
    store = Store(store_id=store_id, merchant_id=actor.merchant_id, account_id=actor.account_id, sp_mchid=sp_mchid,
                  collection_code_id=collection.code_id, created_at=at, updated_at=at,
                  created_key=f"{at:010d}#{store_id}", **values)
    manager, activation = new_invite(store, "manager", manager_name, manager_phone, None, actor.label)
    with transaction() as tx:
        tx.save(store, condition=Store.store_id.does_not_exist())
        tx.save(collection, condition=QrCode.code_id.does_not_exist())
        tx.save(manager, condition=Staff.member_key.does_not_exist())
        tx.save(activation, condition=QrCode.code_id.does_not_exist())
    store.version, manager.version = 1, 1
    audited(actor, f"store#{store_id}", "store.created",
                 {name: {"from": None, "to": value} for name, value in values.items() if value is not None}
                 | {"manager_name": {"from": None, "to": manager_name}})
    return store, manager


def get(store_id: str) -> Store:
    try:
        return Store.get(store_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("no such store", param="store_id") from None


def edit(actor: Actor, store: Store, form: dict) -> Store:
    require(actor, ADMIN)
    values = _clean(form)
    versioning.check_version(store, _version(form), "store")
    changes = {name: {"from": getattr(store, name), "to": value} for name, value in values.items()
               if getattr(store, name) != value}
    for name, value in values.items():
        setattr(store, name, value)
    store.updated_at = now()
    versioning.save_versioned(store, "store")
    audited(actor, f"store#{store.store_id}", "store.updated", changes)
    return store


def set_notify_off_shift(actor: Actor, store: Store, form: dict) -> Store:
    """H4 option: payment messages also to clerks who are off shift (managers may set it)."""
    require(actor, ADMIN, MANAGER)
    wanted = fields.checkbox(form, "notify_off_shift")
    if store.notify_off_shift == wanted:
        return store
    conditional_update(store, [Store.notify_off_shift.set(wanted), Store.updated_at.set(now())], "store")
    audited(actor, f"store#{store.store_id}", "store.options_changed",
                 {"notify_off_shift": {"from": not wanted, "to": wanted}})
    return store


def _version(form: dict):
    raw = form.get("version")
    try:
        return int(raw)
    except (TypeError, ValueError):
        return raw


def list_for_merchant(merchant_id: str, limit: int, cursor: str | None) -> pagination.Page:
    """Oldest first, `limit` at a time (the caller binds cursors to who reads: read_as)."""
    return pagination.query_page(Store.by_merchant, merchant_id, STORE_LIST, limit, cursor)


def replace_collection_code(actor: Actor, store: Store) -> Store:
    """Revoke the store's collection code (a poster taken down or swapped) and issue a new one,
    in one transaction: customers scanning the old one are told it is no longer used."""
    require(actor, ADMIN, MANAGER)
    old_code_id = store.collection_code_id
    code = codes.permanent_code(codes.STORE_COLLECTION, store.account_id, store.merchant_id, store.store_id,
                                sp_mchid=store.sp_mchid)

    def write(tx):
        tx.update(store, actions=[Store.collection_code_id.set(code.code_id), Store.updated_at.set(now())])
        tx.save(code, condition=QrCode.code_id.does_not_exist())
        tx.update(QrCode(old_code_id), actions=codes.revoke_actions(), condition=QrCode.code_id.exists())
    transact(write, "store")
    store.collection_code_id = code.code_id
    audited(actor, f"store#{store.store_id}", "store.collection_code_replaced",
            {"collection_code_id": {"from": old_code_id, "to": code.code_id}})
    return store
