"""Every page a phone sees speaks Chinese: no English word outside tags, attributes and ids.

The pages are reached as the phone reaches them (scan, sign in, confirm) where a flow leads
there, and rendered by their page function where only an upstream failure or a bad link
does. The console account shown on confirm pages gets a Chinese display name, so that
only our own words are checked.
"""
from __future__ import annotations

import html
import re

import pytest

from chalicelib import h5, h5_alipay_authorization
from chalicelib.upstream import alipay, maidan, wechat_api, wechatpay
from tests.drivers import Console

ENGLISH_WORD = re.compile(r"[A-Za-z]{3,}")
ALLOWED_WORDS: frozenset[str] = frozenset()
"""None needed: WeChat's products are named in Chinese (微信, 微信买单, 微信支付, 支付宝)."""


def visible_words(page: str) -> list[str]:
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.DOTALL | re.IGNORECASE)
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    text = re.sub(r"https?://\S+", " ", text)  # a code's URL, printed to copy, is not a word to read
    return [word for word in ENGLISH_WORD.findall(text) if word not in ALLOWED_WORDS]


def _flow_pages(console, phone) -> dict[str, str]:
    account = {"email": "owner@example.com", "password": "correct horse battery"}
    assert console.call("POST", "/v1/accounts", {**account, "display_name": "王老板"}).status == 201
    user = Console(console.client, console.call("POST", "/v1/sessions", account).json["token"])
    pages = {}
    binding = user.call("POST", "/v1/wechat-binding-codes").json
    for user_id in ("staff-01", "guest-01"):
        opened = phone(user_id).open(binding["url"])
        pages[opened.page_id] = opened.html
    admin = phone("admin-01")
    confirm = admin.open(binding["url"])
    pages[confirm.page_id] = confirm.html
    done = admin.confirm()
    pages[done.page_id] = done.html
    sync = user.call("POST", "/v1/provider-sync-codes").json
    confirm = admin.open(sync["url"])
    pages[confirm.page_id] = confirm.html
    done = admin.confirm()
    pages[done.page_id] = done.html
    stale = admin.open(sync["url"] + "/confirm", method="POST", form={"csrf": "x"})
    pages[stale.page_id] = stale.html
    unknown = admin.open(binding["url"].rsplit("/", 1)[0] + "/no-such-code")
    pages[unknown.page_id] = unknown.html
    return pages


def _rendered_pages() -> dict[str, str]:
    pages = {f"code-{reason}": h5.code_error_page(reason).body for reason in h5._CODE_ERRORS}
    pages.update({f"upstream-unavailable {module.SYSTEM}": h5.upstream_page(module.SYSTEM).body
                  for module in (alipay, maidan, wechat_api, wechatpay)})
    pages["oauth-bad-state"] = h5.oauth_callback({}, None).body
    pages.update({f"alipay {reason}": h5_alipay_authorization._page(status, reason, title, message, "err", None).body
                  for reason, (status, title, message) in h5_alipay_authorization._REFUSAL_PAGES.items()})
    return pages


def test_every_phone_page_has_no_english_words(console, phone):
    pages = {**_flow_pages(console, phone), **_rendered_pages()}

    assert {"binding-confirm", "binding-done", "provider-sync-confirm", "provider-sync-done", "not-maidan-admin",
            "maidan-assistant-not-opened", "confirm-stale", "code-unknown"} <= set(pages)
    assert {name: visible_words(page) for name, page in pages.items() if visible_words(page)} == {}


def test_the_internal_error_page_has_no_english_words(client):
    from app import _h5

    def broken():
        raise RuntimeError("boom")

    page = _h5(broken)

    assert page.status_code == 500 and visible_words(page.body) == []


@pytest.mark.parametrize("page, words", [
    ('<p class="mute" data-x="abc">服务暂时不可用</p>', []),
    ("<title>WeChat API 暂时没有响应</title>", ["WeChat", "API"]),
    ("<p>已绑定 &amp; ok</p>", []),
    ("<p>&lt;b&gt;</p>", []),
])
def test_the_check_sees_text_but_not_tags_or_attributes(page, words):
    assert visible_words(page) == words
