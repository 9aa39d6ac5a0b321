"""H1/H2: the scan router and confirm pages, as plain functions that return a page.

`app.py` hands in the path, cookie header, query and form, and sends back what these
return. WeChat identity comes from OAuth through the platform's official account and is
kept in a signed cookie (h5_identity).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from urllib.parse import quote

from chalicelib import (assistant_binding, binding, maidan_admins, provider_sync, qrcodes, settings, signed_tokens,
                        throttle)
from chalicelib.h5_identity import (WechatIdentity, clear_oauth_nonce_cookie_header, cookie_header,
                                    from_cookie_header, new_oauth_nonce, oauth_nonce_cookie_header,
                                    oauth_nonce_from_cookie_header, oauth_nonce_hash)
from chalicelib.log import logger
from chalicelib.maidan_admins import AssistantNotOpened, NoUnionId, NotMaidanAdmin
from chalicelib.models.accounts import Account
from chalicelib.models.base import now
from chalicelib.qrcodes import CodeUnusable
from chalicelib.upstream import maidan, wechat_oauth
from chalicelib.upstream.http import UpstreamUnavailable
from chalicelib.web import render

OAUTH_CALLBACK_PATH = "/h5/oauth/wechat"
OAUTH_STATE_TTL_SECONDS = 600
_OAUTH_STATE_PURPOSE = "oauth-state"
_CONFIRM_PURPOSE = "h5-confirm"


@dataclass
class PageResponse:
    status: int
    body: str = ""
    headers: dict = field(default_factory=dict)


def _page(status: int, page_id: str, title: str, message: str, tone: str = "err", steps=(),
          detail: str | None = None) -> PageResponse:
    html = render("message.html", page_id=page_id, title=title, message=message, tone=tone,
                  steps=list(steps), detail=detail)
    return PageResponse(status, html, {"Content-Type": "text/html; charset=utf-8"})


def _redirect(location: str, extra: dict | None = None) -> PageResponse:
    return PageResponse(302, "", {"Location": location, "Cache-Control": "no-store", **(extra or {})})


_CODE_ERRORS = {
    "unknown": (404, "二维码无效", "这个二维码不存在。请确认扫描的是云支付控制台或商户页面生成的二维码。"),
    "expired": (410, "二维码已过期", "二维码的有效期已过。请在控制台刷新二维码后重新扫描。"),
    "used": (410, "二维码已被使用", "这个二维码只能使用一次，已经被使用过。如需继续操作，请在控制台重新生成二维码。"),
    "revoked": (410, "二维码已失效", "这个二维码已被新的二维码取代或被撤销。请扫描控制台上最新的二维码。"),
}

OPEN_ASSISTANT_STEPS = (
    "在微信中搜索并打开小程序“微信买单服务商助手”（或长按识别服务商助手的小程序码）。",
    "输入您的服务商商户号，按提示验证管理员身份，开通服务商助手。",
    "开通后回到控制台，重新扫描二维码。",
)


def code_error_page(reason: str) -> PageResponse:
    status, title, message = _CODE_ERRORS[reason]
    return _page(status, f"code-{reason}", title, message)


def not_admin_page() -> PageResponse:
    return _page(403, "not-maidan-admin", "您不是微信买单服务商助手管理员",
                 "只有微信买单服务商助手的管理员微信号可以完成此操作。请使用管理员微信号重新扫码。")


def not_opened_page() -> PageResponse:
    return _page(403, "maidan-assistant-not-opened", "尚未开通微信买单服务商助手",
                 "当前微信号还没有开通微信买单服务商助手。开通方法：", steps=OPEN_ASSISTANT_STEPS)


_SYSTEM_NAMES = {"WeChat API": "微信", "WeChat 买单": "微信买单", "WeChat Pay": "微信支付", "Alipay": "支付宝"}
"""The upstreams' names (their SYSTEM, English for logs) as a phone user knows them."""


