"""H4-H6 on the phone: the store page (what each role sees and changes there), the clerk's own
collection code, and the printable poster of the store collection code.

One page serves every role in the store, cut to the role: a clerk sees the store, their own
shift, messages switch and collection code; a manager also the staff, devices, codes and
store options; a merchant admin also the store's details. What a role may change is decided
by the domain functions (`staff`, `devices`, `stores`), never by what the page shows: a
clerk who posts a manager's form is refused all the same.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from chalicelib import beijing, qrcodes
from chalicelib.errors import ApiError, InvalidField, NotFound
from chalicelib.h5 import PageResponse
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import admins, codes, devices, fields, pages, staff, stores
from chalicelib.onecode.access import (
    ADMIN,
    CLERK,
    MANAGER,
    ROLE_NAMES,
    NoRoleHere,
    RoleTooLow,
    in_store,
    require,
)
from chalicelib.payments import shift_summary

SHIFTS_SHOWN = 5
POSTER_SIZES = ("a5", "a6")

FORM_FIELDS = {"edit": ("name", "province", "city", "district", "address", "phone", "longitude", "latitude",
                        "currency", "collection_type"),
               "staff": ("name", "phone", "remark", "role"),
               "staff-edit": ("name", "phone", "remark"),
               "devices": ("device_id", "name", "device_type", "remark"),
               "device-edit": ("name", "device_type", "remark")}
"""The actions whose refusals of a field are shown next to that field on the form (any other
refusal is a page of its own)."""


def path_of(store_id: str) -> str:
    return f"/h5/stores/{store_id}"


def image_urls(code_id: str | None) -> dict | None:
    """Where the phone fetches a code's image (the H5 image routes check who asks)."""
    if not code_id:
        return None
    return {"png": f"/h5/codes/{code_id}/image.png", "svg": f"/h5/codes/{code_id}/image.svg",
            "url": qrcodes.url_for(code_id)}


def _merchant_name(store) -> str:
    try:
        merchant = SubMerchant.get(store.account_id, store.merchant_id)
    except SubMerchant.DoesNotExist:
        return ""
    return admins.shown_to_customers(merchant, admins.setup_of(store.merchant_id))[0]



def _signed_in(store_id: str, cookie: str | None, return_path: str):
    """(actor, store, None) for a role here, or (None, None, the page to answer instead)."""
    identity, login = pages.identity_or_login(cookie, return_path)
    if login is not None:
        return None, None, login
    try:
        actor, store = in_store(store_id, identity.openid)
    except NoRoleHere:
        return None, None, pages.no_role_page()
    return actor, store, None


def _context(actor, store, failed: dict | None = None, query: dict | None = None) -> dict:
    """Everything the store page shows for this actor; only managers and admins read the
    staff, devices and codes of the store. One person and one device are open with their
    forms (`?staff=`, `?device=`, or the one whose form was refused); the others are one-line
    links: every one open would be 1.8 KB a person, past the page budget at ten staff."""
    me = actor.staff
    query = query or {}
    failed = failed or {"action": None, "target": None, "errors": {}, "typed": {}}
    notice = pages.notice_from(query)
    context = {"title": store.name, "actor": actor, "store": store, "merchant_name": _merchant_name(store), "notice": notice,
               "role_name": ROLE_NAMES[actor.role], "me": me, "csrf": pages.form_token(actor.openid, path_of(store.store_id)),
               "path": path_of(store.store_id), "failed": failed, "ROLE_NAMES": ROLE_NAMES, "code_url": qrcodes.url_for,
               "DEVICE_TYPES": fields.DEVICE_TYPES, "COLLECTION_TYPES": fields.COLLECTION_TYPES,
               "CURRENCIES": fields.CURRENCIES, "local_time": beijing.clock_time, "image_urls": image_urls,
               "ADMIN": ADMIN, "MANAGER": MANAGER, "CLERK": CLERK,
               "open_staff": failed["target"] if failed["action"] == "staff-edit" else query.get("staff"),
               "open_device": failed["target"] if failed["action"] == "device-edit" else query.get("device")}
    if me is not None:
        context["shifts"] = staff.shifts(store.store_id, me.staff_id, limit=SHIFTS_SHOWN)
    if actor.manages_store:
        people = staff.people(store.store_id)
        context["people"] = people
        context["devices"] = devices.devices(store.store_id)
        context["code_states"] = {code_id: found["state"] for code_id, found in codes.find_views(
            [member.activation_code_id for member in people if not member.openid]).items()}
        context["collection"] = image_urls(store.collection_code_id)
    return context


