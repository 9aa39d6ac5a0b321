"""H4-H6 on the phone: the store page for a merchant admin, a store manager and a clerk; what
each may change there; the clerk's own code and the printable poster. The people are set up
with the domain functions, then every page is opened and every form posted as their phones."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from chalicelib import settings
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode import access, activation, admins, codes, pages, staff, stores
from chalicelib.onecode.models import Device, Shift, Staff, Store
from tests.drivers import Phone
from tests.test_h5_words import visible_words


@dataclass
class Shop:
    account_id: str
    merchant_id: str
    store: Store
    admin: Phone
    manager: Phone
    clerk: Phone
    clerk_id: str
    openids: dict


def _wechat(sandbox, user_id: str) -> WechatIdentity:
    app_id = settings.current().wechat_app_id
    return WechatIdentity(app_id, sandbox.users[user_id].openid(app_id), None)


def _merchant(owner, name: str) -> tuple[str, str]:
    created = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": "1900000109", "name": name})
    assert created.status == 201, created.json
    return owner.call("GET", "/v1/me").json["id"], created.json["id"]


def _open_store(sandbox, account_id: str, merchant_id: str, admin_user: str, manager_user: str, clerk_user: str,
                store_name: str = "一号店") -> tuple[Store, str]:
    code_id = admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"]
    if codes.state_of(code_id) == "pending":
        activation.activate(code_id, codes.MERCHANT_ADMIN_ACTIVATION, _wechat(sandbox, admin_user), {"name": "王老板"})
    admin = access.as_admin(merchant_id, _wechat(sandbox, admin_user).openid)
    store, manager_invite = stores.create(admin, {"name": store_name, "manager_name": "李店长", "city": "上海"})
    activation.activate(manager_invite.activation_code_id, codes.STORE_MANAGER_ACTIVATION,
                        _wechat(sandbox, manager_user), {"messages_on": "on"})
    manager, _ = access.in_store(store.store_id, _wechat(sandbox, manager_user).openid)
    clerk_invite = staff.invite(manager, store, {"name": "张店员", "phone": "13800138000"})
    activation.activate(clerk_invite.activation_code_id, codes.CLERK_ACTIVATION, _wechat(sandbox, clerk_user),
                        {"messages_on": "on"})
    return stores.get(store.store_id), clerk_invite.staff_id


@pytest.fixture
def shop(bound_console, sandbox, client) -> Shop:
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": "1900000109", "name": "服务商"}).status == 201
    account_id, merchant_id = _merchant(bound_console, "一号商户")
    clerk_user = sandbox.create_user("张店员", "NOT_OPENED").user_id
    store, clerk_id = _open_store(sandbox, account_id, merchant_id, "admin-01", "staff-01", clerk_user)
    openids = {user: _wechat(sandbox, user).openid for user in ("admin-01", "staff-01", clerk_user)}
    return Shop(account_id, merchant_id, store, Phone(client, "admin-01"), Phone(client, "staff-01"),
                Phone(client, clerk_user), clerk_id, openids)


def _page(phone: Phone, store_id: str) -> Phone:
    phone.open(f"/h5/stores/{store_id}")
    assert phone.status == 200 and phone.page_id == "store", phone.html
    return phone


def _post(holder: Phone, store_id: str, action: str, csrf: str | None = None, **form) -> Phone:
    """Post one form of the store page, as the page would (its CSRF token unless given)."""
    if csrf is None:
        csrf = _page(holder, store_id).form_value("csrf")
    return holder.open(f"/h5/stores/{store_id}/{action}", "POST", {"csrf": csrf, **form})


def _notice(phone: Phone) -> str:
    assert phone.status == 303, (phone.status, phone.html)
    token = unquote(phone.last[2].get("Location", phone.last[2].get("location")).split("notice=", 1)[1])
    return pages.notice_from({"notice": token})


def _by(entry: dict, role: str, name: str) -> bool:
    """An audit entry made by the person of that role and name (the log names them by role
    and staff id, never by openid; the name is beside it)."""
    return entry["actor"].startswith(f"{role}#t_") and entry["changes"]["actor_name"]["to"] == name


def _member(store_id: str, staff_id: str) -> Staff | None:
    return next((member for member in staff.people(store_id) if member.staff_id == staff_id), None)


def _audit(owner) -> list[dict]:
    return owner.call("GET", "/v1/audit-log?limit=100").json["data"]


def test_each_role_sees_its_part_of_the_store_page(shop):
    manager = _page(shop.manager, shop.store.store_id).html
    assert "一号店" in manager and "一号商户" in manager and "张店员" in manager and "添加店员" in manager
    assert f"/h5/codes/{shop.store.collection_code_id}/image.svg" in manager and "门店信息" not in manager
    assert 'name="role"' not in manager

    admin = _page(shop.admin, shop.store.store_id).html
    assert "门店信息" in admin and 'name="version"' in admin and 'name="role"' in admin and "上班打卡" not in admin

    clerk = _page(shop.clerk, shop.store.store_id).html
    assert "上班打卡" in clerk and "我的收款码" in clerk and "离岗" in clerk
    assert "李店长" not in clerk and shop.store.collection_code_id not in clerk and "添加设备" not in clerk


def test_a_manager_adds_a_clerk_with_an_activation_code_and_manages_them(shop, bound_console):
    sid = shop.store.store_id
    assert _notice(_post(shop.manager, sid, "staff", name="赵小二", phone="13900001111", remark="早班",
                         can_refund="on")).startswith("已添加店员赵小二")
    added = next(member for member in staff.people(sid) if member.name == "赵小二")
    assert added.role == "clerk" and added.can_refund and added.openid is None and added.phone == "13900001111"
    assert codes.state_of(added.activation_code_id) == "pending"
    location = shop.manager.last[2].get("Location") or shop.manager.last[2].get("location")
    assert location.startswith(f"/h5/stores/{sid}?staff={added.staff_id}&notice=")
    page = _page(shop.manager, f"{sid}?staff={added.staff_id}").html
    assert f"/h5/codes/{added.activation_code_id}/image.svg" in page and "待激活" in page

    assert _notice(_post(shop.manager, sid, "staff-edit", staff_id=added.staff_id, name="赵二",
                         phone="13900002222", remark="")) == "已保存赵二的信息"
    assert _member(sid, added.staff_id).name == "赵二" and _member(sid, added.staff_id).remark is None

    assert _notice(_post(shop.manager, sid, "staff-refund", staff_id=added.staff_id, allowed="0")) == "已收回赵二的退款权限"
    assert _member(sid, added.staff_id).can_refund is False
    assert _notice(_post(shop.manager, sid, "staff-refund", staff_id=added.staff_id, allowed="1")) == "已授予赵二退款权限"
    assert _member(sid, added.staff_id).can_refund is True

    old_code = added.activation_code_id
    assert _notice(_post(shop.manager, sid, "staff-code", staff_id=added.staff_id)) == "已为赵二重新生成激活码"
    assert codes.state_of(old_code) == "revoked" and codes.state_of(_member(sid, added.staff_id).activation_code_id) == "pending"

    refused = _post(shop.manager, sid, "staff-promote", staff_id=added.staff_id)
    assert refused.status == 400 and "只有已激活的店员可以升为店长" in refused.html
    assert _member(sid, added.staff_id).role == "clerk"
    assert _notice(_post(shop.manager, sid, "staff-promote", staff_id=shop.clerk_id)) == "已将张店员升为店长"
    assert _member(sid, shop.clerk_id).role == "manager"

    actions = [entry["action"] for entry in _audit(bound_console) if entry["entity"] == f"store#{sid}"
               and entry["actor"] == f"manager#{Staff.get(shop.store.store_id, shop.openids['staff-01']).staff_id}"
               and entry["changes"]["actor_name"]["to"] == "李店长" and shop.openids["staff-01"] not in str(entry)]
    for action in ("staff.invited", "staff.updated", "staff.refund_changed", "staff.code_reissued", "staff.promoted"):
        assert action in actions


def test_a_removed_clerk_finds_no_role_and_cannot_clock_in(shop, bound_console):
    sid = shop.store.store_id
    stale_csrf = _page(shop.clerk, sid).form_value("csrf")
    collection_code = _member(sid, shop.clerk_id).collection_code_id

    assert _notice(_post(shop.manager, sid, "staff-remove", staff_id=shop.clerk_id)) == "已移除张店员"
    assert _member(sid, shop.clerk_id) is None and codes.state_of(collection_code) == "revoked"

    shop.clerk.open(f"/h5/stores/{sid}")
    assert shop.clerk.status == 404 and shop.clerk.page_id == "no-role-here"
    _post(shop.clerk, sid, "clock-in", csrf=stale_csrf)
    assert shop.clerk.page_id == "no-role-here"
    assert list(Shift.query(f"{sid}#{shop.clerk_id}")) == []
    assert any(entry["action"] == "staff.removed" and _by(entry, "manager", "李店长")
               for entry in _audit(bound_console))


def test_a_clerk_clocks_in_once_clocks_out_and_switches_messages(shop, bound_console):
    sid = shop.store.store_id
    assert _notice(_post(shop.clerk, sid, "clock-in")) == "已上班打卡"
    assert _notice(_post(shop.clerk, sid, "clock-in")) == "您已在岗，无需重复打卡"
    shifts = list(Shift.query(f"{sid}#{shop.clerk_id}"))
    assert len(shifts) == 1 and shifts[0].ended_at is None and _member(sid, shop.clerk_id).on_shift
    started = datetime.fromtimestamp(shifts[0].started_at, ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M")
    assert "在岗" in _page(shop.clerk, sid).html and f"{started} 上班" in shop.clerk.html

    notice = _notice(_post(shop.clerk, sid, "clock-out"))
    assert notice.startswith("已下班，本班 ") and "–" in notice
    ended = Shift.get(f"{sid}#{shop.clerk_id}", shifts[0].shift_id)
    assert ended.ended_at is not None and not _member(sid, shop.clerk_id).on_shift
    assert _notice(_post(shop.clerk, sid, "clock-out")) == "您当前不在岗，无需下班打卡"

    assert _notice(_post(shop.clerk, sid, "messages", on="0")) == "已关闭接收支付消息"
    assert _member(sid, shop.clerk_id).messages_on is False
    assert _notice(_post(shop.clerk, sid, "messages", on="1")) == "已开启接收支付消息"
    assert _member(sid, shop.clerk_id).messages_on is True

    actions = [entry["action"] for entry in _audit(bound_console) if _by(entry, "clerk", "张店员")]
    assert actions.count("staff.clocked_in") == 1 and "staff.clocked_out" in actions
    assert actions.count("staff.messages_changed") == 2


def test_a_clerk_posting_a_managers_action_is_refused_and_nothing_changes(shop):
    sid = shop.store.store_id
    manager_id = next(member.staff_id for member in staff.people(sid) if member.role == "manager")
    _post(shop.clerk, sid, "staff-remove", staff_id=manager_id)
    assert shop.clerk.status == 403 and shop.clerk.page_id == "role-required"
    _post(shop.clerk, sid, "devices", device_id="POS1", name="收银机")
    assert shop.clerk.status == 403
    _post(shop.clerk, sid, "staff", name="冒充")
    assert shop.clerk.status == 403
    assert len(staff.people(sid)) == 2 and list(Device.query(sid)) == []


def test_a_clerk_opening_another_store_finds_no_role(shop, bound_console, sandbox):
    other_store, _ = _open_store(sandbox, shop.account_id, shop.merchant_id, "admin-01", "guest-01",
                                 sandbox.create_user("李四", "NOT_OPENED").user_id, "二号店")
    _, foreign_merchant = _merchant(bound_console, "二号商户")
    foreign_store, _ = _open_store(sandbox, shop.account_id, foreign_merchant,
                                   sandbox.create_user("外人", "NOT_OPENED").user_id,
                                   sandbox.create_user("外店长", "NOT_OPENED").user_id,
                                   sandbox.create_user("外店员", "NOT_OPENED").user_id, "别家店")
    for store in (other_store, foreign_store):
        shop.clerk.open(f"/h5/stores/{store.store_id}")
        assert shop.clerk.status == 404 and shop.clerk.page_id == "no-role-here"
    shop.clerk.open("/h5/stores/s_doesnotexist")
    assert shop.clerk.page_id == "no-role-here"


def test_a_manager_adds_edits_and_removes_devices_and_a_duplicate_is_refused(shop, bound_console):
    sid = shop.store.store_id
    assert _notice(_post(shop.manager, sid, "devices", device_id="POS-01", name="前台收银",
                         device_type="smart_pos", remark="")) == "已添加设备前台收银"
    assert Device.get(sid, "POS-01").device_type == "smart_pos"

    _post(shop.manager, sid, "devices", device_id="POS-01", name="另一台", device_type="other")
    assert shop.manager.status == 409 and shop.manager.page_id == "refused-device_exists"
    assert Device.get(sid, "POS-01").name == "前台收银"

    _post(shop.manager, sid, "devices", device_id="bad id!", name="坏编号")
    assert shop.manager.status == 400 and shop.manager.page_id == "store"
    assert "设备编号只能包含" in shop.manager.html and 'value="坏编号"' in shop.manager.html

    assert _notice(_post(shop.manager, sid, "device-edit", device_id="POS-01", name="后厨收银",
                         device_type="cashier_desk")) == "已保存设备后厨收银"
    assert Device.get(sid, "POS-01").device_type == "cashier_desk"
    assert _notice(_post(shop.manager, sid, "device-remove", device_id="POS-01")) == "已移除设备POS-01"
    assert list(Device.query(sid)) == []
    actions = [entry["action"] for entry in _audit(bound_console) if _by(entry, "manager", "李店长")]
    assert {"device.added", "device.updated", "device.removed"} <= set(actions)


def test_a_field_error_is_shown_next_to_the_field_keeping_what_was_typed(shop):
    sid = shop.store.store_id
    _post(shop.manager, sid, "staff", name="", phone="13900001111", remark="晚班")
    assert shop.manager.status == 400 and "请填写姓名" in shop.manager.html
    assert 'value="13900001111"' in shop.manager.html and 'value="晚班"' in shop.manager.html
    assert len(staff.people(sid)) == 2


def test_an_admin_edits_the_store_and_a_stale_version_is_refused(shop, bound_console):
    sid = shop.store.store_id
    csrf = _page(shop.admin, sid).form_value("csrf")
    version = shop.admin.form_value("version")
    assert _notice(_post(shop.admin, sid, "edit", csrf=csrf, version=version, name="一号旗舰店", province="上海",
                         city="上海", district="徐汇", address="漕溪北路 1 号", phone="021-12345678",
                         longitude="121.43", latitude="31.19", currency="CNY", collection_type="wechat")) == "门店信息已保存"
    saved = stores.get(sid)
    assert saved.name == "一号旗舰店" and saved.longitude == "121.43" and saved.collection_type == "wechat"

    _post(shop.admin, sid, "edit", csrf=csrf, version=version, name="旧页面的名字")
    assert shop.admin.status == 409 and shop.admin.page_id == "refused-version_conflict"
    assert stores.get(sid).name == "一号旗舰店"

    _post(shop.manager, sid, "edit", version=str(saved.version), name="店长改名")
    assert shop.manager.status == 403 and stores.get(sid).name == "一号旗舰店"

    assert _notice(_post(shop.manager, sid, "options", notify_off_shift="on")) == "门店选项已保存"
    assert stores.get(sid).notify_off_shift is True
    actions = {entry["action"] for entry in _audit(bound_console)}
    assert {"store.updated", "store.options_changed"} <= actions


def test_a_form_token_of_another_page_or_phone_is_refused(shop):
    sid = shop.store.store_id
    managers_token = _page(shop.manager, sid).form_value("csrf")
    _page(shop.clerk, sid)
    _post(shop.clerk, sid, "clock-in", csrf=managers_token)
    assert shop.clerk.status == 403 and shop.clerk.page_id == "form-stale"
    _post(shop.clerk, sid, "clock-in", csrf="forged.token")
    assert shop.clerk.page_id == "form-stale"
    assert list(Shift.query(f"{sid}#{shop.clerk_id}")) == []


def test_the_poster_prints_the_store_code_for_a_manager_but_not_for_a_clerk(shop, client):
    sid = shop.store.store_id
    shop.manager.open(f"/h5/stores/{sid}/poster")
    assert shop.manager.status == 200 and shop.manager.page_id == "store-poster"
    html = shop.manager.html
    image = f'<img src="/h5/codes/{shop.store.collection_code_id}/image.svg"'
    assert "一号店" in html and "一号商户" in html and image in html and "微信 / 支付宝 扫码付款" in html
    assert "/static/poster.css" in html and "<style" not in html and 'class="sheet a5"' in html
    assert 'class="sheet a6"' in shop.manager.open(f"/h5/stores/{sid}/poster?size=a6").html
    assert client.http.get("/static/poster.css").status_code == 200
    assert client.http.get("/static/poster.js").status_code == 200

    shop.clerk.open(f"/h5/stores/{sid}/poster")
    assert shop.clerk.status == 403 and shop.clerk.page_id == "role-required"


def test_a_clerk_sees_their_own_collection_code(shop):
    sid = shop.store.store_id
    code_id = _member(sid, shop.clerk_id).collection_code_id
    shop.clerk.open(f"/h5/stores/{sid}/my-code")
    assert shop.clerk.status == 200 and shop.clerk.page_id == "store-my-code"
    assert f"/h5/codes/{code_id}/image.svg" in shop.clerk.html and f"/h5/q/{code_id}" in shop.clerk.html
    assert QrCode.get(code_id).kind == codes.CLERK_COLLECTION
    assert shop.clerk.open(f"/h5/codes/{code_id}/image.svg").status == 200


def test_the_store_page_with_ten_staff_and_five_devices_stays_under_15_kb(shop, client):
    sid = shop.store.store_id
    admin, _ = access.in_store(sid, shop.openids["admin-01"])
    for index in range(8):
        staff.invite(admin, shop.store, {"name": f"店员{index:02d}号", "phone": "13800138000", "remark": "早班",
                                         "can_refund": "on"})
    from chalicelib.onecode import devices
    for index in range(5):
        devices.add(admin, shop.store, {"device_id": f"POS-{index}", "name": f"收银机{index}", "device_type": "smart_pos"})
    pending = next(member.staff_id for member in staff.people(sid) if member.openid is None)
    shop.manager.open(f"/h5/stores/{sid}?device=POS-0")
    assert 'name="device_id" value="POS-0"' in shop.manager.html, "a page opened through WeChat OAuth keeps its query"
    css = len(client.http.get("/static/h5.css").body)
    for phone, query in ((shop.admin, ""), (shop.admin, f"?staff={pending}"), (shop.manager, "?device=POS-0"),
                         (shop.clerk, "")):
        page = len(_page(phone, sid + query).html.encode())
        assert page + css <= 15 * 1024, (phone.user_id, query, page, css)


def test_a_refused_edit_of_a_person_reopens_their_form_with_the_message(shop):
    sid = shop.store.store_id
    _post(shop.manager, sid, "staff-edit", staff_id=shop.clerk_id, name="张店员", phone="电话号码", remark="午班")
    assert shop.manager.status == 400 and "只能包含数字" in shop.manager.html
    assert 'value="电话号码"' in shop.manager.html and 'value="午班"' in shop.manager.html
    assert _member(sid, shop.clerk_id).remark is None


def test_the_store_pages_speak_chinese(shop):
    sid = shop.store.store_id
    names_as_printed = {"PNG", "SVG", "POS", "CNY"}
    """File formats, 智能 POS and the currency code: what the phone user sees on devices and bills."""
    for holder, path in ((shop.admin, ""), (shop.manager, f"?staff={shop.clerk_id}"), (shop.clerk, ""),
                         (shop.manager, "/poster")):
        holder.open(f"/h5/stores/{sid}{path}")
        assert holder.status == 200 and set(visible_words(holder.html)) <= names_as_printed, (path, visible_words(holder.html))


def test_a_manager_cannot_grant_themselves_refund_permission_nor_remove_themselves(shop):
    manager_id = Staff.get(shop.store.store_id, shop.openids["staff-01"]).staff_id
    page = _page(shop.manager, shop.store.store_id).open(f"/h5/stores/{shop.store.store_id}?staff={manager_id}")
    assert "授予退款权限" not in page.html and "确认移除" not in page.html

    refund = _post(shop.manager, shop.store.store_id, "staff-refund", staff_id=manager_id, allowed="1")
    removal = _post(shop.manager, shop.store.store_id, "staff-remove", staff_id=manager_id)

    assert (refund.status, removal.status) == (403, 403)
    member = Staff.get(shop.store.store_id, shop.openids["staff-01"])
    assert member.can_refund is False and member.name == "李店长"
    assert _notice(_post(shop.manager, shop.store.store_id, "staff-edit", staff_id=manager_id, name="李店长",
                         phone="13900000000")) == "已保存李店长的信息"


def test_replacing_the_store_collection_code_stops_the_old_one_at_once(shop, client):
    old_code = shop.store.collection_code_id

    assert _notice(_post(shop.manager, shop.store.store_id, "collection-code")).startswith("已更换门店收款码")

    new_code = stores.get(shop.store.store_id).collection_code_id
    assert new_code != old_code and codes.state_of(old_code) == "revoked" and codes.state_of(new_code) == "active"
    customer = Phone(client, "guest-01", user_agent="Mozilla/5.0 (iPhone) Safari/604.1")
    assert customer.open(f"/h5/q/{old_code}").page_id == "code-revoked" and "收款码已停用" in customer.html
    assert customer.open(f"/h5/q/{new_code}").page_id == "pay-use-wallet"


def test_a_removed_clerks_collection_code_stops_with_the_removal(shop, client):
    code_id = Staff.get(shop.store.store_id, next(openid for user, openid in shop.openids.items()
                                                   if user not in ("admin-01", "staff-01"))).collection_code_id

    _post(shop.manager, shop.store.store_id, "staff-remove", staff_id=shop.clerk_id)

    customer = Phone(client, "guest-01", user_agent="Mozilla/5.0 (iPhone) Safari/604.1")
    assert customer.open(f"/h5/q/{code_id}").page_id == "code-revoked"


def test_a_notice_made_by_someone_else_is_not_shown(shop):
    page = shop.manager.open(f"/h5/stores/{shop.store.store_id}?notice=请加客服微信kf888转账验证")

    assert page.status == 200 and "kf888" not in page.html
