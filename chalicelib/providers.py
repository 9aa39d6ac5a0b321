"""C3.1, C3.4, C3.5: service providers of a console account — list, create by hand,
configure (WeChat Pay, Alipay, pay-page content), and test the configuration upstream.

Secrets (AppSecret, API v3 key, merchant private key, Alipay app private key) are checked,
encrypted with KMS and stored write-only: answers say only whether and when each was set.
Edits carry the version they were made from; a stale one loses with 409, never an update.
"""
from __future__ import annotations

import re
from secrets import token_urlsafe
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError

from pynamodb.exceptions import TransactWriteError

from chalicelib import audit, maidan_admins, pagination, secrets, settings, versioning
from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.log import logger
from chalicelib.models.accounts import UniqueClaim
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.models.sub_service_providers import SubServiceProvider
from chalicelib.upstream import alipay, provider_callback, wechatpay

PROVIDERS_LIST = "providers"
_SP_MCHID = re.compile(r"^\d{8,10}$")
_WECHAT_APP_ID = re.compile(r"^wx[0-9a-f]{16}$")
_APP_SECRET = re.compile(r"^[0-9a-f]{32}$")
_SERIAL = re.compile(r"^[0-9A-Fa-f]{8,40}$")
_PUBLIC_KEY_ID = re.compile(r"^PUB_KEY_ID_[0-9A-Za-z]{4,64}$")
_ALIPAY_APP_ID = re.compile(r"^\d{16}$")
_PARTNER_ID = re.compile(r"^2088\d{12}$")

BASIC_FIELDS = {"name": 64, "short_name": 32, "remark": 256}
URL_FIELDS = ("logo_url", "ad_image_url", "ad_link_url", "callback_url")
WECHAT_SECRETS = ("app_secret", "api_v3_key", "private_key_pem")
PAY_LIMIT_MAX_FEN = 100_000_000
"""A pay limit is set in fen from 1 to this (1,000,000 yuan)."""
RESULT_SLOTS = ("review", "coupon")
SLOT_TITLE_MAX = 20
ALIPAY_SECRETS = ("private_key",)
CALLBACK_SECRET = "callback_secret"
"""B5: the key providers' callbacks are signed with (one per provider, rotatable)."""
CALLBACK_SECRET_PREFIX = "cbsec_"


