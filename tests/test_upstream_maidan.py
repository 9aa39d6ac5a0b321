"""U5 买单: every call of the real client against the in-process sandbox, and the contract's
guarantees (signatures both ways, replay and staleness refused, exact paging, notifications
retried on schedule)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
from datetime import datetime, timedelta, timezone

import boto3
import httpx
import pytest

from chalicelib.upstream import http, maidan
from chalicelib.upstream.maidan import MaidanError, MaidanSignatureError
from sandbox.notifier import WECHATPAY_RETRY_SCHEDULE
from sandbox.world import SandboxConfig
from tests import environment
from tests.environment import MAIDAN_API_KEY, PARAMETERS, SANDBOX_ROOT

API_KEY = MAIDAN_API_KEY
APP_ID = PARAMETERS["WechatAppId"]
NOTIFY_URL = "https://h5.test/notify/maidan"
pytestmark = pytest.mark.usefixtures("platform_secrets")  # the client reads MAIDAN_API_KEY from SSM


@pytest.fixture
def controls(wire):
    """The sandbox's own levers (the payer paying, forged notifications), unsigned."""
    with httpx.Client(transport=wire.inner, base_url=f"{SANDBOX_ROOT}/maidan/sandbox") as plain:
        yield plain


@pytest.fixture
def deliveries(sandbox):
    """Replace the notifier's HTTP with a recorder: it answers 500 to the first attempt of
    each event and 204 afterwards, and keeps (headers, body) of every attempt."""
    received: list[tuple[dict, bytes]] = []

    def record(url: str, headers: dict, body: bytes) -> tuple[int, str]:
        event_id = json.loads(body)["id"]
        first = not any(json.loads(b)["id"] == event_id for _, b in received)
        received.append((headers, body))
        return (500, "busy") if first else (204, "")

    sandbox.notifier.deliver = record
    return received


@pytest.fixture
def small_sandbox():
    """A sandbox of 3 providers and 250 sub-merchants, mounted the same way."""
    with environment.sandbox_in_process(SandboxConfig(in_process=True, providers=3, sub_merchants=250)) as (world, _):
        yield world


def _sign_answer(body: bytes, timestamp: int) -> dict:
    """Sign an answer as 买单 does (written from the contract, not with the client's code)."""
    nonce = secrets.token_hex(16)
    message = f"{timestamp}\n{nonce}\n{body.decode()}\n".encode()
    signature = base64.b64encode(hmac.new(API_KEY.encode(), message, hashlib.sha256).digest()).decode()
    return {"Maidan-Timestamp": str(timestamp), "Maidan-Nonce": nonce, "Maidan-Signature": signature}


def _busiest_provider(world):
    return world.provider(max(range(world.config.providers), key=world.sub_merchant_count))


def _sub_merchant(world, opened: bool):
    provider = _busiest_provider(world)
    return next(m for m in (world.sub_merchant(provider.index, n) for n in range(world.sub_merchant_count(
        provider.index))) if m.opened_maidan is opened)


def _create_order(world, out_trade_no="CP01A0001", total=1230, **overrides) -> maidan.CreatedOrder:
    merchant = _sub_merchant(world, opened=True)
    arguments = dict(sp_mchid=world.provider(merchant.provider_index).sp_mchid, sub_mchid=merchant.sub_mchid,
                     appid=APP_ID, out_trade_no=out_trade_no, description="一号门店 收款", total=total,
                     payer_openid=world.users["guest-01"].openid(APP_ID), notify_url=NOTIFY_URL,
                     time_expire=datetime.now(timezone.utc) + timedelta(minutes=10))
    return maidan.create_order(**{**arguments, **overrides})


def _sp_mchid(world) -> str:
    return _busiest_provider(world).sp_mchid


def _paid_order(world, controls, out_trade_no="CP01A0001", total=1230) -> str:
    _create_order(world, out_trade_no, total)
    assert controls.post(f"/orders/{out_trade_no}/pay").status_code == 200
    return out_trade_no


# --- Signing, both ways ------------------------------------------------------------------


def test_the_admin_lookup_answers_as_before(sandbox):
    found = maidan.lookup_admin(sandbox.users["admin-01"].unionid)

    assert found.is_admin and found.providers[0] == maidan.MaidanProvider("1901000000", "演示服务商01")
    assert maidan.lookup_admin(sandbox.users["guest-01"].unionid).status == "NOT_OPENED"


