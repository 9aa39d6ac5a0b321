"""Who is holding the phone: a WeChat identity from OAuth, kept in a signed, expiring cookie."""
from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie

from chalicelib import settings, signed_tokens

COOKIE_NAME = "cp_wx"
_PURPOSE = "h5-wechat-identity"


@dataclass(frozen=True)
class WechatIdentity:
    app_id: str
    openid: str
    unionid: str | None


def cookie_header(identity: WechatIdentity) -> str:
    config = settings.current()
    token = signed_tokens.sign(_PURPOSE, {"app": identity.app_id, "oid": identity.openid,
                                          "uid": identity.unionid}, config.h5_identity_ttl_seconds)
    secure = "; Secure" if config.cookies_secure else ""
    return (f"{COOKIE_NAME}={token}; Path=/h5; Max-Age={config.h5_identity_ttl_seconds}; "
            f"HttpOnly; SameSite=Lax{secure}")


def from_cookie_header(header: str | None, app_id: str) -> WechatIdentity | None:
    """The identity in the request's cookie for `app_id`, or None (absent, forged, expired)."""
    if not header:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed Cookie header is simply no identity
        return None
    morsel = jar.get(COOKIE_NAME)
    if morsel is None:
        return None
    try:
        data = signed_tokens.verify(_PURPOSE, morsel.value)
    except signed_tokens.BadToken:
        return None
    if data.get("app") != app_id:
        return None
    return WechatIdentity(app_id=data["app"], openid=data["oid"], unionid=data.get("uid"))
