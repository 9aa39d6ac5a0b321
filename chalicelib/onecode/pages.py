"""What every one-code H5 page shares: who is on the phone, which role it holds here, the
form token, rendering and the error pages.

A page function takes the phone's cookie (and the form for a POST) and returns a
`PageResponse`. No identity: off to WeChat OAuth and back. No role here: the same
"not found" page as an unknown id. A POST carries a token signed for this WeChat and this
page, so another site cannot make a clerk's phone clock out (CSRF); a POST that succeeds
redirects (303) to a page, so a reload never repeats it.
"""
from __future__ import annotations

import re
from urllib.parse import quote

from chalicelib import pagination, signed_tokens
from chalicelib.errors import ApiError, Conflict, InvalidField, NotFound
from chalicelib.h5 import PageResponse, _identity, _login, _page
from chalicelib.h5_identity import WechatIdentity
from chalicelib.onecode.access import ROLE_NAMES, NoRoleHere, RoleTooLow
from chalicelib.web import render

FORM_PURPOSE = "h5-onecode-form"
FORM_TOKEN_TTL_SECONDS = 24 * 3600
"""A day: a clerk opens the store page at the start of a shift and taps 下班打卡 at its end."""
NOTICE_PURPOSE = "h5-onecode-notice"
NOTICE_TTL_SECONDS = 600
HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}


def identity_or_login(cookie: str | None, return_path: str) -> tuple[WechatIdentity | None, PageResponse | None]:
    """The phone's WeChat identity, or the redirect through OAuth that comes back to `return_path`."""
    identity = _identity(cookie)
    if identity is None:
        return None, _login(return_path)
    pagination.read_as(f"wechat:{identity.openid}")
    return identity, None


def form_token(openid: str, scope: str) -> str:
    """The hidden `csrf` field of every form on the page `scope` (a path) for this WeChat."""
    return signed_tokens.sign(FORM_PURPOSE, {"o": openid, "s": scope}, ttl_seconds=FORM_TOKEN_TTL_SECONDS)


def form_is_genuine(openid: str, scope: str, form: dict) -> bool:
    try:
        token = signed_tokens.verify(FORM_PURPOSE, form.get("csrf", ""))
    except signed_tokens.BadToken:
        return False
    return token.get("o") == openid and token.get("s") == scope


def html(template: str, status: int = 200, **context) -> PageResponse:
    return PageResponse(status, render(template, **context), dict(HTML))


def see_other(path: str, notice: str | None = None) -> PageResponse:
    """After a successful POST: back to a page (with a one-line notice), never a re-POST.
    The notice travels signed: a link someone else made cannot put its own words on our
    page ("加客服微信转账验证") in the green line of a notice."""
    if notice:
        token = signed_tokens.sign(NOTICE_PURPOSE, {"t": notice}, ttl_seconds=NOTICE_TTL_SECONDS)
        path += f"{'&' if '?' in path else '?'}notice={quote(token)}"
    return PageResponse(303, "", {"Location": path, "Cache-Control": "no-store"})


def notice_from(query: dict | None) -> str | None:
    """The notice a redirect of ours carries; anything else in `?notice=` is ignored."""
    try:
        return str(signed_tokens.verify(NOTICE_PURPOSE, (query or {}).get("notice") or "")["t"])
    except (signed_tokens.BadToken, KeyError):
        return None


def no_role_page() -> PageResponse:
    return _page(404, "no-role-here", "没有找到", "您在这里没有管理身份，或者它已被移除。如需使用，请联系商户管理员或店长重新邀请您。")


def role_too_low_page(exc: RoleTooLow) -> PageResponse:
    return _page(403, "role-required", "没有权限", f"这个操作需要{ROLE_NAMES.get(exc.needed, '更高的')}身份。")


def stale_form_page() -> PageResponse:
    return _page(403, "form-stale", "页面已过期", "页面已过期或不是由您打开的，请返回重新打开页面后再操作。")


CONFLICT_TEXTS = {
    "last_admin": "不能移除最后一位商户管理员。请先添加并激活另一位管理员。",
    "last_refund_admin": "至少要保留一位有退款权限的商户管理员。",
    "device_exists": "门店中已有相同编号的设备。",
    "version_conflict": "数据刚刚被其他人修改过，请返回刷新后重试。",
}


_FIELD_TEXTS = {"cursor": "翻页链接已失效，请返回第一页重新打开。",
                "version": "数据已变化，请返回刷新页面后再修改。"}
_CJK = re.compile("[\u4e00-\u9fff]")


def _field_text(exc: InvalidField) -> str:
    """A refused field in Chinese: the domain's own words where it wrote them for the phone
    (fields.py and the one-code rules do), else a fixed text, never an API message."""
    if exc.param in _FIELD_TEXTS:
        return _FIELD_TEXTS[exc.param]
    return exc.message if _CJK.search(exc.message) else "提交的内容有误，请返回刷新页面后重试。"


def refusal_page(exc: ApiError) -> PageResponse:
    """A refused action as a page: conflicts and unknown ids in Chinese (field errors are
    shown on their form by the page that owns it, see `field_error`)."""
    if isinstance(exc, RoleTooLow):
        return role_too_low_page(exc)
    if isinstance(exc, NoRoleHere):
        return no_role_page()
    if isinstance(exc, Conflict):
        return _page(409, f"refused-{exc.code}", "操作未完成", CONFLICT_TEXTS.get(exc.code, "操作与当前状态冲突，请刷新后重试。"))
    if isinstance(exc, NotFound):
        return _page(404, "not-found", "没有找到", "要操作的对象不存在或已被删除，请刷新页面。")
    if isinstance(exc, InvalidField):
        return _page(400, "invalid-field", "填写有误", _field_text(exc))
    return _page(exc.status, "refused", "操作未完成", "操作没有完成，请刷新后重试。")
