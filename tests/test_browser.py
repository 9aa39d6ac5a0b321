"""The console in a real browser: headless Chromium (Playwright, Debian's Chromium)
against the whole local stack started by `python -m local`, as a person would use it.
"""
from __future__ import annotations

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


def test_an_admin_confirms_a_provider_sync_on_the_phone(stack):
    from playwright.sync_api import expect, sync_playwright

    api = httpx.Client(base_url=stack["api"], timeout=10)
    credentials = {"email": "sync-browser@example.com", "password": "correct horse battery"}
    api.post("/v1/accounts", json=credentials)
    token = api.post("/v1/sessions", json=credentials).json()["token"]
    api.headers["Authorization"] = f"Bearer {token}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        binder = _phone_page(browser)
        binder.goto(api.post("/v1/wechat-binding-codes").json()["url"])
        binder.click('a[data-user="admin-01"]')
        binder.click("#confirm")
        expect(binder.locator('[data-page="binding-done"]')).to_be_visible()

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
