"""U3: the WeChat Pay API v3 partner client, run against the sandbox's independent implementation.

The sandbox verifies our signatures with its own code (sandbox/wechatpay.py imports nothing
of chalicelib), so a signing bug in the client shows up as a SIGN_ERROR here. Tests that need
a broken answer wrap the sandbox's transport and alter what comes back.
"""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib.upstream import http
from chalicelib.upstream import wechatpay as wp
from sandbox.notifier import WECHATPAY_RETRY_SCHEDULE
from sandbox.wechatpay import REFUND_SETTLES_AFTER_SECONDS, register_merchant, state_of
from sandbox.world import WechatUser
from tests import environment
from tests.environment import SANDBOX_ROOT

SP_MCHID = "1900000001"
SUB_MCHID = "1600000001"
SP_APPID = "wx5e0d4c3b2a190807"
"""The provider's own official account, bound to SP_MCHID (not the platform's wx0123456789abcdef)."""
OPENID = WechatUser("guest-01", "路人小李", "NOT_OPENED").openid(SP_APPID)
"""What WeChat issued for SP_APPID to guest-01, one of the users every sandbox world has."""
NOTIFY_URL = "http://h5.test/notify/wechatpay"
SANDBOX = f"{environment.SANDBOX_ROOT}/wechatpay/sandbox"


def merchant_from(credentials: dict, mode: str = "public_key") -> wp.WechatPayMerchant:
    if mode == "certificate":
        platform_keys = {credentials["platform_certificate_serial_no"]: credentials["platform_certificate_pem"]}
    else:
        platform_keys = {credentials["platform_public_key_id"]: credentials["platform_public_key_pem"]}
    return wp.WechatPayMerchant(sp_mchid=credentials["sp_mchid"], serial_no=credentials["serial_no"],
                                private_key_pem=credentials["private_key_pem"],
                                api_v3_key=credentials["api_v3_key"], platform_keys=platform_keys)


@pytest.fixture
def merchant(sandbox) -> wp.WechatPayMerchant:
    return merchant_from(register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[SP_APPID]))


class Receiver:
    """A notify URL standing in for our app: records every delivery, answers as told."""

    def __init__(self, answers=()) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, dict, bytes]] = []

    def __call__(self, url: str, headers: dict, body: bytes) -> tuple[int, str]:
        self.calls.append((url, headers, body))
        return self.answers.pop(0) if self.answers else (204, "")


@pytest.fixture
def receiver(sandbox) -> Receiver:
    sandbox.notifier.deliver = Receiver()
    return sandbox.notifier.deliver


@pytest.fixture
def tampered(sandbox, wire):
    """(world, merchant, wire): answers can be rewritten on their way back to the client."""
    return sandbox, merchant_from(register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[SP_APPID])), wire


