"""H7 pay page and H8 result page: a customer scans a store or clerk collection code, types
an amount and pays in WeChat or Alipay; the result page shows what was paid.

- The wallet comes from the User-Agent; any other browser is asked to scan with one of them.
- The payer is identified by the wallet's silent OAuth through the PROVIDER's app (WeChat:
  `snsapi_base` of the provider's official account, the `sp_openid` partner JSAPI needs;
  Alipay: `auth_base` of the provider's app, the buyer id), kept in its own signed cookie
  (`cp_payer`, per wallet and app), never in the platform's `cp_wx`. The callbacks share the
  platform sign-in's state and nonce check (`h5.genuine_oauth_state`).
- What cannot be paid (WeChat Pay not configured, Alipay not authorized, ...) is found by
  `channels.route` before any OAuth or order: a Chinese page, nothing sent upstream.
- The form carries a signed attempt id, random per render, tied to this code and payer: a
  double tap, a reload of the POST or a retry lands on the same order (`orders.create`).
- The result page is reached with a token tying the order to its payer; it polls a small
  JSON state route until the order leaves NOTPAY. A paid order only ever shows its result.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from pynamodb.exceptions import DoesNotExist

from chalicelib import h5, providers, qrcodes, settings, signed_tokens
from chalicelib.errors import InvalidField, NotFound
from chalicelib.h5 import PageResponse, _page
from chalicelib.h5_identity import (PayerIdentity, clear_oauth_nonce_cookie_header, payer_cookie_header,
                                    payer_from_cookie_header)
from chalicelib.log import logger
from chalicelib.models.orders import Order
from chalicelib.models.providers import Provider
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import admins, codes, lookup
from chalicelib.onecode.models import SETUP_KEY, MerchantSetup, Staff, Store
from chalicelib.payments import amounts, channels, errors, limits, orders
from chalicelib.payments.settle import CLOSED, NOTPAY, PAID
from chalicelib.qrcodes import CodeUnusable
from chalicelib.upstream import alipay, maidan, wechat_oauth, wechatpay
from chalicelib.upstream.http import UpstreamUnavailable
from chalicelib.web import render, security

WECHAT, ALIPAY = "wechat", "alipay"
WALLET_MARKS = (("MicroMessenger", WECHAT), ("AlipayClient", ALIPAY))
"""What each wallet's in-app browser puts in its User-Agent."""
WECHAT_CALLBACK_PATH = "/h5/oauth/pay-wechat"
ALIPAY_CALLBACK_PATH = "/h5/oauth/pay-alipay"
"""Under /h5/oauth: only there does the phone send the OAuth nonce cookie."""
DONE_PATH = "/h5/pay/done"
ATTEMPT_PURPOSE = "h5-pay-attempt"
ATTEMPT_TTL_SECONDS = 24 * 3600
RESULT_PURPOSE = "h5-pay-result"
RESULT_TTL_SECONDS = 30 * 86400
"""A customer may open the result page from the browser's history days later."""
REMARK_MAX = 64
CHINA = timezone(timedelta(hours=8))
HTML = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}

_REFUSALS = {
    errors.WECHAT_PAY_NOT_CONFIGURED: "该商户暂未开通微信支付收款，请使用支付宝扫码，或向店员咨询其他付款方式。",
    errors.NO_SUB_MCHID: "该商户的微信支付尚未开通完成，请使用支付宝扫码，或向店员咨询其他付款方式。",
    errors.ALIPAY_NOT_AUTHORIZED: "该商户暂未开通支付宝收款，请使用微信扫码，或向店员咨询其他付款方式。",
    errors.CODE_NOT_USABLE: "这个收款码已停用，请向店员索取最新的收款码。",
    errors.WALLET_NOT_SUPPORTED: "请使用微信或支付宝扫码付款。",
    errors.PAYER_MISSING: "无法识别您的付款身份，请重新扫码。",
}
_STATE_WORDS = {PAID: ("支付成功", "ok"), NOTPAY: ("正在确认支付结果", "info"), CLOSED: ("订单已关闭，未扣款", "err")}


