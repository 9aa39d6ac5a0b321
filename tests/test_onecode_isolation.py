"""Tenancy on the phone (SPEC §1, issue 11.9): every one-code page and action, as every kind
of WeChat (the merchant's admin, the store's manager and clerk, another merchant's admin, a
stranger). A refused action leaves every stored record as it was, audit log included; an
allowed one answers with its redirect. Each caller holds a genuine form token of its own:
what stops it is the role, not the token."""
from __future__ import annotations

from dataclasses import dataclass

import boto3
import pytest

from chalicelib import settings
from chalicelib.h5_identity import WechatIdentity
from chalicelib.onecode import access, activation, admins, codes, devices, pages, staff, stores
from tests.drivers import Phone

ROLES = ("admin", "manager", "clerk", "other_admin", "stranger")
MERCHANT_ACTIONS = {"stores": {"name": "新店"}, "admins": {"name": "新管理员"}, "admin-refund": {},
                    "admin-code": {}, "admin-remove": {}, "profile": {"short_name": "改名"}}
STORE_ACTIONS = {"edit": {"name": "改名店"}, "options": {"notify_off_shift": "on"}, "collection-code": {},
                 "staff": {"name": "新店员"}, "staff-edit": {"name": "改名"}, "staff-refund": {"allowed": "1"},
                 "staff-code": {}, "staff-promote": {}, "staff-remove": {},
                 "devices": {"device_id": "POS-9", "name": "新设备"}, "device-edit": {"name": "改名设备"},
                 "device-remove": {}, "clock-in": {}, "clock-out": {}, "messages": {"on": "0"}}
ALLOWED = {
    **{action: {"admin"} for action in MERCHANT_ACTIONS},
    "edit": {"admin"}, "options": {"admin", "manager"}, "collection-code": {"admin", "manager"},
    **{action: {"admin", "manager"} for action in ("staff", "staff-edit", "staff-refund", "staff-promote",
                                                   "staff-code", "staff-remove", "devices", "device-edit",
                                                   "device-remove")},
    **{action: {"manager", "clerk"} for action in ("clock-in", "clock-out", "messages")},
}
PAGES = {"merchant": ("/h5/merchants/{merchant}", {"admin"}),
         "new-store": ("/h5/merchants/{merchant}/new-store", {"admin"}),
         "store": ("/h5/stores/{store}", {"admin", "manager", "clerk"}),
         "poster": ("/h5/stores/{store}/poster", {"admin", "manager"}),
         "my-code": ("/h5/stores/{store}/my-code", {"manager", "clerk"}),
         "store code image": ("/h5/codes/{store_code}/image.svg", {"admin", "manager"}),
         "clerk code image": ("/h5/codes/{clerk_code}/image.svg", {"admin", "manager", "clerk"}),
         "pending invite image": ("/h5/codes/{invite_code}/image.svg", {"admin", "manager"})}
TABLES = ("merchant_admins_table", "stores_table", "staff_table", "devices_table", "shifts_table", "qr_codes_table",
          "sub_merchants_table", "audit_log_table")


@dataclass
class Shop:
    ids: dict
    phones: dict
    targets: dict  # what each action names: admin_id, staff_id, device_id
    pending_staff_id: str  # a person not yet activated: what a new activation code is for

    def form(self, openid: str, scope: str, action: str, extra: dict) -> dict:
        body = {"csrf": pages.form_token(openid, scope), **self.targets, **extra}
        if action == "staff-code":
            body["staff_id"] = self.pending_staff_id
        if action == "edit":
            body["version"] = str(stores.get(self.targets["store_id"]).version)
        return body


def _snapshot() -> dict:
    """Every item of the tables the one-code setup writes (and the audit log), to compare."""
    client = boto3.client("dynamodb", region_name=settings.current().region)
    config = settings.current()
    state = {}
    for table in TABLES:
        items = client.scan(TableName=getattr(config, table), ConsistentRead=True)["Items"]
        state[table] = sorted(repr(sorted(item.items())) for item in items)
    return state


