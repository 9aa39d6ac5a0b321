"""P1/P2/P4/P5 on 买单 (a sub-merchant that opened 买单, charged through the platform's
partner key), through the in-process sandbox's 买单 API and its payer controls."""
from __future__ import annotations

import json

import pytest

from chalicelib import providers
from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes as onecode_codes
from chalicelib.payments import notifications, orders, sweeps
from chalicelib.payments.models import OutboxItem
from chalicelib.upstream import http
from sandbox import maidan as sandbox_maidan
from tests import environment

ACCOUNT = "acct-owner"
NOTIFY_URL = f"{environment.PUBLIC_BASE_URL}/notify/maidan"
CONTROLS = f"{environment.SANDBOX_ROOT}/maidan/sandbox"
pytestmark = pytest.mark.usefixtures("platform_secrets")  # the 买单 client reads MAIDAN_API_KEY from SSM


@pytest.fixture
def answers(sandbox) -> list[tuple[int, str]]:
    """What our notify URL answered each delivery, the sandbox's notifier calling it in-process."""
    answered: list[tuple[int, str]] = []

    def deliver(url: str, headers: dict, body: bytes) -> tuple[int, str]:
        assert url == NOTIFY_URL
        status, _, text = notifications.maidan_notification(headers, body)
        answered.append((status, text))
        return status, text
    sandbox.notifier.deliver = deliver
    return answered


def opened_sub_merchant(sandbox, skip: int = 0):
    """A generated 买单 sub-merchant that opened 买单, with its provider."""
    index = next(i for i in range(sandbox.config.providers) if sandbox.sub_merchant_count(i) > skip + 5)
    opened = [m for m in (sandbox.sub_merchant(index, n) for n in range(skip + 5)) if m.opened_maidan]
    return sandbox.provider(index), opened[skip]


def make_merchant(sandbox) -> SubMerchant:
    provider, generated = opened_sub_merchant(sandbox)
    providers.create(ACCOUNT, ACCOUNT, {"sp_mchid": provider.sp_mchid, "name": "买单服务商"})
    at = now()
    merchant = SubMerchant(account_id=ACCOUNT, merchant_id="m-1", sp_mchid=provider.sp_mchid,
                           provider_key=f"{ACCOUNT}#{provider.sp_mchid}", order_prefix="M00001", name="一号小店",
                           sub_mchid=generated.sub_mchid, channel="maidan", source="maidan", created_at=at,
                           updated_at=at)
    merchant.save()
    return merchant


def payer_openid(sandbox) -> str:
    """The customer's openid of the platform's official account (the provider has none)."""
    return sandbox.users["guest-01"].openid(sandbox.config.wechat_app_id)


def new_order(sandbox, attempt: str = "attempt-0000000000000001", amount: int = 880) -> orders.CreatedOrder:
    code = onecode_codes.permanent_code(onecode_codes.STORE_COLLECTION, ACCOUNT, "m-1", store_id="s-1")
    code.save()
    return orders.create(code, orders.Payer(payer_openid(sandbox)), amount, None, attempt, "wechat")


def pay(out_trade_no: str) -> str:
    """The payer pays: the id of the notification 买单 queued."""
    answer = http.client().post(f"{CONTROLS}/orders/{out_trade_no}/pay", json={})
    assert answer.status_code == 200, answer.text
    return answer.json()["notification_id"]


def ledger_order(sandbox, order: Order):
    return sandbox_maidan.ledger(sandbox).orders[(order.sp_mchid, order.out_trade_no)]


def nothing_changed(out_trade_no: str) -> bool:
    order = Order.get(out_trade_no)
    return order.state == "NOTPAY" and order.paid_at is None and list(OutboxItem.scan()) == []


def test_an_order_is_created_at_maidan_and_answers_its_pay_params(aws, sandbox, wire):
    merchant = make_merchant(sandbox)

    created = new_order(sandbox)

    order = Order.get(created.order.out_trade_no)
    assert (order.channel, order.state, order.total, order.sub_mchid, order.payer_app_id) == \
        ("maidan", "NOTPAY", 880, merchant.sub_mchid, sandbox.config.wechat_app_id)
    assert created.pay_params["package"] == f"prepay_id={order.prepay_id}" and order.prepay_id.startswith("md")
    [sent] = [json.loads(r.content) for r in wire.requests if r.method == "POST" and r.url.path == "/maidan/v1/orders"]
    assert (sent["sp_mchid"], sent["sub_mchid"], sent["amount"]["total"], sent["payer"], sent["notify_url"]) == \
        (merchant.sp_mchid, merchant.sub_mchid, 880, {"openid": payer_openid(sandbox)}, NOTIFY_URL)
    assert order.upstream_trade_no == ledger_order(sandbox, order).order_id