def platform_signed(private_key: rsa.RSAPrivateKey, serial: str, body: bytes, timestamp: int) -> dict:
    nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    signature = base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    return {"Wechatpay-Timestamp": str(timestamp), "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial, "Content-Type": "application/json"}


def place_order(merchant: wp.WechatPayMerchant, out_trade_no: str = "CP20240601000001", total: int = 1234,
                **fields) -> str:
    arguments = dict(sp_appid=SP_APPID, sub_mchid=SUB_MCHID, description="演示门店-扫码点单",
                     out_trade_no=out_trade_no, amount_total=total, notify_url=NOTIFY_URL,
                     time_expire=datetime.now(timezone.utc) + timedelta(minutes=15), sp_openid=OPENID)
    arguments.update(fields)
    return wp.create_jsapi_order(merchant, **arguments)


def sandbox_pay(out_trade_no: str) -> dict:
    response = http.client().post(f"{SANDBOX}/orders/{out_trade_no}/pay", json={})
    assert response.status_code == 200, response.text
    return response.json()


# --- Orders -------------------------------------------------------------------------------

def test_a_jsapi_order_gives_a_prepay_id_and_placing_it_again_unchanged_gives_the_same_one(merchant):
    first = place_order(merchant, attach="store=42")
    again = place_order(merchant, attach="store=42")

    assert first.startswith("wx") and len(first) == 38
    assert again == first


def test_placing_an_out_trade_no_again_with_other_fields_is_refused_as_a_duplicate(merchant):
    place_order(merchant, total=100)

    with pytest.raises(wp.WechatPayRequestError) as raised:
        place_order(merchant, total=200)

    assert (raised.value.status, raised.value.code) == (400, "INVALID_REQUEST")
    assert "商户订单号重复" in raised.value.message


@pytest.mark.parametrize("field, overrides", [
    ("amount.total", {"total": 0}),
    ("amount.total", {"total": 12.5}),
    ("amount.total", {"total": True}),
    ("out_trade_no", {"out_trade_no": "CP123"}),
    ("out_trade_no", {"out_trade_no": "CP2024/0601"}),
    ("out_trade_no", {"out_trade_no": "C" * 33}),
    ("description", {"description": "汉" * 43}),
    ("payer", {"sp_openid": None}),
    ("time_expire", {"time_expire": datetime(2030, 1, 1, 12, 0)}),
])
def test_invalid_order_fields_are_refused_by_name_before_anything_is_sent(sandbox, merchant, field, overrides):
    nonces_before = len(sandbox.seen_nonces)

    with pytest.raises(ValueError, match=f"^{field}:"):
        place_order(merchant, **overrides)

    assert len(sandbox.seen_nonces) == nonces_before


def test_the_sandbox_refuses_a_body_the_client_would_not_send_with_param_error_naming_the_field(merchant):
    payload = {"sp_appid": SP_APPID, "sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID, "description": "x",
               "out_trade_no": "CP20240601000002", "notify_url": NOTIFY_URL,
               "amount": {"total": -1, "currency": "CNY"}, "payer": {"sp_openid": OPENID}}

    with pytest.raises(wp.WechatPayRequestError) as raised:
        wp._call(merchant, "POST", "/v3/pay/partner/transactions/jsapi", payload=payload)

    assert (raised.value.status, raised.value.code) == (400, "PARAM_ERROR")
    assert raised.value.detail["field"] == "/amount/total"
    assert "/amount/total" in str(raised.value)


def test_an_order_is_queryable_by_out_trade_no_and_by_transaction_id_once_paid(merchant):
    place_order(merchant, total=1234, attach="store=42")
    unpaid = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001")
    sandbox_pay("CP20240601000001")

    paid = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001")
    by_id = wp.query_order_by_transaction_id(merchant, SUB_MCHID, paid.transaction_id)

    assert (unpaid.trade_state, unpaid.transaction_id, unpaid.paid) == ("NOTPAY", None, False)
    assert paid.trade_state == "SUCCESS" and paid.paid
    assert (paid.amount_total, paid.payer_total, paid.currency) == (1234, 1234, "CNY")
    assert (paid.sp_openid, paid.attach, paid.sub_mchid) == (OPENID, "store=42", SUB_MCHID)
    assert paid.success_time is not None and paid.success_time.utcoffset() == timedelta(hours=8)
    assert by_id == paid


def test_an_out_trade_no_with_pipe_and_star_is_signed_as_percent_encoded_and_accepted(merchant):
    place_order(merchant, out_trade_no="CP|2024*06_01-7")

    order = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP|2024*06_01-7")

    assert order.out_trade_no == "CP|2024*06_01-7"


def test_querying_an_unknown_order_raises_not_found(merchant):
    with pytest.raises(wp.WechatPayNotFound) as raised:
        wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP_NEVER_PLACED")

    assert (raised.value.status, raised.value.code) == (404, "ORDER_NOT_EXIST")


def test_closing_an_unpaid_order_closes_it_and_reusing_its_out_trade_no_is_refused_as_closed(merchant):
    place_order(merchant)

    assert wp.close_order(merchant, SUB_MCHID, "CP20240601000001") is None
    assert wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001").trade_state == "CLOSED"
    with pytest.raises(wp.WechatPayOrderClosed) as raised:
        place_order(merchant)
    assert raised.value.code == "ORDER_CLOSED"


def test_closing_a_paid_order_is_refused_as_paid(merchant):
    place_order(merchant)
    sandbox_pay("CP20240601000001")

    with pytest.raises(wp.WechatPayOrderPaid) as raised:
        wp.close_order(merchant, SUB_MCHID, "CP20240601000001")

    assert (raised.value.status, raised.value.code) == (400, "ORDERPAID")


@pytest.mark.parametrize("sub_mchid, error, status, code", [
    ("1999999999", wp.WechatPayAuthError, 400, "MCH_NOT_EXISTS"),
    ("1888888888", wp.WechatPayAuthError, 403, "NO_AUTH"),
])
def test_a_sub_merchant_that_is_unknown_or_not_ours_is_refused(merchant, sub_mchid, error, status, code):
    with pytest.raises(error) as raised:
        place_order(merchant, sub_mchid=sub_mchid)

    assert (raised.value.status, raised.value.code) == (status, code)


def test_user_paying_and_payer_error_faults_show_in_the_queried_trade_state(sandbox, merchant):
    place_order(merchant)

    sandbox.faults.arm("wechatpay", "USER_PAYING")
    paying = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001")
    sandbox.faults.arm("wechatpay", "PAYER_ERROR")
    failed = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001")
    still_failed = wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001")

    assert paying.trade_state == "USERPAYING"
    assert failed.trade_state == still_failed.trade_state == "PAYERROR"


# --- Refunds ------------------------------------------------------------------------------

def test_a_refund_is_processing_at_first_and_succeeds_when_wechat_pay_settles_it(sandbox, merchant):
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")

    refund = wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001",
                              out_refund_no="RF20240601000001", refund=300, total=1000, reason="顾客退菜")
    again = wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001",
                             out_refund_no="RF20240601000001", refund=300, total=1000, reason="顾客退菜")
    sandbox.clock.advance(REFUND_SETTLES_AFTER_SECONDS)
    settled = wp.query_refund(merchant, SUB_MCHID, "RF20240601000001")

    assert (refund.status, refund.refund, refund.total, refund.success_time) == ("PROCESSING", 300, 1000, None)
    assert again.refund_id == refund.refund_id
    assert settled.status == "SUCCESS" and settled.success_time is not None
    assert wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001").trade_state == "REFUND"


