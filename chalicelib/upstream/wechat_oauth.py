"""U1: WeChat OAuth for web pages: authorize URL, code → openid exchange, and the user's
nickname (snsapi_userinfo only).

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from chalicelib import settings
from chalicelib.upstream.wechat_api import WechatApiError, call_api

BASE = "snsapi_base"
"""Silent: the openid (and unionid) only. Every page but the WeChat binding uses it."""
USERINFO = "snsapi_userinfo"
"""Asks the user once (a consent page in WeChat) and lets /sns/userinfo answer the profile."""
SCOPES = (BASE, USERINFO)


@dataclass(frozen=True)
class OAuthIdentity:
    app_id: str
    openid: str
    unionid: str | None
    nickname: str | None = None
    """Display-only (WeChat answers "微信用户" for users who share no profile); None under
    snsapi_base, "" when a snsapi_userinfo profile came without one."""


def authorize_url(app_id: str, redirect_uri: str, state: str, scope: str = BASE) -> str:
    if scope not in SCOPES:
        raise ValueError(f"unknown OAuth scope {scope!r}")
    query = urlencode({"appid": app_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": scope, "state": state})
    return f"{settings.current().wechat_open_base_url}/connect/oauth2/authorize?{query}#wechat_redirect"


def exchange_code(app_id: str, app_secret: str, code: str) -> OAuthIdentity:
    """A code works once, so a lost answer is not retried (the retry would only hear 40163).

    When the code came from a snsapi_userinfo authorization, the user's nickname is read with
    the user access token the exchange answered; the token itself is used once and dropped."""
    url = f"{settings.current().wechat_api_base_url}/sns/oauth2/access_token"
    params = {"appid": app_id, "secret": app_secret, "code": code, "grant_type": "authorization_code"}
    body = call_api(lambda: httpx.Request("GET", url, params=params), idempotent=False)
    if body.get("is_snapshotuser") == 1:
        raise WechatApiError(0, "a snapshot (virtual) user opened the page in the moments preview; "
                                "it has no real openid")
    nickname = None
    if USERINFO in str(body.get("scope", "")).split(","):
        nickname = str(user_info(body["access_token"], body["openid"]).get("nickname") or "")
    return OAuthIdentity(app_id=app_id, openid=body["openid"], unionid=body.get("unionid"), nickname=nickname)


def user_info(access_token: str, openid: str) -> dict:
    """GET /sns/userinfo with a user access token of snsapi_userinfo scope (48001 otherwise).

    A read, so retried on the shared budget; the token travels only in the query string,
    which the log filter redacts."""
    url = f"{settings.current().wechat_api_base_url}/sns/userinfo"
    params = {"access_token": access_token, "openid": openid, "lang": "zh_CN"}
    return call_api(lambda: httpx.Request("GET", url, params=params))
