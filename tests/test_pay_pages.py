"""H7 pay page and H8 result page, end to end through chalice.test.Client and the in-process
sandbox: scan → the provider's OAuth → amount → order → the sandbox wallet pays → the
channel's notification → PAID → the result page."""
from __future__ import annotations

import html
import json
import re
from types import SimpleNamespace

import httpx
import pytest

from chalicelib.models.orders import Order
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes as onecode_codes
from chalicelib.onecode.models import Store
from chalicelib.payments import limits
from chalicelib.upstream import http
from chalicelib.web import static_text
from sandbox import alipay as sandbox_alipay
from sandbox import maidan as sandbox_maidan
from sandbox.wechatpay import register_merchant, state_of as wechatpay_state
from sandbox.world import WechatUser
from tests.drivers import Phone
from tests.dynamodb_calls import counting_aws_calls
from tests.environment import PUBLIC_BASE_URL, SANDBOX_ROOT
from tests.test_payments_maidan import opened_sub_merchant, payer_openid

SP_MCHID = "1900000109"
SUB_MCHID = "1600000109"
SP_APPID = "wx5e0d4c3b2a190809"
ALIPAY_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AlipayClient/10.5.90 Language/zh-Hans"
SAFARI_AGENT = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Version/17.0 Mobile/15E148 Safari/604.1"


class AlipayPhone(Phone):
    """A phone in the Alipay app: the sandbox's Alipay knows it as `buyer_id`."""

    def __init__(self, client, buyer_id: str) -> None:
        super().__init__(client, "guest-01", user_agent=ALIPAY_AGENT)
        self.buyer_id = buyer_id

    def _sandbox(self) -> httpx.Client:
        return httpx.Client(transport=http._transport, follow_redirects=False,
                            cookies={sandbox_alipay.USER_COOKIE: self.buyer_id})


def _wechat_pay_settings(sandbox, app_secret: str | None) -> dict:
    credentials = register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[SP_APPID])
    settings = {"app_id": SP_APPID, "serial_no": credentials["serial_no"], "api_v3_key": credentials["api_v3_key"],
                "private_key_pem": credentials["private_key_pem"],
                "platform_public_key_id": credentials["platform_public_key_id"],
                "platform_public_key_pem": credentials["platform_public_key_pem"]}
    return settings | ({"app_secret": app_secret} if app_secret else {})


@pytest.fixture
def shop(bound_console, sandbox, client):
    """A provider with WeChat Pay (its official account registered at the sandbox) and an
    Alipay app, a merchant with its sub_mchid, a store and the store's collection code; the
    sandbox's notifications go to the app."""
    _, app_secret = sandbox.add_official_account(SP_APPID)
    isv = sandbox_alipay.state_of(sandbox).create_app()
    created = bound_console.call("POST", "/v1/providers", {
        "sp_mchid": SP_MCHID, "name": "演示服务商", "wechat_pay": _wechat_pay_settings(sandbox, app_secret),
        "alipay": {"app_id": isv.app_id, "private_key": isv.app_private_key_pem,
                   "alipay_public_key": isv.alipay_public_key_pem}})
    assert created.status == 201, created.json
    return _shop(bound_console, sandbox, client)


def _shop(console, sandbox, client, sp_mchid: str = SP_MCHID, sub_mchid: str = SUB_MCHID,
          channel: str | None = None) -> SimpleNamespace:
    account_id = console.call("GET", "/v1/me").json["id"]
    merchant_id = console.call("POST", "/v1/sub-merchants", {"sp_mchid": sp_mchid, "name": "一号面馆"}).json["id"]
    SubMerchant.get(account_id, merchant_id).update(
        actions=[SubMerchant.sub_mchid.set(sub_mchid)] + ([SubMerchant.channel.set(channel)] if channel else []))
    code = onecode_codes.permanent_code(onecode_codes.STORE_COLLECTION, account_id, merchant_id, store_id="s-pay",
                                        sp_mchid=sp_mchid)
    code.save()
    Store(store_id="s-pay", merchant_id=merchant_id, account_id=account_id, name="人民路店",
          collection_code_id=code.code_id, created_at=1, updated_at=1, created_key="1#s-pay").save()

    def deliver(url: str, headers: dict, body: bytes) -> tuple[int, str]:
        path = url.removeprefix(PUBLIC_BASE_URL)
        content_type = "application/x-www-form-urlencoded" if path.startswith("/notify/alipay") else \
            "application/json"
        answer = client.http.post(path, headers={"content-type": content_type, **headers}, body=body)
        return answer.status_code, answer.body.decode()
    sandbox.notifier.deliver = deliver
    return SimpleNamespace(console=console, account_id=account_id, merchant_id=merchant_id, code_id=code.code_id,
                           sandbox=sandbox)


