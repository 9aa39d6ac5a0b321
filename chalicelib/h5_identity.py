"""Who is holding the phone: a WeChat identity from OAuth, kept in a signed, expiring cookie.

Also the OAuth nonce: a random value in a short-lived cookie on the phone that starts the
sign-in, whose hash the OAuth state carries. The callback sets the identity cookie only on the
phone that holds the nonce, so a callback URL made on another phone (an attacker's own code
with a genuine state) cannot sign anyone in as the attacker (login CSRF).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie

from chalicelib import settings, signed_tokens

COOKIE_NAME = "cp_wx"
OAUTH_NONCE_COOKIE = "cp_oauth"
OAUTH_NONCE_PATH = "/h5/oauth"
"""Only the OAuth callbacks under this path ever see the nonce."""
_PURPOSE = "h5-wechat-identity"


@dataclass(frozen=True)
class WechatIdentity:
    app_id: str
    openid: str
    unionid: str | None
    nickname: str | None = None
    """Only after a snsapi_userinfo sign-in (the WeChat binding asks for it); display-only."""


def _secure() -> str:
    return "; Secure" if settings.current().cookies_secure else ""


def cookie_header(identity: WechatIdentity) -> str:
    config = settings.current()
    token = signed_tokens.sign(_PURPOSE, {"app": identity.app_id, "oid": identity.openid,
                                          "uid": identity.unionid, "nick": identity.nickname},
                               config.h5_identity_ttl_seconds)
    return (f"{COOKIE_NAME}={token}; Path=/h5; Max-Age={config.h5_identity_ttl_seconds}; "
            f"HttpOnly; SameSite=Lax{_secure()}")


def _cookie_value(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is simply no cookie
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _signed_cookie(header: str | None, name: str, purpose: str) -> dict | None:
    """What the cookie `name` carries, if it is one of ours for `purpose` and not expired."""
    value = _cookie_value(header, name)
    if value is None:
        return None
    try:
        return signed_tokens.verify(purpose, value)
    except signed_tokens.BadToken:
        return None


def from_cookie_header(header: str | None, app_id: str) -> WechatIdentity | None:
    """The identity in the request's cookie for `app_id`, or None (absent, forged, expired)."""
    data = _signed_cookie(header, COOKIE_NAME, _PURPOSE)
    if data is None or data.get("app") != app_id:
        return None
    return WechatIdentity(app_id=data["app"], openid=data["oid"], unionid=data.get("uid"), nickname=data.get("nick"))


def new_oauth_nonce() -> str:
    return secrets.token_urlsafe(32)


def oauth_nonce_hash(nonce: str) -> str:
    """What the state carries: the state travels through WeChat and URLs, the nonce never does."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def oauth_nonce_cookie_header(nonce: str, ttl_seconds: int) -> str:
    """SameSite=Lax still comes along on WeChat's top-level redirect back to the callback."""
    return (f"{OAUTH_NONCE_COOKIE}={nonce}; Path={OAUTH_NONCE_PATH}; Max-Age={ttl_seconds}; "
            f"HttpOnly; SameSite=Lax{_secure()}")


def clear_oauth_nonce_cookie_header() -> str:
    return f"{OAUTH_NONCE_COOKIE}=; Path={OAUTH_NONCE_PATH}; Max-Age=0; HttpOnly; SameSite=Lax{_secure()}"


def oauth_nonce_from_cookie_header(header: str | None) -> str | None:
    return _cookie_value(header, OAUTH_NONCE_COOKIE) or None


PAYER_COOKIE_NAME = "cp_payer"
_PAYER_PURPOSE = "h5-payer"


@dataclass(frozen=True)
class PayerIdentity:
    """Who pays on the pay page: the id a wallet's OAuth gave for one app (a WeChat
    `sp_openid` of the provider's official account, or an Alipay buyer id of the provider's
    app). Kept apart from `cp_wx`, whose openid belongs to the platform's account."""

    wallet: str
    app_id: str
    payer_id: str


def payer_cookie_header(payer: PayerIdentity) -> str:
    config = settings.current()
    token = signed_tokens.sign(_PAYER_PURPOSE, {"w": payer.wallet, "app": payer.app_id, "pid": payer.payer_id},
                               config.h5_identity_ttl_seconds)
    return (f"{PAYER_COOKIE_NAME}={token}; Path=/h5; Max-Age={config.h5_identity_ttl_seconds}; "
            f"HttpOnly; SameSite=Lax{_secure()}")


def payer_from_cookie_header(header: str | None, wallet: str, app_id: str) -> PayerIdentity | None:
    """The payer in the request's cookie for this wallet and app, or None (absent, forged,
    expired, or issued for another provider's app)."""
    data = _signed_cookie(header, PAYER_COOKIE_NAME, _PAYER_PURPOSE)
    if data is None or data.get("w") != wallet or data.get("app") != app_id or not data.get("pid"):
        return None
    return PayerIdentity(wallet=wallet, app_id=app_id, payer_id=data["pid"])
