"""H1 for the one-code kinds and H3 on the phone: what each code opens for whom, activation
through the confirm page, and the merchant admin pages, all through the app (chalice.test)
with phones that sign in through the sandbox's WeChat OAuth."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import pytest

from chalicelib import h5
from chalicelib.h5_identity import COOKIE_NAME, from_cookie_header
from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import access, admins, codes, pages, staff, stores
from chalicelib.onecode.models import MerchantAdmin, Staff, Store
from tests.dynamodb_calls import counting_aws_calls
from tests.environment import PARAMETERS

ACTIVATION_PAGES = {codes.MERCHANT_ADMIN_ACTIVATION, codes.STORE_MANAGER_ACTIVATION, codes.CLERK_ACTIVATION}
VALID_PAGES = {codes.MERCHANT_ADMIN_ACTIVATION: ("activation-confirm", 200),
               codes.STORE_MANAGER_ACTIVATION: ("activation-confirm", 200),
               codes.CLERK_ACTIVATION: ("activation-confirm", 200),
               codes.MERCHANT_MANAGEMENT: ("not-merchant-admin", 403),
               codes.STORE_COLLECTION: ("pay-unavailable", 409),
               codes.CLERK_COLLECTION: ("pay-unavailable", 409)}
"""The world's provider has no WeChat Pay: a WeChat customer learns where and why (H7)."""


def openid_of(holder) -> str:
    return from_cookie_header(f"{COOKIE_NAME}={holder.app_cookies[COOKIE_NAME]}", PARAMETERS["WechatAppId"]).openid


def admin_label(world) -> str:
    """How the audit log names the merchant's first admin: role and stable id, never the openid."""
    return f"admin#{MerchantAdmin.get(world.merchant_id, openid_of(world.admin)).admin_id}"


def post(holder, path: str, form: dict):
    return holder.open(path, method="POST", form=form)


def fetch_image(holder, path: str):
    """An <img> request of the phone's browser (WeChat's WebView accepts images and */*)."""
    cookie = "; ".join(f"{name}={value}" for name, value in holder.app_cookies.items())
    return holder.client.http.get(path, headers={"cookie": cookie, "accept": "image/webp,image/*,*/*;q=0.8"})


def csrf_of(holder, path: str) -> str:
    return holder.open(path).form_value("csrf")


@dataclass
class World:
    account_id: str
    merchant_id: str
    admin: object  # admin-01's phone, the merchant's first admin ("老板")
    clerk: object  # staff-01's phone, an activated clerk of the store
    store: Store
    codes: dict  # kind -> a code of that kind that can still be used

    @property
    def merchant_path(self) -> str:
        return f"/h5/merchants/{self.merchant_id}"


def _activate(holder, code_id: str, form: dict | None = None):
    assert holder.open(f"/h5/q/{code_id}").page_id == "activation-confirm", holder.html
    return post(holder, f"/h5/q/{code_id}/confirm", {"csrf": holder.form_value("csrf"), **(form or {})})


@pytest.fixture
def world(bound_console, phone) -> World:
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": "1900000109", "name": "服务商"}).status == 201
    merchant_id = bound_console.call("POST", "/v1/sub-merchants", {"sp_mchid": "1900000109", "name": "一号商户"}).json["id"]
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    setup = bound_console.call("GET", f"/v1/sub-merchants/{merchant_id}/setup-codes").json
    admin = phone("admin-01")
    assert _activate(admin, setup["admin_activation"]["id"], {"name": "老板"}).page_id == "activation-done"
    path = f"/h5/merchants/{merchant_id}"
    answer = post(admin, f"{path}/stores", {"csrf": csrf_of(admin, path), "name": "人民路店", "city": "上海",
                                            "manager_name": "王店长"})
    assert answer.status == 303, answer.html
    store = next(Store.by_merchant.query(merchant_id))
    actor = access.as_admin(merchant_id, openid_of(admin))
    first_clerk = staff.invite(actor, store, {"name": "小李", "role": "clerk"})
    clerk = phone("staff-01")
    assert _activate(clerk, first_clerk.activation_code_id, {"messages_on": "on"}).page_id == "activation-done"
    clerk_record = Staff.get(store.store_id, openid_of(clerk))
    pending_clerk = staff.invite(actor, store, {"name": "小张", "role": "clerk"})
    manager_invite = next(member for member in Staff.query(store.store_id) if member.role == "manager")
    admin_invite = admins.invite(actor, {"name": "二老板"})
    return World(account_id, merchant_id, admin, clerk, store, {
        codes.MERCHANT_ADMIN_ACTIVATION: admin_invite.activation_code_id,
        codes.MERCHANT_MANAGEMENT: setup["management"]["id"],
        codes.STORE_MANAGER_ACTIVATION: manager_invite.activation_code_id,
        codes.CLERK_ACTIVATION: pending_clerk.activation_code_id,
        codes.STORE_COLLECTION: store.collection_code_id,
        codes.CLERK_COLLECTION: clerk_record.collection_code_id})