def _authorize_alipay(shop, client) -> None:
    """The merchant approves the provider's Alipay app (C5.5), as in the authorization tests."""
    url = shop.console.call("POST", f"/v1/sub-merchants/{shop.merchant_id}/alipay-authorization-links").json["url"]
    pid = next(iter(sandbox_alipay.state_of(shop.sandbox).merchants))
    assert Phone(client, "merchant-phone").open(f"{url}&merchant={pid}").status == 200


def _invoke_params(page: Phone) -> tuple[dict, str]:
    params = re.search(r'data-params="([^"]+)"', page.html).group(1)
    result = re.search(r'data-result="([^"]+)"', page.html).group(1)
    return json.loads(html.unescape(params)), html.unescape(result)


def _submit(page: Phone, code_id: str, amount: str, remark: str = "", attempt: str | None = None) -> Phone:
    form = {"attempt": attempt or page.form_value("attempt"), "amount": amount, "remark": remark}
    return page.open(f"{PUBLIC_BASE_URL}/h5/pay/{code_id}", method="POST", form=form)


def _orders(shop) -> list[Order]:
    return list(Order.by_merchant.query(shop.merchant_id))


def _sandbox_post(path: str, **kwargs) -> httpx.Response:
    return http.client().post(f"{SANDBOX_ROOT}{path}", **kwargs)


def test_a_wechat_customer_pays_a_store_code_and_the_result_page_shows_it(shop, client):
    customer = Phone(client, "guest-01")

    form = customer.open(f"/h5/q/{shop.code_id}")
    assert (form.status, form.page_id) == (200, "pay") and "一号面馆" in form.html and "人民路店" in form.html
    assert 'inputmode="decimal"' in form.html and "cp_payer" in customer.app_cookies

    invoke = _submit(form, shop.code_id, "12.34", "多加香菜")
    assert invoke.page_id == "pay-invoke"
    assert f"{SANDBOX_ROOT}/wechatpay/sandbox/jsbridge.js" in invoke.html
    assert "script-src 'self' http://sandbox.test" in invoke.last[2]["Content-Security-Policy"]
    params, result_url = _invoke_params(invoke)
    [order] = _orders(shop)
    assert (order.state, order.total, order.remark, order.channel) == ("NOTPAY", 1234, "多加香菜", "official_direct")
    assert order.payer_id == WechatUser("guest-01", "", "NOT_OPENED").openid(SP_APPID)

    paid = _sandbox_post("/wechatpay/sandbox/wallet/pay", content=json.dumps(params),
                         headers={"content-type": "text/plain"})
    assert paid.json()["err_msg"] == "get_brand_wcpay_request:ok"
    shop.sandbox.notifier.deliver_due()

    assert Order.get(order.out_trade_no).state == "SUCCESS"
    result = customer.open(PUBLIC_BASE_URL + result_url)
    assert (result.status, result.page_id) == (200, "pay-result") and 'data-state="SUCCESS"' in result.html
    assert "¥12.34" in result.html and order.out_trade_no in result.html and "一号面馆" in result.html
    assert "data-poll" not in result.html and 'id="pay-done"' in result.html


