"""U4: the Alipay client (chalicelib/upstream/alipay.py) against the sandbox's independent
Alipay (sandbox/alipay.py), in-process."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib.upstream import alipay, http
from sandbox import alipay as sandbox_alipay
from sandbox.notifier import ALIPAY_RETRY_SCHEDULE
from tests.environment import SANDBOX_ROOT

NOTIFY_URL = "http://h5.test/alipay/notify"
DAY = 86400


class Receiver:
    """Stands in for our notify URL: records each delivery and answers as told."""

    def __init__(self, clock, answers: list[str] | None = None) -> None:
        self.clock = clock
        self.answers = list(answers or [])
        self.calls: list[tuple[float, str, dict, bytes]] = []

    def __call__(self, url: str, headers: dict, body: bytes) -> tuple[int, str]:
        self.calls.append((self.clock.now(), url, headers, body))
        return 200, self.answers.pop(0) if self.answers else alipay.NOTIFICATION_ACK

    @property
    def bodies(self) -> list[bytes]:
        return [call[3] for call in self.calls]


@pytest.fixture
def world_alipay(sandbox):
    return sandbox_alipay.state_of(sandbox)


@pytest.fixture
def isv(world_alipay) -> alipay.AlipayApp:
    credentials = world_alipay.create_app()
    return alipay.AlipayApp(credentials.app_id, credentials.app_private_key_pem, credentials.alipay_public_key_pem)


@pytest.fixture
def receiver(sandbox):
    recorder = Receiver(sandbox.clock)
    sandbox.notifier.deliver = recorder
    return recorder


def _authorize(isv: alipay.AlipayApp, world_alipay, merchant_index: int = 0) -> alipay.AppAuthorization:
    """A merchant approves the ISV app on the appToAppAuth page; we exchange the code."""
    merchant = list(world_alipay.merchants)[merchant_index]
    url = alipay.app_authorization_url(isv.app_id, "http://h5.test/alipay/authorized", state="s1")
    page = http.client().get(f"{url}&merchant={merchant}")
    back = parse_qs(urlsplit(page.headers["location"]).query)
    return alipay.exchange_app_auth_code(isv, back["app_auth_code"][0])


@pytest.fixture
def token(isv, world_alipay) -> str:
    return _authorize(isv, world_alipay).app_auth_token


@pytest.fixture
def buyer_id(world_alipay) -> str:
    return next(iter(world_alipay.buyers))


def _create(isv, token, buyer_id, out_trade_no="CP20240101_0001", total_fen=1234, subject="一码付 测试门店", **extra):
    return alipay.create_trade(isv, app_auth_token=token, out_trade_no=out_trade_no, total_fen=total_fen,
                               subject=subject, buyer_id=buyer_id, notify_url=NOTIFY_URL, **extra)


def _pay(trade_no: str, headers: dict | None = None) -> dict:
    return http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/trades/{trade_no}/pay", headers=headers or {}).json()


# --- signing ---------------------------------------------------------------------------------


DOCUMENTED_PARAMS = {
    # The example of 自行实现签名 (opendocs.alipay.com), as published.
    "app_id": "2014072300007148",
    "method": "alipay.mobile.public.menu.add",
    "charset": "GBK",
    "sign_type": "RSA2",
    "timestamp": "2014-07-24 03:07:50",
    "biz_content": '{"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},'
                   '{"name":"查询","subButton":[{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},'
                   '{"actionParam":"ZFB_LLCX","actionType":"out","name":"流量查询"},'
                   '{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},'
                   '{"actionParam":"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}',
    "sign": "ignored: the signature is never part of what is signed",
    "version": "1.0",
}
DOCUMENTED_SIGN_STRING = (
    'app_id=2014072300007148&biz_content={"button":[{"actionParam":"ZFB_HFCZ","actionType":"out","name":"话费充值"},'
    '{"name":"查询","subButton":[{"actionParam":"ZFB_YECX","actionType":"out","name":"余额查询"},'
    '{"actionParam":"ZFB_LLCX","actionType":"out","name":"流量查询"},'
    '{"actionParam":"ZFB_HFCX","actionType":"out","name":"话费查询"}]},'
    '{"actionParam":"http://m.alipay.com","actionType":"link","name":"最新优惠"}]}'
    '&charset=GBK&method=alipay.mobile.public.menu.add&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0')


def test_the_request_sign_string_of_the_documented_example_is_reproduced_exactly():
    assert alipay.request_sign_content(DOCUMENTED_PARAMS) == DOCUMENTED_SIGN_STRING


def test_the_request_sign_string_drops_empty_values_and_keeps_values_unencoded():
    params = {"b": "x y&z=1", "a": "中文+/", "app_auth_token": "", "notify_url": None, "sign": "s", "sign_type": "RSA2"}

    assert alipay.request_sign_content(params) == "a=中文+/&b=x y&z=1&sign_type=RSA2"


def test_an_rsa2_signature_is_sha256_with_rsa_pkcs1_v15_over_the_utf8_sign_string():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()

    signature = alipay.sign(pem, DOCUMENTED_SIGN_STRING)

    key.public_key().verify(base64.b64decode(signature), DOCUMENTED_SIGN_STRING.encode("utf-8"),
                            padding.PKCS1v15(), hashes.SHA256())


def test_keys_load_from_pkcs1_and_pkcs8_pem_and_from_the_bare_base64_of_alipays_key_tool():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key()
    private_forms = [
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption()).decode(),
        base64.b64encode(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())).decode(),
    ]
    public_forms = [
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode(),
        base64.b64encode(public.public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)).decode(),
    ]

    signatures = {alipay.sign(private, "a=1&b=2") for private in private_forms}

    assert len(signatures) == 1  # PKCS#1 v1.5 is deterministic: one key, one signature
    (signature,) = signatures
    assert all(alipay.verify(public_form, "a=1&b=2", signature) for public_form in public_forms)
    assert not alipay.verify(public_forms[0], "a=1&b=3", signature)


def test_the_app_repr_never_shows_the_private_key(isv):
    assert "PRIVATE" not in repr(isv) and isv.app_id in repr(isv)


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fen, yuan", [(1, "0.01"), (10, "0.10"), (100, "1.00"), (12345, "123.45"),
                                       (999999999, "9999999.99"), (10_000_000_000, "100000000.00")])
def test_fen_and_yuan_convert_exactly_both_ways(fen, yuan):
    assert alipay.fen_to_yuan(fen) == yuan
    assert alipay.yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("text, fen", [("88.8", 8880), ("100", 10000), ("0.07", 7)])
def test_yuan_strings_with_fewer_decimals_convert_exactly(text, fen):
    assert alipay.yuan_to_fen(text) == fen


@pytest.mark.parametrize("bad", [0.01, 1.0, True, -1, "1"])
def test_fen_must_be_a_non_negative_integer_never_a_float(bad):
    with pytest.raises(ValueError):
        alipay.fen_to_yuan(bad)


@pytest.mark.parametrize("bad", ["1.001", "-1.00", "1e3", "01.00", " 1.00", ""])
def test_malformed_yuan_strings_are_refused(bad):
    with pytest.raises(ValueError):
        alipay.yuan_to_fen(bad)


# --- trades ----------------------------------------------------------------------------------


def test_a_created_trade_waits_for_the_buyer_with_the_exact_amount(sandbox, isv, token, buyer_id):
    created = _create(isv, token, buyer_id, total_fen=999999999)

    trade = alipay.query_trade(isv, app_auth_token=token, out_trade_no="CP20240101_0001")

    assert created.out_trade_no == "CP20240101_0001" and len(created.trade_no) == 28
    assert trade.trade_no == created.trade_no and trade.trade_status == alipay.WAIT_BUYER_PAY
    assert trade.total_fen == 999999999 and not trade.paid and trade.send_pay_date is None


def test_the_biz_content_sent_carries_yuan_with_two_decimals_and_the_notify_url_is_a_common_parameter(
        wire, isv, token, buyer_id):
    _create(isv, token, buyer_id, total_fen=1, op_app_id="2021000000000001", timeout_minutes=15)

    request = wire.requests[-1]
    query = dict(parse_qsl(request.url.query.decode()))
    biz = json.loads(dict(parse_qsl(request.content.decode()))["biz_content"])
    assert query["method"] == "alipay.trade.create" and query["sign_type"] == "RSA2" and query["charset"] == "utf-8"
    assert query["notify_url"] == NOTIFY_URL and query["app_auth_token"] == token and query["version"] == "1.0"
    datetime.strptime(query["timestamp"], "%Y-%m-%d %H:%M:%S")
    assert biz["total_amount"] == "0.01" and biz["buyer_id"] == buyer_id and biz["op_app_id"] == "2021000000000001"
    assert biz["timeout_express"] == "15m"


@pytest.mark.parametrize("change, field", [
    ({"total_fen": 0}, "total_fen"), ({"total_fen": 1.5}, "total_fen"), ({"total_fen": "100"}, "total_fen"),
    ({"out_trade_no": "x" * 65}, "out_trade_no"), ({"out_trade_no": "has-dash"}, "out_trade_no"),
    ({"subject": ""}, "subject"), ({"subject": "a=b"}, "subject"), ({"subject": "s" * 257}, "subject"),
])
def test_create_trade_refuses_bad_input_naming_the_field_before_calling_alipay(isv, token, buyer_id, change, field):
    with pytest.raises(ValueError, match=field):
        _create(isv, token, buyer_id, **change)


def test_create_trade_needs_exactly_one_buyer_and_the_merchants_token(isv, token, buyer_id):
    with pytest.raises(ValueError, match="buyer_id"):
        alipay.create_trade(isv, app_auth_token=token, out_trade_no="A1", total_fen=1, subject="s")
    with pytest.raises(ValueError, match="app_auth_token"):
        _create(isv, "", buyer_id)


def test_repeating_create_with_the_same_details_returns_the_same_trade(isv, token, buyer_id):
    first = _create(isv, token, buyer_id)

    again = _create(isv, token, buyer_id)

    assert again.trade_no == first.trade_no


def test_reusing_an_out_trade_no_with_another_amount_is_context_inconsistent(isv, token, buyer_id):
    _create(isv, token, buyer_id, total_fen=100)

    with pytest.raises(alipay.ContextInconsistent) as raised:
        _create(isv, token, buyer_id, total_fen=200)

    assert raised.value.code == "40004" and raised.value.sub_code == "ACQ.CONTEXT_INCONSISTENT"


def test_creating_again_after_payment_is_trade_has_success(isv, token, buyer_id):
    _pay(_create(isv, token, buyer_id).trade_no)

    with pytest.raises(alipay.TradeHasSuccess):
        _create(isv, token, buyer_id)


def test_a_paid_trade_is_reported_with_its_buyer_and_payment_time(isv, token, buyer_id, world_alipay):
    created = _create(isv, token, buyer_id, total_fen=1)
    _pay(created.trade_no)

    trade = alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no)

    assert trade.trade_status == alipay.TRADE_SUCCESS and trade.paid and trade.total_fen == 1
    assert trade.buyer_id == buyer_id and trade.buyer_logon_id == world_alipay.buyers[buyer_id].logon_id
    datetime.strptime(trade.send_pay_date, "%Y-%m-%d %H:%M:%S")


def test_querying_an_unknown_trade_raises_trade_not_exist(isv, token):
    with pytest.raises(alipay.TradeNotExist) as raised:
        alipay.query_trade(isv, app_auth_token=token, out_trade_no="NEVER_CREATED")

    assert raised.value.sub_msg == "交易不存在"


def test_a_merchant_cannot_see_another_merchants_trade(isv, token, buyer_id, world_alipay):
    created = _create(isv, token, buyer_id)
    other = _authorize(isv, world_alipay, merchant_index=1).app_auth_token

    with pytest.raises(alipay.TradeNotExist):
        alipay.query_trade(isv, app_auth_token=other, trade_no=created.trade_no)


def test_a_trade_past_its_time_expire_is_closed_by_the_clock(sandbox, isv, token, buyer_id):
    expire = datetime.now(timezone.utc) + timedelta(minutes=5)
    _create(isv, token, buyer_id, time_expire=expire)
    sandbox.clock.advance(6 * 60)

    trade = alipay.query_trade(isv, app_auth_token=token, out_trade_no="CP20240101_0001")

    assert trade.trade_status == alipay.TRADE_CLOSED
    with pytest.raises(alipay.TradeHasClosed):
        _create(isv, token, buyer_id, time_expire=expire)


def test_closing_an_unpaid_trade_closes_it(isv, token, buyer_id):
    created = _create(isv, token, buyer_id)

    closed = alipay.close_trade(isv, app_auth_token=token, out_trade_no=created.out_trade_no)

    assert closed == created.trade_no
    assert alipay.query_trade(isv, app_auth_token=token, trade_no=closed).trade_status == alipay.TRADE_CLOSED


def test_closing_a_paid_trade_is_a_trade_status_error(isv, token, buyer_id):
    created = _create(isv, token, buyer_id)
    _pay(created.trade_no)

    with pytest.raises(alipay.TradeStatusError):
        alipay.close_trade(isv, app_auth_token=token, trade_no=created.trade_no)


def test_partial_then_full_refund_closes_the_trade_and_a_repeated_request_moves_no_money(isv, token, buyer_id):
    created = _create(isv, token, buyer_id, total_fen=1000)
    _pay(created.trade_no)

    first = alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=1, out_request_no="R1")
    second = alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=999,
                                 out_request_no="R2", refund_reason="顾客退货")
    repeated = alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=1,
                                   out_request_no="R1")

    assert (first.fund_change, first.refunded_total_fen) == (True, 1)
    assert (second.fund_change, second.refunded_total_fen) == (True, 1000)
    assert (repeated.fund_change, repeated.refunded_total_fen) == (False, 1000)
    assert alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no).trade_status == alipay.TRADE_CLOSED


def test_refunding_more_than_paid_minus_refunded_is_refused(isv, token, buyer_id):
    created = _create(isv, token, buyer_id, total_fen=1000)
    _pay(created.trade_no)
    alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=600, out_request_no="R1")

    with pytest.raises(alipay.RefundAmountExceeded) as raised:
        alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=401, out_request_no="R2")

    assert raised.value.sub_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"


def test_reusing_a_refund_request_number_with_another_amount_is_refused(isv, token, buyer_id):
    created = _create(isv, token, buyer_id, total_fen=1000)
    _pay(created.trade_no)
    alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=100, out_request_no="R1")

    with pytest.raises(alipay.DiscordantRepeatRequest):
        alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=200, out_request_no="R1")


def test_refunding_unpaid_closed_and_finished_trades_is_refused_with_their_codes(sandbox, isv, token, buyer_id):
    unpaid = _create(isv, token, buyer_id, out_trade_no="UNPAID")
    closed = _create(isv, token, buyer_id, out_trade_no="CLOSED")
    alipay.close_trade(isv, app_auth_token=token, trade_no=closed.trade_no)
    finished = _create(isv, token, buyer_id, out_trade_no="FINISHED")
    _pay(finished.trade_no)

    def refund(trade_no):
        alipay.refund_trade(isv, app_auth_token=token, trade_no=trade_no, refund_fen=1, out_request_no="R1")

    with pytest.raises(alipay.TradeStatusError):
        refund(unpaid.trade_no)
    with pytest.raises(alipay.TradeHasClosed):
        refund(closed.trade_no)
    sandbox.clock.advance(91 * DAY)
    with pytest.raises(alipay.RefundNotAllowed):
        refund(finished.trade_no)


def test_a_merchant_short_of_balance_gets_seller_balance_not_enough(sandbox, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)
    _pay(created.trade_no)
    sandbox.faults.arm("alipay", "NOT_ENOUGH")

    with pytest.raises(alipay.SellerBalanceNotEnough):
        alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=1, out_request_no="R1")


def test_refund_input_is_checked_before_calling_alipay(isv, token):
    with pytest.raises(ValueError, match="refund_fen"):
        alipay.refund_trade(isv, app_auth_token=token, trade_no="1", refund_fen=0, out_request_no="R1")
    with pytest.raises(ValueError, match="out_request_no"):
        alipay.refund_trade(isv, app_auth_token=token, trade_no="1", refund_fen=1, out_request_no="R/1")
    with pytest.raises(ValueError, match="exactly one"):
        alipay.refund_trade(isv, app_auth_token=token, refund_fen=1, out_request_no="R1")


def test_a_buyer_still_paying_is_reported_as_waiting(sandbox, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)
    _pay(created.trade_no)
    sandbox.faults.arm("alipay", "USER_PAYING")

    assert alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no).trade_status == alipay.WAIT_BUYER_PAY


def test_a_trade_call_without_the_merchants_authorization_is_permission_denied(isv):
    with pytest.raises(alipay.AlipayPermissionDenied) as raised:
        alipay.query_trade(isv, app_auth_token="", out_trade_no="A1")

    assert raised.value.code == "40006"


# --- response signatures ---------------------------------------------------------------------


def test_a_response_with_one_character_of_its_node_changed_is_refused(wire, isv, token, buyer_id):
    created = _create(isv, token, buyer_id, total_fen=1234)
    wire.rewrite = lambda status, headers, body: (
        status, headers, body.replace(b'"total_amount":"12.34"', b'"total_amount":"12.35"'))

    with pytest.raises(alipay.AlipaySignatureError):
        alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no)


def test_a_response_signed_with_the_wrong_key_is_refused(sandbox, isv, token):
    sandbox.faults.arm("alipay", "SIGN_ERROR")

    with pytest.raises(alipay.AlipaySignatureError):
        alipay.query_trade(isv, app_auth_token=token, out_trade_no="ANY")


def test_an_app_configured_with_the_wrong_alipay_public_key_trusts_no_answer(isv, token):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    wrong = alipay.AlipayApp(isv.app_id, isv.private_key_pem, stranger.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())

    with pytest.raises(alipay.AlipaySignatureError):
        alipay.query_trade(wrong, app_auth_token=token, out_trade_no="ANY")


def test_a_request_signed_with_the_wrong_app_key_is_reported_as_invalid_signature(isv, token):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    wrong = alipay.AlipayApp(isv.app_id, other_key, isv.alipay_public_key_pem)

    with pytest.raises(alipay.AlipayRequestSignatureRejected) as raised:
        alipay.query_trade(wrong, app_auth_token=token, out_trade_no="ANY")

    assert raised.value.code == "40002" and raised.value.sub_code == "isv.invalid-signature"
    assert "app_id=" in raised.value.sub_msg  # Alipay shows the string it verified


def test_an_unknown_app_id_is_answered_in_error_response(isv):
    stranger = alipay.AlipayApp("2021999999999999", isv.private_key_pem, isv.alipay_public_key_pem)

    with pytest.raises(alipay.AlipayError) as raised:
        alipay.query_trade(stranger, app_auth_token="t", out_trade_no="ANY")

    assert (raised.value.code, raised.value.sub_code) == ("40002", "isv.invalid-app-id")


def test_the_signature_covers_the_node_exactly_as_written_not_as_reserialized(isv):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    node = '{ "code" : "10000", "msg":"Success","trade_no":"2024", "out_trade_no":"A\\u0031" }'
    signature = base64.b64encode(key.sign(node.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    app = alipay.AlipayApp(isv.app_id, isv.private_key_pem, public_pem)
    text = f'{{"alipay_trade_close_response" : {node} ,\n "sign":"{signature}"}}'

    assert alipay.open_response(app, "alipay.trade.close", text)["out_trade_no"] == "A1"


def test_an_unsigned_gateway_error_is_reported_but_an_unsigned_answer_is_never_trusted(isv):
    gateway_error = '{"alipay_trade_query_response":{"code":"40002","msg":"Invalid Arguments",' \
                    '"sub_code":"isv.invalid-signature","sub_msg":"验签出错"}}'
    unsigned_success = '{"alipay_trade_query_response":{"code":"10000","msg":"Success","trade_status":"TRADE_SUCCESS"}}'
    unsigned_business = '{"alipay_trade_query_response":{"code":"40004","msg":"Business Failed",' \
                        '"sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}}'

    with pytest.raises(alipay.AlipayRequestSignatureRejected) as raised:
        alipay.open_response(isv, "alipay.trade.query", gateway_error)
    assert raised.value.verified is False  # a diagnosis only
    for text in (unsigned_success, unsigned_business, "<html>502</html>", '{"other_response":{}}'):
        with pytest.raises(alipay.AlipaySignatureError):
            alipay.open_response(isv, "alipay.trade.query", text)


# --- transient failures ----------------------------------------------------------------------


def test_a_system_error_is_retried_with_a_fresh_signature_and_then_succeeds(sandbox, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)
    sandbox.faults.arm("alipay", "SYSTEM_ERROR")

    trade = alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no)

    assert trade.trade_no == created.trade_no and not sandbox.faults.armed["alipay"]


@pytest.mark.parametrize("fault", ["SYSTEM_ERROR", "RATE_LIMITED"])
def test_alipay_saying_try_again_on_every_attempt_surfaces_as_upstream_unavailable(sandbox, isv, token, fault):
    sandbox.faults.arm("alipay", fault, times=2)  # UPSTREAM_RETRIES=1 in tests: two attempts

    with pytest.raises(http.UpstreamUnavailable) as raised:
        alipay.query_trade(isv, app_auth_token=token, out_trade_no="ANY")

    assert raised.value.system == "Alipay" and "after 2 attempts" in raised.value.detail


def test_a_timeout_is_retried_then_surfaces_as_upstream_unavailable(sandbox, isv, token):
    sandbox.faults.arm("alipay", "TIMEOUT", times=2)

    with pytest.raises(http.UpstreamUnavailable) as raised:
        alipay.query_trade(isv, app_auth_token=token, out_trade_no="ANY")

    assert "timed out after 2 attempts" in raised.value.detail and not sandbox.faults.armed["alipay"]


def test_a_single_timeout_is_absorbed_by_the_retry(sandbox, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)
    sandbox.faults.arm("alipay", "TIMEOUT")

    assert alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no).trade_no == created.trade_no


# --- merchant authorization (app_auth_token) -------------------------------------------------


def test_the_authorization_urls_point_at_openauth_with_the_documented_parameters():
    app_url = alipay.app_authorization_url("2021000000000001", "https://h5.test/cb?x=1", state="st")
    user_url = alipay.user_authorization_url("2021000000000001", "https://h5.test/cb", state="st")

    assert app_url == (f"{SANDBOX_ROOT}/alipay/openauth/oauth2/appToAppAuth.htm?app_id=2021000000000001"
                       "&redirect_uri=https%3A%2F%2Fh5.test%2Fcb%3Fx%3D1&state=st")
    assert user_url == (f"{SANDBOX_ROOT}/alipay/openauth/oauth2/publicAppAuthorize.htm?app_id=2021000000000001"
                        "&scope=auth_base&redirect_uri=https%3A%2F%2Fh5.test%2Fcb&state=st")


def test_a_merchant_authorizes_the_app_and_the_code_becomes_a_token_once(isv, world_alipay):
    merchant = next(iter(world_alipay.merchants.values()))
    url = alipay.app_authorization_url(isv.app_id, "http://h5.test/alipay/authorized?p=1", state="s1")
    chooser = http.client().get(url)
    approved = http.client().get(f"{url}&merchant={merchant.user_id}")
    back = urlsplit(approved.headers["location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}

    authorization = alipay.exchange_app_auth_code(isv, query["app_auth_code"])

    assert chooser.status_code == 200 and f'data-merchant="{merchant.user_id}"' in chooser.text
    assert approved.status_code == 302 and back.path == "/alipay/authorized"
    assert query["p"] == "1" and query["app_id"] == isv.app_id and query["state"] == "s1"
    assert authorization.user_id == merchant.user_id and authorization.auth_app_id == merchant.auth_app_id
    assert authorization.expires_in == 365 * DAY and authorization.re_expires_in > authorization.expires_in
    with pytest.raises(alipay.AuthCodeInvalid):
        alipay.exchange_app_auth_code(isv, query["app_auth_code"])


def test_refreshing_issues_new_tokens_and_retires_the_old_ones(isv, world_alipay, buyer_id):
    first = _authorize(isv, world_alipay)

    second = alipay.refresh_app_auth_token(isv, first.app_refresh_token)

    assert second.app_auth_token != first.app_auth_token and second.user_id == first.user_id
    assert _create(isv, second.app_auth_token, buyer_id).trade_no
    with pytest.raises(alipay.AppAuthTokenInvalid):
        _create(isv, first.app_auth_token, buyer_id, out_trade_no="OLD")
    with pytest.raises(alipay.RefreshTokenInvalid):
        alipay.refresh_app_auth_token(isv, first.app_refresh_token)


def test_an_unknown_app_auth_token_is_invalid(isv, buyer_id):
    with pytest.raises(alipay.AppAuthTokenInvalid) as raised:
        _create(isv, "202401BBnot-a-token", buyer_id)

    assert (raised.value.code, raised.value.sub_code) == ("20001", "aop.invalid-app-auth-token")
    assert raised.value.verified is True


def test_an_unsigned_invalid_token_answer_only_fails_the_call_and_never_condemns_the_token(wire, isv, token, buyer_id):
    """A man in the middle strips the signature from a genuine "invalid token" answer: the
    call fails, but not with the exception that tells the caller to discard the token."""
    wire.rewrite = lambda status, headers, body: (status, headers, re.sub(rb',"sign":"[^"]*"', b"", body))

    with pytest.raises(alipay.AlipayError) as raised:
        _create(isv, "202401BBnot-a-token", buyer_id)

    assert type(raised.value) is alipay.AlipayError and not isinstance(raised.value, alipay.AppAuthTokenError)
    assert raised.value.sub_code == "aop.invalid-app-auth-token" and raised.value.verified is False


def test_another_isvs_token_is_invalid_for_us(isv, world_alipay, buyer_id):
    other_credentials = world_alipay.create_app()
    other = alipay.AlipayApp(other_credentials.app_id, other_credentials.app_private_key_pem,
                             other_credentials.alipay_public_key_pem)

    with pytest.raises(alipay.AppAuthTokenInvalid):
        _create(isv, _authorize(other, world_alipay).app_auth_token, buyer_id)


def test_an_app_auth_token_expires_by_the_clock_and_a_refresh_revives_the_merchant(sandbox, isv, world_alipay, buyer_id):
    authorization = _authorize(isv, world_alipay)
    sandbox.clock.advance(366 * DAY)

    with pytest.raises(alipay.AppAuthTokenExpired) as raised:
        _create(isv, authorization.app_auth_token, buyer_id)
    refreshed = alipay.refresh_app_auth_token(isv, authorization.app_refresh_token)

    assert raised.value.sub_code == "aop.app-auth-token-time-out"
    assert _create(isv, refreshed.app_auth_token, buyer_id).trade_no


def test_an_expired_refresh_token_cannot_be_used(sandbox, isv, world_alipay):
    authorization = _authorize(isv, world_alipay)
    sandbox.clock.advance(373 * DAY)

    with pytest.raises(alipay.RefreshTokenInvalid) as raised:
        alipay.refresh_app_auth_token(isv, authorization.app_refresh_token)

    assert raised.value.sub_code == "isv.refresh-token-time-out"


# --- user OAuth (auth_base) ------------------------------------------------------------------


def test_a_wallet_user_passes_auth_base_silently_and_the_code_gives_the_user_id_once(isv, world_alipay):
    buyer = list(world_alipay.buyers.values())[1]
    url = alipay.user_authorization_url(isv.app_id, "http://h5.test/h5/oauth/alipay", state="st-1")
    chooser = http.client().get(url)
    signed_in = http.client().get(f"{url}&as_user={buyer.user_id}")
    query = {k: v[0] for k, v in parse_qs(urlsplit(signed_in.headers["location"]).query).items()}

    identity = alipay.exchange_user_auth_code(isv, query["auth_code"])

    assert chooser.status_code == 200 and f'data-user="{buyer.user_id}"' in chooser.text
    assert query["state"] == "st-1" and query["scope"] == "auth_base" and query["app_id"] == isv.app_id
    assert identity.user_id == buyer.user_id and identity.open_id and identity.access_token
    with pytest.raises(alipay.AuthCodeInvalid) as raised:
        alipay.exchange_user_auth_code(isv, query["auth_code"])
    assert raised.value.code == "40002"


def test_a_buyer_identified_by_open_id_can_be_charged(isv, token, world_alipay):
    buyer = next(iter(world_alipay.buyers.values()))
    url = alipay.user_authorization_url(isv.app_id, "http://h5.test/cb", state="s")
    code = parse_qs(urlsplit(http.client().get(f"{url}&as_user={buyer.user_id}").headers["location"]).query)
    identity = alipay.exchange_user_auth_code(isv, code["auth_code"][0])

    created = alipay.create_trade(isv, app_auth_token=token, out_trade_no="OPENID_1", total_fen=5, subject="s",
                                  buyer_open_id=identity.open_id)
    _pay(created.trade_no)

    assert alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no).buyer_open_id == identity.open_id


# --- notifications ---------------------------------------------------------------------------


def _paid_notification(sandbox, receiver, isv, token, buyer_id, **create):
    created = _create(isv, token, buyer_id, **create)
    paid = _pay(created.trade_no)
    sandbox.notifier.deliver_due()
    return created, paid, receiver.calls[-1]


def test_a_payment_notification_verifies_and_reads_exactly(sandbox, receiver, isv, token, buyer_id, world_alipay):
    created, _, (_, url, headers, body) = _paid_notification(sandbox, receiver, isv, token, buyer_id, total_fen=999999999)

    notification = alipay.verify_notification(isv, body)

    assert url == NOTIFY_URL and headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert notification.trade_no == created.trade_no and notification.out_trade_no == created.out_trade_no
    assert notification.trade_status == alipay.TRADE_SUCCESS and notification.notify_type == "trade_status_sync"
    assert notification.total_fen == 999999999 and notification.receipt_fen == 999999999
    assert notification.app_id == isv.app_id and notification.buyer_id == buyer_id
    merchant = next(iter(world_alipay.merchants.values()))
    assert notification.auth_app_id == merchant.auth_app_id and notification.refund_fee_fen is None


def test_url_decoding_keeps_plus_spaces_and_chinese_exactly(sandbox, receiver, isv, token, buyer_id):
    subject = "A+B 拿铁 大杯+1"
    _, _, (_, _, _, body) = _paid_notification(sandbox, receiver, isv, token, buyer_id, subject=subject)
    decoded = dict(parse_qsl(body.decode(), keep_blank_values=True))

    from_raw_body = alipay.verify_notification(isv, body)
    from_decoded_form = alipay.verify_notification(isv, decoded)

    assert b"A%2BB+" in body  # '+' travels as %2B, spaces as '+'
    assert decoded["subject"] == subject and from_raw_body == from_decoded_form


def test_sign_type_is_left_out_of_the_notification_sign_string(sandbox, receiver, isv, token, buyer_id):
    _, _, (_, _, _, body) = _paid_notification(sandbox, receiver, isv, token, buyer_id)
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))

    content = alipay.notification_sign_content(form)

    assert form["sign_type"] == "RSA2" and "sign_type=" not in content and "&sign=" not in content
    assert alipay.verify(isv.alipay_public_key_pem, content, form["sign"])
    assert not alipay.verify(isv.alipay_public_key_pem, alipay.request_sign_content(form), form["sign"])


def test_a_tampered_notification_is_refused(sandbox, receiver, isv, token, buyer_id):
    _, _, (_, _, _, body) = _paid_notification(sandbox, receiver, isv, token, buyer_id, total_fen=100)
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))

    for field, value in (("total_amount", "1000.00"), ("trade_status", "TRADE_FINISHED"), ("sign", "")):
        with pytest.raises(alipay.AlipaySignatureError):
            alipay.verify_notification(isv, {**form, field: value})
    with pytest.raises(alipay.AlipaySignatureError):
        alipay.verify_notification(isv, {k: v for k, v in form.items() if k != "sign"})


def test_a_notification_for_another_app_is_refused(sandbox, receiver, isv, token, buyer_id, world_alipay):
    _, _, (_, _, _, body) = _paid_notification(sandbox, receiver, isv, token, buyer_id)
    other = world_alipay.create_app()

    with pytest.raises(alipay.AlipaySignatureError, match="not"):
        alipay.verify_notification(alipay.AlipayApp(other.app_id, other.app_private_key_pem,
                                                    other.alipay_public_key_pem), body)


def test_a_forged_notification_from_the_sandbox_is_refused(sandbox, receiver, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)

    answer = http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/notifications/forged",
                                json={"url": NOTIFY_URL, "trade_no": created.trade_no}).json()

    assert answer == {"status": 200, "text": "success"} and len(receiver.calls) == 1
    with pytest.raises(alipay.AlipaySignatureError):
        alipay.verify_notification(isv, receiver.calls[0][3])


def test_a_duplicate_delivery_carries_the_same_notify_id(sandbox, receiver, isv, token, buyer_id):
    _, paid, _ = _paid_notification(sandbox, receiver, isv, token, buyer_id)

    duplicate = http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/notifications/{paid['notification_id']}/duplicate")
    first, second = (alipay.verify_notification(isv, body) for body in receiver.bodies)

    assert duplicate.json()["text"] == "success" and len(receiver.calls) == 2
    assert first.notify_id == second.notify_id and first.trade_no == second.trade_no


def test_a_refund_notifies_the_refunded_total_and_the_request_number(sandbox, receiver, isv, token, buyer_id):
    created, _, _ = _paid_notification(sandbox, receiver, isv, token, buyer_id, total_fen=500)
    alipay.refund_trade(isv, app_auth_token=token, trade_no=created.trade_no, refund_fen=500, out_request_no="R9")
    sandbox.notifier.deliver_due()

    notification = alipay.verify_notification(isv, receiver.bodies[-1])

    assert notification.trade_status == alipay.TRADE_CLOSED and notification.refund_fee_fen == 500
    assert notification.out_biz_no == "R9"


def test_notifications_are_retried_on_alipays_schedule_until_the_body_is_success(sandbox, isv, token, buyer_id):
    receiver = Receiver(sandbox.clock, ["fail", "Success", "success"])
    sandbox.notifier.deliver = receiver
    created = _create(isv, token, buyer_id)
    notification_id = _pay(created.trade_no)["notification_id"]
    started = sandbox.clock.now()

    sandbox.notifier.deliver_due()
    sandbox.clock.advance(ALIPAY_RETRY_SCHEDULE[0] - 1)
    sandbox.notifier.deliver_due()
    attempts_before_due = len(receiver.calls)
    sandbox.clock.advance(1)
    sandbox.notifier.deliver_due()
    sandbox.clock.advance(ALIPAY_RETRY_SCHEDULE[1])
    sandbox.notifier.deliver_due()
    sandbox.clock.advance(DAY)
    sandbox.notifier.deliver_due()

    times = [call[0] - started for call in receiver.calls]
    assert attempts_before_due == 1
    assert times == pytest.approx([0, 240, 840], abs=1)
    assert sandbox.notifier.notifications[notification_id].acknowledged
    assert len({alipay.verify_notification(isv, body).notify_id for body in receiver.bodies}) == 1


# --- the wallet ------------------------------------------------------------------------------


def test_paying_in_the_wallet_answers_9000_and_notifies(sandbox, receiver, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)

    answer = http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/wallet/pay", data={"trade_no": created.trade_no})
    sandbox.notifier.deliver_due()

    assert answer.json()["resultCode"] == "9000" and answer.headers["Access-Control-Allow-Origin"] == "*"
    assert alipay.verify_notification(isv, receiver.bodies[0]).trade_status == alipay.TRADE_SUCCESS


def test_a_payment_refused_for_the_payer_answers_4000_and_closes_the_trade(sandbox, receiver, isv, token, buyer_id):
    created = _create(isv, token, buyer_id)

    answer = http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/wallet/pay", data={"trade_no": created.trade_no},
                                headers={"X-Sandbox-Fault": "PAYER_ERROR"})
    sandbox.notifier.deliver_due()

    assert answer.json()["resultCode"] == "4000" and receiver.calls == []
    assert alipay.query_trade(isv, app_auth_token=token, trade_no=created.trade_no).trade_status == alipay.TRADE_CLOSED


def test_the_jsbridge_script_offers_trade_pay_with_alipays_result_codes(sandbox):
    script = http.client().get(f"{SANDBOX_ROOT}/alipay/sandbox/jsbridge.js")

    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    for needle in ("window.AlipayJSBridge", "tradePay", "AlipayJSBridgeReady", "9000",
                   "6001", "4000", "/sandbox/wallet/pay"):
        assert needle in script.text


# --- the sandbox gateway's own checks --------------------------------------------------------


def test_the_gateway_answers_missing_common_parameters_with_40001(sandbox):
    no_method = http.client().post(f"{SANDBOX_ROOT}/alipay/gateway.do", data={"app_id": "1"}).json()
    no_sign = http.client().post(f"{SANDBOX_ROOT}/alipay/gateway.do?" + urlencode(
        {"method": "alipay.trade.query", "app_id": "1", "sign_type": "RSA2", "timestamp": "2024-01-01 00:00:00",
         "version": "1.0"})).json()

    assert no_method["error_response"]["sub_code"] == "isv.missing-method"
    assert no_sign["alipay_trade_query_response"]["code"] == "40001"
    assert no_sign["alipay_trade_query_response"]["sub_code"] == "isv.missing-signature"


def test_an_isv_app_can_be_registered_over_http_with_its_own_public_key(sandbox):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    answer = http.client().post(f"{SANDBOX_ROOT}/alipay/sandbox/apps", json={"app_public_key_pem": public_pem})

    body = answer.json()
    assert answer.status_code == 201 and body["app_id"].startswith("2021") and body["app_private_key_pem"] is None
    assert "BEGIN PUBLIC KEY" in body["alipay_public_key_pem"]


# --- A lost answer (the work was done, the answer never arrived) ---------------------------

def test_a_refund_whose_answer_was_lost_moves_money_once(sandbox, isv, token, buyer_id, wire):
    created = _create(isv, token, buyer_id, total_fen=1000)
    _pay(created.trade_no)
    sandbox.faults.arm("alipay", "LOST_ANSWER")

    refund = alipay.refund_trade(isv, app_auth_token=token, refund_fen=400, out_request_no="RF1",
                                 out_trade_no=created.out_trade_no)

    assert len([r for r in wire.requests if b"alipay.trade.refund" in r.url.query]) == 2
    assert refund.refunded_total_fen == 400 and refund.fund_change is False
    assert sandbox_alipay.state_of(sandbox).trade(created.trade_no).refunds["RF1"][0] == 400


def test_a_one_time_code_whose_answer_was_lost_is_not_sent_again(isv, world_alipay, sandbox, wire):
    merchant = list(world_alipay.merchants)[0]
    url = alipay.app_authorization_url(isv.app_id, "http://h5.test/alipay/authorized", state="s1")
    code = parse_qs(urlsplit(http.client().get(f"{url}&merchant={merchant}").headers["location"]).query)
    sandbox.faults.arm("alipay", "LOST_ANSWER")

    with pytest.raises(http.UpstreamUnavailable, match="after 1 attempts"):
        alipay.exchange_app_auth_code(isv, code["app_auth_code"][0])

    assert len([r for r in wire.requests if b"alipay.open.auth.token.app" in r.url.query]) == 1


# --- the gateway over GET ---------------------------------------------------------------------


def _query_over_get(isv: alipay.AlipayApp, token: str, out_trade_no: str, sign_with: str | None = None) -> dict:
    """alipay.trade.query as the SDKs that send every call as GET do: all parameters, the
    signed biz_content too, in the query string; nothing in a body."""
    params = {"app_id": isv.app_id, "method": "alipay.trade.query", "format": "JSON", "charset": "utf-8",
              "sign_type": "RSA2", "timestamp": datetime.now(alipay.CHINA_TIME).strftime(alipay.TIME_FORMAT),
              "version": "1.0", "app_auth_token": token,
              "biz_content": json.dumps({"out_trade_no": out_trade_no}, separators=(",", ":"))}
    params["sign"] = alipay.sign(sign_with or isv.private_key_pem, alipay.request_sign_content(params))
    answer = http.client().get(f"{SANDBOX_ROOT}/alipay/gateway.do", params=params)
    assert answer.status_code == 200
    return alipay.open_response(isv, "alipay.trade.query", answer.text)


def test_the_gateway_answers_a_signed_get_with_every_parameter_in_the_query_string(isv, token, buyer_id):
    created = _create(isv, token, buyer_id, out_trade_no="CP20240101_GET1")

    node = _query_over_get(isv, token, "CP20240101_GET1")

    assert node["trade_no"] == created.trade_no and node["trade_status"] == alipay.WAIT_BUYER_PAY


def test_the_gateway_verifies_a_get_as_it_verifies_a_post(isv, token, buyer_id):
    _create(isv, token, buyer_id, out_trade_no="CP20240101_GET2")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

    with pytest.raises(alipay.AlipayRequestSignatureRejected) as raised:
        _query_over_get(isv, token, "CP20240101_GET2", sign_with=other_key)

    assert raised.value.sub_code == "isv.invalid-signature"