def upstream_page(system: str) -> PageResponse:
    return _page(502, "upstream-unavailable", "服务暂时不可用",
                 f"{_SYSTEM_NAMES.get(system, '相关服务')}暂时没有响应，请稍后重新扫码。")


def _identity(cookie: str | None) -> WechatIdentity | None:
    return from_cookie_header(cookie, settings.current().wechat_app_id)


def _scope_for(kind: str) -> str:
    """Only the WeChat binding asks for the profile (a consent page in WeChat): the console
    lists bound WeChats by nickname. Every other page signs in silently."""
    return wechat_oauth.USERINFO if kind == binding.KIND else wechat_oauth.BASE


def _signed_in(kind: str, cookie: str | None) -> WechatIdentity | None:
    """The phone's identity, if it is enough for this kind of code: a binding needs one that
    came with the nickname, so an identity from a silent sign-in goes through OAuth again."""
    identity = _identity(cookie)
    if identity is not None and _scope_for(kind) == wechat_oauth.USERINFO and identity.nickname is None:
        return None
    return identity


def oauth_redirect(return_path: str, authorize_url, extra_state: dict | None = None) -> PageResponse:
    """Send the phone to an OAuth page (`authorize_url(state)`) with a state tied to this
    phone by a nonce cookie; `extra_state` travels signed with it (e.g. whose app to use)."""
    nonce = new_oauth_nonce()
    state = signed_tokens.sign(_OAUTH_STATE_PURPOSE, {**(extra_state or {}), "r": return_path,
                                                      "n": oauth_nonce_hash(nonce)},
                               ttl_seconds=OAUTH_STATE_TTL_SECONDS)
    return _redirect(authorize_url(state), {"Set-Cookie": oauth_nonce_cookie_header(nonce, OAUTH_STATE_TTL_SECONDS)})


def _login(return_path: str, scope: str = wechat_oauth.BASE) -> PageResponse:
    """Send the phone to WeChat OAuth through the platform's official account."""
    config = settings.current()
    redirect_uri = config.public_base_url + OAUTH_CALLBACK_PATH
    return oauth_redirect(return_path,
                          lambda state: wechat_oauth.authorize_url(config.wechat_app_id, redirect_uri, state, scope))


def _guarded(action) -> PageResponse:
    """Run an admin-only step and turn the known refusals into their pages."""
    try:
        return action()
    except CodeUnusable as exc:
        return code_error_page(exc.reason)
    except NotMaidanAdmin:
        return not_admin_page()
    except assistant_binding.AdminMismatch:
        return _page(403, "maidan-admin-mismatch", "您不是该服务商的管理员",
                     "当前微信号不是这个服务商在微信买单服务商助手中的管理员，请使用该服务商管理员的微信扫码。")
    except AssistantNotOpened:
        return not_opened_page()
    except NoUnionId:
        return _page(502, "no-unionid", "无法识别微信身份",
                     "平台公众号尚未绑定微信开放平台，无法确认您的买单管理员身份。请联系平台运营方。")
    except UpstreamUnavailable as exc:
        logger.warning("upstream unavailable on H5", extra={"system": exc.system, "detail": exc.detail})
        return upstream_page(exc.system)
    except maidan.MaidanError as exc:
        logger.warning("买单 refused an H5 lookup", extra={"code": exc.code, "status": exc.status})
        return upstream_page("微信买单")


def confirm_token(code_id: str, openid: str) -> str:
    """The hidden `csrf` field of a confirm page: this code, confirmed by this WeChat."""
    return signed_tokens.sign(_CONFIRM_PURPOSE, {"c": code_id, "o": openid}, ttl_seconds=600)


def confirm_token_matches(code_id: str, openid: str, form: dict) -> bool:
    try:
        token = signed_tokens.verify(_CONFIRM_PURPOSE, form.get("csrf", ""))
    except signed_tokens.BadToken:
        return False
    return token.get("c") == code_id and token.get("o") == openid