def wallet_of(user_agent: str | None) -> str | None:
    return next((wallet for mark, wallet in WALLET_MARKS if mark in (user_agent or "")), None)


class Scene:
    """What a collection code's pages show and charge to: store, merchant (with its chosen
    name and logo), clerk of a clerk code, and the provider. The provider comes from the
    batch; it is read on its own only for a code issued before codes named their provider,
    or one whose merchant has since moved to another provider."""

    def __init__(self, code: QrCode, store: Store, merchant: SubMerchant, setup: MerchantSetup | None,
                 clerk: Staff | None, provider: Provider | None = None) -> None:
        self.code, self.store, self.merchant, self.clerk = code, store, merchant, clerk
        self.merchant_name, self.logo_url = admins.shown_to_customers(merchant, setup)
        self.provider = provider or providers.get(merchant.account_id, merchant.sp_mchid)


def scene_keys(code: QrCode) -> list[tuple]:
    """The records a collection code's pages need, for one BatchGetItem: store, merchant, its
    setup, the provider (when the code names it) and, for a clerk code, the clerk."""
    keys = [(Store, code.store_id, None), (SubMerchant, code.account_id, code.merchant_id),
            (MerchantSetup, code.merchant_id, SETUP_KEY)]
    if code.sp_mchid:
        keys.append((Provider, code.account_id, code.sp_mchid))
    if code.kind == codes.CLERK_COLLECTION:
        keys.append((Staff, code.store_id, code.member_key))
    return keys


def scene_from(code: QrCode, records: list) -> Scene | None:
    """The Scene from the answers to `scene_keys(code)`, in that order; None when a record it
    needs is gone (a removed clerk's code, a deleted store)."""
    store, merchant, setup, *rest = records
    provider = rest.pop(0) if code.sp_mchid else None
    provider = provider if provider is not None and merchant is not None and \
        provider.sp_mchid == merchant.sp_mchid else None
    clerk = rest.pop(0) if code.kind == codes.CLERK_COLLECTION else None
    if store is None or merchant is None or (code.kind == codes.CLERK_COLLECTION and clerk is None):
        return None
    return Scene(code, store, merchant, setup, clerk, provider)


def _scene(code: QrCode) -> Scene | None:
    return scene_from(code, lookup.get_many(scene_keys(code)))


def _html(template: str, status: int = 200, script_origins: tuple = (), **context) -> PageResponse:
    headers = dict(HTML)
    if script_origins:
        headers["Content-Security-Policy"] = security.page_policy(script_origins)
    return PageResponse(status, render(template, **context), headers)


def use_wallet_page() -> PageResponse:
    return _page(200, "pay-use-wallet", "请用微信或支付宝扫码", "这是商户的收款码。请打开微信或支付宝，使用“扫一扫”扫描这个二维码付款。",
                 tone="info")


def _unavailable_page(scene: Scene, reason: str) -> PageResponse:
    """Where the customer is (merchant, store, clerk) and why it cannot take this payment."""
    return _html("onecode_collection.html", 409, page_id="pay-unavailable", merchant_name=scene.merchant_name,
                 logo_url=scene.logo_url, store_name=scene.store.name,
                 clerk_name=scene.clerk.name if scene.clerk else None, reason=reason)


def _refusal_text(code: str) -> str:
    return _REFUSALS.get(code, "该商户暂时无法收款，请向店员咨询其他付款方式。")


def _failed_page(system: str) -> PageResponse:
    return _page(502, "pay-failed", "下单失败", f"{system}暂时无法下单，您没有被扣款。请稍后重新扫码付款。")


