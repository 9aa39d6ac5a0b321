"""C5.5: a sub-merchant authorizes its provider's Alipay ISV app (第三方应用授权).

The console asks for a link (and its QR image) to Alipay's app-to-app authorization page.
The merchant opens it in Alipay and approves; Alipay sends the browser back to our H5
callback with a one-time `app_auth_code` and the `state` we signed (account + merchant,
expiring). The code is exchanged through the provider's ISV app for the merchant's
`app_auth_token` and `app_refresh_token`, which are stored KMS-encrypted on the sub-merchant
(the encryption context names the record and the field) and never returned or logged.

A scheduled sweep refreshes tokens before they expire; it finds them through a sparse index
(`alipay-refresh-due`), never a scan. The Alipay user id is cleared together with the
tokens, never edited: an authorization by another Alipay account is refused until the
provider clears the first one. Payments ask `payment_credentials` for a usable token.
"""
from __future__ import annotations

import base64
import zlib
from dataclasses import dataclass, field
from typing import Callable

from pynamodb.exceptions import DoesNotExist

from chalicelib import audit, providers, qr, secrets, settings, signed_tokens, versioning
from chalicelib.errors import ApiError, Conflict, NotFound
from chalicelib.log import logger
from chalicelib.models.base import now
from chalicelib.models.sub_merchants import AlipayAuthorization, AlipayRefreshFailure, SubMerchant
from chalicelib.upstream import alipay, http

CALLBACK_PATH = "/h5/alipay/app-auth"
STATE_PURPOSE = "alipay-app-auth"
DAY = 86400
LINK_TTL_SECONDS = DAY
"""A link is usually sent to the merchant, who may authorize later that day; a fresh one is
one click away in the console."""
REFRESH_WINDOW_SECONDS = 30 * DAY
"""Tokens are refreshed from 30 days before they expire: an hourly sweep then has hundreds of
tries before a merchant's payments stop (see docs/decisions.md)."""
RETRY_AFTER_SECONDS = 6 * 3600
"""A refresh that failed for a reason that may pass (Alipay down, provider settings being
fixed) is tried again after this."""
REFRESH_SHARDS = 4
"""Partitions of the refresh index. A constant, not a setting: changing it would strand the
merchants written under the old count."""
STOP_WITH_MS_LEFT = 20_000
"""The sweep starts no refresh with less time than this left in its Lambda: what is left
stays due for the next run. One refresh is one Alipay call (no retry) and two KMS calls."""
SAVE_ATTEMPTS = 5

AUTHORIZED, NOT_AUTHORIZED, EXPIRED, REFRESH_FAILED = "authorized", "not_authorized", "expired", "refresh_failed"
NOT_EDITABLE = ("alipay", "alipay_authorization", "alipay_user_id", "alipay_auth_app_id", "app_auth_token",
                "app_refresh_token")
"""Request fields a sub-merchant edit refuses: the authorization comes only from Alipay."""
HOW_TO_CHANGE = ("the Alipay authorization is never edited: clear it with DELETE "
                 "/v1/sub-merchants/{merchant_id}/alipay-authorization, then the merchant authorizes again")


def _record(merchant: SubMerchant) -> str:
    return f"sub_merchant#{merchant.merchant_id}"


def _encrypt(merchant: SubMerchant, name: str, plaintext: str) -> str:
    return secrets.encrypt(plaintext, account_id=merchant.account_id, record=_record(merchant), field=f"alipay.{name}")


def _decrypt(merchant: SubMerchant, name: str, ciphertext: str) -> str:
    return secrets.decrypt(ciphertext, account_id=merchant.account_id, record=_record(merchant),
                           field=f"alipay.{name}")


def _find(account_id: str, merchant_id: str) -> SubMerchant | None:
    try:
        return SubMerchant.get(account_id, merchant_id, consistent_read=True)
    except DoesNotExist:
        return None


def _own(account_id: str, merchant_id: str) -> SubMerchant:
    """The account's own sub-merchant; a foreign or unknown id answers the same not-found."""
    merchant = _find(account_id, merchant_id)
    if merchant is None:
        raise NotFound("no such sub-merchant", param="merchant_id")
    return merchant