def confirm_stale_page() -> PageResponse:
    return _page(403, "confirm-stale", "页面已过期", "确认页面已过期或不是由您打开的，请重新扫码。")


def _confirm_page(code, identity: WechatIdentity, lookup, **text) -> PageResponse:
    account = Account.get(code.account_id)
    csrf = confirm_token(code.code_id, identity.openid)
    html = render("confirm.html", code_id=code.code_id, csrf=csrf, providers=lookup.providers,
                  **{key: value.format(account=account.display_name, target=code.target) for key, value in text.items()})
    return PageResponse(200, html, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})


def _binding_confirm_page(code, identity: WechatIdentity) -> PageResponse:
    return _confirm_page(code, identity, maidan_admins.scan(code, identity), page_id="binding-confirm",
                         title="绑定微信号到云支付控制台", button="确认绑定",
                         lead="确认后，当前微信号将绑定到控制台账号 {account}，可用于登录确认和同步服务商。",
                         providers_caption="您在微信买单服务商助手中管理的服务商：")


def _sync_confirm_page(code, identity: WechatIdentity) -> PageResponse:
    return _confirm_page(code, identity, maidan_admins.scan(code, identity), page_id="provider-sync-confirm",
                         title="同步服务商到云支付", button="确认同步",
                         lead="确认后，以下服务商将同步到控制台账号 {account}（已有的会更新，不会重复）。",
                         providers_caption="将要同步的服务商：")


def _assistant_confirm_page(code, identity: WechatIdentity) -> PageResponse:
    return _confirm_page(code, identity, assistant_binding.scan(code, identity), page_id="assistant-bind-confirm",
                         title="绑定微信买单服务商助手", button="确认绑定",
                         lead="确认后，服务商 {target} 将绑定到微信买单服务商助手（控制台账号 {account}）。",
                         providers_caption="您管理的服务商：")


def _bind(code_id: str, identity: WechatIdentity) -> PageResponse:
    binding.confirm(code_id, identity)
    logger.info("wechat bound", extra={"code_id": code_id})
    return _page(200, "binding-done", "绑定成功", "微信号已绑定到云支付控制台账号，请回到电脑上继续操作。", tone="ok")


def _sync(code_id: str, identity: WechatIdentity) -> PageResponse:
    result = provider_sync.confirm(code_id, identity)
    message = (f"新增 {result['created']} 个、更新 {result['updated']} 个、无变化 {result['unchanged']} 个服务商。"
               + (f"{result['elsewhere']} 个服务商属于其他控制台账号，未同步。" if result["elsewhere"] else ""))
    return _page(200, "provider-sync-done", "同步完成", message, tone="ok")


def _assistant_bind(code_id: str, identity: WechatIdentity) -> PageResponse:
    result = assistant_binding.confirm(code_id, identity)
    return _page(200, "assistant-bind-done", "绑定成功", f"服务商 {result['sp_mchid']} 已绑定微信买单服务商助手。", tone="ok")


_CONFIRM_PAGES = {binding.KIND: _binding_confirm_page, provider_sync.KIND: _sync_confirm_page,
                  assistant_binding.KIND: _assistant_confirm_page}
_CONFIRMERS = {binding.KIND: _bind, provider_sync.KIND: _sync, assistant_binding.KIND: _assistant_bind}


def scan(code_id: str, cookie: str | None, user_agent: str | None = None) -> PageResponse:
    """H1: route a scanned code by its kind; errors in the code come before any sign-in.
    The one-code kinds have their own router (imported on first use: most scans are theirs,
    but the console's codes need none of it)."""
    code = qrcodes.find(code_id)
    page_for = _CONFIRM_PAGES.get(code.kind) if code else None
    if code is not None and page_for is None:
        from chalicelib.onecode import router
        return router.scan(code, cookie, user_agent)
    try:
        qrcodes.check_usable(code)
    except CodeUnusable as exc:
        return code_error_page(exc.reason)
    identity = _signed_in(code.kind, cookie)
    if identity is None:
        return _login(f"/h5/q/{quote(code_id)}", _scope_for(code.kind))
    return _guarded(lambda: page_for(code, identity))