@pytest.mark.usefixtures("platform_secrets")  # the 买单 client reads MAIDAN_API_KEY from SSM
def test_a_wechat_customer_pays_a_maidan_merchant_and_the_result_page_shows_it(bound_console, sandbox, client):
    provider, opened = opened_sub_merchant(sandbox)
    created = bound_console.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": "买单服务商"})
    assert created.status == 201, created.json
    shop = _shop(bound_console, sandbox, client, provider.sp_mchid, opened.sub_mchid, channel="maidan")
    customer = Phone(client, "guest-01")

    form = customer.open(f"/h5/q/{shop.code_id}")
    assert (form.status, form.page_id) == (200, "pay") and "一号面馆" in form.html

    invoke = _submit(form, shop.code_id, "8.80", "不要辣")
    assert invoke.page_id == "pay-invoke" and f"{SANDBOX_ROOT}/wechatpay/sandbox/jsbridge.js" in invoke.html
    params, result_url = _invoke_params(invoke)
    [order] = _orders(shop)
    assert (order.channel, order.state, order.total, order.sub_mchid) == ("maidan", "NOTPAY", 880, opened.sub_mchid)
    assert order.payer_id == payer_openid(sandbox) and params["package"] == f"prepay_id={order.prepay_id}"

    paid = _sandbox_post("/wechatpay/sandbox/wallet/pay", content=json.dumps(params),
                         headers={"content-type": "text/plain"})
    assert paid.json()["err_msg"] == "get_brand_wcpay_request:ok"
    assert sandbox_maidan.ledger(sandbox).orders[(provider.sp_mchid, order.out_trade_no)].trade_state == "SUCCESS"
    sandbox.notifier.deliver_due()

    settled = Order.get(order.out_trade_no)
    assert (settled.state, settled.settled_by) == ("SUCCESS", "notification")
    result = customer.open(PUBLIC_BASE_URL + result_url)
    assert (result.status, result.page_id) == (200, "pay-result") and 'data-state="SUCCESS"' in result.html
    assert "¥8.80" in result.html and order.out_trade_no in result.html and "一号面馆" in result.html


def test_an_alipay_customer_pays_with_the_buyer_id_of_the_providers_app(shop, client, wire):
    _authorize_alipay(shop, client)
    buyer = next(iter(sandbox_alipay.state_of(shop.sandbox).buyers))
    customer = AlipayPhone(client, buyer)

    form = customer.open(f"/h5/q/{shop.code_id}")
    assert form.page_id == "pay" and "支付宝付款" in form.html

    invoke = _submit(form, shop.code_id, "8")
    params, result_url = _invoke_params(invoke)
    [order] = _orders(shop)
    assert (order.channel, order.payer_id, order.total) == ("alipay", buyer, 800)
    assert params == {"tradeNO": order.upstream_trade_no}
    assert f"{SANDBOX_ROOT}/alipay/sandbox/jsbridge.js" in invoke.html

    paid = _sandbox_post("/alipay/sandbox/wallet/pay", data={"trade_no": params["tradeNO"]})
    assert paid.json()["resultCode"] == "9000"
    shop.sandbox.notifier.deliver_due()

    result = customer.open(PUBLIC_BASE_URL + result_url)
    assert result.page_id == "pay-result" and 'data-state="SUCCESS"' in result.html and "¥8.00" in result.html


KMS_OPERATIONS = ("Decrypt", "Encrypt", "GenerateDataKey")


def _dynamodb(calls) -> int:
    return sum(count for name, count in calls.items() if name not in KMS_OPERATIONS)


@pytest.mark.parametrize("wallet", ["wechat", "alipay"])
def test_a_scan_takes_two_dynamodb_round_trips_and_an_order_three_on_either_wallet(shop, client, wallet):
    if wallet == "alipay":
        _authorize_alipay(shop, client)
        customer = AlipayPhone(client, next(iter(sandbox_alipay.state_of(shop.sandbox).buyers)))
    else:
        customer = Phone(client, "guest-01")
    customer.open(f"/h5/q/{shop.code_id}")  # the first scan signs the payer in and sets cp_payer

    with counting_aws_calls() as scan:
        form = customer.open(f"/h5/q/{shop.code_id}")
    assert form.page_id == "pay"
    with counting_aws_calls() as post:
        invoke = _submit(form, shop.code_id, "12.34")

    assert invoke.page_id == "pay-invoke"
    assert _dynamodb(scan) <= 2 and sum(scan[name] for name in KMS_OPERATIONS) == 0, scan
    assert _dynamodb(post) <= 3 and post["Decrypt"] == 2, post
    [order] = _orders(shop)
    assert (order.total, order.channel, order.code_id) == (1234, "official_direct" if wallet == "wechat" else "alipay",
                                                           shop.code_id)


