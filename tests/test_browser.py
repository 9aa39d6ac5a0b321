"""The console in a real browser: headless Chromium (Playwright, Debian's Chromium)
against the whole local stack started by `python -m local`, as a person would use it.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
import shutil
from pathlib import Path

import httpx
import pytest

from tests.local_stack import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN")
SCREENSHOTS = ROOT / "build" / "screenshots"

pytestmark = [pytest.mark.stack, pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                                     reason="Chromium is installed by `make test`")]


def test_an_admin_scans_the_console_code_on_a_phone_and_the_console_turns_bound(stack):
    from playwright.sync_api import expect, sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        desk = browser.new_page(viewport={"width": 1280, "height": 860})
        desk.goto(f"{stack['api']}/console")
        desk.fill("#email", "demo@cloudpay.local")
        desk.fill("#password", "cloudpay-demo-2026")
        desk.click("#auth-submit")
        expect(desk.locator("#gate")).to_be_visible()
        expect(desk.locator("#qr-state")).to_have_text("等待扫码")
        # A function, not an expression: Playwright evals expressions in the page, which its CSP forbids.
        desk.wait_for_function("() => document.getElementById('qr-img').naturalWidth > 0")
        code_url = desk.locator("#qr-url").inner_text()
        desk.screenshot(path=str(SCREENSHOTS / "console-binding-gate.png"))

        phone = browser.new_context(user_agent=WECHAT_UA, viewport={"width": 390, "height": 780},
                                    is_mobile=True).new_page()
        phone.goto(code_url)
        phone.click('a[data-user="admin-01"]')  # the sandbox WeChat asks who is signed in
        expect(phone.locator('[data-page="binding-confirm"]')).to_be_visible()
        expect(desk.locator("#qr-state")).to_have_text("已扫码，等待确认")
        phone.screenshot(path=str(SCREENSHOTS / "phone-binding-confirm.png"))
        phone.click("#confirm")
        expect(phone.locator('[data-page="binding-done"]')).to_be_visible()
        phone.screenshot(path=str(SCREENSHOTS / "phone-binding-done.png"))

        expect(desk.locator("#nav")).to_be_visible(timeout=10000)
        expect(desk.locator("#gate")).to_have_count(0)
        desk.click("nav a[data-section=account]")
        expect(desk.locator("#bindings tbody tr")).to_have_count(1)
        desk.screenshot(path=str(SCREENSHOTS / "console-bound.png"))
        desk.click("nav a[data-section=providers]")

        desk.click("#sync-providers")  # C3.2 from the console: the same admin scans again
        expect(desk.locator("#qr-title")).to_have_text("从买单同步服务商")
        expect(desk.locator("#qr-url")).not_to_have_text(code_url)
        expect(desk.locator("#qr-state")).to_have_text("等待扫码")
        phone.goto(desk.locator("#qr-url").inner_text())
        expect(phone.locator('[data-page="provider-sync-confirm"]')).to_be_visible()
        phone.click("#confirm")
        expect(desk.locator("#qr-state")).to_contain_text("新增 5", timeout=10000)
        expect(desk.locator("#providers tbody tr")).to_have_count(5, timeout=10000)
        desk.screenshot(path=str(SCREENSHOTS / "console-providers.png"))

        desk.click("nav a[data-section=merchants]")
        desk.click("#sync-merchants")  # C5.3: one job for all five providers, through the queues
        job = desk.locator("#sync-job .job").first
        expect(job.locator(".status")).to_have_text("进行中")
        expect(job.locator(".status")).to_have_text("已完成", timeout=240000)
        expect(job.locator(".facts-line")).to_contain_text("100% · 服务商 5/5")
        expect(job.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "100")
        expect(desk.locator("#merchants tbody tr")).to_have_count(20)
        expect(desk.locator("#merchants-more")).to_be_visible()
        desk.screenshot(path=str(SCREENSHOTS / "console-merchants-synced.png"), full_page=True)
        desk.click("#merchants-more")
        expect(desk.locator("#merchants tbody tr")).to_have_count(40)
        browser.close()


def _phone_page(browser):
    return browser.new_context(user_agent=WECHAT_UA, viewport={"width": 390, "height": 780}, is_mobile=True).new_page()


def _signed_in_api(stack, credentials: dict) -> httpx.Client:
    """The console API as a new account, signed in (the gate not yet passed)."""
    api = httpx.Client(base_url=stack["api"], timeout=10)
    api.post("/v1/accounts", json=credentials)
    token = api.post("/v1/sessions", json=credentials).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def _bind_admin_01(browser, api: httpx.Client) -> None:
    """Pass the account's WeChat binding gate: admin-01 scans the binding code on a phone."""
    from playwright.sync_api import expect

    binder = _phone_page(browser)
    binder.goto(api.post("/v1/wechat-binding-codes").json()["url"])
    binder.click('a[data-user="admin-01"]')
    binder.click("#confirm")
    expect(binder.locator('[data-page="binding-done"]')).to_be_visible()