def _provider_app(merchant: SubMerchant) -> alipay.AlipayApp:
    return providers.alipay_app(providers.get(merchant.account_id, merchant.sp_mchid))


def masked(user_id: str) -> str:
    """2088123456781234 → 2088********1234: enough to recognise one's own account."""
    return f"{user_id[:4]}{'*' * max(len(user_id) - 8, 0)}{user_id[-4:]}" if len(user_id) > 8 else "****"


# --- status --------------------------------------------------------------------------------


def status(merchant: SubMerchant) -> str:
    """What the console shows. A token past `expires_at` is expired even if Alipay might still
    take it: payments refuse it (`payment_credentials`), so the console says so too."""
    authorization = merchant.alipay
    if authorization is None:
        return NOT_AUTHORIZED
    if authorization.expires_at <= now():
        return EXPIRED
    return REFRESH_FAILED if authorization.refresh_failure is not None else AUTHORIZED


def view(merchant: SubMerchant) -> dict:
    """The authorization as the sub-merchant detail shows it: never the tokens."""
    authorization = merchant.alipay
    if authorization is None:
        return {"status": NOT_AUTHORIZED, "user_id": None, "auth_app_id": None, "app_id": None,
                "authorized_at": None, "expires_at": None, "refresh_expires_at": None, "refreshed_at": None,
                "next_refresh_at": None, "refresh_failure": None}
    failure = authorization.refresh_failure
    return {"status": status(merchant), "user_id": authorization.user_id, "auth_app_id": authorization.auth_app_id,
            "app_id": authorization.isv_app_id, "authorized_at": authorization.authorized_at,
            "expires_at": authorization.expires_at, "refresh_expires_at": authorization.re_expires_at,
            "refreshed_at": authorization.refreshed_at, "next_refresh_at": merchant.alipay_refresh_due_at,
            "refresh_failure": None if failure is None else {"reason": failure.reason, "code": failure.code,
                                                             "at": failure.at, "will_retry": failure.will_retry}}


def authorization_view(merchant: SubMerchant) -> dict:
    return {"object": "alipay_authorization", "merchant_id": merchant.merchant_id, **view(merchant)}


# --- the link ------------------------------------------------------------------------------


def callback_url() -> str:
    return settings.current().public_base_url + CALLBACK_PATH


def authorization_link(account_id: str, merchant_id: str) -> dict:
    """The Alipay authorization URL for one of the account's sub-merchants, and its QR image
    (scanned with the Alipay app). The provider must have its Alipay app configured."""
    merchant = _own(account_id, merchant_id)
    app = _provider_app(merchant)
    at = now()
    state = signed_tokens.sign(STATE_PURPOSE, {"a": account_id, "m": merchant_id}, ttl_seconds=LINK_TTL_SECONDS)
    url = alipay.app_authorization_url(app.app_id, callback_url(), state)
    return {"object": "alipay_authorization_link", "merchant_id": merchant_id, "app_id": app.app_id, "url": url,
            "redirect_uri": callback_url(), "expires_at": at + LINK_TTL_SECONDS,
            "qr_code": {"png": "data:image/png;base64," + base64.b64encode(qr.png(url)).decode()},
            "authorization": view(merchant)}


# --- the callback --------------------------------------------------------------------------