@pytest.fixture
def stranger(phone, sandbox):
    return phone(sandbox.create_user("路人", "NOT_OPENED").user_id)


# --- every kind in every state ------------------------------------------------------------------

def test_a_usable_code_of_each_kind_opens_its_page_for_a_stranger(world, stranger):
    for kind, code_id in world.codes.items():
        stranger.open(f"/h5/q/{code_id}")
        assert (stranger.page_id, stranger.status) == VALID_PAGES[kind], kind
    assert "小李" in stranger.html and "人民路店" in stranger.html and "一号商户" in stranger.html


def test_an_expired_activation_code_says_to_ask_for_a_new_one_while_permanent_codes_never_expire(world, stranger):
    for code_id in world.codes.values():
        QrCode(code_id).update(actions=[QrCode.expires_at.set(now() - 1)])

    for kind, code_id in world.codes.items():
        stranger.open(f"/h5/q/{code_id}")
        if kind in ACTIVATION_PAGES:
            assert (stranger.page_id, stranger.status) == ("code-expired", 410), kind
            assert "请联系邀请您的管理员重新生成激活码" in stranger.html and "控制台" not in stranger.html
        else:
            assert (stranger.page_id, stranger.status) == VALID_PAGES[kind], kind


def test_a_used_activation_code_opens_the_used_page_for_the_next_scanner(world, phone, sandbox, stranger):
    for kind in ACTIVATION_PAGES:
        newcomer = phone(sandbox.create_user("新人", "NOT_OPENED").user_id)
        assert _activate(newcomer, world.codes[kind]).page_id == "activation-done", kind

        stranger.open(f"/h5/q/{world.codes[kind]}")

        assert (stranger.page_id, stranger.status) == ("code-used", 410), kind
        assert "只能使用一次" in stranger.html


def test_a_revoked_code_of_each_kind_opens_the_revoked_page(world, stranger):
    for code_id in world.codes.values():
        codes.revoke(code_id)

    for kind, code_id in world.codes.items():
        stranger.open(f"/h5/q/{code_id}")
        assert (stranger.page_id, stranger.status) == ("code-revoked", 410), kind
        assert "控制台" not in stranger.html


def test_an_unknown_code_opens_the_unknown_page(world, stranger):
    for code_id in world.codes.values():
        stranger.open(f"/h5/q/{code_id}x")
        assert (stranger.page_id, stranger.status) == ("code-unknown", 404)


def test_a_phone_not_signed_in_is_sent_to_wechat_oauth_by_an_activation_code(world, client):
    answer = client.http.get(f"/h5/q/{world.codes[codes.MERCHANT_ADMIN_ACTIVATION]}")

    assert answer.status_code == 302 and "/connect/oauth2/authorize" in answer.headers["Location"]


# --- activation -----------------------------------------------------------------------------------

def test_the_admin_confirm_page_prefills_the_invited_name_and_the_confirm_makes_an_admin(world, stranger):
    code_id = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]
    stranger.open(f"/h5/q/{code_id}")
    assert 'name="name" value="二老板"' in stranger.html and "您的称呼" in stranger.html

    done = post(stranger, f"/h5/q/{code_id}/confirm", {"csrf": stranger.form_value("csrf"), "name": "二老板娘"})

    assert done.page_id == "activation-done" and f'href="/h5/merchants/{world.merchant_id}"' in done.html
    record = MerchantAdmin.get(world.merchant_id, openid_of(stranger))
    assert record.name == "二老板娘" and QrCode.get(code_id).state == "used"


def test_a_too_long_name_re_renders_the_admin_confirm_page_with_the_reason(world, stranger):
    code_id = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]
    stranger.open(f"/h5/q/{code_id}")

    answer = post(stranger, f"/h5/q/{code_id}/confirm", {"csrf": stranger.form_value("csrf"), "name": "名" * 40})

    assert (answer.status, answer.page_id) == (400, "activation-confirm")
    assert "您的称呼最多 32 个字" in answer.html and QrCode.get(code_id).state != "used"