def test_an_admin_confirms_a_provider_sync_on_the_phone(stack):
    from playwright.sync_api import expect, sync_playwright

    api = _signed_in_api(stack, {"email": "sync-browser@example.com", "password": "correct horse battery"})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _bind_admin_01(browser, api)

        code = api.post("/v1/provider-sync-codes").json()
        phone = _phone_page(browser)
        phone.goto(code["url"])
        phone.click('a[data-user="admin-03"]')  # admin-01's providers went to the demo account
        expect(phone.locator('[data-page="provider-sync-confirm"]')).to_be_visible()
        expect(phone.locator(".warn")).to_contain_text("请勿将此二维码分享给他人")
        expect(phone.locator("ul.list li")).to_have_count(5)
        phone.screenshot(path=str(SCREENSHOTS / "phone-provider-sync-confirm.png"))
        phone.click("#confirm")
        expect(phone.locator('[data-page="provider-sync-done"]')).to_contain_text("新增 5 个")
        browser.close()

    status = api.get(f"/v1/provider-sync-codes/{code['id']}").json()
    assert status["state"] == "synced" and status["result"]["created"] == 5
    assert len(api.get("/v1/providers?limit=100").json()["data"]) == 5


ALL_IMAGES_SHOWN = "() => [...document.images].every((image) => image.complete && image.naturalWidth > 0)"


def _new_wechat_user(browser, sandbox: str, nickname: str):
    """A phone whose sandbox WeChat is a new user (nobody yet): the sandbox phone's 新建用户."""
    page = _phone_page(browser)
    page.goto(f"{sandbox}/phone")
    page.fill("#nickname", nickname)
    page.click('form[action="/phone/users"] button')
    page.wait_for_url(re.compile(r"/phone\?user=user-"))
    return page


def _activation_url(store_page) -> str:
    """The URL the open person's activation code opens, as the page prints it under the QR."""
    return store_page.locator("details[open] .code-url").inner_text()


