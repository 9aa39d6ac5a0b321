"""Upstream figures: sandbox round trips per client call, and what signing and verifying
cost per call as a ratio to a plain in-process HTTP round trip to the sandbox."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
from cryptography.hazmat.primitives import serialization

from chalicelib.upstream import alipay, http, maidan, wechat_message, wechat_token
from chalicelib.upstream import wechatpay as wp
from sandbox import alipay as sandbox_alipay
from sandbox import wechatpay as sandbox_wechatpay
from tests import environment
from tests.environment import next_message_id

NOTIFY = "https://h5.test/notify"
OPENID_APP = environment.PARAMETERS["WechatAppId"]


def _rows(world, wire) -> list[tuple[str, str, int]]:
    rows: list[tuple[str, str, int]] = []

    def measure(system: str, label: str, call):
        before = len(wire.requests)
        result = call()
        rows.append((system, label, len(wire.requests) - before))
        return result

    openid = world.users["admin-01"].openid(OPENID_APP)
    measure("WeChat", "access_token (cold cache)", wechat_token.access_token)
    measure("WeChat", "access_token (cached)", wechat_token.access_token)
    measure("WeChat", "send_template", lambda: wechat_message.send_template(
        openid, "cp_sandbox_payment_received",
        {"thing1": "门店", "amount2": "¥1.00", "time3": "2026-11-22 10:00:00", "character_string4": "CP1"},
        client_msg_id=next_message_id()))

    merchant = _wechatpay_merchant(world)
    expire = datetime.now(timezone.utc) + timedelta(minutes=15)
    measure("WeChat Pay", "create_jsapi_order", lambda: wp.create_jsapi_order(
        merchant, sp_appid="wx1234567890abcdef", sub_mchid="1900000101", description="一码付", out_trade_no="CPB0001",
        amount_total=100, notify_url=NOTIFY, time_expire=expire, sp_openid=openid))
    measure("WeChat Pay", "query_order_by_out_trade_no",
            lambda: wp.query_order_by_out_trade_no(merchant, "1900000101", "CPB0001"))
    measure("WeChat Pay", "close_order", lambda: wp.close_order(merchant, "1900000101", "CPB0001"))

    isv_credentials = sandbox_alipay.state_of(world).create_app()
    isv = alipay.AlipayApp(isv_credentials.app_id, isv_credentials.app_private_key_pem,
                           isv_credentials.alipay_public_key_pem)
    alipay_state = sandbox_alipay.state_of(world)
    merchant_id = next(iter(alipay_state.merchants))
    page = http.client().get(alipay.app_authorization_url(isv.app_id, "http://h5.test/a", state="s") +
                             f"&merchant={merchant_id}")
    code = parse_qs(urlsplit(page.headers["location"]).query)["app_auth_code"][0]
    token = measure("Alipay", "exchange_app_auth_code", lambda: alipay.exchange_app_auth_code(isv, code)).app_auth_token
    buyer = next(iter(alipay_state.buyers))
    measure("Alipay", "create_trade", lambda: alipay.create_trade(
        isv, app_auth_token=token, out_trade_no="CPB0002", total_fen=100, subject="一码付", buyer_id=buyer))
    measure("Alipay", "query_trade", lambda: alipay.query_trade(isv, app_auth_token=token, out_trade_no="CPB0002"))
    measure("Alipay", "close_trade", lambda: alipay.close_trade(isv, app_auth_token=token, out_trade_no="CPB0002"))

    measure("买单", "lookup_admin", lambda: maidan.lookup_admin(world.users["admin-01"].unionid))
    measure("买单", "list_sub_merchants (page of 50)", lambda: maidan.list_sub_merchants("1901000000"))
    measure("买单", "maidan_status", lambda: maidan.maidan_status(world.sub_merchant(0, 0).sub_mchid))
    return rows


def _per_call_seconds(action, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        action()
    return (time.perf_counter() - started) / runs


def _wechatpay_merchant(world) -> wp.WechatPayMerchant:
    credentials = sandbox_wechatpay.register_merchant(world, "1900000001")
    return wp.WechatPayMerchant(credentials["sp_mchid"], credentials["serial_no"], credentials["private_key_pem"],
                                credentials["api_v3_key"],
                                {credentials["platform_public_key_id"]: credentials["platform_public_key_pem"]})


def _crypto_costs(world) -> list[tuple[str, float]]:
    """Seconds to sign one request and verify one answer, per protocol (no I/O)."""
    merchant = _wechatpay_merchant(world)
    body = b'{"prepay_id":"wx201410272009395522657a690389285100"}'
    stamp, nonce = str(int(time.time())), "n" * 32
    platform = sandbox_wechatpay.state_of(world)
    wechatpay_headers = {"Wechatpay-Timestamp": stamp, "Wechatpay-Nonce": nonce,
                         "Wechatpay-Signature": platform.sign(f"{stamp}\n{nonce}\n".encode() + body + b"\n"),
                         "Wechatpay-Serial": merchant.platform_public_key_id}

    def wechatpay_call():
        wp.authorization(merchant, "POST", "/v3/pay/partner/transactions/jsapi", body, stamp, nonce)
        wp.verify_signed_message(merchant, wechatpay_headers, body)

    isv = sandbox_alipay.state_of(world).create_app()
    content = "app_id=2021&biz_content={}&charset=utf-8&method=alipay.trade.query&sign_type=RSA2&version=1.0"
    answer_signature = alipay.sign(isv.app_private_key_pem, content)
    app_public_pem = serialization.load_pem_private_key(isv.app_private_key_pem.encode(), None).public_key() \
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def alipay_call():
        alipay.sign(isv.app_private_key_pem, content)
        alipay.verify(app_public_pem, content, answer_signature)

    key = environment.MAIDAN_API_KEY.encode()
    text = body.decode()
    maidan_headers = {"Maidan-Timestamp": stamp, "Maidan-Nonce": nonce,
                      "Maidan-Signature": maidan.message_signature(key, stamp, nonce, text)}

    def maidan_call():
        maidan.request_signature(key, "POST", "/v1/assistant/admin-lookups", stamp, nonce, text)
        maidan.verify_message(key, maidan_headers, text)

    return [("WeChat Pay (RSA-2048 sign + verify)", _per_call_seconds(wechatpay_call, 200)),
            ("Alipay (RSA-2048 sign + verify)", _per_call_seconds(alipay_call, 200)),
            ("买单 (HMAC-SHA256 sign + verify)", _per_call_seconds(maidan_call, 2000))]


def report() -> None:
    with environment.in_memory_aws(), environment.sandbox_in_process() as (world, wire):
        rows = _rows(world, wire)
        plain = httpx.Client(transport=wire.inner, base_url=environment.SANDBOX_ROOT)
        round_trip = _per_call_seconds(lambda: plain.get("/sandbox/users"), 300)
        costs = _crypto_costs(world)
    print("Upstream clients: sandbox round trips per call")
    print(f"{'system':12} {'call':36} {'round trips':>11}")
    for system, label, trips in rows:
        print(f"{system:12} {label:36} {trips:>11}")
    print()
    print(f"Signing + verification per call, against a plain in-process HTTP round trip "
          f"({round_trip * 1e6:.0f} µs):")
    for label, seconds in costs:
        print(f"{label:40} {seconds * 1e6:8.0f} µs   ratio {seconds / round_trip:5.2f}")