def test_the_clerk_confirm_page_shows_role_store_and_name_and_can_decline_messages(world, stranger):
    code_id = world.codes[codes.CLERK_ACTIVATION]
    stranger.open(f"/h5/q/{code_id}")
    assert all(text in stranger.html for text in ("店员", "人民路店", "小张", "接收顾客支付成功消息"))
    assert re.search(r'name="messages_on" value="on" checked', stranger.html)

    done = post(stranger, f"/h5/q/{code_id}/confirm", {"csrf": stranger.form_value("csrf")})

    assert done.page_id == "activation-done" and f'href="/h5/stores/{world.store.store_id}"' in done.html
    record = Staff.get(world.store.store_id, openid_of(stranger))
    assert record.role == "clerk" and record.name == "小张" and record.messages_on is False


def test_a_confirm_with_a_token_of_another_phone_is_refused_and_the_code_stays_unused(world, stranger):
    code_id = world.codes[codes.STORE_MANAGER_ACTIVATION]
    world.clerk.open(f"/h5/q/{code_id}")
    stranger.open(f"/h5/q/{code_id}")

    answer = post(stranger, f"/h5/q/{code_id}/confirm", {"csrf": "forged"})

    assert (answer.status, answer.page_id) == (403, "confirm-stale") and QrCode.get(code_id).state != "used"