def test_a_retried_create_of_one_attempt_makes_one_order(aws, sandbox):
    make_merchant(sandbox)

    first, second = new_order(sandbox), new_order(sandbox)

    assert first.order.out_trade_no == second.order.out_trade_no
    assert first.pay_params["package"] == second.pay_params["package"]  # each answer is signed afresh
    assert len(list(Order.by_merchant.query("m-1"))) == 1 and len(sandbox_maidan.ledger(sandbox).orders) == 1


def test_a_verified_notification_moves_the_order_to_paid_with_one_outbox_item(aws, sandbox, answers):
    make_merchant(sandbox)
    order = new_order(sandbox).order

    pay(order.out_trade_no)
    sandbox.notifier.deliver_due()

    assert answers == [(204, "")]
    paid = Order.get(order.out_trade_no)
    assert (paid.state, paid.settled_by, paid.open_shard) == ("SUCCESS", "notification", None)
    assert [item.item_id for item in OutboxItem.scan()] == [f"order_paid#{order.out_trade_no}"]


def test_a_duplicate_notification_is_acknowledged_and_changes_nothing(aws, sandbox, answers):
    make_merchant(sandbox)
    order = new_order(sandbox).order
    notification_id = pay(order.out_trade_no)
    sandbox.notifier.deliver_due()
    version = Order.get(order.out_trade_no).version

    duplicate = http.client().post(f"{CONTROLS}/notifications/{notification_id}/duplicate")

    assert duplicate.json()["status"] == 204 and answers == [(204, ""), (204, "")]
    assert Order.get(order.out_trade_no).version == version and len(list(OutboxItem.scan())) == 1


@pytest.mark.parametrize("forgery, status", [("bad_signature", 401), ("stale_timestamp", 401), ("wrong_amount", 400)])
def test_a_forged_stale_or_wrong_amount_notification_is_refused_and_changes_nothing(aws, sandbox, answers, forgery,
                                                                                   status):
    make_merchant(sandbox)
    order = new_order(sandbox).order

    forged = http.client().post(f"{CONTROLS}/orders/{order.out_trade_no}/forged-notification",
                                json={"forgery": forgery})

    assert forged.json()["status"] == status and json.loads(forged.json()["text"])["code"] == "FAIL"
    assert nothing_changed(order.out_trade_no)


def test_a_tampered_notification_is_refused_and_changes_nothing(aws, sandbox):
    make_merchant(sandbox)
    order = new_order(sandbox).order
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(order.out_trade_no)
    [pending] = sandbox.notifier.notifications.values()
    headers, body = pending.build()

    tampered = body.replace(b'"total":880', b'"total":1')

    assert tampered != body
    status, _, text = notifications.maidan_notification(headers, tampered)
    assert (status, json.loads(text)["code"]) == (401, "FAIL")
    assert nothing_changed(order.out_trade_no)


def test_a_genuine_notification_for_another_sub_merchant_is_refused_and_changes_nothing(aws, sandbox):
    make_merchant(sandbox)
    order = new_order(sandbox).order
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(order.out_trade_no)
    _, other = opened_sub_merchant(sandbox, skip=1)
    event = sandbox_maidan._event(sandbox, "TRANSACTION.SUCCESS", "order",
                                  {**ledger_order(sandbox, order).to_json(), "sub_mchid": other.sub_mchid})
    body = sandbox_maidan._dumps(event)

    status, _, text = notifications.maidan_notification(sandbox_maidan._signature_headers(sandbox, body), body)

    assert (status, json.loads(text)["code"]) == (400, "FAIL")
    assert nothing_changed(order.out_trade_no)


def test_a_paid_but_unnotified_order_is_settled_by_the_catch_up_sweep(aws, sandbox):
    make_merchant(sandbox)
    order = new_order(sandbox).order
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(order.out_trade_no)

    result = sweeps.sweep_open_orders(at=now() + 200)

    assert (result["examined"], result["paid"]) == (1, 1)
    paid = Order.get(order.out_trade_no)
    assert (paid.state, paid.settled_by, paid.open_shard) == ("SUCCESS", "query", None)
    assert len(list(OutboxItem.scan())) == 1


def test_an_expired_unpaid_order_is_closed_at_maidan_and_locally(aws, sandbox):
    make_merchant(sandbox)
    order = new_order(sandbox).order

    result = sweeps.sweep_open_orders(at=int(order.time_expire))

    assert result["closed"] == 1
    closed = Order.get(order.out_trade_no)
    assert (closed.state, closed.open_shard) == ("CLOSED", None)
    assert ledger_order(sandbox, order).trade_state == "CLOSED"