def test_a_merchant_sets_up_a_store_and_its_staff_from_wechat_alone(stack):
    """Issue 11: the provider opens the two codes; user A becomes the merchant admin and adds a
    store; user B its manager, who adds a clerk; user C the clerk (through the sandbox phone's
    frame, as the README walks it), who clocks in and out; the poster prints to PDF."""
    from playwright.sync_api import expect, sync_playwright

    credentials = {"email": "onecode-browser@example.com", "password": "correct horse battery"}
    api = _signed_in_api(stack, credentials)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _bind_admin_01(browser, api)
        assert api.post("/v1/providers", json={"sp_mchid": "1900000777", "name": "一码付服务商"}).status_code == 201
        merchant = api.post("/v1/sub-merchants", json={"sp_mchid": "1900000777", "name": "一码付测试商户"}).json()

        desk = browser.new_page(viewport={"width": 1280, "height": 900})
        desk.goto(f"{stack['api']}/console")
        desk.fill("#email", credentials["email"])
        desk.fill("#password", credentials["password"])
        desk.click("#auth-submit")
        expect(desk.locator("#nav")).to_be_visible()
        desk.goto(f"{stack['api']}/console#/sub-merchants/{merchant['id']}")
        expect(desk.locator("#admin-activation-code-url")).to_contain_text("/h5/q/")
        desk.wait_for_function("() => document.querySelector('#admin-activation-code img').naturalWidth > 0")
        desk.locator("#setup-codes").scroll_into_view_if_needed()
        desk.screenshot(path=str(SCREENSHOTS / "console-onecode-codes.png"))
        activation_url = desk.locator("#admin-activation-code-url").inner_text()

        admin = _new_wechat_user(browser, stack["sandbox"], "商户老板")
        admin.goto(activation_url)
        expect(admin.locator('[data-page="activation-confirm"]')).to_be_visible()
        admin.fill('input[name="name"]', "王老板")
        admin.screenshot(path=str(SCREENSHOTS / "phone-admin-activation.png"))
        admin.click("#confirm")
        expect(admin.locator('[data-page="activation-done"]')).to_be_visible()
        admin.click("a.button")
        expect(admin.locator('[data-page="merchant"]')).to_be_visible()
        admin.click("#add-store")
        expect(admin.locator('[data-page="merchant-new-store"]')).to_be_visible()
        for name, value in {"name": "人民路店", "province": "广东省", "city": "深圳市", "district": "南山区",
                            "address": "科技园路 1 号", "manager_name": "李店长"}.items():
            admin.fill(f'input[name="{name}"]', value)
        admin.screenshot(path=str(SCREENSHOTS / "phone-new-store.png"), full_page=True)
        admin.click('form[action$="/stores"] button')
        expect(admin.locator('[data-page="store"]')).to_be_visible()
        expect(admin.locator(".notice")).to_contain_text("人民路店")
        store_id = re.search(r"/h5/stores/([^/?]+)", admin.url).group(1)
        admin.wait_for_function(ALL_IMAGES_SHOWN)
        admin.screenshot(path=str(SCREENSHOTS / "phone-store-as-admin.png"), full_page=True)
        manager_url = _activation_url(admin)
        admin.goto(f"{stack['api']}/h5/merchants/{merchant['id']}")
        admin.screenshot(path=str(SCREENSHOTS / "phone-merchant.png"), full_page=True)

        manager = _new_wechat_user(browser, stack["sandbox"], "李店长")
        manager.goto(manager_url)
        expect(manager.locator('[data-page="activation-confirm"]')).to_contain_text("店长")
        manager.screenshot(path=str(SCREENSHOTS / "phone-manager-activation.png"))
        manager.click("#confirm")
        manager.click("a.button")
        expect(manager.locator('[data-page="store"]')).to_contain_text("我是店长")
        manager.click("summary.add >> text=添加店员")
        manager.fill('form[action$="/staff"] input[name="name"]', "小王")
        manager.fill('form[action$="/staff"] input[name="phone"]', "13800000000")
        manager.click('form[action$="/staff"] button')
        expect(manager.locator(".notice")).to_be_visible()
        manager.wait_for_function(ALL_IMAGES_SHOWN)
        manager.screenshot(path=str(SCREENSHOTS / "phone-store-as-manager.png"), full_page=True)
        clerk_url = _activation_url(manager)

        clerk = _new_wechat_user(browser, stack["sandbox"], "店员小王")
        clerk.fill("#url", clerk_url)
        clerk.click("#open")
        frame = clerk.frame_locator('iframe[title="phone"]')
        expect(frame.locator('[data-page="activation-confirm"]')).to_contain_text("店员")
        expect(frame.locator('input[name="messages_on"]')).to_be_checked()
        clerk.screenshot(path=str(SCREENSHOTS / "sandbox-phone-clerk-activation.png"))
        frame.locator("#confirm").click()
        expect(frame.locator('[data-page="activation-done"]')).to_be_visible()
        clerk.goto(f"{stack['api']}/h5/stores/{store_id}")
        expect(clerk.locator('[data-page="store"]')).to_contain_text("我是店员")
        clerk.click("text=上班打卡")
        expect(clerk.locator(".notice")).to_contain_text("上班")
        expect(clerk.locator('[data-page="store"]')).to_contain_text("在岗")
        clerk.screenshot(path=str(SCREENSHOTS / "phone-clerk-on-shift.png"), full_page=True)
        clerk.click("text=下班打卡")
        expect(clerk.locator(".notice")).to_contain_text("下班")
        expect(clerk.locator(".list li")).to_have_count(1)
        clerk.click("text=我的收款码")
        expect(clerk.locator('[data-page="store-my-code"]')).to_be_visible()
        clerk.wait_for_function(ALL_IMAGES_SHOWN)
        clerk.screenshot(path=str(SCREENSHOTS / "phone-clerk-my-code.png"), full_page=True)
        clerk.goto(clerk_url)
        expect(clerk.locator('[data-page="code-used"]')).to_be_visible()
        clerk.screenshot(path=str(SCREENSHOTS / "phone-code-used.png"))
        clerk.goto(f"{stack['api']}/h5/me")
        expect(clerk.locator('[data-page="me"]')).to_contain_text("人民路店")
        clerk.screenshot(path=str(SCREENSHOTS / "phone-me.png"))
        store_code_url = api.get(f"/v1/stores/{store_id}").json()["collection_code"]["url"]
        clerk.goto(store_code_url)
        expect(clerk.locator('[data-page="collection-staff"]')).to_be_visible()
        clerk.screenshot(path=str(SCREENSHOTS / "phone-collection-staff.png"))
        customer = _new_wechat_user(browser, stack["sandbox"], "顾客")
        customer.goto(store_code_url)
        expect(customer.locator('[data-page="pay-unavailable"]')).to_contain_text("人民路店")
        customer.screenshot(path=str(SCREENSHOTS / "phone-collection-customer.png"))

        poster = manager.context.new_page()
        poster.goto(f"{stack['api']}/h5/stores/{store_id}/poster")
        expect(poster.locator('[data-page="store-poster"]')).to_contain_text("微信 / 支付宝 扫码付款")
        poster.screenshot(path=str(SCREENSHOTS / "phone-store-poster.png"), full_page=True)
        pdf = poster.pdf(prefer_css_page_size=True)
        assert pdf.startswith(b"%PDF") and len(pdf) > 2000
        (SCREENSHOTS / "store-poster.pdf").write_bytes(pdf)

        desk.goto(f"{stack['api']}/console#/stores/{store_id}")
        expect(desk.locator("#store-staff tbody tr")).to_have_count(2)
        desk.screenshot(path=str(SCREENSHOTS / "console-onecode-store.png"), full_page=True)
        browser.close()


