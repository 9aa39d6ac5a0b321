"""A store's devices (SPEC H5): id, name and type, added, edited and removed by its manager
(or a merchant admin). The id is the number the merchant gives the device, unique in its
store: a second device with the same id is refused, never overwritten."""
from __future__ import annotations

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.base import condition_failed, now
from chalicelib.onecode import fields
from chalicelib.onecode.access import ADMIN, MANAGER, Actor, audited, require
from chalicelib.onecode.models import Device, Store
from chalicelib.onecode.writes import conditional_update

MAX_DEVICES = 200


def _values(form: dict) -> dict:
    return {"name": fields.text(form, "name", "设备名称", 32, required=True),
            "device_type": fields.choice(form, "device_type", "设备类型", fields.DEVICE_TYPES, "other"),
            "remark": fields.text(form, "remark", "备注", 64)}


def devices(store_id: str) -> list[Device]:
    return list(Device.query(store_id, consistent_read=True, limit=MAX_DEVICES))


def get(store_id: str, device_id: str) -> Device:
    try:
        return Device.get(store_id, device_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound("no such device", param="device_id") from None


def add(actor: Actor, store: Store, form: dict) -> Device:
    require(actor, ADMIN, MANAGER)
    device_id = fields.device_id(form)
    values = _values(form)
    if len(devices(store.store_id)) >= MAX_DEVICES:
        raise InvalidField("device_id", f"一个门店最多 {MAX_DEVICES} 台设备")
    at = now()
    device = Device(store_id=store.store_id, device_id=device_id, created_at=at, updated_at=at, **values)
    try:
        device.save(condition=Device.device_id.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict("a device with this id already exists in the store", param="device_id",
                           code="device_exists") from None
        raise
    audited(actor, f"store#{store.store_id}", "device.added",
                 {"device_id": {"from": None, "to": device_id}} | {name: {"from": None, "to": value}
                                                                   for name, value in values.items() if value})
    return device


def edit(actor: Actor, store: Store, device_id: str, form: dict) -> Device:
    require(actor, ADMIN, MANAGER)
    device = get(store.store_id, device_id)
    values = _values(form)
    changes = {name: {"from": getattr(device, name), "to": value} for name, value in values.items()
               if getattr(device, name) != value}
    if changes:
        conditional_update(device, [getattr(Device, name).set(value) for name, value in values.items()]
                           + [Device.updated_at.set(now())], "device")
        audited(actor, f"store#{store.store_id}", "device.updated",
                     {"device_id": {"from": None, "to": device_id}} | changes)
    return device


def remove(actor: Actor, store: Store, device_id: str) -> None:
    require(actor, ADMIN, MANAGER)
    device = get(store.store_id, device_id)
    try:
        device.delete()
    except DeleteError as exc:
        if condition_failed(exc):
            raise Conflict("the device changed at the same time; reload and try again",
                           code="version_conflict") from None
        raise
    audited(actor, f"store#{store.store_id}", "device.removed",
                 {"device_id": {"from": device_id, "to": None}, "name": {"from": device.name, "to": None}})