def test_a_response_whose_body_was_altered_is_refused(sandbox, wire):
    wire.rewrite = lambda status, headers, body: (status, headers, body.replace(b'"opened":true', b'"opened":false'))

    with pytest.raises(MaidanSignatureError, match="does not match"):
        maidan.maidan_status(_sub_merchant(sandbox, opened=True).sub_mchid)


def test_a_genuinely_signed_but_six_minute_old_response_is_refused(sandbox, wire):
    def replay_old(status: int, headers: dict, body: bytes) -> tuple[int, dict, bytes]:
        kept = {name: value for name, value in headers.items() if not name.startswith("maidan-")}
        return status, {**kept, **_sign_answer(body, int(sandbox.clock.now()) - 360)}, body

    wire.rewrite = replay_old

    with pytest.raises(MaidanSignatureError, match="5 minutes"):
        maidan.maidan_status(_sub_merchant(sandbox, opened=True).sub_mchid)


def test_a_wrong_api_key_is_reported_as_sign_error(sandbox, monkeypatch):
    boto3.client("ssm", region_name=environment.REGION).put_parameter(
        Name="/cloudpay-test/another-maidan-api-key", Value="a-different-key-of-more-than-32-bytes", Type="SecureString")
    monkeypatch.setenv("MAIDAN_API_KEY_PARAMETER", "/cloudpay-test/another-maidan-api-key")

    with pytest.raises(MaidanError) as refused:
        maidan.maidan_status("1900000001")

    assert refused.value.status == 401 and refused.value.code == "SIGN_ERROR"
    assert "MAIDAN_API_KEY" in refused.value.message


def test_a_replayed_request_is_refused_by_the_sandbox(sandbox, wire):
    maidan.maidan_status("1900000001")
    original = wire.requests[-1]

    replayed = httpx.Client(transport=wire.inner).send(
        httpx.Request(original.method, original.url, headers=original.headers, content=original.content))

    assert replayed.status_code == 401
    assert replayed.json() == {"code": "SIGN_ERROR", "message": "nonce_str was already used"}


def test_a_request_signed_at_a_stale_time_is_refused(sandbox):
    sandbox.clock.advance(400)  # 买单's clock runs ahead of ours: our timestamp looks stale

    with pytest.raises(MaidanError) as refused:
        maidan.maidan_status("1900000001")

    assert refused.value.code == "SIGN_ERROR"


# --- Sub-merchants --------------------------------------------------------------------------


def test_paging_walks_every_sub_merchant_of_every_provider_exactly_once(small_sandbox):
    everyone: list[str] = []
    for index in range(3):
        sp_mchid, pages, cursor = small_sandbox.provider(index).sp_mchid, 0, None
        seen: list[str] = []
        while True:
            page = maidan.list_sub_merchants(sp_mchid, cursor, limit=37)
            pages += 1
            seen.extend(m.sub_mchid for m in page.sub_merchants)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        expected = small_sandbox.sub_merchant_count(index)
        assert len(seen) == len(set(seen)) == expected
        assert pages == max(1, math.ceil(expected / 37))
        everyone.extend(seen)

    assert len(everyone) == len(set(everyone)) == 250


def test_providers_hold_uneven_shares_that_sum_to_the_configured_total(sandbox):
    counts = [sandbox.sub_merchant_count(i) for i in range(sandbox.config.providers)]

    assert sum(counts) == sandbox.config.sub_merchants == 2000
    assert max(counts) > 5 * max(1, min(counts))


def test_a_page_carries_the_contracts_fields_and_some_merchants_have_not_opened(sandbox):
    page = maidan.list_sub_merchants(_sp_mchid(sandbox), limit=100)

    first = page.sub_merchants[0]
    assert len(page.sub_merchants) == 100 and page.next_cursor
    assert len(first.sub_mchid) == 10 and first.sub_mchid.isdigit()
    assert first.name and first.short_name and first.admin_name and "@" in first.admin_email
    assert len(first.admin_phone) == 11 and first.logo_url.startswith("https://")
    assert datetime.fromisoformat(first.updated_at).tzinfo is not None
    opened = [m.opened_maidan for m in page.sub_merchants]
    assert opened.count(False) in (14, 15)  # every 7th