ALIPAY_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 AlipayClient/10.5.90 Language/zh-Hans")
PAY_SP_MCHID, PAY_SUB_MCHID = "1900012012", "1600012012"


def _provider_with_both_wallets(api: httpx.Client, sandbox: httpx.Client, sp_mchid: str = PAY_SP_MCHID,
                                sub_mchid: str = PAY_SUB_MCHID) -> None:
    """A provider as its operator sets it up: the official account, WeChat Pay credentials
    (with the sub-merchant and the official account bound at WeChat Pay) and an Alipay app."""
    account = sandbox.post("/wechat-api/sandbox/official-accounts", json={}).json()
    wechat_pay = sandbox.post("/wechatpay/sandbox/merchants", json={
        "sp_mchid": sp_mchid, "sub_mchids": [sub_mchid], "appids": [account["appid"]]}).json()
    isv = sandbox.post("/alipay/sandbox/apps", json={}).json()
    created = api.post("/v1/providers", json={
        "sp_mchid": sp_mchid, "name": "扫码付服务商",
        "wechat_pay": {"app_id": account["appid"], "app_secret": account["secret"],
                       **{name: wechat_pay[name] for name in ("serial_no", "api_v3_key", "private_key_pem",
                                                               "platform_public_key_id", "platform_public_key_pem")}},
        "alipay": {"app_id": isv["app_id"], "private_key": isv["app_private_key_pem"],
                   "alipay_public_key": isv["alipay_public_key_pem"]}})
    assert created.status_code == 201, created.text


def _authorize_alipay(api: httpx.Client, sandbox: httpx.Client, merchant_id: str) -> None:
    """The merchant signs in to the sandbox's Alipay and approves the provider's app (C5.5)."""
    pid = sandbox.post("/alipay/sandbox/merchants", json={"name": "一号面馆支付宝"}).json()["user_id"]
    link = api.post(f"/v1/sub-merchants/{merchant_id}/alipay-authorization-links").json()["url"]
    assert httpx.get(f"{link}&merchant={pid}", follow_redirects=True, timeout=10).status_code == 200
    assert api.get(f"/v1/sub-merchants/{merchant_id}").json()["alipay_authorization"]["status"] == "authorized"


