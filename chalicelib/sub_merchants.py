"""C5.1, C5.2, C5.4, C5.6: sub-merchants — list and detail, create by hand, edit, reset
their keys, and switch their WeChat payment channel.

Every sub-merchant gets an order prefix when it is created: all its order and refund
numbers start with it. Prefixes come from an atomic counter, so none is ever given twice
or reused after a sub-merchant is gone.
"""
from __future__ import annotations

import re
import secrets as random

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import (alipay_authorization, audit, maidan_admins, pagination, providers, reattribution, secrets,
                        versioning)
from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.accounts import Counter, UniqueClaim
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.jobs import Job
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.models.sub_service_providers import SubServiceProvider
from chalicelib.upstream import maidan

CHANNELS = ("official_direct", "maidan")
LIST = "sub-merchants"
_SUB_MCHID = re.compile(r"^\d{8,10}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s.]{2,}$")
_TEXT = {"name": 64, "short_name": 32, "admin_name": 32, "remark": 256}
_URLS = ("logo_url", "ad_image_url", "ad_link_url")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
REFUSED_ON_EDIT = ("sp_mchid", "channel", *alipay_authorization.NOT_EDITABLE)
"""Fields of a sub-merchant that an edit names only to be told how they do change."""
HOW_TO_OPEN_MAIDAN = ("the merchant opens 买单 in the 微信买单服务商助手 mini-program (or the provider opens it "
                      "for them there), then switch again")


def order_prefixes(count: int) -> list[str]:
    """`count` new order prefixes from one counter update (a sync page takes all of its
    creations' prefixes in one call).

    A prefix is "M" + five base-36 digits of a counter value: 60 million prefixes, 6
    characters, leaving 26 of WeChat Pay's 32 for each order's own suffix.
    """
    if count <= 0:
        return []
    counter = Counter("counter#order_prefix")
    counter.update(actions=[Counter.value.add(count)])
    last = int(counter.value)
    prefixes = []
    for number in range(last - count + 1, last + 1):
        digits = ""
        while number:
            number, remainder = divmod(number, 36)
            digits = _BASE36[remainder] + digits
        prefixes.append("M" + digits.rjust(5, "0"))
    return prefixes


def _clean(body: dict, creating: bool) -> dict:
    fields = {}
    for name, limit in _TEXT.items():
        if name in body or (creating and name == "name"):
            value = body.get(name)
            if value in (None, ""):
                if name == "name":
                    raise InvalidField(name, "name is required")
                fields[name] = None
                continue
            if not isinstance(value, str) or len(value.strip()) > limit:
                raise InvalidField(name, f"{name} must be text of at most {limit} characters")
            fields[name] = value.strip()
    for name in _URLS:
        if name in body:
            fields[name] = providers.https_url(body[name], name)
    if "admin_email" in body:
        email = body["admin_email"]
        if email not in (None, "") and (not isinstance(email, str) or not _EMAIL.match(email.strip())):
            raise InvalidField("admin_email", "admin_email is not a valid address")
        fields["admin_email"] = email.strip().lower() if email else None
    if "pay_limit_fen" in body:
        fields["pay_limit_fen"] = providers.pay_limit(body["pay_limit_fen"])
    return fields


def _sub_mchid(value) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not _SUB_MCHID.match(value):
        raise InvalidField("sub_mchid", "sub_mchid must be the 8-10 digit WeChat Pay sub-merchant id")
    return value


def _attached_ssp(account_id: str, sp_mchid: str, member) -> SubServiceProvider | None:
    if member is None or member == "":
        return None
    if not isinstance(member, str):
        raise InvalidField("sub_service_provider", "sub_service_provider must be an account id (text) or null")
    try:
        record = SubServiceProvider.get(member, sp_mchid)
    except DoesNotExist:
        record = None
    if record is None or record.owner_account_id != account_id:
        raise InvalidField("sub_service_provider", "sub_service_provider must be the account id of a "
                                                   "sub-service-provider attached to this provider")
    return record