def test_the_same_cursor_answers_the_same_page(sandbox):
    first = maidan.list_sub_merchants(_sp_mchid(sandbox), limit=20)

    again = maidan.list_sub_merchants(_sp_mchid(sandbox), first.next_cursor, limit=20)
    and_again = maidan.list_sub_merchants(_sp_mchid(sandbox), first.next_cursor, limit=20)

    assert again == and_again and not set(again.sub_merchants) & set(first.sub_merchants)


@pytest.mark.parametrize("fault", ["SYSTEM_ERROR", "RATE_LIMITED", "TIMEOUT"])
def test_a_page_that_fails_once_is_retried(sandbox, wire, fault):
    sandbox.faults.arm("maidan", fault)

    page = maidan.list_sub_merchants(_sp_mchid(sandbox), limit=10)

    assert len(page.sub_merchants) == 10 and wire.count("/sub-merchants") == 2


def test_a_page_that_keeps_failing_ends_as_upstream_unavailable(sandbox):
    sandbox.faults.arm("maidan", "SYSTEM_ERROR", times=2)

    with pytest.raises(http.UpstreamUnavailable, match="HTTP 500 after 2 attempts"):
        maidan.list_sub_merchants(_sp_mchid(sandbox))


def test_bad_paging_arguments_are_refused(sandbox):
    other = next(p.sp_mchid for p in map(sandbox.provider, range(2)) if p.sp_mchid != _sp_mchid(sandbox))
    foreign_cursor = maidan.list_sub_merchants(_sp_mchid(sandbox), limit=1).next_cursor

    with pytest.raises(ValueError, match="limit"):
        maidan.list_sub_merchants(_sp_mchid(sandbox), limit=101)
    with pytest.raises(MaidanError) as forged:
        maidan.list_sub_merchants(other, cursor=foreign_cursor)
    with pytest.raises(MaidanError) as unknown:
        maidan.list_sub_merchants("1999999999")

    assert (forged.value.status, forged.value.code) == (400, "PARAM_ERROR")
    assert (unknown.value.status, unknown.value.code) == (404, "NOT_FOUND")


# --- Has a mch id opened 买单? ----------------------------------------------------------------


def test_maidan_status_tells_opened_from_not_opened(sandbox):
    opened = maidan.maidan_status(_sub_merchant(sandbox, opened=True).sub_mchid)
    closed = maidan.maidan_status(_sub_merchant(sandbox, opened=False).sub_mchid)
    never_seen = maidan.maidan_status("1234567890")

    assert opened.opened and datetime.fromisoformat(opened.opened_at)
    assert closed == never_seen == maidan.MaidanStatus(opened=False, opened_at=None)


def test_a_merchant_that_opens_maidan_is_seen_opened_in_status_and_listing(sandbox):
    merchant = _sub_merchant(sandbox, opened=False)

    sandbox.set_maidan_opened(merchant.sub_mchid)

    assert maidan.maidan_status(merchant.sub_mchid).opened
    listed = maidan.list_sub_merchants(_sp_mchid(sandbox), limit=100).sub_merchants
    assert next(m for m in listed if m.sub_mchid == merchant.sub_mchid).opened_maidan
    sandbox.set_maidan_opened(merchant.sub_mchid, False)
    assert not maidan.maidan_status(merchant.sub_mchid).opened


def test_the_sandbox_can_open_maidan_for_any_mch_id_over_http(sandbox, controls):
    assert not maidan.maidan_status("1234567890").opened

    controls.post("/merchants/1234567890/maidan-status", json={"opened": True})

    assert maidan.maidan_status("1234567890").opened


# --- Orders --------------------------------------------------------------------------------


def test_an_order_is_created_with_pay_params_and_queried_as_notpay(sandbox):
    created = _create_order(sandbox)

    order = maidan.query_order(_sp_mchid(sandbox), "CP01A0001")
    assert set(created.pay_params) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert created.pay_params["appId"] == APP_ID and created.pay_params["package"].startswith("prepay_id=")
    assert (order.order_id, order.trade_state, order.total, order.currency) == (created.order_id, "NOTPAY", 1230, "CNY")
    assert order.payer_openid == sandbox.users["guest-01"].openid(APP_ID) and order.success_time is None


