"""P6 refunds on the three channels through the in-process sandbox: full and partial, settled
by the channel's answer, its notification or the refund query sweep; over-refunds and a
second refund at once refused; forged or mismatched notifications change nothing."""
from __future__ import annotations

import concurrent.futures
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pynamodb.exceptions import CancellationReason, TransactWriteError, VerboseClientError

from chalicelib.errors import ApiError, InvalidField
from chalicelib.models.audit import AuditEntry
from chalicelib.models.base import now
from chalicelib.models.daily_totals import DailyTotals
from chalicelib.models.deliveries import Delivery
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.payments import channels, notifications, outbox, refunds, sweep_shards, totals
from chalicelib.payments.models import OutboxItem
from sandbox import alipay as sandbox_alipay
from sandbox import wechatpay as sandbox_wechatpay
from tests import environment
from tests import test_payments_alipay as on_alipay
from tests import test_payments_maidan as on_maidan
from tests import test_payments_wechatpay as on_wechatpay

CONSOLE = refunds.Requester(on_wechatpay.ACCOUNT, refunds.CONSOLE_NAME)


@pytest.fixture
def channel(sandbox):
    """Every notification the sandbox sends reaches our handlers in-process."""
    sandbox.notifier.deliver = on_wechatpay.Channel()
    return sandbox.notifier.deliver


def paid_wechatpay_order(sandbox, amount: int = 1000) -> Order:
    on_wechatpay.make_merchant(sandbox)
    out_trade_no = on_wechatpay.new_order(amount=amount).order.out_trade_no
    on_wechatpay.pay(out_trade_no)
    sandbox.notifier.deliver_due()
    return Order.get(out_trade_no)


def paid_maidan_order(sandbox) -> Order:
    on_maidan.make_merchant(sandbox)
    out_trade_no = on_maidan.new_order(sandbox).order.out_trade_no
    on_maidan.pay(out_trade_no)
    sandbox.notifier.deliver_due()
    return Order.get(out_trade_no)


def paid_alipay_order(sandbox) -> Order:
    world_alipay = sandbox_alipay.state_of(sandbox)
    on_alipay.make_merchant(world_alipay)
    order = on_alipay.new_order(world_alipay).order
    on_alipay.pay(Order.get(order.out_trade_no).upstream_trade_no)
    sandbox.notifier.deliver_due()
    return Order.get(order.out_trade_no)


def settled_later(sandbox, seconds: int = 6) -> None:
    """The channel's refund settles on its clock; its notification then falls due."""
    sandbox.clock.advance(seconds)
    sandbox.notifier.deliver_due()


def make_callback_receiver(order: Order) -> None:
    """The provider asks for callbacks (at the sandbox's receiver)."""
    Provider.get(order.account_id, order.sp_mchid).update(
        actions=[Provider.callback_url.set(f"{environment.SANDBOX_ROOT}/receiver/refunds")])


def refund_items() -> list[str]:
    return sorted(item.item_id for item in OutboxItem.scan() if item.kind == "refund_succeeded")


def test_a_full_wechat_pay_refund_is_processing_until_its_notification_settles_it_once(aws, sandbox, channel, wire):
    order = paid_wechatpay_order(sandbox)

    refund = refunds.start(order.out_trade_no, 1000, "顾客退货", CONSOLE)

    assert refund.state == "PROCESSING" and Order.get(order.out_trade_no).refunding_no == refund.out_refund_no
    assert refund.out_refund_no.startswith("M00001") and len(refund.out_refund_no) <= 32
    [sent] = [json.loads(r.content) for r in wire.requests if r.url.path.endswith("/v3/refund/domestic/refunds")]
    assert (sent["out_trade_no"], sent["amount"], sent["reason"]) == \
        (order.out_trade_no, {"refund": 1000, "total": 1000, "currency": "CNY"}, "顾客退货")
    assert sent["notify_url"] == f"http://h5.test/notify/wechatpay/{on_wechatpay.ACCOUNT}/{on_wechatpay.SP_MCHID}"

    settled_later(sandbox)

    assert channel.answers[-1] == (204, "")
    settled, paid = Refund.get(refund.out_refund_no), Order.get(order.out_trade_no)
    assert (settled.state, settled.settled_by, settled.check_shard) == ("SUCCESS", "notification", None)
    assert (paid.refunded, paid.refunding_no) == (1000, None)
    assert refund_items() == [f"refund_succeeded#{refund.out_refund_no}"]
    [delivered] = [n for n in sandbox.notifier.notifications.values() if n.attempts and n.acknowledged][-1:]
    sandbox.notifier.send_duplicate(delivered.notification_id)
    assert channel.answers[-1] == (204, "") and Order.get(order.out_trade_no).refunded == 1000
    [entry] = [e for e in AuditEntry.query(on_wechatpay.ACCOUNT) if e.action == "order.refund_requested"]
    assert (entry.actor, entry.entity, entry.changes.as_dict()["amount"]) == \
        (on_wechatpay.ACCOUNT, f"order#{order.out_trade_no}", 1000)
    assert entry.changes.as_dict()["actor_name"] == {"from": None, "to": "控制台"}