def create(account_id: str, actor: str, body: dict, source: str = "manual", channel: str = "official_direct") -> SubMerchant:
    sp_mchid = body.get("sp_mchid")
    if not isinstance(sp_mchid, str) or not sp_mchid:
        raise InvalidField("sp_mchid", "sp_mchid (the provider) is required")
    try:
        providers.get(account_id, sp_mchid)
    except NotFound:
        raise InvalidField("sp_mchid", "sp_mchid is not a provider of this account") from None
    fields = _clean(body, creating=True)
    sub_mchid = _sub_mchid(body.get("sub_mchid"))
    ssp = _attached_ssp(account_id, sp_mchid, body.get("sub_service_provider"))
    at = now()
    merchant = SubMerchant(account_id=account_id, merchant_id="m_" + random.token_hex(8), sp_mchid=sp_mchid,
                           provider_key=f"{account_id}#{sp_mchid}", ssp_account_id=ssp.member_account_id if ssp else None,
                           order_prefix=order_prefixes(1)[0], sub_mchid=sub_mchid, channel=channel, source=source,
                           created_at=at, updated_at=at, **fields)
    for _ in range(3):
        try:
            with transaction() as tx:
                tx.save(merchant, condition=SubMerchant.merchant_id.does_not_exist())
                if sub_mchid:
                    tx.save(UniqueClaim(claim=f"sub_mchid#{sub_mchid}", owner_id=merchant.merchant_id, created_at=at),
                            condition=UniqueClaim.claim.does_not_exist())
                if ssp:
                    # The loaded record carries its version: a concurrent edit or attribution
                    # makes this transaction fail, and it is retried from a fresh read.
                    tx.update(ssp, actions=[SubServiceProvider.merchant_count.add(1)])
            break
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            reasons = [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]
            if sub_mchid and len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise Conflict("a sub-merchant with this sub_mchid already exists", param="sub_mchid",
                               code="sub_merchant_exists") from None
            ssp = _attached_ssp(account_id, sp_mchid, ssp.member_account_id) if ssp else None
    else:
        raise Conflict("the sub-service-provider kept changing; try again", code="version_conflict")
    merchant.version = 1
    audit.record(account_id, actor, f"sub_merchant#{merchant.merchant_id}", "sub_merchant.created",
                 {name: {"from": None, "to": value} for name, value in fields.items() if value is not None})
    return merchant


def get(account_id: str, merchant_id: str) -> SubMerchant:
    try:
        return SubMerchant.get(account_id, merchant_id)
    except DoesNotExist:
        raise NotFound("no such sub-merchant", param="merchant_id") from None


def readable(account_id: str, merchant_id: str) -> tuple[SubMerchant, str]:
    """The sub-merchant as the caller may see it: as owner, or as its sub-service-provider."""
    try:
        return get(account_id, merchant_id), "owner"
    except NotFound:
        found = list(SubMerchant.by_sub_service_provider.query(account_id, SubMerchant.merchant_id == merchant_id))
        if not found:
            raise
        return found[0], "sub_service_provider"


def _save(merchant: SubMerchant, expected_version, actor: str, action: str, changes: dict,
          claim: UniqueClaim | None = None) -> SubMerchant:
    """Save a checked edit; a new sub_mchid's `claim` is written in the same transaction, so a
    refused or lost edit never leaves the number claimed."""
    versioning.check_version(merchant, expected_version, "sub-merchant")
    if not changes:
        return merchant
    merchant.updated_at = now()
    if claim is None:
        versioning.save_versioned(merchant, "sub-merchant")
    else:
        _save_claiming(merchant, claim)
    audit.record(merchant.account_id, actor, f"sub_merchant#{merchant.merchant_id}", action, changes)
    return merchant


def _save_claiming(merchant: SubMerchant, claim: UniqueClaim) -> None:
    try:
        with transaction() as tx:
            tx.save(merchant)
            tx.save(claim, condition=UniqueClaim.claim.does_not_exist())
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        reasons = [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]
        if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
            raise Conflict("a sub-merchant with this sub_mchid already exists", param="sub_mchid",
                           code="sub_merchant_exists") from None
        raise Conflict("the sub-merchant changed while saving; reload and apply the edit again", param="version",
                       code="version_conflict") from None


