"""H3 on the phone: the merchant management page (stores, admins, profile, the management
code), the new-store form, and "我的" (every role the WeChat holds, with links).

Only an activated admin of the merchant sees or changes anything here; what an admin may do
is decided by the domain functions (`admins`, `stores`), the page only shows it. Every POST
carries a form token for this WeChat and this merchant page; a field the domain refuses is
shown next to that field on the re-rendered form (400) with what was typed; any other refusal
is a page of its own; success is a 303 back to the page with a one-line notice.
"""
from __future__ import annotations

from urllib.parse import urlencode

from chalicelib.errors import ApiError, InvalidField, NotFound
from chalicelib.h5 import PageResponse
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import admins, code_images, codes, fields, lookup, pages, stores
from chalicelib.onecode.access import ROLE_NAMES, NoRoleHere, as_admin
from chalicelib.onecode.models import SETUP_KEY, MerchantAdmin, MerchantSetup, Staff, Store

STORES_PER_PAGE = 20
ROLES_SHOWN = 50
"""Roles per kind on "我的" (merchants administered, stores worked in): one bounded query each."""
STORE_FIELDS = ("name", "province", "city", "district", "address", "phone", "longitude", "latitude", "currency",
                "collection_type", "manager_name", "manager_phone")


def path_of(merchant_id: str) -> str:
    return f"/h5/merchants/{merchant_id}"


def _signed_in_admin(merchant_id: str, cookie: str | None, return_path: str):
    """(identity, actor, None) for an admin of the merchant, else (None, None, the page to show)."""
    identity, login = pages.identity_or_login(cookie, return_path)
    if login is not None:
        return None, None, login
    try:
        return identity, as_admin(merchant_id, identity.openid), None
    except NoRoleHere:
        return None, None, pages.no_role_page()



def _admin_rows(people: list[MerchantAdmin], openid: str) -> list[dict]:
    views = codes.find_views([admin.activation_code_id for admin in people if not admin.openid])
    rows = []
    for admin in people:
        code = None if admin.openid else views.get(admin.activation_code_id)
        rows.append({"admin_id": admin.admin_id, "name": admin.name or "（未填写称呼）", "active": bool(admin.openid),
                     "can_refund": admin.can_refund, "is_me": admin.openid == openid,
                     "code_state": code["state"] if code else None,
                     "code_images": code_images.urls(admin.activation_code_id) if code else None})
    return rows


def _merchant_view(actor, cursor: str | None = None, notice: str | None = None, form: dict | None = None,
                   errors: dict | None = None) -> PageResponse:
    merchant = SubMerchant.get(actor.account_id, actor.merchant_id)
    path = path_of(actor.merchant_id)
    found = stores.list_for_merchant(actor.merchant_id, STORES_PER_PAGE, cursor)
    management_id = admins.management_code_id(actor.merchant_id)
    form = form or {}
    shown_name, shown_logo = admins.shown_to_customers(merchant, admins.setup_of(actor.merchant_id))
    profile = {"short_name": form.get("short_name", shown_name), "logo_url": form.get("logo_url", shown_logo or "")}
    return pages.html("merchant.html", 400 if errors else 200, page_id="merchant", path=path,
                      csrf=pages.form_token(actor.openid, path), notice=notice, errors=errors or {},
                      merchant_name=shown_name, legal_name=merchant.name,
                      logo_url=shown_logo, stores=found.data, next_cursor=found.next_cursor,
                      admins=_admin_rows(admins.people(actor.merchant_id), actor.openid),
                      invite_name=form.get("name", "") if errors else "", profile=profile,
                      management=code_images.urls(management_id),
                      management_state=codes.state_of(management_id) if management_id else None)