def test_two_phones_confirming_one_admin_code_at_once_make_exactly_one_admin(world, phone, sandbox):
    code_id = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]
    phones = [phone(sandbox.create_user(f"抢码{index}", "NOT_OPENED").user_id) for index in range(2)]
    tokens = [holder.open(f"/h5/q/{code_id}").form_value("csrf") for holder in phones]
    start = threading.Barrier(2)
    pages: list = [None, None]

    def confirm(index):
        # The confirm handler itself, not through chalice.test.Client: Chalice keeps the current
        # request on the app object, which two threads of one test client would share.
        cookie = "; ".join(f"{name}={value}" for name, value in phones[index].app_cookies.items())
        start.wait()
        answer = h5.confirm(code_id, cookie, {"csrf": tokens[index]})
        pages[index] = re.search(r'data-page="([^"]+)"', answer.body).group(1)

    threads = [threading.Thread(target=confirm, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(pages) == ["activation-done", "code-used"]
    made = [holder for holder in phones if MerchantAdmin.count(world.merchant_id, MerchantAdmin.member_key
                                                                == openid_of(holder))]
    assert len(made) == 1


def test_an_admin_scanning_another_admin_code_is_told_the_role_is_held_and_the_code_stays_unused(world):
    code_id = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]

    world.admin.open(f"/h5/q/{code_id}")

    assert world.admin.page_id == "activation-already" and "商户管理员" in world.admin.html
    assert f'href="/h5/merchants/{world.merchant_id}"' in world.admin.html
    assert codes.state_of(code_id) == "pending"


# --- management and collection codes ------------------------------------------------------------

def test_the_management_code_takes_an_admin_to_the_merchant_page(world):
    raw = world.admin._app("GET", f"/h5/q/{world.codes[codes.MERCHANT_MANAGEMENT]}")
    assert raw.status_code == 302 and raw.headers["Location"] == world.merchant_path

    assert world.admin.open(world.merchant_path).page_id == "merchant"


def test_the_management_code_tells_a_stranger_to_ask_for_an_activation_code(world, stranger):
    stranger.open(f"/h5/q/{world.codes[codes.MERCHANT_MANAGEMENT]}")

    assert (stranger.status, stranger.page_id) == (403, "not-merchant-admin")
    assert "您不是该商户的管理员" in stranger.html and "激活码" in stranger.html


@pytest.mark.parametrize("kind", [codes.STORE_COLLECTION, codes.CLERK_COLLECTION])
def test_a_collection_code_gives_staff_and_admins_a_link_to_the_store_page(world, kind):
    for holder in (world.clerk, world.admin):
        holder.open(f"/h5/q/{world.codes[kind]}")
        assert holder.page_id == "collection-staff" and f'href="/h5/stores/{world.store.store_id}"' in holder.html
        assert f'href="/h5/pay/{world.codes[kind]}"' in holder.html


def test_a_customer_scanning_the_store_code_of_a_merchant_without_wechat_pay_sees_the_store_and_why(world, stranger):
    stranger.open(f"/h5/q/{world.codes[codes.STORE_COLLECTION]}")

    assert (stranger.status, stranger.page_id) == (409, "pay-unavailable")
    assert "一号商户" in stranger.html and "人民路店" in stranger.html and "该商户的微信支付尚未开通完成" in stranger.html
    assert Order.count() == 0


def test_the_clerk_code_shows_the_merchant_short_name_and_the_clerk(world, stranger):
    merchant = SubMerchant.get(world.account_id, world.merchant_id)
    merchant.update(actions=[SubMerchant.short_name.set("一号小馆")])

    stranger.open(f"/h5/q/{world.codes[codes.CLERK_COLLECTION]}")

    assert stranger.page_id == "pay-unavailable" and "一号小馆" in stranger.html and "小李" in stranger.html


def test_alipay_opens_the_customer_page_without_signing_in(world, client):
    answer = client.http.get(f"/h5/q/{world.codes[codes.STORE_COLLECTION]}",
                             headers={"user-agent": "Mozilla/5.0 (iPhone) AlipayClient/10.5.0"})

    assert answer.status_code == 409 and 'data-page="pay-unavailable"' in answer.body.decode()
    assert "该商户暂未开通支付宝收款" in answer.body.decode() and "set-cookie" not in answer.headers
    assert Order.count() == 0


def test_a_signed_in_clerk_scanning_the_store_code_costs_at_most_two_dynamodb_round_trips(world):
    with counting_aws_calls() as calls:
        raw = world.clerk._app("GET", f"/h5/q/{world.codes[codes.STORE_COLLECTION]}")

    assert raw.status_code == 200 and 'data-page="collection-staff"' in raw.body.decode()
    assert sum(calls.values()) <= 2, calls
    assert calls == {"GetItem": 1, "BatchGetItem": 1}


# --- merchant admin pages (H3) --------------------------------------------------------------------

def _audit(bound_console) -> list[dict]:
    return bound_console.call("GET", "/v1/audit-log?limit=100").json["data"]


def _admin_id(world, name: str) -> str:
    return next(admin.admin_id for admin in admins.people(world.merchant_id) if admin.name == name)


def test_the_merchant_page_lists_stores_admins_profile_and_the_management_code(world):
    page = world.admin.open(world.merchant_path)

    assert page.page_id == "merchant" and "一号商户" in page.html
    assert f'href="/h5/stores/{world.store.store_id}"' in page.html and "人民路店" in page.html
    assert f'href="{world.merchant_path}/new-store"' in page.html
    assert "老板" in page.html and "二老板" in page.html and "已激活" in page.html and "待激活" in page.html
    pending_code = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]
    assert f'src="/h5/codes/{pending_code}/image.svg"' in page.html
    assert f'src="/h5/codes/{world.codes[codes.MERCHANT_MANAGEMENT]}/image.svg"' in page.html


def test_a_stranger_opening_the_merchant_page_gets_the_no_role_page(world, stranger):
    stranger.open(world.merchant_path)

    assert (stranger.status, stranger.page_id) == (404, "no-role-here")


def test_the_stores_list_pages_twenty_at_a_time_with_a_more_link(world):
    actor = access.as_admin(world.merchant_id, openid_of(world.admin))
    for number in range(20):
        stores.create(actor, {"name": f"分店{number:02d}"})

    first = world.admin.open(world.merchant_path).html
    more = re.search(r'href="([^"]+)" id="more-stores"', first).group(1).replace("&amp;", "&")
    second = world.admin.open(more).html

    listed = [re.findall(r'href="/h5/stores/([^"]+)"', page) for page in (first, second)]
    assert [len(ids) for ids in listed] == [20, 1] and 'id="more-stores"' not in second
    assert set(listed[0] + listed[1]) == {store.store_id for store in Store.by_merchant.query(world.merchant_id)}


