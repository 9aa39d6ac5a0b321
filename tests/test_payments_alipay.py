"""P1/P2/P4/P5 on Alipay (alipay.trade.create with the merchant's app_auth_token), through the
in-process sandbox: the merchant authorizes the provider's ISV app as it would in real life
(link → Alipay's page → our callback's work), then customers pay its store code."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from chalicelib import alipay_authorization, providers
from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes as onecode_codes
from chalicelib.payments import errors, notifications, orders, sweeps
from chalicelib.payments.models import OutboxItem
from chalicelib.upstream import http
from sandbox import alipay as sandbox_alipay
from tests import environment

ACCOUNT = "acct-owner"
SP_MCHID = "1900000001"
NOTIFY_URL = f"{environment.PUBLIC_BASE_URL}/notify/alipay"
CONTROLS = f"{environment.SANDBOX_ROOT}/alipay/sandbox"


@pytest.fixture
def world_alipay(sandbox):
    return sandbox_alipay.state_of(sandbox)


@pytest.fixture
def answers(sandbox) -> list[str]:
    """What our notify URL answered each delivery, the sandbox's notifier calling it in-process."""
    answered: list[str] = []

    def deliver(url: str, headers: dict, body: bytes) -> tuple[int, str]:
        assert url == NOTIFY_URL
        status, _, text = notifications.alipay_notification(body)
        answered.append(text)
        return status, text
    sandbox.notifier.deliver = deliver
    return answered


def make_merchant(world_alipay, *, authorize: bool = True) -> SubMerchant:
    """A provider with its Alipay ISV app and a merchant that authorized it (as the first
    sandbox merchant PID) unless told not to."""
    isv = world_alipay.create_app()
    providers.create(ACCOUNT, ACCOUNT, {"sp_mchid": SP_MCHID, "name": "演示服务商", "alipay": {
        "app_id": isv.app_id, "private_key": isv.app_private_key_pem, "alipay_public_key": isv.alipay_public_key_pem}})
    at = now()
    SubMerchant(account_id=ACCOUNT, merchant_id="m-1", sp_mchid=SP_MCHID, provider_key=f"{ACCOUNT}#{SP_MCHID}",
                order_prefix="M00001", name="一号小店", channel="official_direct", source="manual", created_at=at,
                updated_at=at).save()
    if authorize:
        url = alipay_authorization.authorization_link(ACCOUNT, "m-1")["url"]
        back = http.client().get(f"{url}&{urlencode({'merchant': seller_pid(world_alipay)})}")
        alipay_authorization.complete_authorization(
            {name: values[0] for name, values in parse_qs(urlsplit(back.headers["location"]).query).items()})
    return SubMerchant.get(ACCOUNT, "m-1")


def seller_pid(world_alipay) -> str:
    return next(iter(world_alipay.merchants))


def buyer_id(world_alipay) -> str:
    """The buyer's 2088 user id, as the pay page's auth_base gives it."""
    return next(iter(world_alipay.buyers))


def new_order(world_alipay, attempt: str = "attempt-0000000000000001", amount: int = 1234) -> orders.CreatedOrder:
    code = onecode_codes.permanent_code(onecode_codes.STORE_COLLECTION, ACCOUNT, "m-1", store_id="s-1")
    code.save()
    return orders.create(code, orders.Payer(buyer_id(world_alipay)), amount, None, attempt, "alipay")


def pay(trade_no: str) -> None:
    answer = http.client().post(f"{CONTROLS}/trades/{trade_no}/pay", json={})
    assert answer.status_code == 200, answer.text


def sent_trade_creates(wire) -> list[dict]:
    """biz_content of every alipay.trade.create the app sent."""
    sent = []
    for request in wire.requests:
        params = dict(parse_qsl(request.url.query.decode())) | dict(parse_qsl(request.content.decode()))
        if params.get("method") == "alipay.trade.create":
            sent.append(params | {"biz_content": json.loads(params["biz_content"])})
    return sent