def test_creating_the_same_order_again_answers_the_same_order(sandbox):
    first = _create_order(sandbox)

    assert _create_order(sandbox).order_id == first.order_id
    with pytest.raises(MaidanError) as changed:
        _create_order(sandbox, total=999)
    assert changed.value.code == "PARAM_ERROR"


def test_an_order_for_a_merchant_without_maidan_is_refused(sandbox):
    merchant = _sub_merchant(sandbox, opened=False)

    with pytest.raises(MaidanError) as refused:
        _create_order(sandbox, sub_mchid=merchant.sub_mchid)

    assert (refused.value.status, refused.value.code) == (403, "MAIDAN_NOT_OPENED")


@pytest.mark.parametrize("total", [0, -1, 12.5, "1299", True])
def test_an_amount_that_is_not_positive_whole_fen_is_refused_before_sending(sandbox, wire, total):
    with pytest.raises(ValueError, match="total"):
        _create_order(sandbox, total=total)

    assert wire.count("/v1/orders") == 0


def test_the_sandbox_names_a_bad_field_it_is_sent(sandbox):
    with pytest.raises(MaidanError) as refused:
        _create_order(sandbox, description="")

    assert refused.value.code == "PARAM_ERROR" and "description" in refused.value.message


def test_an_order_paid_in_the_sandbox_queries_as_success(sandbox, controls):
    _paid_order(sandbox, controls)

    order = maidan.query_order(_sp_mchid(sandbox), "CP01A0001")

    assert order.trade_state == "SUCCESS" and datetime.fromisoformat(order.success_time)


def test_an_unknown_order_does_not_exist(sandbox):
    with pytest.raises(MaidanError) as missing:
        maidan.query_order(_sp_mchid(sandbox), "CP01NOSUCH")

    assert (missing.value.status, missing.value.code) == (404, "ORDER_NOT_EXIST")


def test_a_closed_order_stays_closed_and_cannot_be_paid_or_reopened(sandbox, controls):
    _create_order(sandbox)

    maidan.close_order(_sp_mchid(sandbox), "CP01A0001")
    maidan.close_order(_sp_mchid(sandbox), "CP01A0001")

    assert maidan.query_order(_sp_mchid(sandbox), "CP01A0001").trade_state == "CLOSED"
    assert controls.post("/orders/CP01A0001/pay").status_code == 409
    with pytest.raises(MaidanError) as reopened:
        _create_order(sandbox)
    assert reopened.value.code == "ORDER_CLOSED"


def test_a_paid_order_cannot_be_closed(sandbox, controls):
    _paid_order(sandbox, controls)

    with pytest.raises(MaidanError) as refused:
        maidan.close_order(_sp_mchid(sandbox), "CP01A0001")

    assert refused.value.code == "ORDER_PAID"


def test_closing_an_unknown_order_is_order_not_exist(sandbox):
    with pytest.raises(MaidanError) as missing:
        maidan.close_order(_sp_mchid(sandbox), "CP01NOSUCH")

    assert missing.value.code == "ORDER_NOT_EXIST"


# --- The sandbox phone's WeChat wallet paying a 买单 order ---------------------------------


def _wallet(call: str, pay_params: dict) -> httpx.Response:
    """What the wallet script sends: the getBrandWCPayRequest params, as a text/plain body."""
    return http.client().post(f"{SANDBOX_ROOT}/wechatpay/sandbox/wallet/{call}", content=json.dumps(pay_params),
                              headers={"Content-Type": "text/plain"})


def test_the_wallet_pays_a_maidan_order_and_maidan_notifies(sandbox, deliveries):
    created = _create_order(sandbox, total=880)

    sheet = _wallet("checkout", created.pay_params)
    paid = _wallet("pay", created.pay_params)
    sandbox.notifier.deliver_due()

    assert sheet.json()["amount_total"] == 880 and sheet.json()["out_trade_no"] == "CP01A0001"
    assert paid.json() == {"err_msg": "get_brand_wcpay_request:ok"}
    assert maidan.query_order(_sp_mchid(sandbox), "CP01A0001").trade_state == "SUCCESS"
    assert len(sandbox.notifier.of_system("maidan")) == 1
    event = maidan.verify_notification(*deliveries[0])
    assert event["event_type"] == "TRANSACTION.SUCCESS" and event["order"]["order_id"] == created.order_id
    assert _wallet("pay", created.pay_params).json()["err_desc"] == "该订单已支付"


