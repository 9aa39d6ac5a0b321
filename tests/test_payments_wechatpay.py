"""P1/P2/P3-trigger/P4/P5 on WeChat Pay partner JSAPI, through the in-process sandbox."""
from __future__ import annotations

import concurrent.futures
import json

import pytest

from chalicelib import providers
from chalicelib.errors import InvalidField
from chalicelib.models.audit import AuditEntry
from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes as onecode_codes
from chalicelib.payments import amounts, errors, notifications, orders, outbox, sweeps
from chalicelib.payments.models import OutboxItem
from chalicelib.upstream import http
from sandbox.wechatpay import register_merchant
from sandbox.world import WechatUser
from tests import environment

ACCOUNT = "acct-owner"
SP_MCHID = "1900000001"
SUB_MCHID = "1600000001"
SP_APPID = "wx5e0d4c3b2a190807"
OPENID = WechatUser("guest-01", "路人小李", "NOT_OPENED").openid(SP_APPID)
SANDBOX = f"{environment.SANDBOX_ROOT}/wechatpay/sandbox"


def make_merchant(sandbox, *, configure_wechat_pay: bool = True, channel: str = "official_direct") -> SubMerchant:
    credentials = register_merchant(sandbox, SP_MCHID, sub_mchids=[SUB_MCHID], appids=[SP_APPID])
    wechat = {"app_id": SP_APPID}
    if configure_wechat_pay:
        wechat |= {"serial_no": credentials["serial_no"], "api_v3_key": credentials["api_v3_key"],
                   "private_key_pem": credentials["private_key_pem"],
                   "platform_public_key_id": credentials["platform_public_key_id"],
                   "platform_public_key_pem": credentials["platform_public_key_pem"]}
    providers.create(ACCOUNT, ACCOUNT, {"sp_mchid": SP_MCHID, "name": "演示服务商", "wechat_pay": wechat})
    at = now()
    merchant = SubMerchant(account_id=ACCOUNT, merchant_id="m-1", sp_mchid=SP_MCHID, provider_key=f"{ACCOUNT}#{SP_MCHID}",
                           order_prefix="M00001", name="一号小店", sub_mchid=SUB_MCHID, channel=channel,
                           source="manual", created_at=at, updated_at=at)
    merchant.save()
    return merchant


def store_code():
    code = onecode_codes.permanent_code(onecode_codes.STORE_COLLECTION, ACCOUNT, "m-1", store_id="s-1")
    code.save()
    return code


class Channel:
    """The app's notify URLs as the sandbox's notifier reaches them, in-process."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, str]] = []

    def __call__(self, url: str, headers: dict, body: bytes) -> tuple[int, str]:
        path = url.split("h5.test", 1)[1]
        if path.startswith("/notify/wechatpay/"):
            account_id, sp_mchid = path.split("/")[-2:]
            status, _, text = notifications.wechatpay_notification(account_id, sp_mchid, headers, body)
        elif path == "/notify/maidan":
            status, _, text = notifications.maidan_notification(headers, body)
        else:
            status, _, text = notifications.alipay_notification(body)
        self.answers.append((status, text))
        return status, text


@pytest.fixture
def channel(sandbox):
    sandbox.notifier.deliver = Channel()
    return sandbox.notifier.deliver


@pytest.fixture
def queued(aws):
    """The follow-up queue's messages (received, so each shows once)."""
    import boto3

    from chalicelib import settings
    sqs = boto3.client("sqs", region_name=environment.REGION)

    def receive() -> list[dict]:
        answer = sqs.receive_message(QueueUrl=settings.current().payment_follow_up_queue_url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in answer.get("Messages", [])]
    return receive


def pay(out_trade_no: str) -> None:
    response = http.client().post(f"{SANDBOX}/orders/{out_trade_no}/pay", json={})
    assert response.status_code == 200, response.text


def new_order(attempt: str = "attempt-0000000000000001", amount: int = 1234) -> orders.CreatedOrder:
    return orders.create(store_code(), orders.Payer(OPENID), amount, "多加香菜", attempt, "wechat")


def test_an_order_is_placed_as_partner_jsapi_and_answers_signed_pay_params(aws, sandbox, wire):
    make_merchant(sandbox)
    created = new_order()
    order = Order.get(created.order.out_trade_no)
    assert order.out_trade_no.startswith("M00001") and len(order.out_trade_no) <= 32
    assert (order.state, order.total, order.sub_mchid, order.store_id, order.source, order.payer_id) == \
        ("NOTPAY", 1234, SUB_MCHID, "s-1", "store_code", OPENID)
    assert order.prepay_id and order.open_shard is not None and order.time_expire > order.created_at
    assert created.pay_params["package"] == f"prepay_id={order.prepay_id}"
    assert created.pay_params["appId"] == SP_APPID and created.pay_params["signType"] == "RSA"
    [sent] = [json.loads(r.content) for r in wire.requests if r.url.path.endswith("/transactions/jsapi")]
    assert (sent["sp_mchid"], sent["sub_mchid"], sent["payer"], sent["amount"]["total"]) == \
        (SP_MCHID, SUB_MCHID, {"sp_openid": OPENID}, 1234)
    assert sent["notify_url"] == f"http://h5.test/notify/wechatpay/{ACCOUNT}/{SP_MCHID}" and sent["time_expire"]