def test_partial_maidan_refunds_settle_by_the_query_sweep_when_notifications_are_lost(
        aws, sandbox, channel, platform_secrets):
    order = paid_maidan_order(sandbox)
    sandbox.notifier.deliver = lambda url, headers, body: (503, "")  # our notify URL unreachable

    first = refunds.start(order.out_trade_no, 300, None, CONSOLE)
    sandbox.clock.advance(4)
    assert refunds.sweep_processing_refunds(at=now())["examined"] == 0  # not due yet
    assert refunds.sweep_processing_refunds(at=now() + 61) == {"examined": 1, "settled": 1, "later": 0, "failed": 0}
    second = refunds.start(order.out_trade_no, 580, None, CONSOLE)
    sandbox.clock.advance(4)
    refunds.sweep_processing_refunds(at=now() + 61)

    assert [Refund.get(r.out_refund_no).state for r in (first, second)] == ["SUCCESS", "SUCCESS"]
    assert Refund.get(first.out_refund_no).settled_by == "query"
    assert (Order.get(order.out_trade_no).refunded, Order.get(order.out_trade_no).refunding_no) == (880, None)
    assert len(refund_items()) == 2
    with pytest.raises(InvalidField) as over:
        refunds.start(order.out_trade_no, 1, None, CONSOLE)
    assert over.value.param == "amount"


def test_alipay_refunds_settle_on_the_synchronous_answer_and_its_notification_changes_nothing(aws, sandbox, channel):
    order = paid_alipay_order(sandbox)

    partial = refunds.start(order.out_trade_no, 234, "少收一份", CONSOLE)
    rest = refunds.start(order.out_trade_no, 1000, None, CONSOLE)

    assert (partial.state, partial.settled_by, rest.state) == ("SUCCESS", "channel_answer", "SUCCESS")
    assert Order.get(order.out_trade_no).refunded == 1234
    version = Order.get(order.out_trade_no).version
    sandbox.notifier.deliver_due()  # Alipay's trade_status_sync for each refund
    assert channel.answers[-2:] == [(200, "success"), (200, "success")]
    assert Order.get(order.out_trade_no).version == version and len(refund_items()) == 2
    with pytest.raises(InvalidField) as over:
        refunds.start(order.out_trade_no, 1, None, CONSOLE)
    assert over.value.param == "amount" and len(list(Refund.scan())) == 2


def test_an_over_refund_is_refused_naming_amount_and_writes_nothing(aws, sandbox, channel, wire):
    order = paid_wechatpay_order(sandbox)

    with pytest.raises(InvalidField) as over:
        refunds.start(order.out_trade_no, 1001, None, CONSOLE)

    assert over.value.param == "amount"
    assert list(Refund.scan()) == [] and Order.get(order.out_trade_no).refunding_no is None
    assert not [r for r in wire.requests if "/refund/" in r.url.path]


def test_two_refunds_at_once_let_exactly_one_through(aws, sandbox, channel):
    order = paid_wechatpay_order(sandbox)

    def attempt(_):
        try:
            return refunds.start(order.out_trade_no, 1000, None, CONSOLE).state
        except ApiError as exc:
            return exc.code

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(attempt, range(2)))

    assert outcomes[0] == "PROCESSING" and outcomes[1] in ("refund_in_progress", "amount_exceeds_refundable")
    [refund] = list(Refund.scan())
    assert Order.get(order.out_trade_no).refunding_no == refund.out_refund_no