class AuthorizationRefused(Exception):
    """The callback cannot store an authorization; `reason` picks the page the merchant sees."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _refresh_due_at(authorization: AlipayAuthorization, at: int) -> int:
    """30 days before expiry, but never before half the token's life: a short-lived token (a
    test, a sandbox) is then not refreshed on every sweep."""
    return max(authorization.expires_at - REFRESH_WINDOW_SECONDS, at + (authorization.expires_at - at) // 2)


def _shard(merchant: SubMerchant) -> str:
    return f"alipay#{zlib.crc32(merchant.merchant_id.encode()) % REFRESH_SHARDS}"


def _install(merchant: SubMerchant, authorization: AlipayAuthorization, at: int) -> None:
    merchant.alipay = authorization
    merchant.alipay_refresh_shard = _shard(merchant)
    merchant.alipay_refresh_due_at = _refresh_due_at(authorization, at)
    merchant.updated_at = at


def _store(merchant: SubMerchant, app: alipay.AlipayApp, granted: alipay.AppAuthorization) -> SubMerchant:
    """Save the new authorization from the merchant's current version; a concurrent edit of
    the merchant only makes it reload and apply again (the code is spent: the tokens must
    not be lost to an unrelated edit)."""
    at = now()
    app_auth_token = _encrypt(merchant, "app_auth_token", granted.app_auth_token)
    app_refresh_token = _encrypt(merchant, "app_refresh_token", granted.app_refresh_token)
    for _ in range(SAVE_ATTEMPTS):
        previous = merchant.alipay
        if previous is not None and previous.user_id != granted.user_id:
            raise AuthorizationRefused("other_user", masked(previous.user_id))
        _install(merchant, AlipayAuthorization(
            user_id=granted.user_id, auth_app_id=granted.auth_app_id, isv_app_id=app.app_id,
            app_auth_token=app_auth_token, app_refresh_token=app_refresh_token, expires_at=at + granted.expires_in,
            re_expires_at=at + granted.re_expires_in, authorized_at=at), at)
        try:
            versioning.save_versioned(merchant, "sub-merchant")
        except Conflict:
            merchant = _find(merchant.account_id, merchant.merchant_id)
            if merchant is None:
                raise AuthorizationRefused("merchant_gone") from None
            continue
        audit.record(merchant.account_id, f"alipay:{granted.user_id}", _record(merchant),
                     "sub_merchant.alipay_authorized",
                     {"alipay.user_id": {"from": previous.user_id if previous else None, "to": granted.user_id},
                      "alipay.app_auth_token": audit.SECRET_CHANGE, "alipay.app_refresh_token": audit.SECRET_CHANGE})
        return merchant
    logger.error("alipay authorization could not be saved", extra={"merchant_id": merchant.merchant_id})
    raise AuthorizationRefused("busy")


def complete_authorization(query: dict) -> SubMerchant:
    """The callback's work: check the state, exchange the code, store the tokens."""
    try:
        claims = signed_tokens.verify(STATE_PURPOSE, query.get("state") or "")
    except signed_tokens.TokenExpired:
        raise AuthorizationRefused("state_expired") from None
    except signed_tokens.BadToken:
        raise AuthorizationRefused("state_invalid") from None
    merchant = _find(claims["a"], claims["m"])
    if merchant is None:
        raise AuthorizationRefused("merchant_gone")
    code = query.get("app_auth_code")
    if not code:
        raise AuthorizationRefused("code_missing")
    try:
        app = _provider_app(merchant)
    except ApiError:
        raise AuthorizationRefused("not_configured") from None
    if query.get("app_id") and query["app_id"] != app.app_id:
        raise AuthorizationRefused("app_mismatch")
    try:
        granted = alipay.exchange_app_auth_code(app, code)
    except alipay.AuthCodeInvalid:
        raise AuthorizationRefused("code_used") from None
    except http.UpstreamUnavailable:
        raise AuthorizationRefused("alipay_unavailable") from None
    except alipay.AlipayError as exc:
        raise AuthorizationRefused("alipay_refused", exc.sub_code or exc.code) from None
    except alipay.AlipaySignatureError:
        raise AuthorizationRefused("alipay_refused", "signature") from None
    return _store(merchant, app, granted)


# --- clear ---------------------------------------------------------------------------------


def clear(account_id: str, actor: str, merchant_id: str) -> SubMerchant:
    """Forget the Alipay user id and the tokens; the merchant can then authorize again, with
    any Alipay account. Clearing nothing changes nothing."""
    for _ in range(SAVE_ATTEMPTS):
        merchant = _own(account_id, merchant_id)
        previous = merchant.alipay
        if previous is None:
            return merchant
        merchant.alipay = merchant.alipay_refresh_shard = merchant.alipay_refresh_due_at = None
        merchant.updated_at = now()
        try:
            versioning.save_versioned(merchant, "sub-merchant")
        except Conflict:
            continue
        audit.record(account_id, actor, _record(merchant), "sub_merchant.alipay_authorization_cleared",
                     {"alipay.user_id": {"from": previous.user_id, "to": None},
                      "alipay.app_auth_token": audit.SECRET_CHANGE, "alipay.app_refresh_token": audit.SECRET_CHANGE})
        return merchant
    raise Conflict("the sub-merchant kept changing; try again", param="merchant_id", code="version_conflict")