@pytest.fixture
def shop(bound_console, sandbox, client) -> Shop:
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": "1900000109", "name": "服务商"}).status == 201
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    merchants = [bound_console.call("POST", "/v1/sub-merchants", {"sp_mchid": "1900000109", "name": name}).json["id"]
                 for name in ("一号商户", "二号商户")]
    app_id = settings.current().wechat_app_id
    users = {role: sandbox.create_user(role, "NOT_OPENED").user_id for role in ROLES}
    openids = {role: sandbox.users[user].openid(app_id) for role, user in users.items()}
    phones = {role: Phone(client, user) for role, user in users.items()}
    for phone in phones.values():
        assert phone.open("http://h5.test/h5/me").page_id == "me"

    def make_admin(merchant_id: str, role: str) -> access.Actor:
        code_id = admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"]
        activation.activate(code_id, codes.MERCHANT_ADMIN_ACTIVATION, WechatIdentity(app_id, openids[role], None), {})
        return access.as_admin(merchant_id, openids[role])

    admin = make_admin(merchants[0], "admin")
    second_admin = admins.invite(admin, {"name": "二老板"})
    make_admin(merchants[1], "other_admin")
    store, manager_invite = stores.create(admin, {"name": "一号店"})
    activation.activate(manager_invite.activation_code_id, codes.STORE_MANAGER_ACTIVATION,
                        WechatIdentity(app_id, openids["manager"], None), {"messages_on": "on"})
    manager, store = access.in_store(store.store_id, openids["manager"])
    clerk_invite = staff.invite(manager, store, {"name": "小王"})
    activation.activate(clerk_invite.activation_code_id, codes.CLERK_ACTIVATION,
                        WechatIdentity(app_id, openids["clerk"], None), {"messages_on": "on"})
    clerk, store = access.in_store(store.store_id, openids["clerk"])
    pending = staff.invite(manager, store, {"name": "待激活"})
    devices.add(manager, store, {"device_id": "POS-1", "name": "收银台"})
    ids = {"merchant": merchants[0], "store": store.store_id, "store_code": store.collection_code_id,
           "clerk_code": clerk.staff.collection_code_id, "invite_code": pending.activation_code_id}
    targets = {"admin_id": second_admin.admin_id, "staff_id": clerk.staff.staff_id, "device_id": "POS-1",
               "store_id": store.store_id}
    return Shop(ids, phones, targets, pending.staff_id)


def _post(shop: Shop, role: str, scope: str, action: str, form: dict):
    phone = shop.phones[role]
    return phone.open(f"http://h5.test{scope}/{action}", method="POST",
                      form=shop.form(_openid(phone), scope, action, form))


def _openid(phone: Phone) -> str:
    from chalicelib.h5_identity import COOKIE_NAME, from_cookie_header
    return from_cookie_header(f"{COOKIE_NAME}={phone.app_cookies[COOKIE_NAME]}",
                              settings.current().wechat_app_id).openid


@pytest.mark.parametrize("role", ROLES)
def test_every_action_is_refused_to_a_role_that_may_not_and_changes_nothing(shop, role):
    refused = [(scope_name, action, form) for scope_name, actions in (("merchant", MERCHANT_ACTIONS),
                                                                      ("store", STORE_ACTIONS))
               for action, form in actions.items() if role not in ALLOWED[action]]
    before = _snapshot()
    for scope_name, action, form in refused:
        scope = f"/h5/merchants/{shop.ids['merchant']}" if scope_name == "merchant" else f"/h5/stores/{shop.ids['store']}"

        answer = _post(shop, role, scope, action, form)

        assert answer.status in (403, 404), (role, action, answer.status, answer.page_id)
        assert _snapshot() == before, (role, action)  # nothing refused so far changed anything


@pytest.mark.parametrize("role", ("admin", "manager", "clerk"))
def test_every_action_a_role_may_take_goes_through(shop, role):
    allowed = [(scope_name, action, form) for scope_name, actions in (("merchant", MERCHANT_ACTIONS),
                                                                      ("store", STORE_ACTIONS))
               for action, form in actions.items() if role in ALLOWED[action]
               and action not in ("staff-remove", "device-remove", "admin-remove")]
    for scope_name, action, form in allowed:
        scope = f"/h5/merchants/{shop.ids['merchant']}" if scope_name == "merchant" else f"/h5/stores/{shop.ids['store']}"
        before = _snapshot()
        phone = shop.phones[role]
        raw = phone._app("POST", f"{scope}/{action}", shop.form(_openid(phone), scope, action, form))

        assert raw.status_code == 303, (role, action, raw.status_code, raw.body[:300])
        assert _snapshot() != before, (role, action)


@pytest.mark.parametrize("page", PAGES)
def test_each_page_opens_only_for_the_roles_it_is_for(shop, page):
    path, allowed = PAGES[page]
    for role in ROLES:
        phone = shop.phones[role]
        cookie = "; ".join(f"{name}={value}" for name, value in phone.app_cookies.items())
        raw = phone.client.http.get(path.format(**shop.ids), headers={"cookie": cookie, "accept": "*/*"})

        assert (raw.status_code == 200) == (role in allowed), (page, role, raw.status_code)
        if role not in allowed:
            assert raw.status_code in (403, 404)