def confirm(code_id: str, cookie: str | None, form: dict) -> PageResponse:
    """H2: the admin pressed confirm; the CSRF token ties the form to this code and WeChat."""
    code = qrcodes.find(code_id)
    confirmer = _CONFIRMERS.get(code.kind) if code else None
    if code is not None and confirmer is None:
        from chalicelib.onecode import router
        return router.confirm(code, cookie, form)
    if confirmer is None:
        return code_error_page("unknown")
    identity = _signed_in(code.kind, cookie)
    if identity is None:
        return _login(f"/h5/q/{quote(code_id)}", _scope_for(code.kind))
    if not confirm_token_matches(code_id, identity.openid, form):
        return confirm_stale_page()
    return _guarded(lambda: confirmer(code_id, identity))


def genuine_oauth_state(query: dict, cookie: str | None, code_param: str = "code",
                        wallet_name: str = "微信") -> dict | PageResponse:
    """The state of an OAuth callback that this phone started, used for the first time, with
    a code (`code_param`) to exchange; else the page that says why not. Shared by every
    OAuth callback (the platform's WeChat account, a provider's, Alipay's user auth): without
    it anyone could send a phone a callback URL holding their own code and have it signed in
    as them (login CSRF)."""
    try:
        state = signed_tokens.verify(_OAUTH_STATE_PURPOSE, query.get("state", ""))
    except signed_tokens.BadToken:
        return _page(400, "oauth-bad-state", "授权已过期", f"{wallet_name}授权已过期或无效，请重新扫码。")
    if not str(state.get("r", "")).startswith("/h5/"):
        return _page(400, "oauth-bad-state", "授权已过期", f"{wallet_name}授权已过期或无效，请重新扫码。")
    if not query.get(code_param):
        return _page(403, "oauth-denied", f"未完成{wallet_name}授权",
                     f"需要{wallet_name}授权才能识别您的身份，请重新扫码并同意授权。")
    nonce = oauth_nonce_from_cookie_header(cookie)
    if nonce is None or not hmac.compare_digest(oauth_nonce_hash(nonce), str(state.get("n", ""))):
        logger.warning("oauth callback without the nonce of the phone that started it")
        return _page(403, "oauth-wrong-browser", "请在扫码的手机上完成授权",
                     f"这个{wallet_name}授权不是在当前页面发起的，为保护您的账号已停止。请重新扫描二维码。")
    if not throttle.use_once(f"oauth-state {state['n']}", now(), OAUTH_STATE_TTL_SECONDS + 60):
        return _page(400, "oauth-state-used", "授权已使用", f"这次{wallet_name}授权已经完成过，不能重复使用。请重新扫码。")
    return state


def oauth_callback(query: dict, cookie: str | None) -> PageResponse:
    """U1 callback: exchange the code, keep the identity in a cookie, go back to the page.

    Only on the phone that started this sign-in (its nonce cookie matches the state), and only
    once per state: otherwise anyone could send a phone a callback URL holding their own code
    and have it signed in as them."""
    state = genuine_oauth_state(query, cookie)
    if isinstance(state, PageResponse):
        return state
    return_path = state["r"]
    config = settings.current()
    try:
        found = wechat_oauth.exchange_code(config.wechat_app_id, config.wechat_app_secret, query["code"])
    except wechat_oauth.WechatApiError as exc:
        logger.warning("oauth code refused", extra={"errcode": exc.errcode})
        return _page(400, "oauth-code-refused", "微信授权失败", "授权码无效或已使用，请重新扫码。")
    except UpstreamUnavailable as exc:
        return upstream_page(exc.system)
    identity = WechatIdentity(app_id=found.app_id, openid=found.openid, unionid=found.unionid,
                              nickname=found.nickname)
    return _redirect(return_path, {"Set-Cookie": [cookie_header(identity), clear_oauth_nonce_cookie_header()]})
