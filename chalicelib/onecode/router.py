"""H1 for the one-code kinds (SPEC §3): what a scanned activation, management or collection
code opens, for whom.

- Activation codes: sign in through the platform's WeChat account, confirm (a token ties the
  form to this code and this WeChat), take the role (`activation.activate`, exactly once).
- The merchant management code: its admins go to the merchant page; anyone else is told
  they are not an admin there.
- Collection codes: the store's staff and its merchant's admins get a link to the store
  page (and one to the pay page: staff may pay too); everyone else is a customer and gets
  the pay page (H7, `payments.pages`). Alipay's app is a customer's without signing in.

`h5.scan` hands over the code it read: the state check, the scan of a store code by signed-in
staff, and the customer page need no second read of the code, and the records that decide
where a collection code goes come in one BatchGetItem (`lookup.get_many`).
"""
from __future__ import annotations

from urllib.parse import quote

from chalicelib import h5, qrcodes
from chalicelib.errors import InvalidField
from chalicelib.h5 import PageResponse, _identity, _login, _page
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import activation, admins, codes, lookup, pages
from chalicelib.onecode.access import ADMIN, ROLE_NAMES, admin_record
from chalicelib.onecode.models import SETUP_KEY, MerchantAdmin, MerchantSetup, Staff
from chalicelib.payments import pages as pay_pages
from chalicelib.qrcodes import CodeUnusable

WECHAT_AGENT_MARK = "MicroMessenger"
"""What WeChat's in-app browser puts in its User-Agent. Only there can staff sign in with
WeChat; any other browser scanning a collection code (Alipay, a phone's camera app) is a
customer's and is not sent through WeChat OAuth, which would fail outside WeChat."""

_ACTIVATION_ERRORS = {
    "unknown": (404, "激活码无效", "这个二维码不存在。请确认扫描的是商户管理员或店长发给您的激活码。"),
    "expired": (410, "激活码已过期", "激活码的有效期（7 天）已过。请联系邀请您的管理员重新生成激活码。"),
    "used": (410, "激活码已被使用", "这个激活码只能使用一次，已经被使用过。如需激活，请联系邀请您的管理员重新生成激活码。"),
    "revoked": (410, "激活码已失效", "这个激活码已被撤销或已被新的激活码取代。请联系邀请您的管理员获取最新的激活码。"),
}
_PERMANENT_ERRORS = {
    codes.MERCHANT_MANAGEMENT: (410, "商户管理码已失效", "这个商户管理码已被更换。请向服务商索取最新的商户管理码。"),
    codes.STORE_COLLECTION: (410, "收款码已停用", "这个门店收款码已停用。请向店员索取最新的收款码。"),
    codes.CLERK_COLLECTION: (410, "收款码已停用", "这个店员收款码已停用。请向店员索取门店收款码。"),
}


def code_error_page(code: QrCode, reason: str) -> PageResponse:
    """Why a one-code code cannot be used, in the words of its kind (the console's codes have
    theirs in `h5.code_error_page`); page ids are the same `code-<reason>` for every kind."""
    if code.kind in codes.ACTIVATION_KINDS:
        status, title, message = _ACTIVATION_ERRORS[reason]
    elif reason == "revoked" and code.kind in _PERMANENT_ERRORS:
        status, title, message = _PERMANENT_ERRORS[code.kind]
    else:
        return h5.code_error_page(reason)
    return _page(status, f"code-{reason}", title, message)


def _link_page(page_id: str, title: str, message: str, status: int = 200, tone: str = "ok",
               link: tuple[str, str] | None = None, lines: tuple = (),
               second_link: tuple[str, str] | None = None) -> PageResponse:
    return pages.html("onecode_link.html", status, page_id=page_id, title=title, message=message, tone=tone,
                      link=link, lines=[line for line in lines if line], second_link=second_link)


def scan(code: QrCode, cookie: str | None, user_agent: str | None) -> PageResponse:
    """H1 for a one-code code that `h5.scan` read; the code's state first, then who scans."""
    if code.kind not in codes.ALL_KINDS:
        return h5.code_error_page("unknown")
    try:
        qrcodes.check_usable(code)
    except CodeUnusable as exc:
        return code_error_page(code, exc.reason)
    if code.kind in (codes.STORE_COLLECTION, codes.CLERK_COLLECTION):
        return _collection(code, cookie, user_agent or "")
    identity = _identity(cookie)
    if identity is None:
        return _login(f"/h5/q/{quote(code.code_id)}")
    if code.kind == codes.MERCHANT_MANAGEMENT:
        return _management(code, identity)
    return _activation_confirm_page(code, identity)


# --- activation ---------------------------------------------------------------------------------

def _already_page(exc: activation.AlreadyHoldsRole) -> PageResponse:
    role = ROLE_NAMES.get(exc.role, exc.role)
    if exc.role == ADMIN:
        link = (f"/h5/merchants/{exc.merchant_id}", "进入商户管理")
    else:
        link = (f"/h5/stores/{exc.store_id}", "进入门店")
    return _link_page("activation-already", "您已经激活过", f"当前微信号已经是这里的{role}，无需再次激活。这个激活码没有被使用，"
                      "可以交给需要激活的人。", tone="info", link=link)