def _store_opened_by_its_admin(browser, stack, api: httpx.Client, merchant_id: str, *, nickname: str = "面馆老板",
                              admin_name: str = "赵老板", address: str = "科技园路 2 号",
                              manager_name: str = "钱店长") -> tuple:
    """The merchant's admin activates on WeChat and adds a store: (the admin's page, the store id)."""
    from playwright.sync_api import expect

    activation_url = api.get(f"/v1/sub-merchants/{merchant_id}/setup-codes").json()["admin_activation"]["url"]
    admin = _new_wechat_user(browser, stack["sandbox"], nickname)
    admin.goto(activation_url)
    admin.fill('input[name="name"]', admin_name)
    admin.click("#confirm")
    admin.click("a.button")
    admin.click("#add-store")
    for name, value in {"name": "人民路店", "province": "广东省", "city": "深圳市", "district": "南山区",
                        "address": address, "manager_name": manager_name}.items():
        admin.fill(f'input[name="{name}"]', value)
    admin.click('form[action$="/stores"] button')
    expect(admin.locator('[data-page="store"]')).to_be_visible()
    return admin, re.search(r"/h5/stores/([^/?]+)", admin.url).group(1)


def _pay_in_the_wallet(customer, code_url: str, amount: str, cashier: str, pay_button: str, prefix: str) -> None:
    """Scan, type the amount, pay in the sandbox's cashier sheet, land on the paid result page."""
    from playwright.sync_api import expect

    customer.goto(code_url)
    expect(customer.locator('[data-page="pay"]')).to_contain_text("人民路店")
    customer.fill("#amount", amount)
    customer.screenshot(path=str(SCREENSHOTS / f"{prefix}-pay.png"))
    customer.click("#pay-submit")
    expect(customer.locator(cashier)).to_have_css("position", "fixed")  # styled under the page's CSP
    customer.screenshot(path=str(SCREENSHOTS / f"{prefix}-wallet.png"))
    customer.click(pay_button)
    customer.wait_for_url(re.compile(r"/h5/pay/orders/"))
    expect(customer.locator('[data-page="pay-result"]')).to_have_attribute("data-state", "SUCCESS", timeout=15000)
    expect(customer.locator('[data-page="pay-result"]')).to_contain_text(f"¥{amount}")
    customer.screenshot(path=str(SCREENSHOTS / f"{prefix}-result.png"), full_page=True)

    customer.go_back()
    expect(customer.locator('[data-page="pay"]')).to_be_visible()
    customer.reload()
    expect(customer.locator('[data-page="pay"]')).to_be_visible()
    customer.go_forward()
    customer.reload()
    expect(customer.locator('[data-page="pay-result"]')).to_have_attribute("data-state", "SUCCESS")


def test_a_wechat_and_an_alipay_customer_pay_a_store_code_in_the_wallet_and_back_and_reload_do_not_pay_again(stack):
    """Issue 12: set up as a provider and a merchant would, then each wallet's customer pays."""
    from playwright.sync_api import sync_playwright

    api = _signed_in_api(stack, {"email": "pay-browser@example.com", "password": "correct horse battery"})
    sandbox = httpx.Client(base_url=stack["sandbox"], timeout=10)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _bind_admin_01(browser, api)
        _provider_with_both_wallets(api, sandbox)
        merchant_id = api.post("/v1/sub-merchants", json={"sp_mchid": PAY_SP_MCHID, "name": "一号面馆",
                                                          "sub_mchid": PAY_SUB_MCHID}).json()["id"]
        _authorize_alipay(api, sandbox, merchant_id)
        _, store_id = _store_opened_by_its_admin(browser, stack, api, merchant_id)
        code_url = api.get(f"/v1/stores/{store_id}").json()["collection_code"]["url"]

        wechat = _new_wechat_user(browser, stack["sandbox"], "微信顾客")
        _pay_in_the_wallet(wechat, code_url, "12.34", "#wechatpay-sandbox-cashier", "#wechatpay-sandbox-pay",
                           "phone-pay-wechat")

        buyer = sandbox.post("/alipay/sandbox/users", json={"nickname": "支付宝顾客"}).json()["user_id"]
        alipay = browser.new_context(user_agent=ALIPAY_UA, viewport={"width": 390, "height": 780},
                                     is_mobile=True).new_page()
        alipay.goto(code_url)
        alipay.click(f'a[data-user="{buyer}"]')  # the sandbox's Alipay asks who holds the phone
        _pay_in_the_wallet(alipay, code_url, "8.00", "#alipay-sandbox-cashier", '[data-action="pay"]',
                           "phone-pay-alipay")
        browser.close()

    orders = api.get(f"/v1/sub-merchants/{merchant_id}/orders?limit=100").json()["data"]
    assert sorted((order["channel"], order["total"], order["state"]) for order in orders) == [
        ("alipay", 800, "SUCCESS"), ("official_direct", 1234, "SUCCESS")]


