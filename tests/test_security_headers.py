"""D: pages are served with a strict Content-Security-Policy (no inline script or style),
cannot be framed, are never MIME-sniffed and send no Referer; https deployments pin https."""
from __future__ import annotations

import re

import pytest

from chalicelib.web import ASSETS


def _headers(raw) -> dict:
    return {name.lower(): value for name, value in raw.headers.items()}


def _html_pages(client, phone) -> dict:
    """The headers of every HTML page the app serves, by route, as a browser or phone gets them."""
    signed_in = phone("someone").open("http://h5.test/h5/q/no-such-code")
    pages = {"/console": client.http.get("/console"),
             "/h5/q/{code_id}": client.http.get("/h5/q/no-such-code"),
             "/h5/q/{code_id}/confirm": client.http.post("/h5/q/no-such-code/confirm", body="csrf=x",
                                                         headers={"content-type": "application/x-www-form-urlencoded"}),
             "/h5/oauth/wechat": client.http.get("/h5/oauth/wechat?code=x&state=y"),
             "/h5/alipay/app-auth": client.http.get("/h5/alipay/app-auth?app_auth_code=x&state=y"),
             "/h5/pay/{code_id}": client.http.get("/h5/pay/no-such-code"),
             "/h5/pay/orders/{out_trade_no}": client.http.get("/h5/pay/orders/no-such-order?t=x"),
             "/h5/pay/done": client.http.get("/h5/pay/done"),
             "/h5/oauth/pay-wechat": client.http.get("/h5/oauth/pay-wechat?code=x&state=y"),
             "/h5/oauth/pay-alipay": client.http.get("/h5/oauth/pay-alipay?auth_code=x&state=y")}
    headers = {route: _headers(raw) for route, raw in pages.items()}
    headers["/h5/q/{code_id} after WeChat OAuth"] = {name.lower(): value for name, value in signed_in.last[2].items()}
    merchant_pages = {"/h5/merchants/{merchant_id}": ("GET", "/h5/merchants/m_none"),
                      "/h5/merchants/{merchant_id}/new-store": ("GET", "/h5/merchants/m_none/new-store"),
                      "/h5/merchants/{merchant_id}/orders": ("GET", "/h5/merchants/m_none/orders"),
                      "/h5/merchants/{merchant_id}/{action}": ("POST", "/h5/merchants/m_none/admins"),
                      "/h5/me": ("GET", "/h5/me"),
                      "/h5/orders/{out_trade_no}": ("GET", "/h5/orders/no-such-order"),
                      "/h5/orders/{out_trade_no}/refund": ("POST", "/h5/orders/no-such-order/refund"),
                      "/h5/codes/{code_id}/image.png": ("GET", "/h5/codes/no-such-code/image.png"),
                      "/h5/codes/{code_id}/image.svg": ("GET", "/h5/codes/no-such-code/image.svg")}
    guest = phone("guest-01")
    for route, (method, path) in merchant_pages.items():
        opened = guest.open(path, method=method, form={"csrf": "x"} if method == "POST" else None)
        headers[route] = {name.lower(): value for name, value in opened.last[2].items()}
    store_pages = {"/h5/stores/{store_id}": ("GET", "/h5/stores/s_none"),
                   "/h5/stores/{store_id}/my-code": ("GET", "/h5/stores/s_none/my-code"),
                   "/h5/stores/{store_id}/poster": ("GET", "/h5/stores/s_none/poster"),
                   "/h5/stores/{store_id}/orders": ("GET", "/h5/stores/s_none/orders"),
                   "/h5/stores/{store_id}/{action}": ("POST", "/h5/stores/s_none/clock-in")}
    stranger = phone("guest-01")
    for route, (method, path) in store_pages.items():
        opened = stranger.open(path, method=method, form={"csrf": "x"} if method == "POST" else None)
        assert opened.page_id == "no-role-here", route
        headers[route] = {name.lower(): value for name, value in opened.last[2].items()}
    return headers


JSON_H5_ROUTES = {"/h5/pay/orders/{out_trade_no}/state"}
"""What the result page polls: JSON under /h5, with the API's policy."""


def test_the_result_pages_state_is_json_with_the_api_policy(client):
    raw = client.http.get("/h5/pay/orders/no-such-order/state?t=x")

    assert _headers(raw)["content-type"] == "application/json"
    assert _headers(raw)["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_every_html_page_forbids_inline_code_framing_and_sniffing(client, phone):
    from app import app
    pages = _html_pages(client, phone)
    html_routes = {path for path in app.routes if path.startswith(("/h5/", "/console"))} - JSON_H5_ROUTES
    assert html_routes <= set(pages)
    for route, headers in pages.items():
        assert headers["content-type"].startswith("text/html"), route
        policy = headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "*" not in policy, (route, policy)
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert "strict-transport-security" not in headers  # the test stage serves http


def test_pages_carry_no_inline_script_or_style_and_their_files_are_served(client):
    console = client.http.get("/console").body.decode()
    message = client.http.get("/h5/q/no-such-code").body.decode()

    for page in (console, message):
        assert not re.search(r"<script(?![^>]*\bsrc=)", page) and "<style" not in page and " style=" not in page
        assert not re.search(r"\son[a-z]+=", page)
    for name, content_type in ASSETS.items():
        served = client.http.get(f"/static/{name}")
        assert served.status_code == 200 and _headers(served)["content-type"] == content_type
        assert _headers(served)["x-content-type-options"] == "nosniff"
    assert client.http.get("/static/console.html").status_code == 404
    assert client.http.get("/static/..%2Fapp.py").status_code == 404


def test_a_json_answer_is_not_sniffed_nor_framed(console):
    answer = console.call("POST", "/v1/accounts", {})

    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize("base_url, pinned", [("https://pay.example.com", True), ("http://127.0.0.1:8000", False)])
def test_https_deployments_pin_https(client, monkeypatch, base_url, pinned):
    monkeypatch.setenv("PUBLIC_BASE_URL", base_url)

    headers = _headers(client.http.get("/console"))

    assert ("strict-transport-security" in headers) is pinned
    if pinned:
        assert headers["strict-transport-security"] == "max-age=31536000"


def test_on_the_local_stack_only_the_sandbox_phone_may_frame_the_pages(client, monkeypatch):
    monkeypatch.setenv("FRAME_ANCESTORS", "http://127.0.0.1:8790")

    page = _headers(client.http.get("/h5/q/no-such-code"))

    assert "frame-ancestors http://127.0.0.1:8790;" in page["content-security-policy"]
    assert "x-frame-options" not in page