def _merchant_name(account_id: str, merchant_id: str) -> str:
    merchant, setup = lookup.get_many([(SubMerchant, account_id, merchant_id), (MerchantSetup, merchant_id, SETUP_KEY)])
    return admins.shown_to_customers(merchant, setup)[0] if merchant is not None else ""


def _activation_confirm_page(code: QrCode, identity: WechatIdentity, form: dict | None = None,
                             errors: dict | None = None) -> PageResponse:
    try:
        offer = activation.invitation(code, identity.openid)
    except activation.AlreadyHoldsRole as exc:
        return _already_page(exc)
    except CodeUnusable as exc:
        return code_error_page(code, exc.reason)
    form = form or {}
    typed_name = form.get("name") if "name" in form else (offer.invite.name or "")
    return pages.html("onecode_confirm.html", 400 if errors else 200, page_id="activation-confirm",
                      code_id=code.code_id, csrf=h5.confirm_token(code.code_id, identity.openid),
                      role=offer.role, role_name=ROLE_NAMES[offer.role], is_admin=offer.role == ADMIN,
                      merchant_name=_merchant_name(code.account_id, code.merchant_id),
                      store_name=offer.store.name if offer.store else "", invite_name=offer.invite.name or "",
                      name=typed_name, messages_on="messages_on" in form if form else True,
                      errors=errors or {})


def confirm(code: QrCode, cookie: str | None, form: dict) -> PageResponse:
    """POST /h5/q/{code}/confirm of an activation code: the scanner takes the role."""
    if code.kind not in codes.ACTIVATION_KINDS:
        return h5.code_error_page("unknown")
    identity = _identity(cookie)
    if identity is None:
        return _login(f"/h5/q/{quote(code.code_id)}")
    if not h5.confirm_token_matches(code.code_id, identity.openid, form):
        return h5.confirm_stale_page()
    try:
        done = activation.activate(code.code_id, code.kind, identity, form)
    except InvalidField as exc:
        return _activation_confirm_page(code, identity, form, {exc.param: exc.message})
    except activation.AlreadyHoldsRole as exc:
        return _already_page(exc)
    except CodeUnusable as exc:
        return code_error_page(code, exc.reason)
    role = ROLE_NAMES[done.role]
    if done.role == ADMIN:
        return _link_page("activation-done", "激活成功", f"您已成为商户管理员（{done.invite.name or '未填写称呼'}）。"
                          "以后请扫描商户管理码进入商户管理页面。",
                          link=(f"/h5/merchants/{done.merchant_id}", "进入商户管理"))
    return _link_page("activation-done", "激活成功", f"您已成为门店“{done.store.name}”的{role}（{done.invite.name}）。",
                      link=(f"/h5/stores/{done.store.store_id}", "进入门店"),
                      lines=("支付成功消息：" + ("接收（上班打卡后）" if done.invite.messages_on else "不接收"),
                             "如需接收消息，请关注平台公众号。" if done.invite.messages_on else ""))


# --- management code ----------------------------------------------------------------------------

def _management(code: QrCode, identity: WechatIdentity) -> PageResponse:
    if admin_record(code.merchant_id, identity.openid) is not None:
        return PageResponse(302, "", {"Location": f"/h5/merchants/{code.merchant_id}", "Cache-Control": "no-store"})
    return _link_page("not-merchant-admin", "您不是该商户的管理员", "只有这个商户已激活的管理员可以通过商户管理码进入。"
                      "如需管理该商户，请先向服务商或商户管理员索取商户管理员激活码，扫码激活后再扫描商户管理码。",
                      status=403, tone="err")


# --- collection codes ---------------------------------------------------------------------------

def _collection(code: QrCode, cookie: str | None, user_agent: str) -> PageResponse:
    """Staff and admins of the store (in WeChat): a way to their store page (and to pay).
    Customers: the pay page. The records deciding it come in one BatchGetItem."""
    keys = pay_pages.scene_keys(code)
    in_wechat = WECHAT_AGENT_MARK in user_agent
    identity = _identity(cookie) if in_wechat else None
    if in_wechat and identity is None:
        return _login(f"/h5/q/{quote(code.code_id)}")
    roles = [] if identity is None else [(Staff, code.store_id, identity.openid),
                                         (MerchantAdmin, code.merchant_id, identity.openid)]
    records = lookup.get_many(keys + roles)
    scene, found = pay_pages.scene_from(code, records[:len(keys)]), records[len(keys):]
    if scene is None:
        return code_error_page(code, "revoked") if records[0] and records[1] else h5.code_error_page("unknown")
    store = scene.store
    if any(record is not None for record in found):
        staff_record, _ = found
        holder = ROLE_NAMES[staff_record.role] if staff_record is not None else ROLE_NAMES[ADMIN]
        return _link_page("collection-staff", store.name, f"您是本店的{holder}。顾客扫这个码付款；您可以进入门店页面打卡、"
                          "查看收款码和管理门店。", tone="info", link=(f"/h5/stores/{store.store_id}", "进入门店页面"),
                          second_link=(pay_pages.pay_path(code.code_id), "我要付款"))
    if pay_pages.wallet_of(user_agent) is None:
        return pay_pages.use_wallet_page()
    return pay_pages.pay_page(code, cookie, user_agent, scene)