@pytest.mark.parametrize("forge", [
    lambda params: {**params, "paySign": base64.b64encode(b"\0" * 32).decode()},
    lambda params: {**params, "nonceStr": params["nonceStr"].upper()},
    lambda params: {**params, "signType": "RSA"},
])
def test_the_wallet_refuses_a_maidan_pay_sign_maidan_did_not_issue(sandbox, forge):
    created = _create_order(sandbox)

    answer = _wallet("pay", forge(created.pay_params))

    assert answer.status_code == 400 and answer.json()["err_msg"] == "get_brand_wcpay_request:fail"
    assert maidan.query_order(_sp_mchid(sandbox), "CP01A0001").trade_state == "NOTPAY"
    assert not sandbox.notifier.of_system("maidan")


# --- Refunds -------------------------------------------------------------------------------


def _refund(world, out_refund_no="CP01R0001", refund=230, total=1230, out_trade_no="CP01A0001"):
    return maidan.create_refund(sp_mchid=_sp_mchid(world), out_trade_no=out_trade_no, out_refund_no=out_refund_no,
                                refund=refund, total=total, notify_url=NOTIFY_URL)


def test_a_refund_is_processing_then_succeeds(sandbox, controls):
    _paid_order(sandbox, controls)

    created = _refund(sandbox)
    processing = maidan.query_refund(_sp_mchid(sandbox), "CP01R0001")
    sandbox.clock.advance(3)
    settled = maidan.query_refund(_sp_mchid(sandbox), "CP01R0001")

    assert created.status == processing.status == "PROCESSING" and created.refund == 230
    assert settled.status == "SUCCESS" and settled.refund_id == created.refund_id and settled.success_time


def test_the_same_refund_again_answers_the_same_refund(sandbox, controls):
    _paid_order(sandbox, controls)

    assert _refund(sandbox).refund_id == _refund(sandbox).refund_id
    with pytest.raises(MaidanError) as changed:
        _refund(sandbox, refund=100)
    assert changed.value.code == "PARAM_ERROR"


def test_refunds_beyond_what_was_paid_are_not_enough(sandbox, controls):
    _paid_order(sandbox, controls)
    _refund(sandbox, "CP01R0001", refund=1000)

    with pytest.raises(MaidanError) as refused:
        _refund(sandbox, "CP01R0002", refund=231)

    assert (refused.value.status, refused.value.code) == (403, "NOT_ENOUGH")
    assert _refund(sandbox, "CP01R0003", refund=230).status == "PROCESSING"


def test_the_not_enough_fault_refuses_the_next_refund(sandbox, controls):
    _paid_order(sandbox, controls)
    sandbox.faults.arm("maidan", "NOT_ENOUGH")

    with pytest.raises(MaidanError) as refused:
        _refund(sandbox)

    assert refused.value.code == "NOT_ENOUGH" and _refund(sandbox).status == "PROCESSING"


@pytest.mark.parametrize("close_first, expected", [(False, "PARAM_ERROR"), (True, "ORDER_CLOSED")])
def test_an_unpaid_or_closed_order_cannot_be_refunded(sandbox, close_first, expected):
    _create_order(sandbox)
    if close_first:
        maidan.close_order(_sp_mchid(sandbox), "CP01A0001")

    with pytest.raises(MaidanError) as refused:
        _refund(sandbox)

    assert refused.value.code == expected


def test_refunding_an_unknown_order_or_querying_an_unknown_refund_is_order_not_exist(sandbox):
    with pytest.raises(MaidanError) as no_order:
        _refund(sandbox, out_trade_no="CP01NOSUCH")
    with pytest.raises(MaidanError) as no_refund:
        maidan.query_refund(_sp_mchid(sandbox), "CP01NOSUCH")

    assert no_order.value.code == no_refund.value.code == "ORDER_NOT_EXIST"


# --- Notifications ---------------------------------------------------------------------------


