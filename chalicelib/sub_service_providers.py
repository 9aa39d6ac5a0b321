"""C4: sub-service-providers (子服务商). A provider's owner attaches another console account
with a display name, admin name, phone, rebate ratio (statistics only) and remark; lists,
edits and detaches them. A sub-service-provider sees only the providers it belongs to,
read-only (and, once sub-merchants exist, only the sub-merchants attributed to it).
"""
from __future__ import annotations

import re

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from chalicelib import audit, pagination, providers, versioning
from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.accounts import Account
from chalicelib.models.base import condition_failed, now
from chalicelib.models.providers import Provider
from chalicelib.models.sub_service_providers import SubServiceProvider

LIST = "sub-service-providers"
ATTRIBUTED_LIST = "attributed-providers"
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
_TEXT_LIMITS = {"name": 64, "admin_name": 32, "remark": 256}


def _provider_key(owner_account_id: str, sp_mchid: str) -> str:
    return f"{owner_account_id}#{sp_mchid}"


def _clean(body: dict, creating: bool) -> dict:
    fields = {}
    for name, limit in _TEXT_LIMITS.items():
        if name in body or (creating and name != "remark"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value.strip()) > limit):
                raise InvalidField(name, f"{name} must be text of at most {limit} characters")
            text = value.strip() if value else None
            if not text and name != "remark":
                raise InvalidField(name, f"{name} is required (and not only spaces)")
            fields[name] = text or None
    if "phone" in body or creating:
        phone = body.get("phone")
        if not isinstance(phone, str) or not _PHONE.match(phone.strip()):
            raise InvalidField("phone", "phone must be a phone number (digits, optionally +, spaces or dashes)")
        fields["phone"] = phone.strip()
    if "rebate_ratio_bp" in body:
        value = body["rebate_ratio_bp"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10000:
            raise InvalidField("rebate_ratio_bp", "rebate_ratio_bp is in basis points: 0 to 10000 (100%)")
        fields["rebate_ratio_bp"] = value
    return fields


def attach(owner_account_id: str, sp_mchid: str, body: dict) -> SubServiceProvider:
    providers.get(owner_account_id, sp_mchid)
    member = body.get("account_id")
    if not isinstance(member, str) or not member:
        raise InvalidField("account_id", "account_id (the console account to attach) is required")
    if member == owner_account_id:
        raise InvalidField("account_id", "the provider's own account cannot be its sub-service-provider")
    try:
        Account.get(member)
    except DoesNotExist:
        raise InvalidField("account_id", "no console account has this id", code="account_not_found") from None
    at = now()
    record = SubServiceProvider(member_account_id=member, sp_mchid=sp_mchid,
                                provider_key=_provider_key(owner_account_id, sp_mchid),
                                owner_account_id=owner_account_id, created_at=at, updated_at=at,
                                merchant_count=0, **{"rebate_ratio_bp": 0, **_clean(body, creating=True)})
    try:
        record.save(condition=SubServiceProvider.sp_mchid.does_not_exist())
    except PutError as exc:
        if condition_failed(exc):
            raise Conflict("this account is already a sub-service-provider of this provider", param="account_id",
                           code="sub_service_provider_exists") from None
        raise
    audit.record(owner_account_id, owner_account_id, f"provider#{sp_mchid}", "sub_service_provider.attached",
                 {"account_id": {"from": None, "to": member}, "name": {"from": None, "to": record.name}})
    return record


def _own(owner_account_id: str, sp_mchid: str, member: str) -> SubServiceProvider:
    try:
        record = SubServiceProvider.get(member, sp_mchid)
    except DoesNotExist:
        record = None
    if record is None or record.owner_account_id != owner_account_id:
        raise NotFound("no such sub-service-provider", param="account_id")
    return record


def update(owner_account_id: str, sp_mchid: str, member: str, body: dict) -> SubServiceProvider:
    record = _own(owner_account_id, sp_mchid, member)
    versioning.check_version(record, body.get("version"), "sub-service-provider")
    changes = {}
    for name, value in _clean(body, creating=False).items():
        if getattr(record, name) != value:
            changes[name] = {"from": getattr(record, name), "to": value}
            setattr(record, name, value)
    if not changes:
        return record
    record.updated_at = now()
    versioning.save_versioned(record, "sub-service-provider")
    audit.record(owner_account_id, owner_account_id, f"provider#{sp_mchid}", "sub_service_provider.updated",
                 {"account_id": member, **changes})
    return record


def detach(owner_account_id: str, sp_mchid: str, member: str) -> None:
    """Refused while sub-merchants are attributed to it: they would be left with no one."""
    record = _own(owner_account_id, sp_mchid, member)
    try:
        record.delete(condition=SubServiceProvider.merchant_count == 0)
    except DeleteError as exc:
        if not condition_failed(exc):
            raise
        current = _own(owner_account_id, sp_mchid, member)
        raise Conflict(f"{current.merchant_count} sub-merchants are still attributed to this sub-service-provider; "
                       "move them to another one first", code="sub_service_provider_has_merchants") from None
    audit.record(owner_account_id, owner_account_id, f"provider#{sp_mchid}", "sub_service_provider.detached",
                 {"account_id": {"from": member, "to": None}})


def list_for_provider(owner_account_id: str, sp_mchid: str, limit: int, cursor: str | None) -> pagination.Page:
    providers.get(owner_account_id, sp_mchid)
    one_provider_list = f"{LIST}|{sp_mchid}"  # a cursor continues only this provider's list
    start = pagination.decode_cursor(cursor, one_provider_list)
    results = SubServiceProvider.by_provider.query(_provider_key(owner_account_id, sp_mchid), limit=limit,
                                                   last_evaluated_key=start)
    return pagination.page_of(results, one_provider_list)


def view(record: SubServiceProvider) -> dict:
    return {"object": "sub_service_provider", "account_id": record.member_account_id, "sp_mchid": record.sp_mchid,
            "name": record.name, "admin_name": record.admin_name, "phone": record.phone,
            "rebate_ratio_bp": record.rebate_ratio_bp, "remark": record.remark,
            "merchant_count": record.merchant_count, "version": record.version,
            "created_at": record.created_at, "updated_at": record.updated_at}


def attributed_providers(member: str, limit: int, cursor: str | None) -> pagination.Page:
    """The providers this account belongs to as a sub-service-provider, read-only."""
    start = pagination.decode_cursor(cursor, ATTRIBUTED_LIST)
    page = pagination.page_of(SubServiceProvider.query(member, limit=limit, last_evaluated_key=start),
                              ATTRIBUTED_LIST)
    page.data = [Provider.get(record.owner_account_id, record.sp_mchid) for record in page.data]
    return page


def readable_provider(account_id: str, sp_mchid: str) -> tuple[Provider, str]:
    """The provider as `account_id` may see it: ("owner", ...) or ("sub_service_provider", ...)."""
    try:
        return providers.get(account_id, sp_mchid), "owner"
    except NotFound:
        pass
    try:
        record = SubServiceProvider.get(account_id, sp_mchid)
    except DoesNotExist:
        raise NotFound("no such provider", param="sp_mchid") from None
    return Provider.get(record.owner_account_id, sp_mchid), "sub_service_provider"


def read_only_view(provider: Provider) -> dict:
    """What a sub-service-provider sees of a provider: who it is, not how it is configured."""
    full = providers.provider_view(provider)
    return {key: full[key] for key in ("object", "sp_mchid", "name", "short_name", "logo_url", "source",
                                       "maidan_assistant")} | {"access": "read_only"}