def test_adding_a_store_from_the_phone_writes_it_with_its_manager_and_audits_the_admin(world, bound_console):
    token = csrf_of(world.admin, f"{world.merchant_path}/new-store")
    answer = post(world.admin, f"{world.merchant_path}/stores",
                  {"csrf": token, "name": "南京路店", "province": "上海", "city": "上海", "district": "黄浦区",
                   "address": "南京东路 1 号", "phone": "021-12345678", "longitude": "121.4737",
                   "latitude": "31.2304", "currency": "CNY", "collection_type": "wechat",
                   "manager_name": "赵店长", "manager_phone": "13800000000"})

    store = next(store for store in Store.by_merchant.query(world.merchant_id) if store.name == "南京路店")
    manager = next(iter(Staff.query(store.store_id)))
    assert answer.status == 303
    assert answer.last[2]["Location"].startswith(f"/h5/stores/{store.store_id}?staff={manager.staff_id}&notice=")
    assert (store.district, store.longitude, store.collection_type) == ("黄浦区", "121.4737", "wechat")
    manager = next(iter(Staff.query(store.store_id)))
    assert (manager.role, manager.name, manager.phone) == ("manager", "赵店长", "13800000000")
    entry = next(entry for entry in _audit(bound_console) if entry["entity"] == f"store#{store.store_id}")
    assert entry["action"] == "store.created" and entry["actor"] == admin_label(world) and openid_of(world.admin) not in str(entry)


def test_a_store_field_error_re_renders_the_form_with_the_reason_and_what_was_typed(world):
    token = csrf_of(world.admin, f"{world.merchant_path}/new-store")

    answer = post(world.admin, f"{world.merchant_path}/stores", {"csrf": token, "name": "错店", "longitude": "东经"})

    assert (answer.status, answer.page_id) == (400, "merchant-new-store")
    assert 'id="error-longitude"' in answer.html and "经度必须是数字" in answer.html
    assert 'value="错店"' in answer.html and 'value="东经"' in answer.html
    assert [store.name for store in Store.by_merchant.query(world.merchant_id)] == ["人民路店"]


def test_inviting_an_admin_writes_a_pending_admin_whose_code_only_admins_can_see(world, stranger, bound_console):
    token = csrf_of(world.admin, world.merchant_path)

    answer = post(world.admin, f"{world.merchant_path}/admins", {"csrf": token, "name": "会计"})

    assert answer.status == 303
    invited = next(admin for admin in admins.people(world.merchant_id) if admin.name == "会计")
    assert invited.openid is None and codes.state_of(invited.activation_code_id) == "pending"
    image = fetch_image(world.admin, f"/h5/codes/{invited.activation_code_id}/image.png")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.body.startswith(b"\x89PNG")
    assert image.headers["Cache-Control"].startswith("private")
    stranger.open(f"/h5/codes/{invited.activation_code_id}/image.svg")
    assert stranger.status == 404
    entry = next(entry for entry in _audit(bound_console) if entry["action"] == "merchant_admin.invited"
                 and entry["changes"]["name"]["to"] == "会计")
    assert entry["actor"] == admin_label(world) and openid_of(world.admin) not in str(entry)


def test_an_empty_admin_name_re_renders_the_merchant_page_with_the_reason(world):
    token = csrf_of(world.admin, world.merchant_path)

    answer = post(world.admin, f"{world.merchant_path}/admins", {"csrf": token, "name": " "})

    assert (answer.status, answer.page_id) == (400, "merchant") and 'id="error-name"' in answer.html
    assert "请填写管理员姓名" in answer.html


def test_store_codes_images_are_shown_to_the_manager_and_the_clerk_only_sees_their_own(world, phone, sandbox):
    manager = phone(sandbox.create_user("店长", "NOT_OPENED").user_id)
    assert _activate(manager, world.codes[codes.STORE_MANAGER_ACTIVATION]).page_id == "activation-done"

    assert manager._app("GET", f"/h5/codes/{world.codes[codes.STORE_COLLECTION]}/image.svg").status_code == 200
    assert world.clerk._app("GET", f"/h5/codes/{world.codes[codes.CLERK_COLLECTION]}/image.svg").status_code == 200
    assert world.clerk._app("GET", f"/h5/codes/{world.codes[codes.STORE_COLLECTION]}/image.svg").status_code == 404
    assert fetch_image(world.clerk, f"/h5/codes/{world.codes[codes.MERCHANT_MANAGEMENT]}/image.png").status_code == 404


def test_removing_the_last_admin_is_refused_and_the_admin_stays(world):
    token = csrf_of(world.admin, world.merchant_path)
    me = MerchantAdmin.get(world.merchant_id, openid_of(world.admin))

    answer = post(world.admin, f"{world.merchant_path}/admin-remove", {"csrf": token, "admin_id": me.admin_id})

    assert (answer.status, answer.page_id) == (409, "refused-last_admin") and "最后一位商户管理员" in answer.html
    after = MerchantAdmin.get(world.merchant_id, openid_of(world.admin))
    assert after.version == me.version and after.can_refund