def genuine_form(world_alipay, trade_no: str, **changes) -> bytes:
    """The trade's notification as Alipay signs it (its own key), with `changes` signed in."""
    trade = world_alipay.trade(trade_no)
    _, body = world_alipay.signed_form({**world_alipay.notification_params(trade), **changes})
    return body


def nothing_changed(out_trade_no: str) -> bool:
    order = Order.get(out_trade_no)
    return order.state == "NOTPAY" and order.paid_at is None and list(OutboxItem.scan()) == []


def test_an_order_is_created_with_the_merchants_token_buyer_and_seller_and_answers_the_trade_no(
        aws, sandbox, world_alipay, wire):
    merchant = make_merchant(world_alipay)

    created = new_order(world_alipay)

    order = Order.get(created.order.out_trade_no)
    assert (order.channel, order.wallet, order.state, order.total, order.sub_mchid) == \
        ("alipay", "alipay", "NOTPAY", 1234, None)
    assert created.pay_params == {"tradeNO": order.upstream_trade_no}
    [sent] = sent_trade_creates(wire)
    token = alipay_authorization.payment_credentials(merchant).app_auth_token
    assert sent["app_auth_token"] == token and sent["notify_url"] == NOTIFY_URL
    assert (sent["biz_content"]["buyer_id"], sent["biz_content"]["seller_id"], sent["biz_content"]["total_amount"]) \
        == (buyer_id(world_alipay), merchant.alipay.user_id, "12.34")
    assert world_alipay.trade(order.upstream_trade_no).merchant.user_id == seller_pid(world_alipay)


def test_a_retried_create_of_one_attempt_makes_one_order_and_one_trade(aws, sandbox, world_alipay):
    make_merchant(world_alipay)

    first, second = new_order(world_alipay), new_order(world_alipay)

    assert first.order.out_trade_no == second.order.out_trade_no and first.pay_params == second.pay_params
    assert len(list(Order.by_merchant.query("m-1"))) == 1 and len(world_alipay.trades) == 1


def test_a_merchant_without_alipay_authorization_is_refused_and_nothing_is_sent(aws, sandbox, world_alipay, wire):
    make_merchant(world_alipay, authorize=False)
    sent_before = len(wire.requests)

    with pytest.raises(errors.PaymentRefused) as refused:
        new_order(world_alipay)

    assert (refused.value.code, refused.value.param) == (errors.ALIPAY_NOT_AUTHORIZED, "alipay_authorization")
    assert len(wire.requests) == sent_before and world_alipay.trades == {}
    assert list(Order.by_merchant.query("m-1")) == []


def test_a_verified_notification_moves_the_order_to_paid_with_one_outbox_item(aws, sandbox, world_alipay, answers):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order

    pay(order.upstream_trade_no)
    sandbox.notifier.deliver_due()

    assert answers == ["success"]
    paid = Order.get(order.out_trade_no)
    assert (paid.state, paid.settled_by, paid.open_shard, paid.upstream_trade_no) == \
        ("SUCCESS", "notification", None, order.upstream_trade_no)
    assert [item.item_id for item in OutboxItem.scan()] == [f"order_paid#{order.out_trade_no}"]


def test_a_duplicate_notification_answers_success_and_changes_nothing(aws, sandbox, world_alipay, answers):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    pay(order.upstream_trade_no)
    [delivered] = sandbox.notifier.deliver_due()
    version = Order.get(order.out_trade_no).version

    duplicate = http.client().post(f"{CONTROLS}/notifications/{delivered.notification_id}/duplicate")

    assert duplicate.json()["text"] == "success" and answers == ["success", "success"]
    assert Order.get(order.out_trade_no).version == version and len(list(OutboxItem.scan())) == 1


def test_a_notification_signed_with_another_key_answers_fail_and_changes_nothing(aws, sandbox, world_alipay, answers):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    pay(order.upstream_trade_no)  # its genuine notification is not delivered

    forged = http.client().post(f"{CONTROLS}/notifications/forged",
                                json={"url": NOTIFY_URL, "trade_no": order.upstream_trade_no})

    assert forged.json() == {"status": 200, "text": "fail"} and answers == ["fail"]
    assert nothing_changed(order.out_trade_no)