def update(account_id: str, actor: str, merchant_id: str, body: dict) -> tuple[SubMerchant, Job | None]:
    """Edit the merchant; a new `sub_service_provider` also starts (or queues) the job that
    moves its history there (C5.8), returned with it."""
    merchant = get(account_id, merchant_id)
    versioning.check_version(merchant, body.get("version"), "sub-merchant")
    for fixed, why in (("sp_mchid", "a sub-merchant stays with its provider"),
                       ("channel", "use PUT /v1/sub-merchants/{merchant_id}/channel")):
        if fixed in body:
            raise InvalidField(fixed, f"{fixed} cannot be changed here: {why}")
    for fixed in alipay_authorization.NOT_EDITABLE:
        if fixed in body:
            raise InvalidField(fixed, f"{fixed} cannot be changed here: {alipay_authorization.HOW_TO_CHANGE}")
    changes, claim = {}, None
    if "sub_mchid" in body:
        sub_mchid = _sub_mchid(body["sub_mchid"])
        if merchant.sub_mchid and sub_mchid != merchant.sub_mchid:
            raise InvalidField("sub_mchid", "sub_mchid cannot be changed once set")
        if sub_mchid and not merchant.sub_mchid:
            claim = UniqueClaim(claim=f"sub_mchid#{sub_mchid}", owner_id=merchant.merchant_id, created_at=now())
            changes["sub_mchid"] = {"from": None, "to": sub_mchid}
    new_ssp = None
    if "sub_service_provider" in body:
        new_ssp = _attached_ssp(account_id, merchant.sp_mchid, body["sub_service_provider"])
        if (new_ssp.member_account_id if new_ssp else None) == merchant.ssp_account_id:
            body = {name: value for name, value in body.items() if name != "sub_service_provider"}
    cleaned = _clean(body, creating=False)
    if claim is not None:
        merchant.sub_mchid = changes["sub_mchid"]["to"]
    for name, value in cleaned.items():
        if getattr(merchant, name) != value:
            changes[name] = {"from": getattr(merchant, name), "to": value}
            setattr(merchant, name, value)
    merchant = _save(merchant, body.get("version"), actor, "sub_merchant.updated", changes, claim)
    if "sub_service_provider" not in body:
        return merchant, None
    old_ssp = _attached_ssp(account_id, merchant.sp_mchid, merchant.ssp_account_id) if merchant.ssp_account_id \
        else None
    job = reattribution.start(merchant, actor, old_ssp, new_ssp)
    return get(account_id, merchant_id), job


def reset_keys(account_id: str, actor: str, merchant_id: str) -> dict:
    """C5.4: a new auth key (HMAC-SHA256) and RSA-2048 signing key pair, returned once.

    The private key is not kept at all (the merchant signs, we verify with the public key);
    the auth key is kept encrypted with KMS, since verifying an HMAC needs it.
    """
    merchant = get(account_id, merchant_id)
    auth_key = random.token_urlsafe(32)
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    public_pem = private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    reset_at = now()
    merchant.keys = {"auth_key": secrets.encrypt(auth_key, account_id=account_id, record=f"sub_merchant#{merchant_id}",
                                                 field="auth_key"),
                     "public_key_pem": public_pem, "reset_at": reset_at}
    _save(merchant, merchant.version, actor, "sub_merchant.keys_reset", {"auth_key": audit.SECRET_CHANGE,
                                                                          "signing_key": audit.SECRET_CHANGE})
    return {"object": "sub_merchant_keys", "merchant_id": merchant_id, "auth_key": auth_key,
            "private_key_pem": private_pem, "public_key_pem": public_pem, "reset_at": reset_at,
            "note": "Save the auth key and the private key now: they are not shown again."}


def switch_channel(account_id: str, actor: str, merchant_id: str, body: dict) -> SubMerchant:
    """C5.6: official_direct or maidan; 买单 must say the merchant opened it first, and is
    asked only if a bound WeChat administers the merchant's provider there."""
    merchant = get(account_id, merchant_id)
    channel = body.get("channel")
    if channel not in CHANNELS:
        raise InvalidField("channel", "channel must be official_direct or maidan")
    if channel == "maidan" and merchant.channel != "maidan":
        if not merchant.sub_mchid:
            raise InvalidField("channel", "set the sub-merchant's sub_mchid before switching to maidan")
        if not maidan_admins.account_administers(account_id, merchant.sp_mchid):
            raise Conflict(f"none of the account's bound WeChats administers provider {merchant.sp_mchid} in 买单, "
                           "so 买单 is not asked about its merchants: bind the admin's WeChat "
                           "(POST /v1/wechat-binding-codes) and switch again", param="channel",
                           code="provider_not_administered")
        if not maidan.maidan_status(merchant.sub_mchid).opened:
            raise Conflict(f"this merchant has not opened 买单: {HOW_TO_OPEN_MAIDAN}", param="channel",
                           code="maidan_not_opened")
    changes = {} if channel == merchant.channel else {"channel": {"from": merchant.channel, "to": channel}}
    merchant.channel = channel
    return _save(merchant, body.get("version"), actor, "sub_merchant.channel_switched", changes)