REFUND_SP_MCHID, REFUND_SUB_MCHID = "1900013013", "1600013013"


def _until(read, done, seconds: float = 30.0):
    """What `read()` answers once `done` holds for it (the outbox works on its own time)."""
    deadline = time.monotonic() + seconds
    while True:
        value = read()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_a_payment_reaches_the_on_shift_clerk_and_the_provider_and_the_console_refunds_part_of_it(stack):
    """Issue 13: a customer pays a store code; the on-shift clerk's sandbox phone shows the
    payment message; the provider's signed callback reaches the sandbox receiver; the console's
    交易 view lists the order, whose detail shows the callback delivered, and a partial refund
    made there goes through."""
    from playwright.sync_api import expect, sync_playwright

    credentials = {"email": "refund-browser@example.com", "password": "correct horse battery"}
    api = _signed_in_api(stack, credentials)
    sandbox = httpx.Client(base_url=stack["sandbox"], timeout=10)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _bind_admin_01(browser, api)
        _provider_with_both_wallets(api, sandbox, REFUND_SP_MCHID, REFUND_SUB_MCHID)
        version = api.get(f"/v1/providers/{REFUND_SP_MCHID}").json()["version"]
        patched = api.patch(f"/v1/providers/{REFUND_SP_MCHID}",
                            json={"version": version, "callback_url": f"{stack['sandbox']}/receiver/isv-13"})
        assert patched.status_code == 200, patched.text
        merchant_id = api.post("/v1/sub-merchants", json={"sp_mchid": REFUND_SP_MCHID, "name": "二号面馆",
                                                          "sub_mchid": REFUND_SUB_MCHID}).json()["id"]

        # the provider makes its callback secret in the console: shown once
        desk = browser.new_page(viewport={"width": 1280, "height": 900})
        desk.goto(f"{stack['api']}/console")
        desk.fill("#email", credentials["email"])
        desk.fill("#password", credentials["password"])
        desk.click("#auth-submit")
        expect(desk.locator("#nav")).to_be_visible()
        desk.goto(f"{stack['api']}/console#/providers/{REFUND_SP_MCHID}")
        expect(desk.locator("#callback-secret-state")).to_have_text("未设置")
        desk.click("#callback-secret")
        expect(desk.locator("#secrets-once-warning")).to_contain_text("只显示一次")
        secret = desk.locator('textarea[data-secret="callback_secret"]').input_value()
        assert len(secret) >= 32
        desk.keyboard.press("Escape")
        expect(desk.locator("#callback-secret-state")).to_contain_text("已设置于")

        # the merchant's admin adds a store; its manager adds a clerk, who clocks in
        admin, store_id = _store_opened_by_its_admin(browser, stack, api, merchant_id, nickname="二号面馆老板",
                                                     admin_name="孙老板", address="科技园路 3 号", manager_name="周店长")
        manager = _new_wechat_user(browser, stack["sandbox"], "周店长")
        manager.goto(_activation_url(admin))
        manager.click("#confirm")
        manager.click("a.button")
        manager.click("summary.add >> text=添加店员")
        manager.fill('form[action$="/staff"] input[name="name"]', "小吴")
        manager.click('form[action$="/staff"] button')
        expect(manager.locator(".notice")).to_be_visible()
        clerk = _new_wechat_user(browser, stack["sandbox"], "店员小吴")
        clerk_user = re.search(r"user=([^&]+)", clerk.url).group(1)
        clerk.goto(_activation_url(manager))
        expect(clerk.locator('input[name="messages_on"]')).to_be_checked()
        clerk.click("#confirm")
        expect(clerk.locator('[data-page="activation-done"]')).to_be_visible()
        clerk.goto(f"{stack['api']}/h5/stores/{store_id}")
        clerk.click("text=上班打卡")
        expect(clerk.locator('[data-page="store"]')).to_contain_text("在岗")

        # a WeChat customer pays the store code
        code_url = api.get(f"/v1/stores/{store_id}").json()["collection_code"]["url"]
        customer = _new_wechat_user(browser, stack["sandbox"], "微信顾客")
        _pay_in_the_wallet(customer, code_url, "12.34", "#wechatpay-sandbox-cashier", "#wechatpay-sandbox-pay",
                           "phone-pay-issue13")
        order_no = api.get(f"/v1/sub-merchants/{merchant_id}/orders?limit=1").json()["data"][0]["out_trade_no"]

        # the on-shift clerk's phone shows the payment message (the page lists what arrived when it loaded)
        messages = _until(lambda: sandbox.get("/wechat-api/sandbox/messages", params={"user": clerk_user}).json(),
                          lambda got: len(got) >= 1)
        assert [message["title"] for message in messages] == ["收款到账通知"], messages
        clerk.goto(f"{stack['sandbox']}/phone?user={clerk_user}")
        expect(clerk.locator("body")).to_contain_text("收款到账通知")
        expect(clerk.locator("body")).to_contain_text("¥12.34")
        expect(clerk.locator("body")).to_contain_text(order_no)
        clerk.screenshot(path=str(SCREENSHOTS / "sandbox-phone-payment-message.png"), full_page=True)

        # the provider's receiver got the signed callback: checked with a few lines of hmac
        received = _until(lambda: sandbox.get("/receiver/isv-13/requests").json(), lambda got: len(got) >= 1)
        assert len(received) == 1 and received[0]["status"] == 200
        signature = {k: v for k, v in (part.split("=", 1) for part in received[0]["headers"]["Cloudpay-Signature"].split(","))}
        expected = hmac.new(secret.encode(), f"{signature['t']}.{received[0]['body']}".encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(signature["v1"], expected)
        assert '"order.paid"' in received[0]["body"] and order_no in received[0]["body"]

        # the console: 交易 lists the order with the day's summary; its detail shows the callback
        desk.goto(f"{stack['api']}/console#/transactions")
        expect(desk.locator("#transaction-orders tbody tr").first).to_contain_text(order_no)
        expect(desk.locator("#summary-trade-amount")).to_contain_text("¥12.34")
        desk.mouse.move(0, 0)
        desk.screenshot(path=str(SCREENSHOTS / "console-transactions.png"), full_page=True)
        desk.locator(f'#transaction-orders a:text("{order_no}")').click()
        callback = desk.locator('#order-callbacks [data-delivery^="callback#order.paid"]')
        expect(callback).to_have_attribute("data-state", "delivered")
        expect(callback.locator(".http-status")).to_have_text(["200"])
        expect(desk.locator("#order-messages")).to_contain_text("小吴")

        # a partial refund from the console, confirmed first
        desk.select_option("#f-mode", "partial")
        desk.fill("#f-amount", "5")
        desk.fill("#f-reason", "少上一份小菜")
        desk.click("#refund-form button[type=submit]")
        expect(desk.locator("#confirm-dialog")).to_contain_text("¥5.00")
        desk.click("#confirm-ok")
        expect(desk.locator("#order-refunds tbody tr")).to_have_count(1)
        refunded = _until(lambda: api.get(f"/v1/orders/{order_no}").json(),
                          lambda order: [r["state"] for r in order["refunds"]] == ["SUCCESS"])
        assert refunded["refunded"] == 500 and refunded["refunds"][0]["amount"] == 500
        desk.reload()
        expect(desk.locator("#order-refunds tbody tr")).to_contain_text("退款成功")
        expect(desk.locator("#order-refunded")).to_have_text("¥5.00")
        _until(lambda: api.get(f"/v1/orders/{order_no}").json(),
               lambda order: any(c["event"] == "refund.succeeded" and c["state"] == "delivered" for c in order["callbacks"]))
        desk.reload()
        expect(desk.locator('#order-callbacks [data-delivery^="callback#refund.succeeded"]')).to_have_attribute(
            "data-state", "delivered")
        desk.mouse.move(0, 0)
        desk.screenshot(path=str(SCREENSHOTS / "console-order-detail.png"), full_page=True)
        desk.set_viewport_size({"width": 390, "height": 844})
        for page_route in (f"#/orders/{order_no}", "#/transactions"):
            desk.goto(f"{stack['api']}/console{page_route}")
            desk.wait_for_load_state("networkidle")
            assert desk.evaluate("() => document.documentElement.scrollWidth") <= 390, page_route
        browser.close()

    bodies = [request["body"] for request in sandbox.get("/receiver/isv-13/requests").json()]
    assert ['"refund.succeeded"' in body for body in bodies] == [False, True]