def test_an_abnormal_wechat_pay_refund_stays_open_blocks_a_second_refund_and_settles_once_when_it_succeeds_later(
        aws, sandbox, channel):
    order = paid_wechatpay_order(sandbox)
    make_callback_receiver(order)
    refund = refunds.start(order.out_trade_no, 199, None, CONSOLE)  # the sandbox settles x.99 ABNORMAL

    settled_later(sandbox)

    abnormal = Refund.get(refund.out_refund_no)
    assert (abnormal.state, abnormal.failed_at) == ("ABNORMAL", None) and "微信支付商户平台" in abnormal.failure
    assert abnormal.check_shard is not None  # the sweep keeps asking
    assert (Order.get(order.out_trade_no).refunded, Order.get(order.out_trade_no).refunding_no) == \
        (0, refund.out_refund_no)
    with pytest.raises(ApiError) as second:
        refunds.start(order.out_trade_no, 100, None, CONSOLE)
    assert second.value.code == "refund_in_progress" and len(list(Refund.scan())) == 1
    later = now() + 600
    assert refunds.sweep_processing_refunds(at=later)["later"] == 1
    assert Refund.get(refund.out_refund_no).check_at > later  # asked again later, backing off

    sandbox_wechatpay.complete_abnormal_refund(sandbox, refund.out_refund_no)  # handled at WeChat Pay
    sandbox.notifier.deliver_due()

    settled, paid = Refund.get(refund.out_refund_no), Order.get(order.out_trade_no)
    assert (settled.state, settled.failure, settled.check_shard) == ("SUCCESS", None, None)
    assert (paid.refunded, paid.refunding_no) == (199, None)
    [item_id] = refund_items()
    for _ in range(2):  # the follow-up, delivered twice
        outbox.handle_item(item_id)
    day = totals.day_of(settled.succeeded_at)
    counted = DailyTotals.get(f"merchant#{order.merchant_id}", day)
    assert (counted.refund_amount, counted.refund_count) == (199, 1)
    assert [d.delivery_id for d in Delivery.scan() if d.out_refund_no == refund.out_refund_no] == \
        [f"callback#refund.succeeded#{refund.out_refund_no}"]


def test_a_closed_wechat_pay_refund_fails_and_frees_the_order(aws, sandbox, channel):
    order = paid_wechatpay_order(sandbox)
    refund = refunds.start(order.out_trade_no, 500, None, CONSOLE)

    headers, body = _refund_notification(sandbox, refund, event="REFUND.CLOSED", refund_status="CLOSED")
    assert notifications.wechatpay_notification(on_wechatpay.ACCOUNT, on_wechatpay.SP_MCHID, headers, body)[0] == 204

    failed = Refund.get(refund.out_refund_no)
    assert (failed.state, failed.failure, failed.check_shard) == ("FAILED", "微信支付已关闭这笔退款", None)
    assert Order.get(order.out_trade_no).refunding_no is None and refund_items() == []


def test_an_unsigned_wechat_pay_error_answer_leaves_the_refund_processing_for_the_sweep(aws, sandbox, channel, wire):
    order = paid_wechatpay_order(sandbox)
    sandbox.notifier.deliver = lambda url, headers, body: (503, "")  # only the sweep can tell
    wire.rewrite = lambda status, headers, body: (400, {"Content-Type": "application/json"},
                                                  b'{"code":"INVALID_REQUEST","message":"forged"}')

    refund = refunds.start(order.out_trade_no, 300, None, CONSOLE)
    wire.rewrite = None

    assert (refund.state, Order.get(order.out_trade_no).refunding_no) == ("PROCESSING", refund.out_refund_no)
    sandbox.clock.advance(6)
    assert refunds.sweep_processing_refunds(at=now() + 61)["settled"] == 1
    assert (Refund.get(refund.out_refund_no).state, Order.get(order.out_trade_no).refunded) == ("SUCCESS", 300)


def test_a_refund_settled_by_its_notification_while_the_channel_answer_settles_it_answers_the_refund(
        aws, sandbox, channel, monkeypatch):
    order = paid_alipay_order(sandbox)
    real, calls = refunds.transaction, []

    def racing():
        calls.append(1)
        if len(calls) != 2:
            return real()
        # the channel's answer is being settled: the notification gets there first and ours
        # is cancelled by the other transaction (a conflict, not a failed condition)
        refunds.settle(Order.get(order.out_trade_no).refunding_no,
                       channels.RefundState(channels.REFUND_SUCCESS), "notification")
        return _conflicting_transaction()
    monkeypatch.setattr(refunds, "transaction", racing)

    refund = refunds.start(order.out_trade_no, 234, None, CONSOLE)

    assert (refund.state, refund.settled_by) == ("SUCCESS", "notification")
    assert Order.get(order.out_trade_no).refunded == 234 and len(refund_items()) == 1