def test_refunding_more_than_is_left_or_an_unpaid_order_is_refused(merchant):
    place_order(merchant, out_trade_no="CP_PAID_000001", total=1000)
    place_order(merchant, out_trade_no="CP_UNPAID_00001", total=1000)
    sandbox_pay("CP_PAID_000001")
    wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP_PAID_000001", out_refund_no="RF1",
                     refund=700, total=1000)

    with pytest.raises(wp.WechatPayRequestError) as too_much:
        wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP_PAID_000001", out_refund_no="RF2",
                         refund=301, total=1000)
    with pytest.raises(wp.WechatPayRequestError) as unpaid:
        wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP_UNPAID_00001", out_refund_no="RF3",
                         refund=100, total=1000)

    assert (too_much.value.status, too_much.value.code) == (400, "INVALID_REQUEST")
    assert (unpaid.value.status, unpaid.value.code) == (400, "INVALID_REQUEST")


def test_a_refund_the_sub_merchants_balance_cannot_cover_raises_not_enough(sandbox, merchant):
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")
    sandbox.faults.arm("wechatpay", "NOT_ENOUGH")

    with pytest.raises(wp.WechatPayNotEnough) as raised:
        wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001",
                         out_refund_no="RF20240601000001", refund=100, total=1000)

    assert (raised.value.status, raised.value.code) == (403, "NOT_ENOUGH")


def test_a_refund_of_an_amount_ending_in_99_fen_settles_abnormal(sandbox, merchant):
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")
    wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001", out_refund_no="RF1",
                     refund=199, total=1000)

    sandbox.clock.advance(REFUND_SETTLES_AFTER_SECONDS)

    assert wp.query_refund(merchant, SUB_MCHID, "RF1").status == "ABNORMAL"


def test_querying_an_unknown_refund_raises_not_found(merchant):
    with pytest.raises(wp.WechatPayNotFound) as raised:
        wp.query_refund(merchant, SUB_MCHID, "RF_NEVER_MADE")

    assert (raised.value.status, raised.value.code) == (404, "RESOURCE_NOT_EXISTS")


# --- Request signing ----------------------------------------------------------------------

def test_a_request_signed_with_the_wrong_merchant_key_is_refused_with_sign_error(merchant):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    impostor = wp.WechatPayMerchant(SP_MCHID, merchant.serial_no, other_key, merchant.api_v3_key,
                                    merchant.platform_keys)

    with pytest.raises(wp.WechatPayAuthError) as raised:
        place_order(impostor)

    assert (raised.value.status, raised.value.code) == (401, "SIGN_ERROR")