def _text(value, param: str, limit: int, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidField(param, f"{param} is required")
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise InvalidField(param, f"{param} must be text of at most {limit} characters")
    return value.strip()


def https_url(value, param: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
    except ValueError:  # "https://[::1" and other unparsable text
        parts = None
    if parts is None or parts.scheme != "https" or not parts.netloc or len(value) > 512:
        raise InvalidField(param, f"{param} must be an https:// URL of at most 512 characters")
    return value


def local_receivers_allowed() -> bool:
    """B5: on the local and test stages a callback URL may be http:// and point at this
    machine (the sandbox's receiver); nowhere else."""
    return settings.current().stage in ("local", "test")


def callback_url(value) -> str | None:
    """B5: an https URL (http too on the local and test stages) that httpx, which sends it,
    can parse, whose host is not spelled as a loopback, private or reserved address (each
    attempt checks again what the name resolves to: provider_callback)."""
    if value is None or value == "":
        return None
    local = local_receivers_allowed()
    rule = f"callback_url must be an {'http(s)' if local else 'https'}:// URL of at most 512 characters"
    if not isinstance(value, str) or len(value) > 512:
        raise InvalidField("callback_url", rule)
    try:
        parts = httpx.URL(value)
    except (httpx.InvalidURL, ValueError):
        raise InvalidField("callback_url", rule) from None
    if parts.scheme not in (("https", "http") if local else ("https",)) or not parts.host or \
            not 0 < (parts.port or 443) < 65536:
        raise InvalidField("callback_url", rule)
    address = provider_callback.literal_address(parts.host)
    loopback_name = parts.host == "localhost" or parts.host.endswith(".localhost")
    if local and (loopback_name or (address is not None and address.is_loopback)):
        return value
    if loopback_name or (address is not None and not provider_callback.is_public(address)):
        raise InvalidField("callback_url", "callback_url must not point at a loopback, private or reserved address")
    return value


def _matching(value, param: str, pattern: re.Pattern, rule: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise InvalidField(param, f"{param} {rule}")
    return value


def _rebate(value, param: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10000:
        raise InvalidField(param, f"{param} is in basis points: a whole number from 0 to 10000 (100%)")
    return value


def pay_limit(value, param: str = "pay_limit_fen") -> int | None:
    """A cap on one payment in integer fen; None (null) clears it. Floats, strings and
    booleans are refused, not read as a number the editor may not have meant."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= PAY_LIMIT_MAX_FEN:
        raise InvalidField(param, f"{param} is in fen: a whole number from 1 to {PAY_LIMIT_MAX_FEN}, or null")
    return value


def _result_slot(value, param: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField(param, f"{param} must be an object with title and url, or null")
    for name in value:
        if name not in ("title", "url"):
            raise InvalidField(f"{param}.{name}", f"{param}.{name} is not a field of a result slot (title, url)")
    title = _text(value.get("title"), f"{param}.title", SLOT_TITLE_MAX, required=True)
    if not title:
        raise InvalidField(f"{param}.title", f"{param}.title is required")
    url = https_url(value.get("url"), f"{param}.url")
    if url is None:
        raise InvalidField(f"{param}.url", f"{param}.url is required")
    return {"title": title, "url": url}


def _result_slots(value) -> dict:
    """The H8 result page's slots the request sets: slot name -> {title, url} or None (clear).
    `result_slots: null` clears both; a slot left out keeps what it was."""
    if value is None:
        return dict.fromkeys(RESULT_SLOTS)
    if not isinstance(value, dict):
        raise InvalidField("result_slots", "result_slots must be an object with review and coupon, or null")
    for name in value:
        if name not in RESULT_SLOTS:
            raise InvalidField(f"result_slots.{name}", f"result_slots.{name} is not a result slot (review, coupon)")
    return {name: _result_slot(value[name], f"result_slots.{name}") for name in value}


def result_slots(provider: Provider) -> dict:
    """The provider's result page slots as plain dicts: {"review": {title, url} | None, "coupon": ...}."""
    stored = mapping(provider.result_slots)
    return {name: (dict(mapping(stored[name])) if stored.get(name) else None) for name in RESULT_SLOTS}


def _private_key(value, param: str) -> str:
    """An RSA private key in PEM, or the bare base64 that Alipay's key tool writes."""
    text = value.strip() if isinstance(value, str) else ""
    pem = text if text.startswith("-----BEGIN") else (
        f"-----BEGIN PRIVATE KEY-----\n{text}\n-----END PRIVATE KEY-----\n" if text else "")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        try:
            key = serialization.load_pem_private_key(pem.replace("PRIVATE KEY", "RSA PRIVATE KEY").encode(), None)
        except (ValueError, TypeError):
            raise InvalidField(param, f"{param} is not an RSA private key (PEM or base64)") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise InvalidField(param, f"{param} must be an RSA key of at least 2048 bits")
    return text


def _public_key(value, param: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    pem = text if text.startswith("-----BEGIN") else f"-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----\n"
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise InvalidField(param, f"{param} is not an RSA public key (PEM or base64)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidField(param, f"{param} must be an RSA public key")
    return text


def _certificate(value, param: str) -> tuple[str, str]:
    try:
        certificate = x509.load_pem_x509_certificate(value.encode() if isinstance(value, str) else b"")
    except ValueError:
        raise InvalidField(param, f"{param} is not a PEM certificate") from None
    return value.strip(), format(certificate.serial_number, "X")


def _section(body: dict, name: str) -> dict:
    section = body.get(name) or {}
    if not isinstance(section, dict):
        raise InvalidField(name, f"{name} must be an object")
    return section


def _clean_wechat(section: dict) -> tuple[dict, dict]:
    """(public settings, secrets) of the WeChat Pay section that the request carries."""
    public, secret = {}, {}
    if "app_id" in section:
        public["app_id"] = _matching(section["app_id"], "wechat_pay.app_id", _WECHAT_APP_ID,
                                     "must be an official-account AppID: wx and 16 hex digits")
    if "serial_no" in section:
        public["serial_no"] = _matching(section["serial_no"], "wechat_pay.serial_no", _SERIAL,
                                        "must be the API certificate serial number (hex)")
    if "platform_public_key_id" in section or "platform_public_key_pem" in section:
        public["platform_public_key_id"] = _matching(section.get("platform_public_key_id"),
                                                     "wechat_pay.platform_public_key_id", _PUBLIC_KEY_ID,
                                                     "must look like PUB_KEY_ID_0000000000000000")
        public["platform_public_key_pem"] = _public_key(section.get("platform_public_key_pem"),
                                                        "wechat_pay.platform_public_key_pem")
    if "platform_certificate_pem" in section:
        public["platform_certificate_pem"], public["platform_certificate_serial"] = _certificate(
            section["platform_certificate_pem"], "wechat_pay.platform_certificate_pem")
    if "rebate_ratio_bp" in section:
        public["rebate_ratio_bp"] = _rebate(section["rebate_ratio_bp"], "wechat_pay.rebate_ratio_bp")
    if "app_secret" in section:
        secret["app_secret"] = _matching(section["app_secret"], "wechat_pay.app_secret", _APP_SECRET,
                                         "must be the 32-character AppSecret")
    if "api_v3_key" in section:
        key = section["api_v3_key"]
        if not isinstance(key, str) or len(key) != 32 or not key.isascii() or not key.isprintable():
            raise InvalidField("wechat_pay.api_v3_key", "wechat_pay.api_v3_key must be exactly 32 ASCII characters")
        secret["api_v3_key"] = key
    if "private_key_pem" in section:
        secret["private_key_pem"] = _private_key(section["private_key_pem"], "wechat_pay.private_key_pem")
    return public, secret


def _clean_alipay(section: dict) -> tuple[dict, dict]:
    public, secret = {}, {}
    if "app_id" in section:
        public["app_id"] = _matching(section["app_id"], "alipay.app_id", _ALIPAY_APP_ID,
                                     "must be the 16-digit Alipay app id")
    if "partner_id" in section:
        public["partner_id"] = _matching(section["partner_id"], "alipay.partner_id", _PARTNER_ID,
                                         "must be the 16-digit partner id starting with 2088")
    if "alipay_public_key" in section:
        public["alipay_public_key"] = _public_key(section["alipay_public_key"], "alipay.alipay_public_key")
    if "rebate_ratio_bp" in section:
        public["rebate_ratio_bp"] = _rebate(section["rebate_ratio_bp"], "alipay.rebate_ratio_bp")
    if "private_key" in section:
        secret["private_key"] = _private_key(section["private_key"], "alipay.private_key")
    return public, secret


def _clean_basic(body: dict, creating: bool) -> dict:
    fields = {}
    for name, limit in BASIC_FIELDS.items():
        if name in body or (creating and name == "name"):
            fields[name] = _text(body.get(name), name, limit, required=(name == "name"))
    for name in URL_FIELDS:
        if name in body:
            fields[name] = callback_url(body[name]) if name == "callback_url" else https_url(body[name], name)
    if "pay_limit_fen" in body:
        fields["pay_limit_fen"] = pay_limit(body["pay_limit_fen"])
    return fields


def mapping(attribute) -> dict:
    """A MapAttribute read from the table, or a plain dict set in this request, as a dict."""
    return attribute.as_dict() if hasattr(attribute, "as_dict") else dict(attribute or {})


def _load(account_id: str, sp_mchid: str) -> Provider:
    try:
        return Provider.get(account_id, sp_mchid)
    except DoesNotExist:
        raise NotFound("no such provider", param="sp_mchid") from None


def _apply(provider: Provider, body: dict, actor: str, creating: bool) -> dict:
    """Apply a request's fields to `provider`; return the audit changes (secrets: "changed")."""
    changes: dict = {}
    for name, value in _clean_basic(body, creating).items():
        if getattr(provider, name, None) != value:
            changes[name] = {"from": getattr(provider, name, None), "to": value}
            setattr(provider, name, value)
    if "result_slots" in body:
        slots = result_slots(provider)
        for name, value in _result_slots(body["result_slots"]).items():
            if slots[name] != value:
                changes[f"result_slots.{name}"] = {"from": slots[name], "to": value}
                slots[name] = value
        provider.result_slots = {name: value for name, value in slots.items() if value} or None
    stored_secrets = mapping(provider.secrets)
    for section_name, clean, attribute in (("wechat_pay", _clean_wechat, "wechat"), ("alipay", _clean_alipay, "alipay")):
        public, secret = clean(_section(body, section_name))
        settings_now = mapping(getattr(provider, attribute))
        for name, value in public.items():
            if settings_now.get(name) != value:
                changes[f"{section_name}.{name}"] = {"from": settings_now.get(name), "to": value}
                settings_now[name] = value
        setattr(provider, attribute, settings_now)
        for name, value in secret.items():
            field = f"{section_name}.{name}"
            stored_secrets[field] = {"ciphertext": secrets.encrypt(value, account_id=provider.account_id,
                                                                   record=f"provider#{provider.sp_mchid}", field=field),
                                     "set_at": now()}
            changes[field] = audit.SECRET_CHANGE
    provider.secrets = stored_secrets
    return changes


def create(account_id: str, actor: str, body: dict) -> Provider:
    """C3.5: a provider entered by hand (not from 买单)."""
    sp_mchid = _matching(body.get("sp_mchid"), "sp_mchid", _SP_MCHID, "must be the 8-10 digit service-provider mch id")
    at = now()
    provider = Provider(account_id=account_id, sp_mchid=sp_mchid, source="manual", created_at=at, updated_at=at)
    changes = _apply(provider, body, actor, creating=True)
    if not _save_new(provider):
        raise Conflict("a provider with this sp_mchid already exists", param="sp_mchid",
                       code="provider_exists")
    audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.created", changes)
    return provider


def _claim(sp_mchid: str) -> str:
    return f"sp_mchid#{sp_mchid}"


def _save_new(provider: Provider) -> bool:
    """Save a new provider and claim its sp_mchid for its account, together: one WeChat Pay
    service provider belongs to one console account. False when it is taken."""
    claim = UniqueClaim(claim=_claim(provider.sp_mchid), owner_id=provider.account_id, created_at=provider.created_at)
    try:
        with transaction() as tx:
            tx.save(claim, condition=UniqueClaim.claim.does_not_exist())
            tx.save(provider, condition=Provider.sp_mchid.does_not_exist())
    except TransactWriteError as exc:
        if condition_failed(exc):
            return False
        raise
    provider.version = 1
    return True


def proves_administration(provider: Provider) -> bool:
    """Whether the account once showed 买单 that it administers this provider: synced by an
    admin's code (C3.2), or bound to the assistant after 买单 named its WeChat the admin
    (C3.3). A provider only typed in (C3.5) proves nothing: its sp_mchid claim is
    provisional, and the real admin's sync takes it over (`_take_over`)."""
    return (provider.source == "maidan" or provider.maidan_verified_at is not None
            or provider.maidan_assistant_bound_at is not None)


def upsert_from_maidan(account_id: str, actor: str, sp_mchid: str, name: str) -> str:
    """C3.2: create or update one provider as 买单 knows it, under this account only. The
    caller has just proved, through a 买单 admin's scan, that the account administers it.

    Returns created, updated, unchanged, taken_over (another account had only typed the
    sp_mchid in and cannot prove it administers it: the claim moves here), or elsewhere
    (another account proved it, or still can: reported, never moved). Safe to repeat: a
    second sync of the same data changes nothing.
    """
    for _ in range(3):
        try:
            provider = Provider.get(account_id, sp_mchid, consistent_read=True)
        except DoesNotExist:
            at = now()
            provider = Provider(account_id=account_id, sp_mchid=sp_mchid, name=name, source="maidan",
                                maidan_verified_at=at, created_at=at, updated_at=at)
            if _save_new(provider):
                audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.synced",
                             {"name": {"from": None, "to": name}})
                return "created"
            try:
                holder = UniqueClaim.get(_claim(sp_mchid), consistent_read=True).owner_id
            except DoesNotExist:
                continue
            if holder != account_id:
                return "taken_over" if _take_over(account_id, actor, holder, sp_mchid, name) else "elsewhere"
            continue
        if provider.claim_lost_at is not None:
            return "elsewhere"
        if provider.name == name and provider.maidan_verified_at is not None:
            return "unchanged"
        before = provider.name
        provider.name, provider.updated_at = name, now()
        provider.maidan_verified_at = provider.maidan_verified_at or provider.updated_at
        try:
            provider.save()
        except PutError as exc:
            if condition_failed(exc):
                continue
            raise
        if before == name:
            return "unchanged"
        audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.synced", {"name": {"from": before, "to": name}})
        return "updated"
    raise Conflict("the provider kept changing during the sync; sync again", code="sync_race")


def _take_over(account_id: str, actor: str, holder_id: str, sp_mchid: str, name: str) -> bool:
    """Move the sp_mchid claim from `holder_id` to the account whose 买单 admin just proved
    it administers the provider, if the holder only typed it in and none of its bound
    WeChats administers it in 买单 now. The holder keeps its record, marked lost (with an
    audit entry); the sub-merchants it read from 买单 under that provider (possible only
    before the sync checked administration) are removed with their claims first, so a
    takeover that dies half-way is finished by the next sync. False: not taken over."""
    try:
        held = Provider.get(holder_id, sp_mchid, consistent_read=True)
    except DoesNotExist:
        held = None
    if held is not None and (proves_administration(held) or held.claim_lost_at is not None):
        return False
    try:
        if maidan_admins.account_administers(holder_id, sp_mchid):
            return False
    except maidan_admins.LOOKUP_ERRORS as exc:
        logger.warning("takeover not decided: 买单 could not be asked", extra={"sp_mchid": sp_mchid, "error": str(exc)})
        return False
    removed = _remove_sub_merchants_read_from_maidan(holder_id, sp_mchid)
    if removed is None:
        return False
    at = now()
    provider = Provider(account_id=account_id, sp_mchid=sp_mchid, name=name, source="maidan", maidan_verified_at=at,
                        created_at=at, updated_at=at)
    try:
        with transaction() as tx:
            tx.update(UniqueClaim(claim=_claim(sp_mchid)), actions=[UniqueClaim.owner_id.set(account_id)],
                      condition=UniqueClaim.owner_id == holder_id)
            if held is not None:
                tx.update(held, actions=[Provider.claim_lost_at.set(at), Provider.updated_at.set(at)],
                          condition=(Provider.source == "manual") & Provider.maidan_verified_at.does_not_exist()
                          & Provider.maidan_assistant_bound_at.does_not_exist() & Provider.claim_lost_at.does_not_exist())
            tx.save(provider, condition=Provider.sp_mchid.does_not_exist())
    except TransactWriteError as exc:
        if condition_failed(exc):
            return False
        raise
    provider.version = 1
    if held is not None:
        audit.record(holder_id, "platform", f"provider#{sp_mchid}", "provider.claim_lost",
                     {"claim": {"from": "held", "to": "lost"},
                      "maidan_sub_merchants": {"from": removed, "to": 0}})
    audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.claim_taken_over",
                 {"name": {"from": None, "to": name},
                  "claim": {"from": "typed in by an account that cannot prove it administers it", "to": "held"}})
    logger.info("provider claim taken over", extra={"sp_mchid": sp_mchid, "removed_sub_merchants": removed})
    return True


def _remove_sub_merchants_read_from_maidan(holder_id: str, sp_mchid: str) -> int | None:
    """Delete the holder's sub-merchants of `sp_mchid` that came from 买单, each after its
    sub_mchid claim (only if the claim is still that record's), so the real admin's sync can
    claim them. Merchants the holder typed in stay with it, under the lost provider. None
    when a record changed while being deleted: the takeover waits for the next sync."""
    removed = 0
    for listed in SubMerchant.by_provider.query(f"{holder_id}#{sp_mchid}",
                                                filter_condition=SubMerchant.source == "maidan"):
        try:
            record = SubMerchant.get(holder_id, listed.merchant_id, consistent_read=True)
        except DoesNotExist:
            continue
        if record.sub_mchid:
            try:
                UniqueClaim(claim=f"sub_mchid#{record.sub_mchid}").delete(
                    condition=UniqueClaim.owner_id == record.merchant_id)
            except DeleteError as exc:
                if not condition_failed(exc):
                    raise
        try:
            with transaction() as tx:
                tx.delete(record, condition=SubMerchant.source == "maidan")
                if record.ssp_account_id:
                    tx.update(SubServiceProvider(record.ssp_account_id, sp_mchid),
                              actions=[SubServiceProvider.merchant_count.add(-1)])
        except TransactWriteError as exc:
            if condition_failed(exc):
                return None
            raise
        removed += 1
    return removed


def update(account_id: str, actor: str, sp_mchid: str, body: dict) -> Provider:
    """C3.4: change what the request carries, from the version the editor saw."""
    provider = _load(account_id, sp_mchid)
    versioning.check_version(provider, body.get("version"), "provider")
    changes = _apply(provider, body, actor, creating=False)
    if not changes:
        return provider
    provider.updated_at = now()
    versioning.save_versioned(provider, "provider")
    audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.updated", changes)
    return provider


def rotate_callback_secret(account_id: str, actor: str, sp_mchid: str) -> tuple[str, int]:
    """B5: a new callback signing secret, replacing any before it at once; (secret, set_at).
    Shown to the caller this once: only its KMS ciphertext is kept."""
    provider = _load(account_id, sp_mchid)
    value = CALLBACK_SECRET_PREFIX + token_urlsafe(32)
    set_at = now()
    stored = mapping(provider.secrets)
    stored[CALLBACK_SECRET] = {"ciphertext": secrets.encrypt(value, account_id=account_id,
                                                             record=f"provider#{sp_mchid}", field=CALLBACK_SECRET),
                               "set_at": set_at}
    provider.secrets = stored
    provider.updated_at = set_at
    versioning.save_versioned(provider, "provider")
    audit.record(account_id, actor, f"provider#{sp_mchid}", "provider.callback_secret_rotated",
                 {CALLBACK_SECRET: audit.SECRET_CHANGE})
    return value, set_at


def get(account_id: str, sp_mchid: str) -> Provider:
    return _load(account_id, sp_mchid)


def list_providers(account_id: str, limit: int, cursor: str | None) -> pagination.Page:
    start = pagination.decode_cursor(cursor, PROVIDERS_LIST)
    return pagination.page_of(Provider.query(account_id, limit=limit, last_evaluated_key=start), PROVIDERS_LIST)


def wechat_pay_configured(provider: Provider) -> bool:
    wechat, stored = mapping(provider.wechat), mapping(provider.secrets)
    has_platform_key = "platform_public_key_pem" in wechat or "platform_certificate_pem" in wechat
    return all(k in wechat for k in ("app_id", "serial_no")) and has_platform_key and all(
        f"wechat_pay.{name}" in stored for name in ("api_v3_key", "private_key_pem"))


def alipay_configured(provider: Provider) -> bool:
    alipay, stored = mapping(provider.alipay), mapping(provider.secrets)
    return all(k in alipay for k in ("app_id", "alipay_public_key")) and "alipay.private_key" in stored


def alipay_app(provider: Provider) -> alipay.AlipayApp:
    """The provider's Alipay ISV app with its private key decrypted, for the call that needs
    it now. A provider without Alipay answers 409 `alipay_not_configured` naming the first
    missing setting, before anything is sent to Alipay."""
    alipay_settings, stored = mapping(provider.alipay), mapping(provider.secrets)
    missing = [f"alipay.{name}" for name in ("app_id", "alipay_public_key") if name not in alipay_settings]
    missing += [] if "alipay.private_key" in stored else ["alipay.private_key"]
    if missing:
        raise Conflict(f"provider {provider.sp_mchid} has no Alipay {', '.join(missing)}: configure Alipay on the "
                       f"provider first (PATCH /v1/providers/{provider.sp_mchid})", param=missing[0],
                       code="alipay_not_configured")
    return alipay.AlipayApp(alipay_settings["app_id"], secret(provider, "alipay.private_key"),
                            alipay_settings["alipay_public_key"])


def wechat_pay_merchant(provider: Provider) -> wechatpay.WechatPayMerchant:
    """The provider's WeChat Pay credentials with its secrets decrypted, for the call at hand:
    payments (orders, notifications, sweeps) and the configuration check build it here, once."""
    wechat = mapping(provider.wechat)
    platform_keys = {}
    if "platform_public_key_pem" in wechat:
        platform_keys[wechat["platform_public_key_id"]] = wechat["platform_public_key_pem"]
    if "platform_certificate_pem" in wechat:
        platform_keys[wechat["platform_certificate_serial"]] = wechat["platform_certificate_pem"]
    return wechatpay.WechatPayMerchant(sp_mchid=provider.sp_mchid, serial_no=wechat["serial_no"],
                                       private_key_pem=secret(provider, "wechat_pay.private_key_pem"),
                                       api_v3_key=secret(provider, "wechat_pay.api_v3_key"),
                                       platform_keys=platform_keys)


def provider_view(provider: Provider) -> dict:
    stored = mapping(provider.secrets)

    def secret_state(field: str) -> dict:
        return {"set": field in stored, "set_at": stored.get(field, {}).get("set_at")}

    wechat, alipay = mapping(provider.wechat), mapping(provider.alipay)
    return {
        "object": "provider", "sp_mchid": provider.sp_mchid, "name": provider.name, "short_name": provider.short_name,
        "source": provider.source, "version": provider.version,
        **{name: getattr(provider, name) for name in ("logo_url", "ad_image_url", "ad_link_url", "callback_url",
                                                      "remark")},
        "pay_limit_fen": None if provider.pay_limit_fen is None else int(provider.pay_limit_fen),
        "result_slots": result_slots(provider),
        "maidan_assistant": {"bound": provider.maidan_assistant_bound_at is not None,
                             "bound_at": provider.maidan_assistant_bound_at},
        "claim": {"state": "lost" if provider.claim_lost_at is not None else "held",
                  "proven": proves_administration(provider), "lost_at": provider.claim_lost_at},
        "wechat_pay": {**{k: v for k, v in wechat.items() if k != "platform_certificate_pem"},
                       "configured": wechat_pay_configured(provider),
                       **{name: secret_state(f"wechat_pay.{name}") for name in WECHAT_SECRETS}},
        "alipay": {**alipay, "configured": alipay_configured(provider),
                   **{name: secret_state(f"alipay.{name}") for name in ALIPAY_SECRETS}},
        "callback_secret_set_at": stored.get(CALLBACK_SECRET, {}).get("set_at"),
        "created_at": provider.created_at, "updated_at": provider.updated_at,
    }


def secret(provider: Provider, field: str) -> str:
    """The plain value of one stored secret, for the call that needs it now."""
    stored = mapping(provider.secrets)
    if field not in stored:
        raise InvalidField(field, f"{field} is not set")
    return secrets.decrypt(stored[field]["ciphertext"], account_id=provider.account_id,
                           record=f"provider#{provider.sp_mchid}", field=field)