def _route_refusal(scene: Scene, wallet: str) -> PageResponse | None:
    """The page for a payment that cannot be made here, found before anything is sent. Alipay
    is checked on the scene's records, without decrypting the app's key or the merchant's
    token: the page needs neither (the POST decrypts each once)."""
    try:
        if wallet == ALIPAY:
            channels.check_alipay(scene.merchant, scene.provider)
        else:
            channels.route(scene.merchant, scene.provider, wallet)
    except errors.PaymentRefused as exc:
        return _unavailable_page(scene, _refusal_text(exc.code))
    return None


# --- the payer: OAuth through the provider's app ----------------------------------------------

def _wechat_app(provider) -> tuple[str, str | None]:
    """(appid, AppSecret) of the official account that issues the payer's openid: the
    provider's (its WeChat Pay settings), or the platform's for a 买单 provider without one."""
    app_id = channels.payer_app_id(provider, WECHAT)
    if app_id == settings.current().wechat_app_id:
        return app_id, None
    try:
        return app_id, providers.secret(provider, "wechat_pay.app_secret")
    except InvalidField:
        return app_id, ""


def _payer_or_login(scene: Scene, wallet: str, cookie: str | None, return_path: str) -> PayerIdentity | PageResponse:
    app_id = channels.payer_app_id(scene.provider, wallet)
    payer = payer_from_cookie_header(cookie, wallet, app_id)
    if payer is not None:
        return payer
    config = settings.current()
    if wallet == WECHAT and app_id == config.wechat_app_id:
        identity = h5._identity(cookie)
        if identity is not None:
            return PayerIdentity(WECHAT, app_id, identity.openid)
        return h5._login(return_path)
    if not app_id or (wallet == WECHAT and not _wechat_app(scene.provider)[1]):
        return _unavailable_page(scene, f"服务商尚未完成{'微信公众号' if wallet == WECHAT else '支付宝应用'}配置，"
                                        "暂时无法识别付款人。请向店员咨询其他付款方式。")
    provider = {"k": wallet, "a": scene.provider.account_id, "p": scene.provider.sp_mchid}
    if wallet == WECHAT:
        redirect_uri = config.public_base_url + WECHAT_CALLBACK_PATH
        return h5.oauth_redirect(return_path, lambda state: wechat_oauth.authorize_url(
            app_id, redirect_uri, state, wechat_oauth.BASE), provider)
    redirect_uri = config.public_base_url + ALIPAY_CALLBACK_PATH
    return h5.oauth_redirect(return_path, lambda state: alipay.user_authorization_url(app_id, redirect_uri, state),
                             provider)


def payer_callback(wallet: str, query: dict, cookie: str | None) -> PageResponse:
    """The provider's WeChat account or Alipay app sent the phone back: exchange the code for
    the payer's id, keep it in `cp_payer`, go back to the pay page."""
    code_param, name = ("code", "微信") if wallet == WECHAT else ("auth_code", "支付宝")
    state = h5.genuine_oauth_state(query, cookie, code_param, name)
    if isinstance(state, PageResponse):
        return state
    if state.get("k") != wallet:
        return _page(400, "oauth-bad-state", "授权已过期", f"{name}授权已过期或无效，请重新扫码。")
    try:
        provider = providers.get(str(state.get("a", "")), str(state.get("p", "")))
        if wallet == WECHAT:
            app_id, secret = _wechat_app(provider)
            payer_id = wechat_oauth.exchange_code(app_id, secret, query[code_param]).openid
        else:
            app = providers.alipay_app(provider)
            app_id, found = app.app_id, alipay.exchange_user_auth_code(app, query[code_param])
            payer_id = found.user_id or found.open_id
    except NotFound:
        return _page(404, "pay-unavailable", "暂时无法付款", "这个商户的服务商已不在云支付，请向店员咨询其他付款方式。")
    except (wechat_oauth.WechatApiError, alipay.AlipayError) as exc:
        logger.warning("payer oauth code refused", extra={"wallet": wallet, "error": str(exc)[:200]})
        return _page(400, "oauth-code-refused", f"{name}授权失败", "授权码无效或已使用，请重新扫码。")
    except UpstreamUnavailable as exc:
        return h5.upstream_page(exc.system)
    if not payer_id:
        return _page(400, "oauth-code-refused", f"{name}授权失败", "未能识别您的付款身份，请重新扫码。")
    payer = PayerIdentity(wallet, app_id, payer_id)
    return PageResponse(302, "", {"Location": state["r"], "Cache-Control": "no-store",
                                  "Set-Cookie": [payer_cookie_header(payer), clear_oauth_nonce_cookie_header()]})