def test_a_code_revoked_after_the_form_was_shown_takes_no_payment(shop, client, wire):
    customer = Phone(client, "guest-01")
    form = customer.open(f"/h5/q/{shop.code_id}")
    QrCode.get(shop.code_id).update(actions=onecode_codes.revoke_actions())
    sent = len(wire.requests)

    refused = _submit(form, shop.code_id, "5")

    assert refused.status != 200 and refused.page_id != "pay-invoke"
    assert _orders(shop) == [] and len(wire.requests) == sent


@pytest.mark.parametrize("amount, reason", [("0", "金额必须大于 0"), ("-1", "金额只能是数字"),
                                            ("0.001", "金额最多两位小数"), ("1e3", "金额只能是数字"),
                                            ("１２", "金额只能是数字"), ("50000.01", "金额不能超过 50000.00 元"),
                                            ("", "请输入金额")])
def test_a_bad_amount_is_refused_on_the_page_with_its_reason_and_no_order(shop, client, amount, reason):
    form = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")

    refused = _submit(form, shop.code_id, amount, "备注留着")

    assert (refused.status, refused.page_id) == (400, "pay") and reason in refused.html
    assert "备注留着" in refused.html and _orders(shop) == []


def test_the_page_checks_amounts_with_the_servers_rule_and_limit(shop, client):
    form = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")

    assert 'data-limit-fen="5000000"' in form.html and 'src="/static/pay.js"' in form.html
    script = static_text("pay.js")
    assert "/^(0|[1-9][0-9]{0,9})(\\.[0-9]{1,2})?$/" in script and "金额不能超过" in script


def test_the_pay_limit_is_the_lowest_of_provider_and_merchant_else_the_default():
    unset = SimpleNamespace()
    assert limits.pay_limit_fen(unset, unset) == 5_000_000
    assert limits.pay_limit_fen(SimpleNamespace(pay_limit_fen=100_000), unset) == 100_000
    assert limits.pay_limit_fen(SimpleNamespace(pay_limit_fen=100_000), SimpleNamespace(pay_limit_fen=20_000)) == 20_000
    assert limits.pay_limit_fen(unset, SimpleNamespace(pay_limit_fen=30_000)) == 30_000


def test_a_double_tap_and_a_reload_of_the_post_or_the_result_page_make_one_order_and_one_payment(shop, client):
    form = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")
    attempt = form.form_value("attempt")

    first = _submit(form, shop.code_id, "5.00", attempt=attempt)
    params, result_url = _invoke_params(first)
    assert _submit(form, shop.code_id, "5.00", attempt=attempt).page_id == "pay-invoke"
    _sandbox_post("/wechatpay/sandbox/wallet/pay", content=json.dumps(params), headers={"content-type": "text/plain"})
    shop.sandbox.notifier.deliver_due()

    again = _submit(form, shop.code_id, "5.00", attempt=attempt)
    # the same order's result page (each link carries its own expiry, so compare the path)
    assert again.status == 303 and again.last[2]["Location"].split("?")[0] == result_url.split("?")[0]
    shown = form.open(PUBLIC_BASE_URL + result_url)
    assert shown.page_id == "pay-result" and 'data-state="SUCCESS"' in shown.html
    assert form.open(PUBLIC_BASE_URL + result_url).page_id == "pay-result"
    [order] = _orders(shop)
    assert order.state == "SUCCESS"
    assert [o.out_trade_no for o in wechatpay_state(shop.sandbox).orders.values()] == [order.out_trade_no]