def test_a_merchant_unknown_to_wechat_pay_is_refused_with_sign_error(merchant):
    stranger = wp.WechatPayMerchant("1900000999", merchant.serial_no, merchant.private_key_pem,
                                    merchant.api_v3_key, merchant.platform_keys)

    with pytest.raises(wp.WechatPayAuthError, match="SIGN_ERROR"):
        place_order(stranger)


def test_a_replayed_request_is_refused_because_its_nonce_was_used(merchant):
    url = f"{environment.SANDBOX_ROOT}/wechatpay/v3/refund/domestic/refunds/RF1?sub_mchid={SUB_MCHID}"
    header = wp.authorization(merchant, "GET", httpx.URL(url).raw_path.decode(), b"", str(int(time.time())),
                              "0123456789ABCDEF0123456789ABCDEF")

    first = http.client().get(url, headers={"Authorization": header, "Accept": "application/json"})
    replay = http.client().get(url, headers={"Authorization": header, "Accept": "application/json"})

    assert (first.status_code, first.json()["code"]) == (404, "RESOURCE_NOT_EXISTS")
    assert (replay.status_code, replay.json()["code"]) == (401, "SIGN_ERROR")


def test_a_request_timestamped_more_than_five_minutes_ago_is_refused_with_sign_error(merchant):
    url = f"{environment.SANDBOX_ROOT}/wechatpay/v3/refund/domestic/refunds/RF1?sub_mchid={SUB_MCHID}"
    header = wp.authorization(merchant, "GET", httpx.URL(url).raw_path.decode(), b"", str(int(time.time()) - 301),
                              "0123456789ABCDEF0123456789ABCDEF")

    answer = http.client().get(url, headers={"Authorization": header, "Accept": "application/json"})

    wp.verify_signed_message(merchant, answer.headers, answer.content)
    assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
    assert "5分钟" in answer.json()["message"]


# --- Answer verification ------------------------------------------------------------------

def test_a_tampered_answer_body_raises_a_signature_error_and_is_not_believed(tampered):
    _, merchant, tamper = tampered
    tamper.rewrite = lambda status, headers, body: (status, headers, body.replace(b'"prepay_id":"wx', b'"prepay_id":"xx'))

    with pytest.raises(wp.WechatPaySignatureError, match="does not match"):
        place_order(merchant)


def test_a_tampered_error_answer_is_not_believed_either(tampered):
    _, merchant, tamper = tampered
    tamper.rewrite = lambda status, headers, body: (status, headers, body.replace(b"ORDER_NOT_EXIST", b"ORDER_CLOSED"))

    with pytest.raises(wp.WechatPaySignatureError):
        wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP_NEVER_PLACED")


def test_an_answer_signed_more_than_five_minutes_ago_is_refused_although_the_signature_is_valid(tampered):
    world, merchant, tamper = tampered
    platform = state_of(world)

    def stale(status, headers, body):
        return status, platform_signed(platform.platform_key, headers["wechatpay-serial"], body,
                                       int(time.time()) - 301), body

    tamper.rewrite = stale

    with pytest.raises(wp.WechatPaySignatureError, match="5 minutes"):
        place_order(merchant)


def test_an_answer_resigned_with_a_fresh_timestamp_is_accepted(tampered):
    world, merchant, tamper = tampered
    platform = state_of(world)
    tamper.rewrite = lambda status, headers, body: (
        status, platform_signed(platform.platform_key, headers["wechatpay-serial"], body, int(time.time()) - 290), body)

    assert place_order(merchant).startswith("wx")


def test_a_signtest_probe_signature_is_refused_without_verifying_it(tampered):
    _, merchant, tamper = tampered

    def probe(status, headers, body):
        headers["wechatpay-signature"] = "WECHATPAY/SIGNTEST/" + headers["wechatpay-signature"]
        return status, headers, body

    tamper.rewrite = probe

    with pytest.raises(wp.WechatPaySignatureError, match="SIGNTEST"):
        place_order(merchant)


def test_an_answer_from_a_platform_serial_we_do_not_hold_is_refused_clearly(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[SP_APPID])
    certificate_only = merchant_from(credentials, mode="certificate")

    with pytest.raises(wp.WechatPaySignatureError, match=credentials["platform_public_key_id"]):
        place_order(certificate_only)


def test_a_provider_on_platform_certificates_verifies_answers_with_the_certificate(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID, platform_key_mode="certificate", sub_mchids=[SUB_MCHID],
                                    appids=[SP_APPID])
    merchant = merchant_from(credentials, mode="certificate")

    assert place_order(merchant).startswith("wx")
    assert merchant.platform_public_key_id is None