# --- H7: the pay page -------------------------------------------------------------------------

def pay_path(code_id: str) -> str:
    return f"/h5/pay/{quote(code_id)}"


_CODE_CLAIMS = {"k": "kind", "s": "store_id", "m": "merchant_id", "a": "account_id", "sp": "sp_mchid",
                "mk": "member_key"}
"""What the attempt token carries of its code: enough to name the scene's records, so the
POST reads the code and its scene in one BatchGetItem."""


def _attempt_token(code: QrCode, payer_id: str, attempt_id: str | None = None) -> str:
    claims = {short: getattr(code, name) for short, name in _CODE_CLAIMS.items() if getattr(code, name)}
    return signed_tokens.sign(ATTEMPT_PURPOSE, {"c": code.code_id, "p": payer_id, **claims,
                                                "x": attempt_id or secrets.token_urlsafe(18)}, ATTEMPT_TTL_SECONDS)


def _attempt_claims(token: str, code_id: str) -> dict | None:
    """What a form this page rendered for this code says (so the token is also the form's
    CSRF guard), or None."""
    try:
        data = signed_tokens.verify(ATTEMPT_PURPOSE, token or "")
    except signed_tokens.BadToken:
        return None
    return data if data.get("c") == code_id and data.get("x") else None


def _code_and_scene(code_id: str, claims: dict | None) -> tuple[QrCode | None, Scene | None]:
    """The code and its scene: one BatchGetItem when the form's token names the scene's
    records (and the code read agrees with it), else the code, then its scene."""
    if claims is None or not all(isinstance(claims.get(short, ""), str) for short in _CODE_CLAIMS):
        code = qrcodes.find(code_id)
        return code, _scene(code) if code is not None else None
    named = QrCode(code_id, **{name: claims.get(short) for short, name in _CODE_CLAIMS.items()})
    keys = scene_keys(named)
    code, *records = lookup.get_many([(QrCode, code_id, None)] + keys)
    if code is None:
        return None, None
    if any(getattr(code, name) != getattr(named, name) for name in _CODE_CLAIMS.values()):
        return code, _scene(code)
    return code, scene_from(code, records)


def _form_page(scene: Scene, payer: PayerIdentity, token: str | None = None, form: dict | None = None,
               field_errors: dict | None = None, status: int = 200) -> PageResponse:
    limit = limits.pay_limit_fen(scene.provider, scene.merchant)
    form = form or {}
    return _html("pay.html", status, page_id="pay", mode="form", scene=scene, wallet=payer.wallet,
                 action=pay_path(scene.code.code_id), attempt=token or _attempt_token(scene.code, payer.payer_id),
                 limit_fen=limit, limit_yuan=amounts.format_yuan(limit), amount=form.get("amount", ""),
                 remark=form.get("remark", ""), errors=field_errors or {})