def test_removing_a_pending_admin_deletes_the_invite_revokes_its_code_and_is_audited(world, bound_console):
    token = csrf_of(world.admin, world.merchant_path)
    invite_id = _admin_id(world, "二老板")

    answer = post(world.admin, f"{world.merchant_path}/admin-remove", {"csrf": token, "admin_id": invite_id})

    assert answer.status == 303
    assert all(admin.admin_id != invite_id for admin in admins.people(world.merchant_id))
    assert codes.state_of(world.codes[codes.MERCHANT_ADMIN_ACTIVATION]) == "revoked"
    entry = next(entry for entry in _audit(bound_console) if entry["action"] == "merchant_admin.removed")
    assert entry["actor"] == admin_label(world) and openid_of(world.admin) not in str(entry)


def test_the_last_admin_with_refund_permission_keeps_it_and_another_admin_can_lose_it(world, stranger, bound_console):
    token = csrf_of(world.admin, world.merchant_path)
    me = _admin_id(world, "老板")
    refused = post(world.admin, f"{world.merchant_path}/admin-refund", {"csrf": token, "admin_id": me})
    assert (refused.status, refused.page_id) == (409, "refused-last_refund_admin")
    assert MerchantAdmin.get(world.merchant_id, openid_of(world.admin)).can_refund
    _activate(stranger, world.codes[codes.MERCHANT_ADMIN_ACTIVATION])

    answer = post(world.admin, f"{world.merchant_path}/admin-refund", {"csrf": token, "admin_id": me})

    assert answer.status == 303 and not MerchantAdmin.get(world.merchant_id, openid_of(world.admin)).can_refund
    granted = post(world.admin, f"{world.merchant_path}/admin-refund",
                   {"csrf": token, "admin_id": me, "can_refund": "on"})
    assert granted.status == 303 and MerchantAdmin.get(world.merchant_id, openid_of(world.admin)).can_refund
    changes = [entry["changes"]["can_refund"]["to"] for entry in _audit(bound_console)
               if entry["action"] == "merchant_admin.refund_changed"]
    assert changes == [True, False]


def test_reissuing_a_pending_admin_code_revokes_the_old_one(world):
    token = csrf_of(world.admin, world.merchant_path)
    old_code = world.codes[codes.MERCHANT_ADMIN_ACTIVATION]

    answer = post(world.admin, f"{world.merchant_path}/admin-code",
                  {"csrf": token, "admin_id": _admin_id(world, "二老板")})

    assert answer.status == 303 and codes.state_of(old_code) == "revoked"
    new_code = next(admin for admin in admins.people(world.merchant_id) if admin.name == "二老板").activation_code_id
    assert new_code != old_code and codes.state_of(new_code) == "pending"


def test_editing_the_profile_changes_what_customers_see_and_the_logo_may_come_from_https(world, stranger, bound_console):
    token = csrf_of(world.admin, world.merchant_path)

    answer = post(world.admin, f"{world.merchant_path}/profile",
                  {"csrf": token, "short_name": "一号小馆", "logo_url": "https://cdn.example.com/logo.png"})

    assert answer.status == 303
    setup = admins.setup_of(world.merchant_id)
    assert (setup.display_name, setup.display_logo_url) == ("一号小馆", "https://cdn.example.com/logo.png")
    merchant = SubMerchant.get(world.account_id, world.merchant_id)
    assert merchant.short_name != "一号小馆" and merchant.version == 1  # the provider's record is untouched
    page = world.admin.open(world.merchant_path)
    assert 'src="https://cdn.example.com/logo.png"' in page.html
    assert "img-src 'self' data: blob: https:;" in page.last[2]["Content-Security-Policy"]
    stranger.open(f"/h5/q/{world.codes[codes.STORE_COLLECTION]}")
    assert "一号小馆" in stranger.html and 'src="https://cdn.example.com/logo.png"' in stranger.html
    entry = next(entry for entry in _audit(bound_console) if entry["action"] == "sub_merchant.profile_changed")
    assert entry["actor"] == admin_label(world) and openid_of(world.admin) not in str(entry) and entry["changes"]["display_name"]["to"] == "一号小馆"