def store_page(store_id: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/stores/{id}: the store as the caller's role sees it."""
    query = query or {}
    back = path_of(store_id) + (f"?{urlencode(dict(query))}" if query else "")
    actor, store, refused = _signed_in(store_id, cookie, back)
    if refused is not None:
        return refused
    return pages.html("store_page.html", **_context(actor, store, query=query))


def _named(form: dict, name: str) -> str:
    value = form.get(name)
    if not value:
        raise NotFound(f"no such {name.removesuffix('_id')}", param=name)
    return value


def _clock_out_notice(member, store, shift) -> str:
    """The clock-out's notice with the shift summary (the store's takings since the previous
    clock-out), also sent to the clerk as a template message when their messages are on,
    best effort."""
    if shift is None:
        return "您当前不在岗，无需下班打卡"
    found = shift_summary.takings(store.store_id, shift)
    shift_summary.send(member, store.name, shift, found)
    return (f"已下班，本班 {beijing.clock_time(shift.started_at, False)}–{beijing.clock_time(shift.ended_at, False)}。"
            f"{found.notice()}")


def _perform(action: str, actor, store, form: dict) -> str | tuple[str, str]:
    """Do one action; the notice to show after it (and the person to show open: the one
    whose new activation code is to be scanned now)."""
    if action == "edit":
        stores.edit(actor, store, form)
        return "门店信息已保存"
    if action == "options":
        stores.set_notify_off_shift(actor, store, form)
        return "门店选项已保存"
    if action == "collection-code":
        stores.replace_collection_code(actor, store)
        return "已更换门店收款码，旧收款码已停用，请打印新的海报"
    if action == "staff":
        member = staff.invite(actor, store, form)
        return f"已添加{ROLE_NAMES[member.role]}{member.name}，请让对方扫描激活码", member.staff_id
    if action == "staff-edit":
        return f"已保存{staff.edit(actor, store, _named(form, 'staff_id'), form).name}的信息"
    if action == "staff-refund":
        allowed = fields.checkbox(form, "allowed")
        member = staff.set_refund(actor, store, _named(form, "staff_id"), allowed)
        return f"已授予{member.name}退款权限" if allowed else f"已收回{member.name}的退款权限"
    if action == "staff-promote":
        return f"已将{staff.promote(actor, store, _named(form, 'staff_id')).name}升为店长"
    if action == "staff-remove":
        return f"已移除{staff.remove(actor, store, _named(form, 'staff_id')).name}"
    if action == "staff-code":
        member = staff.reissue_code(actor, store, _named(form, "staff_id"))
        return f"已为{member.name}重新生成激活码", member.staff_id
    if action == "devices":
        return f"已添加设备{devices.add(actor, store, form).name}"
    if action == "device-edit":
        return f"已保存设备{devices.edit(actor, store, _named(form, 'device_id'), form).name}"
    if action == "device-remove":
        device_id = _named(form, "device_id")
        devices.remove(actor, store, device_id)
        return f"已移除设备{device_id}"
    if action == "clock-in":
        _, started = staff.clock_in(actor)
        return "已上班打卡" if started else "您已在岗，无需重复打卡"
    if action == "clock-out":
        member, shift = staff.clock_out(actor)
        return _clock_out_notice(member, store, shift)
    if action == "messages":
        on = fields.checkbox(form, "on")
        staff.set_messages(actor, on)
        return "已开启接收支付消息" if on else "已关闭接收支付消息"
    raise NotFound("no such action", param="action")


def store_action(store_id: str, action: str, cookie: str | None, form: dict) -> PageResponse:
    """POST /h5/stores/{id}/{action}: one change, then back to the store page (303)."""
    actor, store, refused = _signed_in(store_id, cookie, path_of(store_id))
    if refused is not None:
        return refused
    if not pages.form_is_genuine(actor.openid, path_of(store_id), form):
        return pages.stale_form_page()
    try:
        notice = _perform(action, actor, store, form)
    except InvalidField as exc:
        if exc.param not in FORM_FIELDS.get(action, ()):
            return pages.refusal_page(exc)
        target = {"staff-edit": form.get("staff_id"), "device-edit": form.get("device_id")}.get(action)
        failed = {"action": action, "target": target, "errors": {exc.param: exc.message}, "typed": form}
        return pages.html("store_page.html", 400, **_context(actor, store, failed))
    except ApiError as exc:
        return pages.refusal_page(exc)
    if isinstance(notice, tuple):
        notice, staff_id = notice
        return pages.see_other(f"{path_of(store_id)}?staff={quote(staff_id)}", notice)
    return pages.see_other(path_of(store_id), notice)


def my_code_page(store_id: str, cookie: str | None) -> PageResponse:
    """GET /h5/stores/{id}/my-code: the staff member's own collection code (H6)."""
    actor, store, refused = _signed_in(store_id, cookie, f"{path_of(store_id)}/my-code")
    if refused is not None:
        return refused
    if actor.staff is None or not actor.staff.collection_code_id:
        return pages.role_too_low_page(RoleTooLow(CLERK))
    return pages.html("store_my_code.html", title="我的收款码", store=store, me=actor.staff, merchant_name=_merchant_name(store),
                      code=image_urls(actor.staff.collection_code_id), path=path_of(store_id))


def poster_page(store_id: str, cookie: str | None, query: dict) -> PageResponse:
    """GET /h5/stores/{id}/poster: the store collection code, print-ready on A5 (or A6)."""
    actor, store, refused = _signed_in(store_id, cookie, f"{path_of(store_id)}/poster")
    if refused is not None:
        return refused
    try:
        require(actor, ADMIN, MANAGER)
    except RoleTooLow as exc:
        return pages.role_too_low_page(exc)
    size = (query or {}).get("size")
    return pages.html("store_poster.html", store=store, merchant_name=_merchant_name(store),
                      code=image_urls(store.collection_code_id), size=size if size in POSTER_SIZES else "a5",
                      path=path_of(store_id))
