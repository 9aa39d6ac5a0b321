"""The console as a web app (C8), in a real browser: every section walked by an owner, the
read-only view of a sub-service-provider, and the phone-sized layout. The local stack and
Chromium are those of tests/test_browser.py."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, ROOT, SCREENSHOTS, _phone_page

SECTIONS = ["#/providers", "#/merchants", "#/transactions", "#/sub-service-providers", "#/jobs", "#/audit", "#/account"]


def test_console_modules_are_served_as_javascript_and_other_names_are_refused(client):
    served = client.http.get("/static/console/main.js")
    headers = {name.lower(): value for name, value in served.headers.items()}
    assert served.status_code == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8" and headers["x-content-type-options"] == "nosniff"
    assert b"import" in served.body
    for name in ("nope.js", "..%2F..%2Fapp.py", "main.css", "Main.js", ".main.js"):
        refused = client.http.get(f"/static/console/{name}")
        assert refused.status_code == 404, name
        assert b'"param": "name"' in refused.body or b'"param":"name"' in refused.body


def _no_overflow(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth")


def _confirm_on_phone(browser, url: str, user: str, page_id: str):
    from playwright.sync_api import expect

    phone = _phone_page(browser)
    phone.goto(url)
    phone.click(f'a[data-user="{user}"]')
    phone.click("#confirm")
    expect(phone.locator(f'[data-page="{page_id}"]')).to_be_visible()
    phone.context.close()


def _bind_by_api(api: httpx.Client, browser, user: str) -> None:
    _confirm_on_phone(browser, api.post("/v1/wechat-binding-codes").json()["url"], user, "binding-done")


@pytest.mark.stack
def test_an_owner_walks_every_section_and_a_sub_service_provider_sees_them_read_only(stack):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    sandbox = httpx.Client(base_url=stack["sandbox"], timeout=10)
    ssp_api = httpx.Client(base_url=stack["api"], timeout=10)
    ssp_credentials = {"email": "channel@example.com", "password": "correct horse battery", "display_name": "杭州渠道商"}
    ssp_api.post("/v1/accounts", json=ssp_credentials)
    ssp_session = ssp_api.post("/v1/sessions", json={k: ssp_credentials[k] for k in ("email", "password")}).json()
    ssp_api.headers["Authorization"] = f"Bearer {ssp_session['token']}"
    ssp_id = ssp_session["account"]["id"]
    errors: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        desk = browser.new_page(viewport={"width": 1280, "height": 900})
        desk.on("pageerror", lambda error: errors.append(str(error)))

        # C1: sign up; the gate (C2) shows its code and offers sign-out
        desk.goto(f"{stack['api']}/console")
        desk.click("#auth-switch")
        desk.fill("#email", "owner@example.com")
        desk.fill("#password", "short")
        desk.click("#auth-submit")
        expect(desk.locator('[data-for="password"]')).not_to_be_empty()
        desk.fill("#password", "correct horse battery")
        desk.click("#auth-submit")
        expect(desk.locator("#gate #qr-state")).to_have_text("等待扫码")
        desk.click("#gate-sign-out")
        expect(desk.locator("#auth")).to_be_visible()
        desk.fill("#email", "owner@example.com")
        desk.fill("#password", "correct horse battery")
        desk.click("#auth-submit")
        desk.wait_for_function("() => document.getElementById('qr-img')?.naturalWidth > 0")
        _confirm_on_phone(browser, desk.locator("#qr-url").inner_text(), "admin-01", "binding-done")
        expect(desk.locator("#nav")).to_be_visible(timeout=10000)
        assert desk.url.endswith("#/providers")

        # C3.2 sync providers by code, C3.5 create one by hand with a field error next to its field
        desk.click("#sync-providers")
        expect(desk.locator("#qr-title")).to_have_text("从买单同步服务商")
        expect(desk.locator("#qr-state")).to_have_text("等待扫码")
        _confirm_on_phone(browser, desk.locator("#qr-url").inner_text(), "admin-01", "provider-sync-done")
        expect(desk.locator("#providers tbody tr")).to_have_count(5, timeout=10000)
        desk.screenshot(path=str(SCREENSHOTS / "console-providers-list.png"))
        desk.click("#new-provider")
        desk.fill("#f-sp_mchid", "1900000109")
        desk.fill("#f-name", "杭州某某科技有限公司")
        desk.fill("#f-wechat_pay-api_v3_key", "too-short")
        desk.click("#provider-form button[type=submit]")
        field_error = desk.locator('[data-for="wechat_pay.api_v3_key"]')
        expect(field_error).to_contain_text("填写有误")
        desk.screenshot(path=str(SCREENSHOTS / "console-provider-field-error.png"))
        desk.fill("#f-wechat_pay-api_v3_key", "0123456789abcdef0123456789abcdef")
        desk.click("#provider-form button[type=submit]")
        expect(desk).to_have_url(re.compile(r"#/providers/1900000109$"))
        expect(desk.locator("h1")).to_have_text("杭州某某科技有限公司")
        desk.click("#edit-provider")
        expect(desk.locator('[data-field="wechat_pay.api_v3_key"] .secret-state')).to_contain_text("已设置")
        desk.fill("#f-short_name", "某某科技")
        app = sandbox.post("/alipay/sandbox/apps", json={}).json()
        desk.fill("#f-alipay-app_id", app["app_id"])
        desk.fill("#f-alipay-private_key", app["app_private_key_pem"])
        desk.fill("#f-alipay-alipay_public_key", app["alipay_public_key_pem"])
        desk.click("#provider-form button[type=submit]")
        expect(desk).to_have_url(re.compile(r"#/providers/1900000109$"))
        desk.click("#check-provider")
        expect(desk.locator("#check-results li")).to_have_count(2, timeout=20000)
        expect(desk.locator('#check-results li[data-check="alipay"]')).to_contain_text("通过")
        expect(desk.locator('#check-results li[data-check="wechat_pay"]')).to_contain_text("尚未配置完整")
        desk.screenshot(path=str(SCREENSHOTS / "console-provider-detail.png"))

        # C8 收款设置: the pay limit typed in yuan (a third decimal refused before sending), a review slot
        desk.click("#edit-provider")
        desk.fill("#f-pay_limit_fen", "12.345")
        desk.click("#provider-form button[type=submit]")
        expect(desk.locator('[data-for="pay_limit_fen"]')).to_contain_text("两位小数")
        desk.fill("#f-pay_limit_fen", "5000")
        desk.fill("#f-result_slots-review-title", "给我们评价")
        desk.fill("#f-result_slots-review-url", "http://isv.example/review")
        desk.click("#provider-form button[type=submit]")
        expect(desk.locator('[data-for="result_slots.review.url"]')).to_contain_text("填写有误")
        desk.fill("#f-result_slots-review-url", "https://isv.example/review")
        desk.click("#provider-form button[type=submit]")
        expect(desk).to_have_url(re.compile(r"#/providers/1900000109$"))
        expect(desk.locator("#payment-settings")).to_contain_text("¥5,000.00")
        expect(desk.locator("#payment-settings")).to_contain_text("给我们评价")

        # C4 attach a sub-service-provider
        desk.goto(f"{stack['api']}/console#/sub-service-providers/1900000109")
        desk.click("#attach-ssp")
        desk.fill("#f-account_id", ssp_id)
        desk.fill("#f-name", "杭州渠道商")
        desk.fill("#f-rebate_ratio_bp", "1500")
        desk.click("#ssp-form button[type=submit]")
        expect(desk.locator('#ssp-form [data-for="admin_name"]')).to_have_text("必填项，请填写")
        desk.fill("#f-admin_name", "王经理")
        desk.fill("#f-phone", "13800138000")
        desk.click("#ssp-form button[type=submit]")
        expect(desk.locator("#sub-service-providers tbody tr")).to_have_count(1)
        expect(desk.locator("#sub-service-providers tbody tr")).to_contain_text("15%")

        # C5.2 create a sub-merchant for it; C5.1 detail; version-guarded edit
        desk.goto(f"{stack['api']}/console#/merchants/new?sp_mchid=1900000109")
        desk.fill("#f-name", "一号面馆")
        desk.select_option("#f-sub_service_provider", ssp_id)
        desk.click("#merchant-form button[type=submit]")
        expect(desk).to_have_url(re.compile(r"#/sub-merchants/[^/]+$"))
        merchant_id = desk.url.rsplit("/", 1)[1]
        expect(desk.locator("h1")).to_have_text("一号面馆")
        desk.click("#edit-merchant")
        desk.fill("#f-remark", "试点门店")
        token = desk.evaluate("() => sessionStorage.getItem('cloudpay_token')")
        owner_api = httpx.Client(base_url=stack["api"], timeout=10, headers={"Authorization": f"Bearer {token}"})
        version = owner_api.get(f"/v1/sub-merchants/{merchant_id}").json()["version"]
        assert owner_api.patch(f"/v1/sub-merchants/{merchant_id}", json={"version": version, "short_name": "面馆"}).status_code == 200
        desk.click("#merchant-form button[type=submit]")
        expect(desk.locator("#merchant-form .form-error")).to_contain_text("已被修改")
        desk.reload()
        desk.fill("#f-remark", "试点门店")
        desk.fill("#f-pay_limit_fen", "300.5")
        desk.click("#merchant-form button[type=submit]")
        expect(desk.locator("dl.facts")).to_contain_text(["试点门店"])
        expect(desk.locator("#merchant-pay-limit")).to_have_text("¥300.50")
        expect(desk.locator(".list-wrap:has(#merchant-orders) .empty")).to_contain_text("还没有订单")

        # C5.4 key reset: the secrets once, gone after reload
        desk.click("#reset-keys")
        desk.click("#confirm-ok")
        expect(desk.locator("#secrets-once-warning")).to_contain_text("只显示一次")
        private_key = desk.locator('textarea[data-secret="private_key_pem"]').input_value()
        auth_key = desk.locator('textarea[data-secret="auth_key"]').input_value()
        assert "BEGIN PRIVATE KEY" in private_key and len(auth_key) > 20
        expect(desk.locator("#merchant-keys")).to_contain_text("BEGIN PUBLIC KEY")
        desk.screenshot(path=str(SCREENSHOTS / "console-key-reset.png"))
        desk.reload()
        expect(desk.locator("#merchant-keys")).to_contain_text("BEGIN PUBLIC KEY")
        assert auth_key not in desk.content() and "BEGIN PRIVATE KEY" not in desk.content()

        # C5.5 the Alipay authorization link, with its warning; the status and account on the detail
        desk.click("#alipay-link-button")
        expect(desk.locator("#alipay-link-warning")).to_contain_text("24 小时")
        assert "app_id=" + app["app_id"] in desk.locator("#alipay-link").input_value()
        desk.wait_for_function("() => document.getElementById('alipay-qr').naturalWidth > 0")
        desk.keyboard.press("Escape")
        expect(desk.locator("#alipay-authorization")).to_contain_text("未授权")

        # C5.3 sync from 买单: the job shows on the list page, then in 任务
        desk.goto(f"{stack['api']}/console#/merchants")
        expect(desk.locator("#merchants tbody tr")).to_have_count(1)
        desk.click("#sync-merchants")
        expect(desk.locator("#sync-job .job .status")).to_be_visible()
        desk.click("nav a[data-section=jobs]")
        expect(desk.locator("#jobs .job").first).to_be_visible()
        desk.locator("#jobs .job a.kind").first.click()
        expect(desk.locator('#job-detail [role="progressbar"]')).to_be_visible()
        expect(desk.locator("#job-detail")).to_contain_text("速度")

        # audit log; account bindings (bind another, unbind with confirmation, never the last)
        desk.click("nav a[data-section=audit]")
        expect(desk.locator("#audit-log tbody")).to_contain_text("创建服务商")
        desk.click("nav a[data-section=account]")
        expect(desk.locator("#bindings tbody tr")).to_have_count(1)
        expect(desk.locator("#bindings button[data-unbind]")).to_be_disabled()
        desk.click("#bind-another")
        desk.wait_for_function("() => document.getElementById('qr-img')?.naturalWidth > 0")
        _confirm_on_phone(browser, desk.locator("#qr-url").inner_text(), "admin-02", "binding-done")
        expect(desk.locator("#bindings tbody tr")).to_have_count(2, timeout=10000)
        desk.locator("#bindings button[data-unbind]").last.click()
        desk.click("#confirm-ok")
        expect(desk.locator("#bindings tbody tr")).to_have_count(1)

        # phone-sized: every section fits 390 px
        desk.set_viewport_size({"width": 390, "height": 844})
        for hash_route in [*SECTIONS, "#/providers/1900000109", f"#/sub-merchants/{merchant_id}", "#/providers/new"]:
            desk.goto(f"{stack['api']}/console{hash_route}")
            desk.wait_for_load_state("networkidle")
            desk.wait_for_timeout(300)
            assert _no_overflow(desk) <= 390, hash_route
        desk.goto(f"{stack['api']}/console#/merchants")
        expect(desk.locator("#merchants tbody tr").first).to_be_visible()
        desk.screenshot(path=str(SCREENSHOTS / "console-phone-merchants.png"))
        desk.set_viewport_size({"width": 1280, "height": 900})

        # sign-out
        desk.click("#sign-out")
        expect(desk.locator("#auth")).to_be_visible()
        assert desk.evaluate("() => sessionStorage.getItem('cloudpay_token')") is None

        # the sub-service-provider's own console: read-only providers and merchants
        _bind_by_api(ssp_api, browser, "admin-03")
        member = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        member.on("pageerror", lambda error: errors.append(str(error)))
        member.goto(f"{stack['api']}/console")
        member.fill("#email", ssp_credentials["email"])
        member.fill("#password", ssp_credentials["password"])
        member.click("#auth-submit")
        expect(member.locator("#nav a")).to_have_text(["服务商", "商户", "交易", "账号"], timeout=20000)  # the nav narrows once the account is known to own nothing
        expect(member.locator("#providers tbody tr")).to_have_count(1)
        expect(member.locator("#providers tbody tr")).to_contain_text("1900000109")
        expect(member.locator("#sync-providers")).to_have_count(0)
        expect(member.locator("#new-provider")).to_have_count(0)
        member.click("nav a[data-section=merchants]")
        expect(member.locator("#merchants tbody tr")).to_have_count(1)
        expect(member.locator("#sync-merchants")).to_have_count(0)
        member.locator("#merchants tbody a").first.click()
        expect(member.locator("h1")).to_have_text("一号面馆")
        expect(member.locator("#edit-merchant")).to_have_count(0)
        expect(member.locator("#reset-keys")).to_have_count(0)
        member.screenshot(path=str(SCREENSHOTS / "console-sub-service-provider.png"))
        member.click("nav a[data-section=transactions]")
        expect(member.locator("#summary-trade-amount")).to_contain_text("¥0.00")
        expect(member.locator("#filter-ssp")).to_have_count(0)
        browser.close()
    assert errors == []


def test_every_error_code_the_api_raises_has_its_chinese_text_in_the_console():
    raised = set()
    for source in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        raised |= set(re.findall(r"\bcode\s*=\s*[\"']([a-z_]+)[\"']", source.read_text()))
    worded = set(re.findall(r"^\s+([a-z_]+):", (ROOT / "chalicelib/web/static/console/errors.js").read_text(),
                            flags=re.MULTILINE))
    assert len(raised) > 30 and raised <= worded, sorted(raised - worded)


CONSOLE_MODULES = ROOT / "chalicelib/web/static/console"


def _exports(module: str) -> set[str]:
    text = (CONSOLE_MODULES / module).read_text()
    declared = set(re.findall(r"^export\s+(?:async\s+)?(?:const|let|function\*?|class)\s+([A-Za-z_$][\w$]*)", text,
                              flags=re.MULTILINE))
    listed = {name.split(" as ")[-1].strip() for names in re.findall(r"^export\s+\{([^}]*)\}", text, flags=re.MULTILINE)
              for name in names.split(",") if name.strip()}
    return declared | listed


def test_every_name_a_console_module_imports_is_exported_by_the_module_it_names():
    """A browser would refuse the whole app over one missing export; this finds it without one."""
    checked = 0
    for module in CONSOLE_MODULES.glob("*.js"):
        for names, target in re.findall(r"^import\s+\{([^}]*)\}\s+from\s+\"\./([a-z0-9-]+\.js)\";", module.read_text(),
                                        flags=re.MULTILINE | re.DOTALL):
            assert (CONSOLE_MODULES / target).exists(), (module.name, target)
            imported = {name.split(" as ")[0].strip() for name in names.split(",") if name.strip()}
            missing = imported - _exports(target)
            assert not missing, (module.name, target, sorted(missing))
            checked += 1
    assert checked > 30


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run an ES module")
def test_the_console_reads_yuan_into_whole_fen_and_refuses_a_third_decimal():
    script = """
      import {parseYuan, yuan, yuanText} from "%s";
      const outcome = (text) => { try { return parseYuan(text, "pay_limit_fen"); } catch (e) { return e.code + "@" + e.param; } };
      const texts = ["12", "12.5", "0.07", "1000000.00", "", "0", "0.001", "1.234", "1e3", "１２", "-1", "1000000.01", ".5"];
      console.log(JSON.stringify({read: texts.map(outcome), shown: [yuanText(123450), yuanText(null), yuan(100000000), yuan(5)]}));
    """ % (CONSOLE_MODULES / "money.js").as_uri()
    ran = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)

    assert json.loads(ran.stdout) == {
        "read": [1200, 1250, 7, 100000000, None, "yuan_out_of_range@pay_limit_fen",
                 "yuan_too_many_decimals@pay_limit_fen", "yuan_too_many_decimals@pay_limit_fen",
                 "yuan_not_a_number@pay_limit_fen", "yuan_not_a_number@pay_limit_fen",
                 "yuan_not_a_number@pay_limit_fen", "yuan_out_of_range@pay_limit_fen",
                 "yuan_not_a_number@pay_limit_fen"],
        "shown": ["1234.50", "", "¥1,000,000.00", "¥0.05"]}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run an ES module")
def test_the_transactions_view_counts_beijing_days_and_joins_csv_chunks_under_one_header():
    script = """
      import {beijingDay, dayCount, everyDay, presetRange, rangeSeconds} from "%s";
      import {headerOf, withoutRepeatedHeader} from "%s";
      import {parseRefundYuan} from "%s";
      const refund = (text) => { try { return parseRefundYuan(text, "amount", 1234); } catch (e) { return e.code; } };
      const first = "\\ufeff订单号,金额\\r\\nA,1.00\\r\\n";
      console.log(JSON.stringify({
        day: [beijingDay(1767196799), beijingDay(1767196800)],
        week: presetRange("7d", 1767196800), today: presetRange("today", 1767196800),
        seconds: rangeSeconds("2026-01-01", "2026-01-01"), count: dayCount("2026-01-01", "2026-03-31"),
        filled: everyDay("2026-01-30", "2026-02-01", [{day: "2026-01-31", trade_amount: 500, trade_count: 1, refund_amount: 0, refund_count: 0}])
          .map((d) => [d.day, d.trade_amount]),
        csv: [headerOf(first), withoutRepeatedHeader("订单号,金额\\nB,2.00\\n", headerOf(first)), withoutRepeatedHeader("C,3.00\\n", headerOf(first))],
        refund: ["12.34", "12.35", "0", "", "0.001", "abc"].map(refund)}));
    """ % tuple((CONSOLE_MODULES / name).as_uri() for name in ("days.js", "csv.js", "money.js"))
    ran = subprocess.run(["node", "--input-type=module", "-e", script], capture_output=True, text=True, timeout=30)

    assert json.loads(ran.stdout) == {
        "day": ["2025-12-31", "2026-01-01"],  # 2025-12-31T16:00:00Z is midnight in Beijing
        "week": {"from_day": "2025-12-26", "to_day": "2026-01-01"}, "today": {"from_day": "2026-01-01", "to_day": "2026-01-01"},
        "seconds": {"from": 1767196800, "to": 1767283200}, "count": 90,
        "filled": [["2026-01-30", 0], ["2026-01-31", 500], ["2026-02-01", 0]],
        "csv": ["订单号,金额", "B,2.00\n", "C,3.00\n"],
        "refund": [1234, "refund_amount_out_of_range", "refund_amount_out_of_range", "refund_amount_missing",
                   "yuan_too_many_decimals", "yuan_not_a_number"]}


CONTRACT_ORDER = {"object": "order", "out_trade_no": "M1X0001", "state": "SUCCESS", "channel": "official_direct",
                  "wallet": "wechat", "total": 1234, "refunded": 0, "sp_mchid": "1900000109", "sub_mchid": "1600000109",
                  "merchant_id": "m_1", "sub_service_provider": None, "store_id": "s_1", "clerk_id": None,
                  "code_id": "c_1", "source": "store_code", "remark": None, "upstream_trade_no": "4200001",
                  "created_at": 1767196800, "time_expire": 1767197100, "paid_at": 1767196805, "closed_at": None}
CONTRACT_CALLBACK = {"delivery_id": "callback#order.paid#M1X0001", "kind": "callback", "event": "order.paid",
                     "state": "delivered", "attempts": 2, "next_attempt_at": None, "delivered_at": 1767196840,
                     "created_at": 1767196806, "log": [
                         {"at": 1767196806, "status": 503, "latency_ms": 12, "answer": "down", "error": None},
                         {"at": 1767196840, "status": 200, "latency_ms": 9, "answer": "ok", "error": None}]}


def _fake_console_api(requests: list, csv_chunks: list[str]):
    """The console's API as the issue-13 note's contracts answer, for a page under test: every
    request is recorded (method, path with query, body) and answered from these fixtures."""
    from urllib.parse import urlsplit

    order = dict(CONTRACT_ORDER, refunds=[], callbacks=[CONTRACT_CALLBACK], messages=[
        {"delivery_id": "message#M1X0001#st_1", "kind": "clerk_message", "event": "order.paid", "state": "delivered",
         "attempts": 1, "delivered_at": 1767196806, "created_at": 1767196806, "log": [], "recipient_name": "小王"}])
    page_of = lambda items: {"data": items, "has_more": False, "next_cursor": None, "partial": False, "total": None}
    answers = {
        "/v1/me": {"id": "acct_1", "email": "owner@example.com", "wechat_bound": True},
        "/v1/providers": page_of([{"sp_mchid": "1900000109", "name": "某某科技"}]),
        "/v1/providers/1900000109": {"sp_mchid": "1900000109", "name": "某某科技", "source": "manual",
                                     "callback_url": "https://isv.example/cb", "callback_secret_set_at": None},
        "/v1/providers/1900000109/sub-service-providers": page_of([]),
        "/v1/sub-merchants": page_of([{"id": "m_1", "name": "一号面馆"}]),
        "/v1/sub-merchants/m_1/stores": page_of([{"id": "s_1", "name": "人民路店"}]),
        "/v1/stores/s_1": {"id": "s_1", "name": "人民路店", "collection_code": {"id": "c_1"}, "devices": [],
                           "staff": [{"id": "st_1", "name": "小王", "collection_code": {"id": "c_2"}}]},
        "/v1/transactions/summary": {"object": "transaction_summary", "from_day": "2025-12-26", "to_day": "2026-01-01",
                                     "trade_amount": 1234, "trade_count": 1, "refund_amount": 0, "refund_count": 0,
                                     "net_amount": 1234, "days": [{"day": "2026-01-01", "trade_amount": 1234,
                                                                   "trade_count": 1, "refund_amount": 0, "refund_count": 0}]},
        "/v1/transactions/orders": page_of([CONTRACT_ORDER]),
        "/v1/transactions/refunds": page_of([]),
        "/v1/orders/M1X0001": order,
    }

    def handle(route):
        request = route.request
        url = urlsplit(request.url)
        requests.append((request.method, url.path + ("?" + url.query if url.query else ""), request.post_data))
        if url.path == "/v1/transactions/orders.csv":
            index = len([r for r in requests if r[1].startswith("/v1/transactions/orders.csv")]) - 1
            more = {"X-Next-Cursor": f"chunk{index + 1}"} if index + 1 < len(csv_chunks) else {}
            return route.fulfill(status=200, body=csv_chunks[index], headers={"Content-Type": "text/csv; charset=utf-8", **more})
        if request.method == "POST" and url.path == "/v1/orders/M1X0001/refunds":
            amount = json.loads(request.post_data)["amount"]
            refund = {"object": "refund", "out_refund_no": "M1R0001", "out_trade_no": "M1X0001", "amount": amount,
                      "state": "SUCCESS", "reason": None, "requested_by": "console", "requested_by_name": "owner",
                      "created_at": 1767196900, "succeeded_at": 1767196901}
            order.update(refunded=amount, refunds=[refund])
            return route.fulfill(status=201, json=refund)
        if request.method == "POST" and url.path == "/v1/orders/M1X0001/callbacks/resend":
            return route.fulfill(status=200, json={"callbacks": order["callbacks"], "messages": order["messages"]})
        if request.method == "POST" and url.path == "/v1/providers/1900000109/callback-secret":
            answers["/v1/providers/1900000109"]["callback_secret_set_at"] = 1767196950
            return route.fulfill(status=201, json={"callback_secret": "whsec_test_0123456789", "set_at": 1767196950})
        if url.path in answers and request.method == "GET":
            body = answers[url.path]
            if url.path == "/v1/providers" and "as=sub_service_provider" in url.query:
                body = page_of([])
            return route.fulfill(status=200, json=body)
        return route.fulfill(status=404, json={"error": {"type": "invalid_request_error", "code": "not_found",
                                                         "message": "no such fixture", "param": None}})
    return handle


def _serve_console(route):
    from urllib.parse import urlsplit

    path = urlsplit(route.request.url).path
    static = ROOT / "chalicelib/web/static"
    if path == "/console":
        return route.fulfill(status=200, body=(static / "console.html").read_text(), headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                       "connect-src 'self'"})
    file = static / path.removeprefix("/static/")
    kind = "text/css" if file.suffix == ".css" else "text/javascript"
    return route.fulfill(status=200, body=file.read_text(), headers={"Content-Type": f"{kind}; charset=utf-8"})


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Chromium is installed by `make test`")
def test_the_transactions_view_and_the_order_detail_speak_the_api_contracts_in_a_browser():
    """Against the issue-13 contracts (faked in the browser, no stack): the filters go into
    the query, the summary and its chart show, the CSV's chunks become one file with one
    header, a partial refund typed in yuan is sent in fen after a confirmation, and the
    callback attempts show with their status."""
    from playwright.sync_api import expect, sync_playwright

    requests: list = []
    chunks = ["\ufeff订单号,金额\r\nM1X0001,12.34\r\n", "订单号,金额\r\nM1X0002,5.00\r\n", "M1X0003,1.00\r\n"]
    errors: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        context.add_init_script("sessionStorage.setItem('cloudpay_token', 'test-token')")
        context.route("http://127.0.0.1:9/v1/**", _fake_console_api(requests, chunks))
        context.route(re.compile(r"http://127\.0\.0\.1:9/(console|static/.*)$"), _serve_console)
        desk = context.new_page()
        desk.on("pageerror", lambda error: errors.append(str(error)))
        desk.goto("http://127.0.0.1:9/console#/transactions")
        expect(desk.locator("#summary-trade-amount")).to_contain_text("¥12.34")
        expect(desk.locator("#daily-chart g.day")).to_have_count(7)
        expect(desk.locator("#transaction-orders tbody tr")).to_have_count(1)
        desk.select_option("#filter-provider", "1900000109")
        expect(desk.locator("#filter-ssp")).to_be_enabled()
        desk.select_option("#filter-merchant", "m_1")
        expect(desk.locator("#filter-store")).to_be_enabled()
        desk.select_option("#filter-store", "s_1")
        expect(desk.locator("#filter-clerk")).to_be_enabled()
        desk.select_option("#filter-clerk", "st_1")
        desk.click('[data-preset="30d"]')
        expect(desk.locator("#transaction-orders tbody tr")).to_have_count(1)
        desk.screenshot(path=str(SCREENSHOTS / "console-transactions-contract.png"), full_page=True)
        listed = [path for method, path, _ in requests if path.startswith("/v1/transactions/orders?")][-1]
        assert "sp_mchid=1900000109" in listed and "merchant_id=m_1" in listed and "store_id=s_1" in listed
        assert "clerk_id=st_1" in listed and "from=" in listed and "to=" in listed
        summarised = [path for method, path, _ in requests if path.startswith("/v1/transactions/summary?")][-1]
        assert "from_day=" in summarised and "clerk_id=st_1" in summarised
        with desk.expect_download() as downloading:
            desk.click("#export-csv")
        exported = Path(downloading.value.path()).read_bytes().decode("utf-8-sig")
        assert exported == "订单号,金额\r\nM1X0001,12.34\r\nM1X0002,5.00\r\nM1X0003,1.00\r\n"
        assert [path.split("cursor=")[-1] for _, path, _ in requests if "orders.csv" in path][1:] == ["chunk1", "chunk2"]

        desk.locator("#transaction-orders tbody a").first.click()
        expect(desk.locator("#order-callbacks [data-attempt]")).to_have_count(2)
        expect(desk.locator("#order-callbacks .http-status")).to_have_text(["503", "200"])
        expect(desk.locator("#order-messages")).to_contain_text("小王")
        desk.select_option("#f-mode", "partial")
        desk.fill("#f-amount", "20")
        desk.click("#refund-form button[type=submit]")
        expect(desk.locator('[data-for="amount"]')).to_contain_text("可退金额")
        desk.fill("#f-amount", "5.5")
        desk.click("#refund-form button[type=submit]")
        expect(desk.locator("#confirm-dialog")).to_contain_text("¥5.50")
        desk.click("#confirm-ok")
        expect(desk.locator("#order-refunds tbody tr")).to_have_count(1)
        assert [json.loads(body) for method, path, body in requests if path == "/v1/orders/M1X0001/refunds"] == [{"amount": 550}]
        desk.screenshot(path=str(SCREENSHOTS / "console-order-detail-contract.png"), full_page=True)
        desk.click("#resend-callbacks")
        expect(desk.locator(".toast").last).to_contain_text("已重新推送：1 / 1 条已送达")

        desk.goto("http://127.0.0.1:9/console#/providers/1900000109")
        expect(desk.locator("#callback-secret-state")).to_have_text("未设置")
        desk.click("#callback-secret")
        expect(desk.locator("#secrets-once-warning")).to_contain_text("只显示一次")
        assert desk.locator('textarea[data-secret="callback_secret"]').input_value() == "whsec_test_0123456789"
        expect(desk.locator("#callback-secret-state")).to_contain_text("已设置于 2026/1/1")
        browser.close()
    assert errors == []