def test_a_logo_that_is_not_https_re_renders_the_profile_form_with_the_reason(world):
    token = csrf_of(world.admin, world.merchant_path)

    answer = post(world.admin, f"{world.merchant_path}/profile",
                  {"csrf": token, "short_name": "一号小馆", "logo_url": "http://cdn.example.com/logo.png"})

    assert (answer.status, answer.page_id) == (400, "merchant") and 'id="error-logo_url"' in answer.html
    assert 'value="http://cdn.example.com/logo.png"' in answer.html
    assert SubMerchant.get(world.account_id, world.merchant_id).short_name is None


def test_a_form_with_a_stale_token_is_refused_and_changes_nothing(world):
    token_of_another_page = pages.form_token(openid_of(world.admin), "/h5/merchants/m_other")

    for form in ({"csrf": "stale"}, {}, {"csrf": token_of_another_page}):
        answer = post(world.admin, f"{world.merchant_path}/admins", {**form, "name": "不速之客"})
        assert (answer.status, answer.page_id) == (403, "form-stale")
    assert all(admin.name != "不速之客" for admin in admins.people(world.merchant_id))


def test_a_stranger_posting_to_the_merchant_page_gets_the_no_role_page(world, stranger):
    token = csrf_of(world.admin, world.merchant_path)

    answer = post(stranger, f"{world.merchant_path}/admins", {"csrf": token, "name": "不速之客"})

    assert (answer.status, answer.page_id) == (404, "no-role-here")
    assert all(admin.name != "不速之客" for admin in admins.people(world.merchant_id))


def test_my_page_lists_the_merchants_and_stores_of_the_wechat(world, stranger):
    assert f'href="{world.merchant_path}"' in world.admin.open("/h5/me").html
    mine = world.clerk.open("/h5/me")
    assert mine.page_id == "me" and f'href="/h5/stores/{world.store.store_id}"' in mine.html and "店员" in mine.html
    assert "还没有" in stranger.open("/h5/me").html


def test_the_scan_activation_and_merchant_pages_speak_chinese(world, stranger):
    from tests.test_h5_words import visible_words

    shown = {}
    for holder in (stranger, world.admin):
        for code_id in world.codes.values():
            page = holder.open(f"/h5/q/{code_id}")
            shown[page.page_id] = page.html
    shown["merchant"] = world.admin.open(world.merchant_path).html
    shown["me"] = world.admin.open("/h5/me").html
    done = _activate(stranger, world.codes[codes.CLERK_ACTIVATION])
    shown[done.page_id] = done.html
    codes.revoke(world.codes[codes.STORE_COLLECTION])
    shown["code-revoked"] = stranger.open(f"/h5/q/{world.codes[codes.STORE_COLLECTION]}").html

    assert {"activation-confirm", "not-merchant-admin", "pay-unavailable", "activation-already",
            "collection-staff", "merchant", "me", "activation-done", "code-revoked"} <= set(shown)
    assert {page_id: visible_words(page) for page_id, page in shown.items() if visible_words(page)} == {}


def test_a_customer_outside_wechat_sees_the_store_without_being_sent_to_wechat_sign_in(world, client):
    from tests.drivers import Phone
    camera = Phone(client, "guest-01", user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1")

    page = camera.open(f"/h5/q/{world.codes[codes.STORE_COLLECTION]}")

    assert (page.status, page.page_id) == (200, "pay-use-wallet") and not camera.app_cookies


def test_a_broken_cursor_or_a_bad_version_is_told_in_chinese(world):
    page = world.admin.open(f"{world.merchant_path}?cursor=x")
    assert (page.status, page.page_id) == (400, "invalid-field") and "翻页链接已失效" in page.html
    assert "cursor is not" not in page.html

    edit = post(world.admin, f"/h5/stores/{world.store.store_id}/edit",
                {"csrf": csrf_of(world.admin, f"/h5/stores/{world.store.store_id}"), "name": "新名字", "version": "x"})
    assert edit.status == 400 and "version is required" not in edit.html
    assert stores.get(world.store.store_id).name != "新名字"


def test_names_with_invisible_or_direction_changing_characters_are_refused(world):
    answer = post(world.admin, f"{world.merchant_path}/admins",
                  {"csrf": csrf_of(world.admin, world.merchant_path), "name": "老\u202e板"})

    assert answer.status == 400 and "不可见字符" in answer.html
    assert [admin.name for admin in admins.people(world.merchant_id) if admin.name == "老\u202e板"] == []