def test_a_certificate_filed_under_another_serial_is_refused_when_the_credentials_are_made(sandbox):
    credentials = register_merchant(sandbox, SP_MCHID)

    with pytest.raises(ValueError, match="serial number"):
        wp.WechatPayMerchant(SP_MCHID, credentials["serial_no"], credentials["private_key_pem"],
                             credentials["api_v3_key"], {"5157F09EFDC096DE15EBE81A47057A7232F1B8E1":
                                                         credentials["platform_certificate_pem"]})


# --- Error codes, retries, timeouts -------------------------------------------------------

_TEST_PLATFORM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_TEST_MERCHANT_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _offline_merchant() -> wp.WechatPayMerchant:
    public_pem = _TEST_PLATFORM_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    private_pem = _TEST_MERCHANT_KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    return wp.WechatPayMerchant(SP_MCHID, "3775B6A45ACD588826D15E583A95F5DD6A9C8F0B", private_pem,
                                "0123456789abcdefghijABCDEFGHIJ01", {"PUB_KEY_ID_0119000000012024": public_pem})


@pytest.mark.parametrize("status, code, error", [
    (400, "PARAM_ERROR", wp.WechatPayRequestError),
    (400, "INVALID_REQUEST", wp.WechatPayRequestError),
    (401, "SIGN_ERROR", wp.WechatPayAuthError),
    (403, "NO_AUTH", wp.WechatPayAuthError),
    (400, "MCH_NOT_EXISTS", wp.WechatPayAuthError),
    (404, "ORDERNOTEXIST", wp.WechatPayNotFound),
    (404, "ORDER_NOT_EXIST", wp.WechatPayNotFound),
    (404, "RESOURCE_NOT_EXISTS", wp.WechatPayNotFound),
    (400, "ORDER_CLOSED", wp.WechatPayOrderClosed),
    (400, "ORDERPAID", wp.WechatPayOrderPaid),
    (403, "NOT_ENOUGH", wp.WechatPayNotEnough),
    (403, "NOTENOUGH", wp.WechatPayNotEnough),
    (202, "USERPAYING", wp.WechatPayUserPaying),
    (403, "FREQUENCY_LIMITED", wp.WechatPayTryLater),
    (400, "SYSTEMERROR", wp.WechatPayTryLater),
    (403, "SOMETHING_NEW", wp.WechatPayError),
])
def test_each_documented_error_code_raises_its_exception_with_status_code_and_message(status, code, error):
    body = json.dumps({"code": code, "message": "说明", "detail": {"field": "/x", "issue": "y"}}).encode()
    headers = platform_signed(_TEST_PLATFORM_KEY, "PUB_KEY_ID_0119000000012024", body, int(time.time()))
    http.use_transport(httpx.MockTransport(lambda request: httpx.Response(status, headers=headers, content=body)))
    try:
        with pytest.raises(error) as raised:
            wp.close_order(_offline_merchant(), SUB_MCHID, "CP20240601000001")
    finally:
        http.use_transport(None)

    assert type(raised.value) is error
    assert (raised.value.status, raised.value.code, raised.value.message) == (status, code, "说明")
    assert raised.value.detail == {"field": "/x", "issue": "y"}


def test_a_timeout_is_retried_and_then_raises_upstream_unavailable(sandbox, merchant):
    sandbox.faults.arm("wechatpay", "TIMEOUT", times=2)

    with pytest.raises(http.UpstreamUnavailable, match="timed out after 2 attempts"):
        place_order(merchant)


def test_a_system_error_is_retried_with_a_fresh_signature_and_the_retry_succeeds(sandbox, merchant):
    sandbox.faults.arm("wechatpay", "SYSTEM_ERROR")

    prepay_id = place_order(merchant)

    assert prepay_id.startswith("wx") and sandbox.faults.armed["wechatpay"] == []


def test_frequency_limited_on_every_attempt_raises_upstream_unavailable(sandbox, merchant):
    sandbox.faults.arm("wechatpay", "RATE_LIMITED", times=2)

    with pytest.raises(http.UpstreamUnavailable, match="HTTP 429"):
        wp.query_refund(merchant, SUB_MCHID, "RF1")


# --- Notifications ------------------------------------------------------------------------