def _checked(code: QrCode | None, user_agent: str | None, cookie: str | None, scene: Scene | None = None,
             scene_read: bool = False) -> tuple[Scene, PayerIdentity] | PageResponse:
    """The scene and payer of a pay page, or the page to show instead (in this order: the
    code, the browser, the scene, what cannot be paid, who pays). A scan and a POST hand in
    the scene they already read (`scene_read`: even when it came back None), so the records
    are not read twice."""
    from chalicelib.onecode.router import code_error_page
    if code is None or code.kind not in (codes.STORE_COLLECTION, codes.CLERK_COLLECTION):
        return h5.code_error_page("unknown")
    try:
        qrcodes.check_usable(code)
    except CodeUnusable as exc:
        return code_error_page(code, exc.reason)
    wallet = wallet_of(user_agent)
    if wallet is None:
        return use_wallet_page()
    scene = scene if scene is not None or scene_read else _scene(code)
    if scene is None:
        return code_error_page(code, "revoked") if code.kind == codes.CLERK_COLLECTION else \
            h5.code_error_page("unknown")
    refusal = _route_refusal(scene, wallet)
    if refusal is not None:
        return refusal
    payer = _payer_or_login(scene, wallet, cookie, pay_path(code.code_id))
    return payer if isinstance(payer, PageResponse) else (scene, payer)


def pay_page(code: QrCode | None, cookie: str | None, user_agent: str | None,
             scene: Scene | None = None) -> PageResponse:
    """GET /h5/pay/{code_id} (and a customer's scan of a collection code): the amount form."""
    checked = _checked(code, user_agent, cookie, scene)
    if isinstance(checked, PageResponse):
        return checked
    return _form_page(*checked)


def pay(code_id: str, cookie: str | None, user_agent: str | None, form: dict) -> PageResponse:
    """POST /h5/pay/{code_id}: the order of this attempt, then the page that opens the wallet
    (or, for an order already paid or closed, its result page). The code and its scene are
    read in one BatchGetItem and handed to `orders.create`, which reads nothing again."""
    token = form.get("attempt", "")
    claims = _attempt_claims(token, code_id)
    code, scene = _code_and_scene(code_id, claims)
    checked = _checked(code, user_agent, cookie, scene, scene_read=True)
    if isinstance(checked, PageResponse):
        return checked
    scene, payer = checked
    attempt_id = claims["x"] if claims is not None and claims.get("p") == payer.payer_id else None
    if attempt_id is None:
        return _page(403, "pay-stale", "页面已过期", "付款页面已过期或不是在本机打开的，您没有被扣款。请重新扫码付款。")
    typed = {"amount": form.get("amount", ""), "remark": form.get("remark", "")}
    remark = typed["remark"].strip() or None
    try:
        fen = amounts.parse_yuan(typed["amount"], limits.pay_limit_fen(scene.provider, scene.merchant))
        if remark is not None and len(remark) > REMARK_MAX:
            raise InvalidField("remark", f"备注最多 {REMARK_MAX} 个字")
        created = orders.create(code, orders.Payer(payer.payer_id), fen, remark, attempt_id, payer.wallet,
                                merchant=scene.merchant, provider=scene.provider, clerk=scene.clerk)
    except InvalidField as exc:
        return _form_page(scene, payer, token, typed, {exc.param: exc.message}, 400)
    except errors.PaymentRefused as exc:
        if exc.code == errors.ATTEMPT_REUSED:
            return _form_page(scene, payer, None, typed, {"amount": "金额与刚才提交的不同，请确认金额后重新付款"}, 400)
        return _unavailable_page(scene, _refusal_text(exc.code))
    except UpstreamUnavailable as exc:
        return h5.upstream_page(exc.system)
    except (wechatpay.WechatPayError, alipay.AlipayError, maidan.MaidanError) as exc:
        logger.warning("the channel refused an order", extra={"wallet": payer.wallet, "error": str(exc)[:200]})
        return _failed_page("微信支付" if payer.wallet == WECHAT else "支付宝")
    result = result_url(created.order.out_trade_no, payer.payer_id)
    if created.pay_params is None:
        return PageResponse(303, "", {"Location": result, "Cache-Control": "no-store"})
    script = settings.current().wallet_script_url(payer.wallet)
    return _html("pay.html", 200, script_origins=(security.origin(script),) if script else (), page_id="pay-invoke",
                 mode="invoke", scene=scene, wallet=payer.wallet, wallet_script=script,
                 pay_params=json.dumps(created.pay_params, separators=(",", ":")), result_url=result,
                 amount_yuan=amounts.format_yuan(int(created.order.total)))