def merchant_page(merchant_id: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/merchants/{merchant_id}[?cursor=...&notice=...]."""
    return_path = path_of(merchant_id) + (f"?{urlencode(query)}" if query else "")
    _, actor, refusal = _signed_in_admin(merchant_id, cookie, return_path)
    if refusal is not None:
        return refusal
    try:
        return _merchant_view(actor, query.get("cursor") or None, pages.notice_from(query))
    except ApiError as exc:
        return pages.refusal_page(exc)


def _new_store_view(actor, form: dict | None = None, errors: dict | None = None) -> PageResponse:
    path = path_of(actor.merchant_id)
    values = {name: (form or {}).get(name, "") for name in STORE_FIELDS}
    values["currency"] = values["currency"] or "CNY"
    values["collection_type"] = values["collection_type"] or "wechat_alipay"
    return pages.html("merchant_new_store.html", 400 if errors else 200, page_id="merchant-new-store", path=path,
                      csrf=pages.form_token(actor.openid, path), values=values, errors=errors or {},
                      currencies=fields.CURRENCIES, collection_types=fields.COLLECTION_TYPES)


def new_store_page(merchant_id: str, cookie: str | None) -> PageResponse:
    """GET /h5/merchants/{merchant_id}/new-store: the form of a store and its manager."""
    _, actor, refusal = _signed_in_admin(merchant_id, cookie, f"{path_of(merchant_id)}/new-store")
    return refusal if refusal is not None else _new_store_view(actor)


def _add_store(actor, form: dict) -> PageResponse:
    """The new store opens on its manager, whose activation code the admin shows them next."""
    store, manager = stores.create(actor, form)
    return pages.see_other(f"/h5/stores/{store.store_id}?staff={manager.staff_id}",
                           f"门店“{store.name}”已添加，请把下方的店长激活码交给店长扫码")


def _invite_admin(actor, form: dict) -> PageResponse:
    invited = admins.invite(actor, form)
    return pages.see_other(path_of(actor.merchant_id), f"已添加管理员 {invited.name}，请让他扫描激活码")


def _remove_admin(actor, form: dict) -> PageResponse:
    removed = admins.remove(actor, form.get("admin_id", ""))
    if removed.openid == actor.openid:
        return pages.see_other("/h5/me", "您已不再是该商户的管理员")
    return pages.see_other(path_of(actor.merchant_id), f"已移除管理员 {removed.name or ''}".strip())


def _set_admin_refund(actor, form: dict) -> PageResponse:
    allowed = fields.checkbox(form, "can_refund")
    changed = admins.set_refund(actor, form.get("admin_id", ""), allowed)
    return pages.see_other(path_of(actor.merchant_id),
                           f"{changed.name or '管理员'}{'已可以退款' if allowed else '已不能退款'}")


def _reissue_admin_code(actor, form: dict) -> PageResponse:
    admins.reissue_invite_code(actor, form.get("admin_id", ""))
    return pages.see_other(path_of(actor.merchant_id), "已重新生成激活码，旧激活码已失效")


def _update_profile(actor, form: dict) -> PageResponse:
    admins.update_profile(actor, form)
    return pages.see_other(path_of(actor.merchant_id), "商户资料已保存")


ACTIONS = {"stores": _add_store, "admins": _invite_admin, "admin-remove": _remove_admin,
           "admin-refund": _set_admin_refund, "admin-code": _reissue_admin_code, "profile": _update_profile}
FIELD_FORMS = {"stores": _new_store_view, "admins": _merchant_view, "profile": _merchant_view}
"""The actions whose field refusals are shown on their form; the others' are pages."""


def merchant_action(merchant_id: str, action: str, cookie: str | None, form: dict) -> PageResponse:
    """POST /h5/merchants/{merchant_id}/{action}."""
    handler = ACTIONS.get(action)
    if handler is None:
        return pages.refusal_page(NotFound("no such action", param="action"))
    identity, actor, refusal = _signed_in_admin(merchant_id, cookie, path_of(merchant_id))
    if refusal is not None:
        return refusal
    if not pages.form_is_genuine(identity.openid, path_of(merchant_id), form):
        return pages.stale_form_page()
    try:
        return handler(actor, form)
    except InvalidField as exc:
        show_form = FIELD_FORMS.get(action)
        if show_form is None:
            return pages.refusal_page(exc)
        if show_form is _merchant_view:
            return _merchant_view(actor, form=form, errors={exc.param: exc.message})
        return show_form(actor, form, {exc.param: exc.message})
    except ApiError as exc:
        return pages.refusal_page(exc)


def me_page(cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/me: the merchants this WeChat administers and the stores it works in. From the
    by-openid indexes (eventually consistent in AWS: a role activated a moment ago may show a
    moment later; the pages it links to check the role itself)."""
    identity, login = pages.identity_or_login(cookie, "/h5/me")
    if login is not None:
        return login
    held_admin = list(MerchantAdmin.by_openid.query(identity.openid, limit=ROLES_SHOWN))
    held_staff = list(Staff.by_openid.query(identity.openid, limit=ROLES_SHOWN))
    wanted = ([(SubMerchant, admin.account_id, admin.merchant_id) for admin in held_admin]
              + [(MerchantSetup, admin.merchant_id, SETUP_KEY) for admin in held_admin]
              + [(Store, member.store_id, None) for member in held_staff])
    found = lookup.get_many(wanted) if wanted else []
    count = len(held_admin)
    merchants, setups, places = found[:count], found[count:2 * count], found[2 * count:]
    merchant_rows = [{"href": path_of(admin.merchant_id), "name": admins.shown_to_customers(merchant, setup)[0],
                      "role": ROLE_NAMES["admin"]}
                     for admin, merchant, setup in zip(held_admin, merchants, setups) if merchant]
    store_rows = [{"href": f"/h5/stores/{member.store_id}", "name": place.name, "role": ROLE_NAMES[member.role]}
                  for member, place in zip(held_staff, places) if place]
    return pages.html("me.html", page_id="me", notice=pages.notice_from(query), merchants=merchant_rows, stores=store_rows)