def test_a_payment_notification_is_signed_and_retried_on_schedule_until_acknowledged(
        sandbox, controls, deliveries):
    _paid_order(sandbox, controls)

    sandbox.notifier.deliver_due()
    sandbox.clock.advance(WECHATPAY_RETRY_SCHEDULE[0] - 1)
    sandbox.notifier.deliver_due()
    assert len(deliveries) == 1
    sandbox.clock.advance(1)
    sandbox.notifier.deliver_due()

    [notification] = sandbox.notifier.of_system("maidan")
    assert len(deliveries) == 2 and notification.acknowledged
    events = [maidan.verify_notification(headers, body) for headers, body in deliveries]
    assert events[0] == events[1] and events[0]["event_type"] == "TRANSACTION.SUCCESS"
    assert maidan.MaidanOrder.from_json(events[0]["order"]) == maidan.query_order(_sp_mchid(sandbox), "CP01A0001")
    assert deliveries[0][0]["Maidan-Nonce"] != deliveries[1][0]["Maidan-Nonce"]


def test_a_duplicate_delivery_carries_the_same_event_id(sandbox, controls, deliveries):
    _paid_order(sandbox, controls)
    [notification] = sandbox.notifier.of_system("maidan")

    answer = controls.post(f"/notifications/{notification.notification_id}/duplicate").json()
    controls.post(f"/notifications/{notification.notification_id}/duplicate")

    first, second = (maidan.verify_notification(h, b) for h, b in deliveries)
    assert answer["status"] == 500 and first["id"] == second["id"]


def test_a_refund_notification_arrives_when_the_refund_settles(sandbox, controls, deliveries):
    _paid_order(sandbox, controls)
    _refund(sandbox)

    def refund_deliveries():
        return [(headers, body) for headers, body in deliveries if b"REFUND.SUCCESS" in body]

    sandbox.notifier.deliver_due()
    assert refund_deliveries() == []
    sandbox.clock.advance(3)
    sandbox.notifier.deliver_due()

    [(headers, body)] = refund_deliveries()
    event = maidan.verify_notification(headers, body)
    assert event["event_type"] == "REFUND.SUCCESS"
    assert maidan.MaidanRefund.from_json(event["refund"]).status == "SUCCESS"


def test_a_notification_signed_more_than_five_minutes_ago_is_refused(sandbox, controls, deliveries):
    _create_order(sandbox)
    sandbox.clock.advance(301)  # 买单 signs by its clock; ours is 5 minutes behind
    controls.post("/orders/CP01A0001/pay")
    sandbox.notifier.deliver_due()

    [(headers, body)] = deliveries
    with pytest.raises(MaidanSignatureError, match="5 minutes"):
        maidan.verify_notification(headers, body)


@pytest.mark.parametrize("forgery, reason", [("bad_signature", "does not match"), ("stale_timestamp", "5 minutes")])
def test_a_forged_notification_is_refused(sandbox, controls, deliveries, forgery, reason):
    _create_order(sandbox)

    controls.post("/orders/CP01A0001/forged-notification", json={"forgery": forgery})

    [(headers, body)] = deliveries
    with pytest.raises(MaidanSignatureError, match=reason):
        maidan.verify_notification(headers, body)


def test_a_genuinely_signed_notification_with_another_amount_verifies_but_does_not_match(
        sandbox, controls, deliveries):
    _create_order(sandbox)

    controls.post("/orders/CP01A0001/forged-notification", json={"forgery": "wrong_amount"})

    [(headers, body)] = deliveries
    notified = maidan.MaidanOrder.from_json(maidan.verify_notification(headers, body)["order"])
    assert notified.total == 1231 != maidan.query_order(_sp_mchid(sandbox), "CP01A0001").total


def test_a_notification_body_altered_in_transit_is_refused(sandbox, controls, deliveries):
    _paid_order(sandbox, controls)
    sandbox.notifier.deliver_due()
    headers, body = deliveries[0]

    with pytest.raises(MaidanSignatureError, match="does not match"):
        maidan.verify_notification({k.lower(): v for k, v in headers.items()}, body.replace(b"1230", b"1"))


def test_a_refund_whose_answer_was_lost_is_retried_into_the_same_single_refund(sandbox, controls, wire):
    _paid_order(sandbox, controls)
    sandbox.faults.arm("maidan", "LOST_ANSWER")

    refund = maidan.create_refund(sp_mchid=_sp_mchid(sandbox), out_trade_no="CP01A0001", out_refund_no="RF0001",
                                  refund=230, total=1230, notify_url=NOTIFY_URL)

    assert wire.count("/v1/refunds") == 2 and refund.refund == 230
    assert len(sandbox.component("maidan_ledger", None).refunds) == 1