def list_sub_merchants(account_id: str, query: dict, limit: int, cursor: str | None) -> pagination.Page:
    """C5.1: in name order, from the index whose key holds the filters, with a name prefix as
    its key condition, so a page reads what it returns whatever the account's size.

    One combination has no index of its own: a provider together with a sub-service-provider
    reads that sub-service-provider's index with the provider as a filter, in a bounded slice
    (`pagination.query_page`), so its pages may be partial. So does a channel on the
    sub-service-provider's own view (`as=sub_service_provider`).
    """
    channel, sp_mchid, ssp = query.get("channel"), query.get("sp_mchid"), query.get("sub_service_provider")
    if channel and channel not in CHANNELS:
        raise InvalidField("channel", "channel must be official_direct or maidan")
    prefix = query.get("name")
    name_condition = SubMerchant.name.startswith(prefix) if prefix else None
    filter_condition, total = None, None
    if query.get("as") == "sub_service_provider":
        source, key = SubMerchant.by_member_name, account_id
        filter_condition = (SubMerchant.channel == channel) if channel else None
    elif ssp:
        source, key = ((SubMerchant.by_ssp_channel_name, f"{account_id}#{ssp}#{channel}") if channel
                       else (SubMerchant.by_ssp_name, f"{account_id}#{ssp}"))
        filter_condition = (SubMerchant.sp_mchid == sp_mchid) if sp_mchid else None
        if not channel and not prefix:
            total = _attributed_count(account_id, ssp, sp_mchid)
    elif sp_mchid:
        source, key = ((SubMerchant.by_provider_channel_name, f"{account_id}#{sp_mchid}#{channel}") if channel
                       else (SubMerchant.by_provider_name, f"{account_id}#{sp_mchid}"))
    else:
        source, key = ((SubMerchant.by_channel_name, f"{account_id}#{channel}") if channel
                       else (SubMerchant.by_account_name, account_id))
    page = pagination.query_page(source, key, LIST, limit, cursor, range_key_condition=name_condition,
                                 filter_condition=filter_condition)
    page.total = total
    return page


def _attributed_count(account_id: str, member: str, sp_mchid: str | None) -> int:
    """How many of the account's sub-merchants are attributed to `member` (under `sp_mchid`),
    from the counters their attributions keep: one read per provider the member belongs to."""
    if sp_mchid:
        try:
            record = SubServiceProvider.get(member, sp_mchid)
        except DoesNotExist:
            return 0
        return int(record.merchant_count) if record.owner_account_id == account_id else 0
    return sum(int(record.merchant_count) for record in SubServiceProvider.query(member)
               if record.owner_account_id == account_id)


def view(merchant: SubMerchant) -> dict:
    keys = merchant.keys.as_dict() if hasattr(merchant.keys, "as_dict") else dict(merchant.keys or {})
    return {"object": "sub_merchant", "id": merchant.merchant_id, "sp_mchid": merchant.sp_mchid,
            "sub_service_provider": merchant.ssp_account_id, "order_prefix": merchant.order_prefix,
            **{name: getattr(merchant, name) for name in ("name", "short_name", "admin_name", "admin_email",
                                                          "admin_phone", "maidan_opened", "maidan_updated_at",
                                                          "sub_mchid", "logo_url", "ad_image_url", "ad_link_url",
                                                          "remark", "channel", "source", "version", "created_at",
                                                          "updated_at")},
            "pay_limit_fen": None if merchant.pay_limit_fen is None else int(merchant.pay_limit_fen),
            "reattribution_jobs": list(merchant.reattribution_jobs or []),
            "keys": {"auth_key_set": "auth_key" in keys, "public_key_pem": keys.get("public_key_pem"),
                     "reset_at": keys.get("reset_at")},
            "alipay_authorization": alipay_authorization.view(merchant)}


def read_only_view(merchant: SubMerchant) -> dict:
    full = view(merchant)
    return {key: full[key] for key in ("object", "id", "sp_mchid", "name", "short_name", "channel",
                                       "order_prefix")} | {"access": "read_only"}
