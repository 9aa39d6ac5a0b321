"""The one-code setup's figures (issue 11): DynamoDB round trips for a scan of each code kind
by who scans it, and the bytes of each H5 page (HTML + the CSS it loads; the pages load no
JS) for a store with 10 staff and 5 devices. Goals: ≤ 2 round trips for a store collection
code, ≤ 15 KB per page.

A round trip is one AWS API call (a BatchGetItem of four items in two tables is one).
"""
from __future__ import annotations

import re
from collections import Counter

from tests import environment

PAGE_BYTES_GOAL = 15 * 1024


def _asset_bytes(client, html: str) -> int:
    """The stylesheets and scripts a page loads (the poster's one script included)."""
    found = re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) + re.findall(r'<script src="([^"]+)"', html)
    return sum(len(client.http.get(path).body) for path in found)


def measure() -> tuple[list[tuple[str, Counter]], list[tuple[str, int, int]]]:
    from chalice.test import Client

    from app import app
    from chalicelib import settings
    from chalicelib.h5_identity import WechatIdentity
    from chalicelib.onecode import access, activation, admins, codes, devices, staff, stores
    from tests.drivers import WECHAT_USER_AGENT, Console, Phone
    from tests.dynamodb_calls import counting_aws_calls

    scans: list[tuple[str, Counter]] = []
    pages: list[tuple[str, int, int]] = []
    with environment.in_memory_aws(), environment.sandbox_in_process() as (world, _), \
            Client(app, stage_name="local") as client:
        owner = Console(client).sign_up_and_in("bench-onecode@example.com")
        binding = owner.call("POST", "/v1/wechat-binding-codes").json
        Phone(client, "admin-01").open(binding["url"]).confirm()
        owner.call("POST", "/v1/providers", {"sp_mchid": "1900000109", "name": "基准服务商"})
        merchant_id = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": "1900000109", "name": "基准商户"}).json["id"]
        account_id = owner.call("GET", "/v1/me").json["id"]
        app_id = settings.current().wechat_app_id
        users = {role: world.create_user(role, "NOT_OPENED").user_id for role in ("admin", "manager", "clerk", "guest")}
        openid = {role: world.users[user].openid(app_id) for role, user in users.items()}
        phones = {role: Phone(client, user) for role, user in users.items()}
        for phone in phones.values():
            phone.open(f"{environment.PUBLIC_BASE_URL}/h5/me")

        setup = admins.setup_codes(account_id, merchant_id)
        fresh_admin_code = admins.reissue_admin_activation(account_id, merchant_id)["admin_activation"]["id"]
        admin_code = setup["admin_activation"]["id"]
        activation.activate(fresh_admin_code, codes.MERCHANT_ADMIN_ACTIVATION, WechatIdentity(app_id, openid["admin"], None),
                            {"name": "老板"})
        admin = access.as_admin(merchant_id, openid["admin"])
        store, manager_invite = stores.create(admin, {"name": "一号店", "province": "广东省", "city": "深圳市",
                                                      "district": "南山区", "address": "科技园路 1 号"})
        activation.activate(manager_invite.activation_code_id, codes.STORE_MANAGER_ACTIVATION,
                            WechatIdentity(app_id, openid["manager"], None), {"messages_on": "on"})
        manager, store = access.in_store(store.store_id, openid["manager"])
        clerk_invite = staff.invite(manager, store, {"name": "小王", "phone": "13800000000"})
        activation.activate(clerk_invite.activation_code_id, codes.CLERK_ACTIVATION,
                            WechatIdentity(app_id, openid["clerk"], None), {"messages_on": "on"})
        for index in range(8):
            staff.invite(manager, store, {"name": f"店员{index + 1:02d}", "phone": f"1390000{index:04d}",
                                          "remark": "早班" if index % 2 else "晚班"})
        for index in range(5):
            devices.add(manager, store, {"device_id": f"POS-{index + 1:03d}", "name": f"{index + 1} 号收银台",
                                         "device_type": "cashier_desk"})
        clerk, _ = access.in_store(store.store_id, openid["clerk"])
        admin_in_store, _ = access.in_store(store.store_id, openid["admin"])
        pending_clerk = staff.invite(manager, store, {"name": "待激活店员"})
        pending_admin = admins.invite(admin, {"name": "二老板"})

        def scan(label: str, role: str, code_id: str, user_agent: str | None = None) -> None:
            headers = {"cookie": "; ".join(f"{k}={v}" for k, v in phones[role].app_cookies.items()),
                       "user-agent": user_agent or WECHAT_USER_AGENT}
            with counting_aws_calls() as calls:
                client.http.get(f"/h5/q/{code_id}", headers=headers)
            scans.append((label, calls))

        scan("store collection code, customer (WeChat)", "guest", store.collection_code_id)
        scan("store collection code, customer (Alipay)", "guest", store.collection_code_id,
             "Mozilla/5.0 AlipayClient/10.5.0")
        scan("store collection code, clerk", "clerk", store.collection_code_id)
        scan("store collection code, merchant admin", "admin", store.collection_code_id)
        scan("clerk collection code, customer", "guest", clerk.staff.collection_code_id)
        scan("merchant management code, admin", "admin", setup["management"]["id"])
        scan("merchant admin activation code, new admin", "guest", pending_admin.activation_code_id)
        scan("merchant admin activation code, used", "guest", admin_code)
        scan("store manager activation code, used", "guest", manager_invite.activation_code_id)
        scan("clerk activation code, new clerk", "guest", pending_clerk.activation_code_id)
        pending_manager = staff.invite(admin_in_store, store, {"name": "二店长", "role": "manager"})
        scan("store manager activation code, new manager", "guest", pending_manager.activation_code_id)
        scan("clerk collection code, the clerk", "clerk", clerk.staff.collection_code_id)
        old_code = pending_clerk.activation_code_id
        staff.reissue_code(manager, store, pending_clerk.staff_id)
        scan("clerk activation code, revoked", "guest", old_code)
        pending_clerk = staff.find(store.store_id, pending_clerk.staff_id)

        def page(label: str, role: str, path: str) -> None:
            phone = phones[role]
            phone.open(environment.PUBLIC_BASE_URL + path)
            pages.append((label, len(phone.html.encode()), _asset_bytes(client, phone.html)))

        page("H1 admin activation confirm", "guest", f"/h5/q/{pending_admin.activation_code_id}")
        page("H1 clerk activation confirm", "guest", f"/h5/q/{pending_clerk.activation_code_id}")
        page("H1 collection code, customer", "guest", f"/h5/q/{store.collection_code_id}")
        page("H1 collection code, staff", "clerk", f"/h5/q/{store.collection_code_id}")
        page("H3 merchant management", "admin", f"/h5/merchants/{merchant_id}")
        page("H4 new store form", "admin", f"/h5/merchants/{merchant_id}/new-store")
        page("H4 store, as admin (10 staff, 5 devices)", "admin", f"/h5/stores/{store.store_id}")
        page("H5 store, as manager", "manager", f"/h5/stores/{store.store_id}")
        page("H6 store, as clerk", "clerk", f"/h5/stores/{store.store_id}")
        page("H6 my collection code", "clerk", f"/h5/stores/{store.store_id}/my-code")
        page("H4 store poster (A5)", "manager", f"/h5/stores/{store.store_id}/poster")
        page("我的 (roles of a WeChat)", "admin", "/h5/me")
    return scans, pages


def report() -> None:
    scans, pages = measure()
    print("One-code scans: DynamoDB round trips per scan of /h5/q/{code} (signed-in phone)")
    print(f"{'code, scanned by':48} {'round trips':>11}  by operation")
    for label, calls in scans:
        detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
        print(f"{label:48} {sum(calls.values()):>11}  {detail}")
    print()
    print(f"One-code H5 pages: bytes (HTML + the CSS and JS it loads); goal ≤ {PAGE_BYTES_GOAL} each")
    print(f"{'page':48} {'HTML':>7} {'CSS+JS':>7} {'total':>7}")
    for label, html_bytes, css_bytes in pages:
        total = html_bytes + css_bytes
        print(f"{label:48} {html_bytes:>7} {css_bytes:>7} {total:>7}{'' if total <= PAGE_BYTES_GOAL else '  OVER'}")