# --- H8: the result page ----------------------------------------------------------------------

def result_url(out_trade_no: str, payer_id: str) -> str:
    token = signed_tokens.sign(RESULT_PURPOSE, {"o": out_trade_no, "p": payer_id}, RESULT_TTL_SECONDS)
    return f"/h5/pay/orders/{quote(out_trade_no)}?t={quote(token)}"


def _order_for(out_trade_no: str, query: dict) -> Order | None:
    """The order the token names, for the payer it names; None for anything else."""
    try:
        data = signed_tokens.verify(RESULT_PURPOSE, query.get("t", ""))
        order = Order.get(out_trade_no) if data.get("o") == out_trade_no else None
    except (signed_tokens.BadToken, DoesNotExist):
        return None
    return order if order is not None and order.payer_id == data.get("p") else None


def _not_found() -> PageResponse:
    return _page(404, "pay-order-unknown", "订单不存在", "没有找到这笔订单，请重新扫码付款。")


def _web_link(url) -> str | None:
    """Only web addresses become links or images (never javascript: or data:)."""
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _slots(provider) -> list[dict]:
    configured = providers.mapping(getattr(provider, "result_slots", None))
    shown = []
    for name in ("review", "coupon"):
        slot = configured.get(name)
        slot = slot.as_dict() if hasattr(slot, "as_dict") else slot
        if isinstance(slot, dict) and slot.get("title") and _web_link(slot.get("url")):
            shown.append({"name": name, "title": str(slot["title"]), "url": slot["url"]})
    return shown


def result_page(out_trade_no: str, query: dict) -> PageResponse:
    """GET /h5/pay/orders/{out_trade_no}?t=...: what was paid, the ad, the slots, 完成."""
    order = _order_for(out_trade_no, query)
    if order is None:
        return _not_found()
    store, merchant, setup = lookup.get_many([(Store, order.store_id, None),
                                              (SubMerchant, order.account_id, order.merchant_id),
                                              (MerchantSetup, order.merchant_id, SETUP_KEY)])
    if merchant is None:
        return _not_found()
    provider = providers.get(merchant.account_id, merchant.sp_mchid)
    merchant_name, logo_url = admins.shown_to_customers(merchant, setup)
    advertiser = merchant if merchant.ad_image_url else provider
    ad_image, ad_link = _web_link(advertiser.ad_image_url), _web_link(advertiser.ad_link_url)
    title, tone = _STATE_WORDS.get(order.state, ("未支付", "err"))
    moment = order.paid_at or order.created_at
    return _html("pay_result.html", page_id="pay-result", state=order.state, paid=order.state == PAID,
                 waiting=order.state == NOTPAY, title=title, tone=tone, merchant_name=merchant_name, logo_url=logo_url,
                 store_name=store.name if store else "", amount_yuan=amounts.format_yuan(int(order.total)),
                 time=datetime.fromtimestamp(int(moment), CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                 out_trade_no=order.out_trade_no, ad_image=ad_image, ad_link=ad_link, slots=_slots(provider),
                 wallet=order.wallet, state_url=f"/h5/pay/orders/{quote(order.out_trade_no)}/state?t="
                 f"{quote(query.get('t', ''))}", done_url=DONE_PATH)


def order_state(out_trade_no: str, query: dict) -> PageResponse:
    """GET /h5/pay/orders/{out_trade_no}/state?t=...: what the result page polls."""
    order = _order_for(out_trade_no, query)
    if order is None:
        return PageResponse(404, json.dumps({"state": None}), {"Content-Type": "application/json",
                                                               "Cache-Control": "no-store"})
    return PageResponse(200, json.dumps({"state": order.state, "paid": order.state == PAID}),
                        {"Content-Type": "application/json", "Cache-Control": "no-store"})


def done_page() -> PageResponse:
    return _page(200, "pay-done", "付款完成", "感谢您的光临，可以关闭这个页面了。", tone="ok")
