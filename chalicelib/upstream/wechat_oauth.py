"""U1: WeChat OAuth for web pages (snsapi_base): authorize URL and code → openid exchange.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from chalicelib import settings
from chalicelib.upstream.wechat_api import WechatApiError, call_api


@dataclass(frozen=True)
class OAuthIdentity:
    app_id: str
    openid: str
    unionid: str | None


def authorize_url(app_id: str, redirect_uri: str, state: str) -> str:
    query = urlencode({"appid": app_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "snsapi_base", "state": state})
    return f"{settings.current().wechat_open_base_url}/connect/oauth2/authorize?{query}#wechat_redirect"


def exchange_code(app_id: str, app_secret: str, code: str) -> OAuthIdentity:
    """A code works once, so a lost answer is not retried (the retry would only hear 40163)."""
    url = f"{settings.current().wechat_api_base_url}/sns/oauth2/access_token"
    params = {"appid": app_id, "secret": app_secret, "code": code, "grant_type": "authorization_code"}
    body = call_api(lambda: httpx.Request("GET", url, params=params), idempotent=False)
    if body.get("is_snapshotuser") == 1:
        raise WechatApiError(0, "a snapshot (virtual) user opened the page in the moments preview; "
                                "it has no real openid")
    return OAuthIdentity(app_id=app_id, openid=body["openid"], unionid=body.get("unionid"))
