"""The console in a real browser: headless Chromium (Playwright, Debian's Chromium)
against the whole local stack started by `python -m local`, as a person would use it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN")
SCREENSHOTS = ROOT / "build" / "screenshots"

pytestmark = [pytest.mark.stack, pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                                     reason="Chromium is installed by `make test`")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def stack():
    ports = {"api": _free_port(), "sandbox": _free_port(), "moto": _free_port()}
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--api-port", str(ports["api"]), "--sandbox-port", str(ports["sandbox"]),
         "--moto-port", str(ports["moto"])], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ACCOUNTS_"))},
        start_new_session=True)
    api = f"http://127.0.0.1:{ports['api']}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if httpx.get(f"{api}/console", timeout=1).status_code == 200 and \
                    httpx.post(f"{api}/v1/sessions", json={"email": "demo@cloudpay.local",
                                                           "password": "cloudpay-demo-2026"}, timeout=5).status_code == 201:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("the local stack did not come up:\n" + process.stdout.read())
    yield {"api": api, "sandbox": f"http://127.0.0.1:{ports['sandbox']}"}
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


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

        expect(desk.locator("#account")).to_be_visible(timeout=10000)
        expect(desk.locator("#gate")).to_be_hidden()
        expect(desk.locator("#bindings tr")).to_have_count(1)
        desk.screenshot(path=str(SCREENSHOTS / "console-bound.png"))

        desk.click("#sync-providers")  # C3.2 from the console: the same admin scans again
        expect(desk.locator("#qr-title")).to_have_text("从买单同步服务商")
        expect(desk.locator("#qr-url")).not_to_have_text(code_url)
        expect(desk.locator("#qr-state")).to_have_text("等待扫码")
        phone.goto(desk.locator("#qr-url").inner_text())
        expect(phone.locator('[data-page="provider-sync-confirm"]')).to_be_visible()
        phone.click("#confirm")
        expect(desk.locator("#qr-state")).to_contain_text("新增 5", timeout=10000)
        expect(desk.locator("#providers tr")).to_have_count(5, timeout=10000)
        desk.screenshot(path=str(SCREENSHOTS / "console-providers.png"))

        desk.click("#sync-merchants")  # C5.3: one job for all five providers, through the queues
        job = desk.locator("#jobs .job").first
        expect(job.locator(".status")).to_have_text("进行中")
        expect(job.locator(".status")).to_have_text("已完成", timeout=240000)
        expect(job.locator(".facts")).to_contain_text("100% · 服务商 5/5")
        expect(job.locator('[role="progressbar"]')).to_have_attribute("aria-valuenow", "100")
        expect(desk.locator("#merchants tr")).to_have_count(20)
        expect(desk.locator("#merchants-more")).to_be_visible()
        desk.screenshot(path=str(SCREENSHOTS / "console-merchants-synced.png"), full_page=True)
        desk.click("#merchants-more")
        expect(desk.locator("#merchants tr")).to_have_count(40)
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