def test_the_result_page_and_its_state_need_the_payers_token(shop, client):
    form = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")
    _, result_url = _invoke_params(_submit(form, shop.code_id, "1"))
    out_trade_no = _orders(shop)[0].out_trade_no

    waiting = form.open(PUBLIC_BASE_URL + result_url)
    assert waiting.page_id == "pay-result" and 'data-state="NOTPAY"' in waiting.html and "data-poll" in waiting.html
    state = client.http.get(result_url.replace("?t=", "/state?t="))
    assert json.loads(state.body) == {"state": "NOTPAY", "paid": False}
    assert form.open(f"{PUBLIC_BASE_URL}/h5/pay/orders/{out_trade_no}?t=forged").status == 404
    assert client.http.get(f"/h5/pay/orders/{out_trade_no}/state?t=forged").status_code == 404


def test_a_merchant_without_alipay_authorization_gets_a_chinese_page_and_nothing_is_sent(shop, client, wire):
    buyer = next(iter(sandbox_alipay.state_of(shop.sandbox).buyers))
    sent_before = len(wire.requests)

    page = AlipayPhone(client, buyer).open(f"/h5/q/{shop.code_id}")

    assert (page.status, page.page_id) == (409, "pay-unavailable") and "该商户暂未开通支付宝收款" in page.html
    assert wire.requests[sent_before:] == [] and _orders(shop) == []


def test_a_provider_without_wechat_pay_gets_a_chinese_page_and_nothing_goes_to_wechat_pay(bound_console, sandbox,
                                                                                        client, wire):
    created = bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商",
                                                           "wechat_pay": {"app_id": SP_APPID}})
    assert created.status == 201, created.json
    shop = _shop(bound_console, sandbox, client)
    sent_before = len(wire.requests)

    page = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")

    assert (page.status, page.page_id) == (409, "pay-unavailable") and "该商户暂未开通微信支付收款" in page.html
    sent = [str(request.url) for request in wire.requests[sent_before:]]
    assert not [url for url in sent if "/wechatpay/" in url or SP_APPID in url], sent
    assert _orders(shop) == []


def test_a_provider_without_its_official_account_secret_cannot_identify_the_payer(bound_console, sandbox, client):
    created = bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商",
                                                           "wechat_pay": _wechat_pay_settings(sandbox, None)})
    assert created.status == 201, created.json
    shop = _shop(bound_console, sandbox, client)

    page = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")

    assert (page.status, page.page_id) == (409, "pay-unavailable") and "服务商尚未完成微信公众号配置" in page.html


@pytest.mark.parametrize("path", ["/h5/q/{code}", "/h5/pay/{code}"])
def test_a_browser_that_is_no_wallet_is_asked_to_scan_with_wechat_or_alipay(shop, client, path):
    camera = Phone(client, "guest-01", user_agent=SAFARI_AGENT)

    page = camera.open(path.format(code=shop.code_id))

    assert (page.status, page.page_id) == (200, "pay-use-wallet") and "请用微信或支付宝扫码" in page.html
    assert not camera.app_cookies


def test_a_payer_callback_from_another_phone_signs_nobody_in(shop, client):
    customer = Phone(client, "guest-01")
    customer.app_cookies.clear()
    first = customer._app("GET", f"/h5/pay/{shop.code_id}")
    location = {k.lower(): v for k, v in first.headers.items()}["location"]
    assert location.startswith(f"{SANDBOX_ROOT}/wechat-open/") and f"appid={SP_APPID}" in location
    back = httpx.Client(transport=http._transport, follow_redirects=False,
                        cookies={"sandbox_wechat_user": "guest-01"}).get(location).headers["location"]

    other = Phone(client, "attacker")
    callback = other.open(back)

    assert (callback.status, callback.page_id) == (403, "oauth-wrong-browser") and "cp_payer" not in other.app_cookies


def test_the_pay_and_result_pages_weigh_at_most_15_kb_with_their_css_and_js(shop, client):
    form = Phone(client, "guest-01").open(f"/h5/q/{shop.code_id}")
    invoke = _submit(form, shop.code_id, "3")
    _, result_url = _invoke_params(invoke)
    result = form.open(PUBLIC_BASE_URL + result_url)
    assets = sum(len(static_text(name).encode()) for name in ("h5.css", "pay.css", "pay.js"))

    for page in (form, invoke, result):
        assert len(page.html.encode()) + assets <= 15 * 1024, (page.page_id, len(page.html.encode()) + assets)