@pytest.mark.parametrize("bad", ["tampered_amount", "wrong_amount", "wrong_app_id", "wrong_seller", "unsigned"])
def test_a_tampered_or_mismatched_notification_answers_fail_and_changes_nothing(aws, sandbox, world_alipay, bad):
    make_merchant(world_alipay)
    order = new_order(world_alipay, amount=500).order
    pay(order.upstream_trade_no)
    other_seller = list(world_alipay.merchants)[1]
    if bad == "tampered_amount":  # signed for 5.00, then changed on the way
        body = genuine_form(world_alipay, order.upstream_trade_no).replace(b"total_amount=5.00",
                                                                           b"total_amount=0.01")
    elif bad == "unsigned":
        body = urlencode({k: v for k, v in parse_qsl(genuine_form(world_alipay, order.upstream_trade_no).decode())
                          if k != "sign"}).encode()
    else:
        body = genuine_form(world_alipay, order.upstream_trade_no, **{
            "wrong_amount": {"total_amount": "0.01"}, "wrong_app_id": {"app_id": "2021000000000000"},
            "wrong_seller": {"seller_id": other_seller}}[bad])

    assert notifications.alipay_notification(body) == notifications.ALIPAY_FAIL
    assert nothing_changed(order.out_trade_no)


def test_a_notification_for_an_order_that_is_not_ours_answers_fail(aws, sandbox, world_alipay):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    pay(order.upstream_trade_no)

    body = genuine_form(world_alipay, order.upstream_trade_no, out_trade_no="M00001NOSUCHORDER")

    assert notifications.alipay_notification(body) == notifications.ALIPAY_FAIL
    assert nothing_changed(order.out_trade_no)


def test_a_paid_but_unnotified_order_is_settled_by_the_catch_up_sweep(aws, sandbox, world_alipay):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    sandbox.notifier.deliver = lambda url, headers, body: (500, "")
    pay(order.upstream_trade_no)

    result = sweeps.sweep_open_orders(at=now() + 200)

    assert (result["examined"], result["paid"]) == (1, 1)
    paid = Order.get(order.out_trade_no)
    assert (paid.state, paid.settled_by, paid.open_shard) == ("SUCCESS", "query", None)
    assert len(list(OutboxItem.scan())) == 1
    assert sweeps.sweep_open_orders(at=now() + 400)["examined"] == 0


def test_an_expired_unpaid_order_is_closed_at_alipay_and_locally(aws, sandbox, world_alipay):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    expire = int(order.time_expire)

    result = sweeps.sweep_open_orders(at=expire)

    assert result["closed"] == 1
    closed = Order.get(order.out_trade_no)
    assert (closed.state, closed.open_shard, closed.check_at) == ("CLOSED", None, None)
    assert world_alipay.trade(order.upstream_trade_no).status == "TRADE_CLOSED"


def test_an_order_alipay_itself_closed_at_expiry_is_closed_locally(aws, sandbox, world_alipay):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    expire = int(order.time_expire)
    sandbox.clock.advance(expire - now() + 1)  # Alipay's clock passes time_expire too: it closed the trade

    result = sweeps.sweep_open_orders(at=expire)

    assert (result["closed"], result["failed"]) == (1, 0)
    closed = Order.get(order.out_trade_no)
    assert (closed.state, closed.open_shard) == ("CLOSED", None)
    assert sweeps.sweep_open_orders(at=expire + 600)["examined"] == 0


def test_an_order_whose_payment_alipay_refused_is_closed_locally_before_its_expiry(aws, sandbox, world_alipay):
    make_merchant(world_alipay)
    order = new_order(world_alipay).order
    world_alipay.pay(order.upstream_trade_no, fault="PAYER_ERROR")

    result = sweeps.sweep_open_orders(at=now() + 200)

    assert (result["closed"], result["failed"]) == (1, 0)
    assert Order.get(order.out_trade_no).state == "CLOSED"