def test_a_retried_create_of_one_attempt_makes_one_order(aws, sandbox):
    make_merchant(sandbox)
    first, second = new_order(), new_order()
    assert first.order.out_trade_no == second.order.out_trade_no
    assert len(list(Order.by_merchant.query("m-1"))) == 1
    assert first.pay_params["package"] == second.pay_params["package"]


def test_an_attempt_id_reused_for_another_amount_is_refused(aws, sandbox):
    make_merchant(sandbox)
    new_order(amount=100)
    with pytest.raises(errors.PaymentRefused) as refused:
        new_order(amount=200)
    assert refused.value.code == errors.ATTEMPT_REUSED


def test_a_provider_without_wechat_pay_gets_a_clear_error_and_nothing_is_sent(aws, sandbox, wire):
    make_merchant(sandbox, configure_wechat_pay=False)
    with pytest.raises(errors.PaymentRefused) as refused:
        new_order()
    assert refused.value.code == errors.WECHAT_PAY_NOT_CONFIGURED
    assert not [r for r in wire.requests if "/wechatpay/" in str(r.url)]
    assert list(Order.by_merchant.query("m-1")) == []


def test_a_paid_notification_moves_the_order_to_paid_with_one_outbox_item_handed_over(aws, sandbox, channel, queued):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    pay(out_trade_no)
    sandbox.notifier.deliver_due()
    assert channel.answers == [(204, "")]
    order = Order.get(out_trade_no)
    assert (order.state, order.settled_by, order.open_shard) == ("SUCCESS", "notification", None)
    assert order.upstream_trade_no
    item = OutboxItem.get(f"order_paid#{out_trade_no}")
    assert item.pending_shard is not None and item.done_at is None  # handed over, its follow-up not yet done
    assert queued() == [{"item_id": item.item_id}]
    assert outbox.handle_item(item.item_id) == "done"
    assert OutboxItem.get(item.item_id).pending_shard is None  # out of the sweep's index once done


def test_a_duplicate_notification_is_acknowledged_and_changes_nothing(aws, sandbox, channel, queued):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    pay(out_trade_no)
    [delivered] = sandbox.notifier.deliver_due()
    version = Order.get(out_trade_no).version
    sandbox.notifier.send_duplicate(delivered.notification_id)
    assert channel.answers == [(204, ""), (204, "")]
    assert Order.get(out_trade_no).version == version
    assert len(queued()) == 1


@pytest.mark.parametrize("forgery", ["forged", "wrong_amount"])
def test_a_forged_or_mismatched_notification_changes_nothing(aws, sandbox, channel, forgery):
    make_merchant(sandbox)
    order = new_order().order
    body = {"out_trade_no": order.out_trade_no, "signature": "forged"} if forgery == "forged" else \
        {"out_trade_no": order.out_trade_no, "signature": "valid", "amount_total": 1}
    answer = http.client().post(f"{SANDBOX}/notifications/forge", json=body)
    assert answer.status_code == 200, answer.text
    assert channel.answers and channel.answers[-1][0] >= 400
    assert Order.get(order.out_trade_no).state == "NOTPAY"
    assert list(OutboxItem.scan()) == []


def test_a_stale_or_probe_signed_notification_is_refused(aws, sandbox, channel):
    make_merchant(sandbox)
    order = new_order().order
    pay(order.out_trade_no)
    [pending] = sandbox.notifier.notifications.values()
    headers, body = pending.build()
    stale = dict(headers, **{"Wechatpay-Timestamp": str(int(headers["Wechatpay-Timestamp"]) - 600)})
    probe = dict(headers, **{"Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc"})
    for bad in (stale, probe):
        status, _, text = notifications.wechatpay_notification(ACCOUNT, SP_MCHID, bad, body)
        assert status == 401 and json.loads(text)["code"] == "FAIL"
    assert Order.get(order.out_trade_no).state == "NOTPAY"


def test_fifty_concurrent_copies_of_one_notification_make_one_paid_transition_and_one_item(aws, sandbox, queued):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(out_trade_no)
    [pending] = sandbox.notifier.notifications.values()
    headers, body = pending.build()
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: notifications.wechatpay_notification(ACCOUNT, SP_MCHID, headers, body), range(50)))
    assert {status for status, _, _ in answers} == {204}
    assert Order.get(out_trade_no).version == 3  # created, channel ids stored, paid: one transition
    assert len(list(OutboxItem.scan())) == 1
    assert len(queued()) == 1