# --- for payments --------------------------------------------------------------------------


@dataclass(frozen=True)
class MerchantAlipay:
    """What an Alipay call for a merchant needs: the provider's app and the merchant's token."""

    app: alipay.AlipayApp
    app_auth_token: str = field(repr=False)
    user_id: str
    auth_app_id: str


def check_usable(merchant: SubMerchant, app_id: str | None, at: int | None = None) -> None:
    """Whether the merchant's authorization can pay (through the provider's app `app_id`,
    when given), decided on the records alone (nothing decrypted): `alipay_not_authorized` (never
    authorized, cleared, or authorized for an app the provider no longer uses) or
    `alipay_authorization_expired`."""
    authorization = merchant.alipay
    if authorization is None:
        raise Conflict("this sub-merchant has not authorized the provider's Alipay app: send it the link of "
                       f"POST /v1/sub-merchants/{merchant.merchant_id}/alipay-authorization-links",
                       param="alipay_authorization", code="alipay_not_authorized")
    if authorization.expires_at <= (at or now()):
        raise Conflict(f"this sub-merchant's Alipay authorization expired at {authorization.expires_at} and was not "
                       "refreshed: the merchant authorizes again with a new link", param="alipay_authorization",
                       code="alipay_authorization_expired")
    if app_id is not None and app_id != authorization.isv_app_id:
        raise Conflict(f"this sub-merchant authorized Alipay app {authorization.isv_app_id}, but the provider now uses "
                       f"{app_id}: the merchant authorizes again with a new link", param="alipay_authorization",
                       code="alipay_not_authorized")


def payment_credentials(merchant: SubMerchant, at: int | None = None, provider=None) -> MerchantAlipay:
    """A usable app_auth_token with the app it belongs to (`provider`: the merchant's, when the
    caller already read it), or `check_usable`'s error before anything is sent to Alipay."""
    check_usable(merchant, None, at)  # never authorized or expired: said before the provider's setup
    app = providers.alipay_app(provider) if provider is not None else _provider_app(merchant)
    check_usable(merchant, app.app_id, at)
    authorization = merchant.alipay
    return MerchantAlipay(app, _decrypt(merchant, "app_auth_token", authorization.app_auth_token),
                          authorization.user_id, authorization.auth_app_id)


# --- refresh -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefreshSweep:
    examined: int
    refreshed: int
    failed: int
    stopped_early: bool
    """Out of time: the rest stays in the index, due, for the next run."""


class _RefreshFailed(Exception):
    def __init__(self, code: str, reason: str, will_retry: bool) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.will_retry = will_retry


def _refreshed_tokens(merchant: SubMerchant) -> alipay.AppAuthorization:
    """One refresh at Alipay, its failures sorted into "try again later" and "authorize again"."""
    authorization = merchant.alipay
    try:
        app = _provider_app(merchant)
    except ApiError as exc:
        raise _RefreshFailed(exc.code, exc.message, will_retry=True) from None
    if app.app_id != authorization.isv_app_id:
        raise _RefreshFailed("alipay_app_changed", f"the provider's Alipay app is now {app.app_id}, not "
                             f"{authorization.isv_app_id}: the merchant authorizes again", will_retry=False)
    refresh_token = _decrypt(merchant, "app_refresh_token", authorization.app_refresh_token)
    try:
        return alipay.refresh_app_auth_token(app, refresh_token)
    except alipay.RefreshTokenInvalid as exc:
        raise _RefreshFailed(exc.sub_code, "Alipay refused the refresh token (expired, already used, or the "
                             "authorization was cancelled): the merchant authorizes again", will_retry=False) from None
    except http.UpstreamUnavailable as exc:
        raise _RefreshFailed("alipay_unavailable", str(exc), will_retry=True) from None
    except alipay.AlipayError as exc:
        raise _RefreshFailed(exc.sub_code or exc.code, str(exc), will_retry=True) from None
    except alipay.AlipaySignatureError as exc:
        raise _RefreshFailed("alipay_signature", str(exc), will_retry=True) from None