def test_a_payment_notification_is_verified_and_decrypted_to_the_paid_transaction(sandbox, merchant, receiver):
    place_order(merchant, total=1234)
    sandbox_pay("CP20240601000001")

    sandbox.notifier.deliver_due()
    url, headers, body = receiver.calls[0]
    notification = wp.parse_notification(merchant, headers, body)

    assert url == NOTIFY_URL
    assert (notification.event_type, notification.original_type, notification.summary) == (
        "TRANSACTION.SUCCESS", "transaction", "支付成功")
    transaction = notification.transaction()
    assert (transaction.out_trade_no, transaction.trade_state, transaction.amount_total) == (
        "CP20240601000001", "SUCCESS", 1234)
    assert (transaction.sp_mchid, transaction.sub_mchid) == (SP_MCHID, SUB_MCHID)


def test_a_refund_notification_arrives_when_the_refund_settles_and_decrypts_to_the_refund(sandbox, merchant,
                                                                                          receiver):
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")
    sandbox.notifier.deliver_due()
    wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001",
                     out_refund_no="RF20240601000001", refund=250, total=1000, notify_url=NOTIFY_URL)

    sandbox.notifier.deliver_due()
    before_settling = len(receiver.calls)
    sandbox.clock.advance(REFUND_SETTLES_AFTER_SECONDS)
    sandbox.notifier.deliver_due()
    notification = wp.parse_notification(merchant, receiver.calls[-1][1], receiver.calls[-1][2],
                                         now=sandbox.clock.now())

    assert before_settling == 1 and len(receiver.calls) == 2
    assert notification.event_type == "REFUND.SUCCESS"
    refund = notification.refund()
    assert (refund.out_refund_no, refund.status, refund.refund, refund.total) == ("RF20240601000001", "SUCCESS",
                                                                                  250, 1000)


def test_a_duplicate_delivery_carries_the_same_notification_id_so_the_receiver_can_spot_it(sandbox, merchant,
                                                                                          receiver):
    place_order(merchant)
    queued = sandbox_pay("CP20240601000001")["notification"]
    sandbox.notifier.deliver_due()

    duplicate = http.client().post(f"{SANDBOX}/notifications/{queued}/duplicate")
    first, second = (wp.parse_notification(merchant, headers, body) for _, headers, body in receiver.calls)

    assert duplicate.json() == {"status": 204, "text": ""}
    assert first.notification_id == second.notification_id
    assert receiver.calls[0][1]["Wechatpay-Nonce"] != receiver.calls[1][1]["Wechatpay-Nonce"]


def test_a_notification_replayed_more_than_five_minutes_later_is_refused(sandbox, merchant, receiver):
    place_order(merchant)
    sandbox_pay("CP20240601000001")
    sandbox.notifier.deliver_due()
    _, headers, body = receiver.calls[0]

    with pytest.raises(wp.WechatPaySignatureError, match="5 minutes"):
        wp.parse_notification(merchant, headers, body, now=time.time() + 301)