def test_a_crash_between_the_transaction_and_the_hand_over_is_finished_once_by_the_sweep(
        aws, sandbox, queued, monkeypatch):
    class Killed(BaseException):
        pass

    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(out_trade_no)
    [pending] = sandbox.notifier.notifications.values()
    headers, body = pending.build()

    def killed(item_ids):
        raise Killed()
    monkeypatch.setattr(outbox, "enqueue", killed)
    with pytest.raises(Killed):
        notifications.wechatpay_notification(ACCOUNT, SP_MCHID, headers, body)
    monkeypatch.undo()
    assert Order.get(out_trade_no).state == "SUCCESS"
    assert OutboxItem.get(f"order_paid#{out_trade_no}").pending_shard is not None and queued() == []

    assert outbox.sweep(at=now())["handed_over"] == 0  # too young: its own request may still hand it over
    assert outbox.sweep(at=now() + 60) == {"examined": 1, "handed_over": 1}
    assert outbox.sweep(at=now() + 120) == {"examined": 1, "handed_over": 0}  # sent a minute ago: not again yet
    assert queued() == [{"item_id": f"order_paid#{out_trade_no}"}]
    assert outbox.handle_item(f"order_paid#{out_trade_no}") == "done"
    assert outbox.sweep(at=now() + 600) == {"examined": 0, "handed_over": 0}


def test_the_follow_up_records_the_paid_orders_audit_entry_exactly_once(aws, sandbox, channel):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    pay(out_trade_no)
    sandbox.notifier.deliver_due()
    item_id = f"order_paid#{out_trade_no}"
    assert outbox.handle_item(item_id) == "done"
    assert outbox.handle_item(item_id) == "duplicate"
    entries = [e for e in AuditEntry.query(ACCOUNT) if e.action == "order.paid"]
    assert [(e.entity, e.changes.as_dict()["total"]) for e in entries] == [(f"order#{out_trade_no}", 1234)]


def test_the_follow_up_queue_handler_reports_failed_records_and_handles_the_rest(aws):
    event = {"Records": [{"messageId": "1", "receiptHandle": "r1", "body": "{}", "attributes": {},
                          "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:ap-east-1:123456789012:q", "awsRegion": "ap-east-1"},
                         {"messageId": "2", "receiptHandle": "r2", "body": '{"item_id": "order_paid#none"}',
                          "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:ap-east-1:123456789012:q", "awsRegion": "ap-east-1"}]}
    assert outbox.handle_messages(event, None) == {"batchItemFailures": [{"itemIdentifier": "1"}]}


def test_a_lost_notification_is_settled_by_the_catch_up_sweep(aws, sandbox, queued):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(out_trade_no)
    assert sweeps.sweep_open_orders(at=now())["examined"] == 0  # not due yet
    result = sweeps.sweep_open_orders(at=now() + 200)
    assert (result["examined"], result["paid"]) == (1, 1)
    order = Order.get(out_trade_no)
    assert (order.state, order.settled_by, order.open_shard) == ("SUCCESS", "query", None)
    assert len(queued()) == 1
    assert sweeps.sweep_open_orders(at=now() + 400)["examined"] == 0


def test_an_unpaid_order_still_open_is_looked_at_again_and_closed_once_expired(aws, sandbox, wire):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    first = sweeps.sweep_open_orders(at=now() + 200)
    assert (first["examined"], first["later"]) == (1, 1)
    expire = int(Order.get(out_trade_no).time_expire)
    assert Order.get(out_trade_no).check_at <= expire
    closed = sweeps.sweep_open_orders(at=expire)
    assert closed["closed"] == 1
    order = Order.get(out_trade_no)
    assert (order.state, order.open_shard) == ("CLOSED", None)
    assert [r for r in wire.requests if r.url.path.endswith("/close")]


def test_an_order_already_paid_is_returned_without_a_new_payment(aws, sandbox, channel):
    make_merchant(sandbox)
    out_trade_no = new_order().order.out_trade_no
    pay(out_trade_no)
    sandbox.notifier.deliver_due()
    again = new_order()
    assert again.order.state == "SUCCESS" and again.pay_params is None


@pytest.mark.parametrize("text, reason", [("0", "大于 0"), ("-1", "数字"), ("0.001", "两位小数"), ("1e3", "数字"),
                                          ("１２", "数字"), ("10000.01", "不能超过"), ("", "请输入"), (" 1", "数字")])
def test_bad_amounts_are_refused_with_a_chinese_reason(text, reason):
    with pytest.raises(InvalidField) as refused:
        amounts.parse_yuan(text, 1_000_000)
    assert reason in refused.value.message and refused.value.param == "amount"


@pytest.mark.parametrize("text, fen", [("12", 1200), ("12.5", 1250), ("0.01", 1), ("10000.00", 1_000_000)])
def test_good_amounts_become_fen(text, fen):
    assert amounts.parse_yuan(text, 1_000_000) == fen


@pytest.mark.parametrize("fen, text", [(0, "0.00"), (1, "0.01"), (1250, "12.50"), (-1, "-0.01"), (-199, "-1.99"),
                                       (-100, "-1.00"), (-12345, "-123.45")])
def test_fen_read_as_yuan_keep_their_sign(fen, text):
    assert amounts.format_yuan(fen) == text
