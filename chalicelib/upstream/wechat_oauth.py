"""U1: WeChat OAuth for web pages (snsapi_base): authorize URL and code → openid exchange.

https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from chalicelib import settings
from chalicelib.upstream import http

SYSTEM = "WeChat OAuth"


class WechatApiError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


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
    url = f"{settings.current().wechat_api_base_url}/sns/oauth2/access_token"
    params = {"appid": app_id, "secret": app_secret, "code": code, "grant_type": "authorization_code"}
    response = http.send(SYSTEM, lambda: httpx.Request("GET", url, params=params))
    body = response.json()
    if body.get("errcode"):
        raise WechatApiError(int(body["errcode"]), str(body.get("errmsg", "")))
    return OAuthIdentity(app_id=app_id, openid=body["openid"], unionid=body.get("unionid"))