def _save_outcome(merchant: SubMerchant, apply: Callable[[SubMerchant], None]) -> bool:
    """Apply a refresh outcome from the merchant's current version, as long as it still holds
    the authorization that was refreshed (a re-authorization or a clear in between wins)."""
    refreshed_from = merchant.alipay.app_refresh_token
    for _ in range(SAVE_ATTEMPTS):
        apply(merchant)
        try:
            versioning.save_versioned(merchant, "sub-merchant")
            return True
        except Conflict:
            merchant = _find(merchant.account_id, merchant.merchant_id)
            if merchant is None or merchant.alipay is None or merchant.alipay.app_refresh_token != refreshed_from:
                return False
    logger.error("alipay refresh outcome could not be saved", extra={"merchant_id": merchant.merchant_id})
    return False


def _record_failure(failure: _RefreshFailed, at: int) -> Callable[[SubMerchant], None]:
    """A failure that may pass is tried again later; one that will not leaves the index (the
    token still works until it expires; then the merchant must authorize again)."""
    def apply(merchant: SubMerchant) -> None:
        merchant.alipay.refresh_failure = AlipayRefreshFailure(reason=alipay.redact(failure.reason)[:500],
                                                               code=failure.code, at=at, will_retry=failure.will_retry)
        if failure.will_retry:
            merchant.alipay_refresh_due_at = at + RETRY_AFTER_SECONDS
        else:
            merchant.alipay_refresh_shard = merchant.alipay_refresh_due_at = None
    return apply


def _install_refreshed(granted: alipay.AppAuthorization, app_auth_token: str, app_refresh_token: str,
                       at: int) -> Callable[[SubMerchant], None]:
    def apply(merchant: SubMerchant) -> None:
        previous = merchant.alipay
        _install(merchant, AlipayAuthorization(
            user_id=previous.user_id, auth_app_id=granted.auth_app_id or previous.auth_app_id,
            isv_app_id=previous.isv_app_id, app_auth_token=app_auth_token, app_refresh_token=app_refresh_token,
            expires_at=at + granted.expires_in, re_expires_at=at + granted.re_expires_in,
            authorized_at=previous.authorized_at, refreshed_at=at), at)
    return apply


def _refresh_one(account_id: str, merchant_id: str, at: int) -> str | None:
    """refreshed, failed, or None when the index entry no longer holds (read from the table)."""
    merchant = _find(account_id, merchant_id)
    if merchant is None or merchant.alipay is None or merchant.alipay_refresh_due_at is None \
            or merchant.alipay_refresh_due_at > at:
        return None
    try:
        granted = _refreshed_tokens(merchant)
    except _RefreshFailed as failure:
        logger.warning("alipay token refresh failed", extra={"merchant_id": merchant_id, "code": failure.code,
                                                             "will_retry": failure.will_retry})
        _save_outcome(merchant, _record_failure(failure, at))
        return "failed"
    install = _install_refreshed(granted, _encrypt(merchant, "app_auth_token", granted.app_auth_token),
                                 _encrypt(merchant, "app_refresh_token", granted.app_refresh_token), at)
    return "refreshed" if _save_outcome(merchant, install) else None


def refresh_due(at: int | None = None, time_left_ms: Callable[[], int] | None = None) -> RefreshSweep:
    """The scheduled refresh: every authorization whose refresh is due, shard by shard, by
    index. A failure is recorded on its merchant and never stops the sweep."""
    at = at or now()
    examined = refreshed = failed = 0
    for shard in range(REFRESH_SHARDS):
        for key in SubMerchant.alipay_refresh_due.query(f"alipay#{shard}", SubMerchant.alipay_refresh_due_at <= at):
            if time_left_ms is not None and time_left_ms() < STOP_WITH_MS_LEFT:
                return RefreshSweep(examined, refreshed, failed, stopped_early=True)
            examined += 1
            try:
                outcome = _refresh_one(key.account_id, key.merchant_id, at)
            except Exception:  # KMS or DynamoDB failing for one merchant must not stop the others' refreshes
                logger.exception("alipay token refresh broke", extra={"merchant_id": key.merchant_id})
                outcome = "failed"
            refreshed += outcome == "refreshed"
            failed += outcome == "failed"
    return RefreshSweep(examined, refreshed, failed, stopped_early=False)