def test_a_notification_with_a_signtest_probe_signature_is_refused(sandbox, merchant, receiver):
    place_order(merchant)
    sandbox_pay("CP20240601000001")
    sandbox.notifier.deliver_due()
    _, headers, body = receiver.calls[0]

    with pytest.raises(wp.WechatPaySignatureError, match="SIGNTEST"):
        wp.parse_notification(merchant, {**headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"}, body)


def test_a_forged_notification_is_refused_by_its_signature(sandbox, merchant, receiver):
    place_order(merchant)

    forged = http.client().post(f"{SANDBOX}/notifications/forge",
                                json={"out_trade_no": "CP20240601000001", "url": "http://h5.test/forged"})
    url, headers, body = receiver.calls[0]

    assert forged.json()["status"] == 204 and url == "http://h5.test/forged"
    with pytest.raises(wp.WechatPaySignatureError, match="does not match"):
        wp.parse_notification(merchant, headers, body)


def test_a_validly_signed_notification_with_a_wrong_amount_verifies_so_the_caller_must_compare_amounts(
        sandbox, merchant, receiver):
    place_order(merchant, total=1000)

    http.client().post(f"{SANDBOX}/notifications/forge",
                       json={"out_trade_no": "CP20240601000001", "signature": "valid", "amount_total": 1})
    notification = wp.parse_notification(merchant, receiver.calls[0][1], receiver.calls[0][2])

    assert notification.transaction().amount_total == 1
    assert wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001").trade_state == "NOTPAY"


def test_a_tampered_ciphertext_fails_the_gcm_tag_with_a_clear_error(sandbox, merchant, receiver):
    place_order(merchant)
    sandbox_pay("CP20240601000001")
    sandbox.notifier.deliver_due()
    _, headers, body = receiver.calls[0]
    envelope = json.loads(body)
    resource = envelope["resource"]
    ciphertext = bytearray(base64.b64decode(resource["ciphertext"]))
    ciphertext[0] ^= 1

    with pytest.raises(wp.WechatPayDecryptionError, match="altered"):
        wp.decrypt_aead(merchant.api_v3_key, resource["nonce"], resource["associated_data"],
                        base64.b64encode(bytes(ciphertext)).decode())
    with pytest.raises(wp.WechatPayDecryptionError):
        wp.decrypt_aead(merchant.api_v3_key, resource["nonce"], "refund", resource["ciphertext"])


def test_a_notification_is_retried_on_wechat_pays_schedule_until_acknowledged(sandbox, merchant):
    receiver = Receiver(answers=[(500, '{"code":"FAIL","message":"busy"}'), (204, "")])
    sandbox.notifier.deliver = receiver
    place_order(merchant)
    sandbox_pay("CP20240601000001")

    sandbox.notifier.deliver_due()
    sandbox.clock.advance(WECHATPAY_RETRY_SCHEDULE[0] - 1)
    sandbox.notifier.deliver_due()
    attempts_before_due = len(receiver.calls)
    sandbox.clock.advance(1)
    sandbox.notifier.deliver_due()
    sandbox.clock.advance(3600)
    sandbox.notifier.deliver_due()

    (notification,) = sandbox.notifier.of_system("wechatpay")
    assert attempts_before_due == 1 and len(receiver.calls) == 2 and notification.acknowledged
    first, second = (headers for _, headers, _ in receiver.calls)
    assert int(second["Wechatpay-Timestamp"]) - int(first["Wechatpay-Timestamp"]) == WECHATPAY_RETRY_SCHEDULE[0]
    assert wp.parse_notification(merchant, first, receiver.calls[0][2], now=float(first["Wechatpay-Timestamp"]))


def test_held_notifications_can_be_delivered_newest_first(sandbox, merchant, receiver):
    http.client().post(f"{SANDBOX_ROOT}/sandbox/notifications/hold")
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")
    wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001", out_refund_no="RF1",
                     refund=1000, total=1000, notify_url=NOTIFY_URL)
    sandbox.clock.advance(REFUND_SETTLES_AFTER_SECONDS)

    assert sandbox.notifier.deliver_due() == []

    answer = http.client().post(f"{SANDBOX_ROOT}/sandbox/notifications/release", json={"order": "reverse"})
    events = [wp.parse_notification(merchant, headers, body, now=sandbox.clock.now()).event_type
              for _, headers, body in receiver.calls]

    assert events == ["REFUND.SUCCESS", "TRANSACTION.SUCCESS"]
    assert len(answer.json()["delivered"]) == 2
    assert sandbox.notifier.deliver_due() == []


# --- AEAD_AES_256_GCM vectors -------------------------------------------------------------

def test_decryption_matches_the_published_gcm_test_case_14_for_aes_256():
    """McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14: zero key, IV and
    one zero block. WeChat Pay's docs publish no vector with a usable key."""
    ciphertext_and_tag = bytes.fromhex("cea7403d4d606b6e074ec5d3baf39d18" "d0d1c8a799996bf0265b98b5d48ab919")

    plaintext = wp.decrypt_aead("\x00" * 32, "\x00" * 12, "", base64.b64encode(ciphertext_and_tag).decode())

    assert plaintext == bytes(16)


def test_decryption_reads_a_resource_encrypted_independently_with_the_api_v3_key():
    api_v3_key, nonce, associated_data = "0123456789abcdefghijABCDEFGHIJ01", "fdasflkja484", "transaction"
    plaintext = '{"out_trade_no":"CP20240601000001","trade_state":"SUCCESS"}'.encode()
    ciphertext = AESGCM(api_v3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())

    assert wp.decrypt_aead(api_v3_key, nonce, associated_data, base64.b64encode(ciphertext).decode()) == plaintext


# --- paySign and the sandbox wallet -------------------------------------------------------

def test_pay_sign_verifies_with_the_merchant_public_key_over_the_documented_message(merchant):
    params = wp.jsapi_pay_params(merchant, SP_APPID, "wx201410272009395522657a690389285100")

    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    public_key = serialization.load_pem_private_key(merchant.private_key_pem.encode(), None).public_key()
    public_key.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    assert set(params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert (params["package"], params["signType"]) == ("prepay_id=wx201410272009395522657a690389285100", "RSA")
    assert params["timeStamp"].isdigit() and abs(int(params["timeStamp"]) - time.time()) < 5


def test_the_wallet_shows_the_order_then_pays_it_and_wechat_pay_notifies(sandbox, merchant, receiver):
    prepay_id = place_order(merchant, total=880, description="老王面馆-牛肉面")
    params = wp.jsapi_pay_params(merchant, SP_APPID, prepay_id)

    sheet = http.client().post(f"{SANDBOX}/wallet/checkout", content=json.dumps(params),
                               headers={"Content-Type": "text/plain"})
    paid = http.client().post(f"{SANDBOX}/wallet/pay", content=json.dumps(params),
                              headers={"Content-Type": "text/plain"})
    sandbox.notifier.deliver_due()

    assert sheet.json()["amount_total"] == 880 and sheet.json()["description"] == "老王面馆-牛肉面"
    assert sheet.headers["Access-Control-Allow-Origin"] == "*"
    assert paid.json() == {"err_msg": "get_brand_wcpay_request:ok"}
    assert wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001").trade_state == "SUCCESS"
    assert wp.parse_notification(merchant, receiver.calls[0][1], receiver.calls[0][2]).event_type == \
        "TRANSACTION.SUCCESS"


def test_the_wallet_refuses_a_pay_sign_that_does_not_verify(merchant):
    params = wp.jsapi_pay_params(merchant, SP_APPID, place_order(merchant))
    params["nonceStr"] = params["nonceStr"].lower()

    answer = http.client().post(f"{SANDBOX}/wallet/pay", content=json.dumps(params))

    assert answer.status_code == 400 and answer.json()["err_msg"] == "get_brand_wcpay_request:fail"
    assert wp.query_order_by_out_trade_no(merchant, SUB_MCHID, "CP20240601000001").trade_state == "NOTPAY"


def test_the_wallet_refuses_to_show_the_cashier_for_an_order_already_paid(merchant):
    params = wp.jsapi_pay_params(merchant, SP_APPID, place_order(merchant))
    sandbox_pay("CP20240601000001")

    answer = http.client().post(f"{SANDBOX}/wallet/checkout", content=json.dumps(params))

    assert answer.status_code == 400
    assert answer.json() == {"err_msg": "get_brand_wcpay_request:fail", "err_desc": "该订单已支付"}


def test_the_wallet_script_is_served_and_defines_the_bridge_and_its_ready_event(sandbox):
    script = http.client().get(f"{SANDBOX}/jsbridge.js")

    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "window.WeixinJSBridge" in script.text and "WeixinJSBridgeReady" in script.text
    assert "get_brand_wcpay_request:" in script.text


def test_sandbox_credentials_can_be_created_and_read_back_over_http(sandbox):
    created = http.client().post(f"{SANDBOX}/merchants", json={"sp_mchid": "1900000002"}).json()
    read_back = http.client().get(f"{SANDBOX}/merchants/1900000002").json()

    assert created == read_back
    assert len(created["api_v3_key"]) == 32 and created["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert "BEGIN PRIVATE KEY" in created["private_key_pem"] and len(created["serial_no"]) == 40


# --- A lost answer (the work was done, the answer never arrived) ---------------------------

def test_a_refund_whose_answer_was_lost_is_retried_into_the_same_single_refund(sandbox, merchant, wire):
    place_order(merchant, total=1000)
    sandbox_pay("CP20240601000001")
    sandbox.faults.arm("wechatpay", "LOST_ANSWER")

    refund = wp.create_refund(merchant, sub_mchid=SUB_MCHID, out_trade_no="CP20240601000001", out_refund_no="RF1",
                              refund=400, total=1000, notify_url=NOTIFY_URL)

    assert wire.count("/v3/refund/domestic/refunds") == 2
    assert refund.refund == 400 and len(state_of(sandbox).refunds) == 1
    assert wp.query_refund(merchant, SUB_MCHID, "RF1").refund_id == refund.refund_id