def _conflicting_transaction():
    class Conflicting:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            cause = VerboseClientError({"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}},
                                       "TransactWriteItems",
                                       cancellation_reasons=[CancellationReason("TransactionConflict"), None, None])
            raise TransactWriteError("cancelled", cause=cause)

        def update(self, *args, **kwargs):
            pass

        def save(self, *args, **kwargs):
            pass
    return Conflicting()


def test_the_sweep_backs_off_a_refund_whose_query_fails_and_stops_starting_checks_at_its_budget(
        aws, sandbox, channel, monkeypatch):
    order = paid_wechatpay_order(sandbox)
    sandbox.notifier.deliver = lambda url, headers, body: (503, "")
    refund = refunds.start(order.out_trade_no, 300, None, CONSOLE)
    due = now() + 61

    def unreachable(*args):
        raise httpx.ConnectTimeout("WeChat Pay unreachable")
    monkeypatch.setattr(channels, "query_refund", unreachable)
    assert refunds.sweep_processing_refunds(at=due)["failed"] == 1
    assert Refund.get(refund.out_refund_no).check_at > due  # not asked again every minute
    assert refunds.sweep_processing_refunds(at=due + 1)["examined"] == 0

    monkeypatch.setattr(sweep_shards, "SWEEP_BUDGET_SECONDS", -1)
    assert refunds.sweep_processing_refunds(at=due + 7200)["examined"] == 0  # out of time: the next run


def _refund_notification(sandbox, refund: Refund, event: str = "REFUND.SUCCESS",
                         **changes) -> tuple[dict, bytes]:
    """A refund notification as WeChat Pay signs it (the platform's key), with `changes` in the resource."""
    wechatpay = sandbox_wechatpay.state_of(sandbox)
    record = next(r for key, r in wechatpay.refunds.items() if key[2] == refund.out_refund_no)
    resource = sandbox_wechatpay.refund_json(record, record.settles_at, notification=True) | changes
    return sandbox_wechatpay.notification_builder(sandbox, wechatpay.merchants[on_wechatpay.SP_MCHID],
                                                  event, "退款", "refund", resource, now())()


@pytest.mark.parametrize("change", [{"amount": {"refund": 1, "total": 1000}}, {"sub_mchid": "1600000999"},
                                    {"sp_mchid": "1900000999"}, {"out_refund_no": "M00001RNOSUCHREFUND"}])
def test_a_genuine_refund_notification_that_does_not_match_changes_nothing(aws, sandbox, channel, change):
    order = paid_wechatpay_order(sandbox)
    refund = refunds.start(order.out_trade_no, 500, None, CONSOLE)
    sandbox.clock.advance(6)

    headers, body = _refund_notification(sandbox, refund, **change)
    status, _, _ = notifications.wechatpay_notification(on_wechatpay.ACCOUNT, on_wechatpay.SP_MCHID, headers, body)

    assert status in (400, 404)
    assert Refund.get(refund.out_refund_no).state == "PROCESSING" and Order.get(order.out_trade_no).refunded == 0


def test_a_forged_refund_notification_changes_nothing_on_any_channel(aws, sandbox, channel, platform_secrets):
    order = paid_wechatpay_order(sandbox)
    refund = refunds.start(order.out_trade_no, 500, None, CONSOLE)
    headers, body = _refund_notification(sandbox, refund)
    tampered = body.replace(b'"resource":{', b'"resource":{"x":1,')
    assert notifications.wechatpay_notification(on_wechatpay.ACCOUNT, on_wechatpay.SP_MCHID, headers, tampered)[0] == 401

    forged_maidan = json.dumps({"event_type": "REFUND.SUCCESS", "refund": {"out_refund_no": refund.out_refund_no}})
    assert notifications.maidan_notification({"Maidan-Signature": "forged"}, forged_maidan)[0] == 401

    assert Refund.get(refund.out_refund_no).state == "PROCESSING" and Order.get(order.out_trade_no).refunded == 0


def test_an_alipay_refund_whose_answer_was_lost_is_settled_only_by_a_genuine_matching_notification(
        aws, sandbox, channel, monkeypatch):
    order = paid_alipay_order(sandbox)
    world_alipay = sandbox_alipay.state_of(sandbox)
    asked = channels.refund

    def answer_lost(*args):
        asked(*args)
        raise httpx.ReadTimeout("the answer was lost")
    monkeypatch.setattr(channels, "refund", answer_lost)
    refund = refunds.start(order.out_trade_no, 234, None, CONSOLE)
    assert refund.state == "PROCESSING"
    trade = order.upstream_trade_no

    wrong_total = on_alipay.genuine_form(world_alipay, trade, out_biz_no=refund.out_refund_no, refund_fee="12.34")
    _, wrong_key = world_alipay.signed_form({**world_alipay.notification_params(world_alipay.trade(trade)),
                                             "out_biz_no": refund.out_refund_no, "refund_fee": "2.34"},
                                            key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    assert [notifications.alipay_notification(body)[2] for body in (wrong_total, wrong_key)] == ["fail", "fail"]
    assert Refund.get(refund.out_refund_no).state == "PROCESSING" and Order.get(order.out_trade_no).refunded == 0

    genuine = on_alipay.genuine_form(world_alipay, trade, out_biz_no=refund.out_refund_no, refund_fee="2.34")
    assert notifications.alipay_notification(genuine)[2] == "success"
    assert (Refund.get(refund.out_refund_no).state, Order.get(order.out_trade_no).refunded) == ("SUCCESS", 234)
