"""U2: WeChat template messages from an official account (B4 clerk payment notifications).

https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html
"""
from __future__ import annotations

from typing import Mapping

import httpx

from chalicelib import settings
from chalicelib.upstream import wechat_token
from chalicelib.upstream.wechat_api import ERRORS as API_ERRORS
from chalicelib.upstream.wechat_api import WechatApiError, call_api


class RecipientNotSubscribed(WechatApiError):
    """The user does not follow the official account (43004): WeChat will not deliver until
    they follow it again; retrying cannot help."""


class InvalidRecipient(WechatApiError):
    """`touser` is not an openid of this official account (40003)."""


class InvalidTemplate(WechatApiError):
    """The template id is not one the official account has added (40037): configuration."""


class InvalidTemplateData(WechatApiError):
    """A keyword of the template is missing or its value is refused (47003)."""


ERRORS: Mapping[int, type[WechatApiError]] = {
    **API_ERRORS,
    43004: RecipientNotSubscribed, 40003: InvalidRecipient, 40037: InvalidTemplate, 47003: InvalidTemplateData,
}


def send_template(touser: str, template_id: str, data: Mapping[str, str], *, client_msg_id: str,
                  url: str | None = None, app: wechat_token.AppCredentials | None = None) -> int:
    """Send a template message; WeChat's msgid.

    `data` maps the template's keywords to their values. `client_msg_id` is required because
    a send is retried after a lost answer: WeChat sends one message per (touser,
    client_msg_id) within 10 minutes, so one id per message (e.g. order and clerk) means a
    retry never notifies anyone twice.
    """
    payload: dict = {"touser": touser, "template_id": template_id,
                     "data": {keyword: {"value": value} for keyword, value in data.items()}}
    if url:
        payload["url"] = url
    if not client_msg_id:
        raise ValueError("client_msg_id is required: one id per message makes retries safe")
    payload["client_msg_id"] = client_msg_id
    endpoint = f"{settings.current().wechat_api_base_url}/cgi-bin/message/template/send"

    def send(token: str) -> int:
        body = call_api(
            lambda: httpx.Request("POST", endpoint, params={"access_token": token}, json=payload), ERRORS)
        return int(body["msgid"])

    return wechat_token.call_with_token(send, app)
