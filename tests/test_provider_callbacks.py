"""B5: a paid order (and each refund) is POSTed to the provider's callback URL, signed, and
retried on its schedule until a 2xx; played on a virtual clock against the sandbox's receiver."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

from chalicelib import providers
from chalicelib.errors import InvalidField, NotFound
from chalicelib.models.base import now
from chalicelib.models.deliveries import Delivery
from chalicelib.models.orders import Order, Refund
from chalicelib.payments import deliveries, outbox
from sandbox.receiver import receiver
from tests import environment

ACCOUNT = "acct-owner"
SP_MCHID = "1900000001"
RECEIVER_URL = f"{environment.SANDBOX_ROOT}/receiver/p1"
HOUR = 3600


def make_provider(callback_url: str | None = RECEIVER_URL, account_id: str = ACCOUNT) -> str:
    """The provider, with its callback URL and a fresh secret; the secret."""
    providers.create(account_id, account_id, {"sp_mchid": SP_MCHID, "name": "演示服务商", "callback_url": callback_url})
    secret, _ = providers.rotate_callback_secret(account_id, account_id, SP_MCHID)
    return secret


def paid_order(account_id: str = ACCOUNT, number: str = "M00001CALLBACK000001", ssp_account_id=None) -> Order:
    at = now()
    order = Order(out_trade_no=number, account_id=account_id, sp_mchid=SP_MCHID, merchant_id="m-1",
                  ssp_account_id=ssp_account_id, store_id=None, channel="official_direct", wallet="wechat",
                  state="SUCCESS", total=2500, created_at=at - 5, paid_at=at, created_key=f"{at:010d}#{number}",
                  upstream_trade_no="4200000001")
    order.save()
    return order


def verified(secret: str, headers: dict, body: str, tolerance_seconds: int, now_at: int) -> bool:
    """What a receiver does, written independently of the app's code."""
    fields = dict(part.split("=", 1) for part in headers["Cloudpay-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(now_at - int(fields["t"])) <= tolerance_seconds


def callback(out_trade_no: str) -> Delivery:
    return Delivery.get(deliveries.callback_id("order.paid", out_trade_no), consistent_read=True)


def run_until_settled(out_trade_no: str, recover_at: int | None = None) -> Delivery:
    """Step the virtual clock from due time to due time, sweeping as the schedule would (and
    a second early, the first few times, to see nothing is tried before it is due); the
    receiver comes back up at `recover_at`."""
    down = receiver_of()
    steps = 0
    while (delivery := callback(out_trade_no)).state == "pending":
        due = int(delivery.next_attempt_at)
        steps += 1
        if steps <= 3:
            assert deliveries.sweep_due(at=due - 1)["attempted"] == 0
        if recover_at is not None and due >= recover_at:
            down.down = False
        assert deliveries.sweep_due(at=due)["attempted"] == 1
    return delivery


def receiver_of():
    return _world["sandbox"] and receiver(_world["sandbox"], "p1")


_world: dict = {}


@pytest.fixture(autouse=True)
def world(aws, sandbox, monkeypatch):
    """Two sweep shards (the fewest allowed): each sweep of the virtual clock is two queries, not four."""
    monkeypatch.setenv("ORDER_SWEEP_SHARDS", "2")
    _world["sandbox"] = sandbox
    yield sandbox
    _world.clear()


def test_a_receiver_down_for_twelve_hours_gets_the_callback_after_it_recovers_on_the_backoff_schedule(sandbox):
    secret = make_provider()
    order = paid_order()
    receiver_of().down = True
    start = now()

    deliveries.fan_out(outbox.order_paid_item(order, start), order, None, at=start)
    delivery = run_until_settled(order.out_trade_no, recover_at=start + 12 * HOUR)

    times = [int(entry.at) for entry in delivery.log]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert gaps == [min(30 * 2 ** n, HOUR) for n in range(len(gaps))]
    assert start + 12 * HOUR <= times[-1] < start + 13 * HOUR
    assert [int(entry.status) for entry in delivery.log] == [503] * (len(times) - 1) + [200]
    assert (delivery.state, delivery.delivered_at, delivery.due_shard) == ("delivered", times[-1], None)
    received = receiver_of().requests
    assert len(received) == len(times) and [r["status"] for r in received][-1] == 200
    for request, at in zip(received, times):
        assert verified(secret, request["headers"], request["body"], tolerance_seconds=300, now_at=at)
        assert not verified("another secret", request["headers"], request["body"], 300, at)
    body = json.loads(received[-1]["body"])
    assert body["type"] == "order.paid" and body["id"].startswith("evt_") and body["created_at"] == order.paid_at
    assert body["data"] | {} == body["data"] and (body["data"]["out_trade_no"], body["data"]["total"]) == \
        (order.out_trade_no, 2500)
    assert len({r["body"] for r in received}) == 1  # the body is fixed; only the timestamp changes
    assert len({r["headers"]["Cloudpay-Signature"] for r in received}) == len(received)


def test_a_replayed_callback_fails_the_receivers_timestamp_check(sandbox):
    secret = make_provider()
    order = paid_order()
    start = now()
    deliveries.fan_out(outbox.order_paid_item(order, start), order, None, at=start)
    [request] = receiver_of().requests

    assert verified(secret, request["headers"], request["body"], 300, now_at=start + 10)
    assert not verified(secret, request["headers"], request["body"], 300, now_at=start + 301)


def test_the_retries_of_a_callback_span_more_than_a_day_and_stop_at_forty_eight_hours():
    waits, total = [], 0
    while total + (wait := deliveries.retry_delay(deliveries.CALLBACK, len(waits) + 1)) <= 48 * HOUR:
        waits.append(wait)
        total += wait
    assert waits[:8] == [30, 60, 120, 240, 480, 960, 1920, 3600] and set(waits[7:]) == {3600}
    assert 47 * HOUR < total <= 48 * HOUR and len(waits) + 1 == 54


def test_a_callback_gives_up_after_forty_eight_hours_and_a_resend_delivers_it(sandbox):
    """The event happened 47.5 virtual hours ago: its retries run out within the half hour left."""
    make_provider()
    order = paid_order()
    receiver_of().down = True
    start = now() - 47 * HOUR - 1800

    deliveries.fan_out(outbox.order_paid_item(order, start), order, None, at=start)
    delivery = callback(order.out_trade_no)
    delivery.update(actions=[Delivery.next_attempt_at.set(now() - 600)])  # the sweep was away until now - 600 s
    delivery = run_until_settled(order.out_trade_no)

    times = [int(entry.at) for entry in delivery.log]
    gaps = [later - earlier for earlier, later in zip(times[1:], times[2:])]
    assert gaps == [min(30 * 2 ** n, HOUR) for n in range(1, len(gaps) + 1)]
    assert delivery.state == "failed" and delivery.finished_at == times[-1] and delivery.due_shard is None
    assert times[-1] <= start + 48 * HOUR < times[-1] + min(30 * 2 ** (len(times) - 1), HOUR)
    assert len(receiver_of().requests) == len(times)
    assert deliveries.sweep_due(at=start + 72 * HOUR)["examined"] == 0

    receiver_of().down = False
    views = deliveries.resend_callbacks(ACCOUNT, order.out_trade_no, at=start + 72 * HOUR)

    [view] = views["callbacks"]
    assert (view["state"], view["attempts"], view["delivered_at"]) == ("delivered", len(times) + 1, start + 72 * HOUR)
    assert view["log"][-1]["status"] == 200 and view["log"][-1]["latency_ms"] >= 0 and view["log"][-1]["answer"]


def test_no_callback_url_makes_no_callback_and_a_missing_secret_is_logged_and_retried(sandbox):
    providers.create(ACCOUNT, ACCOUNT, {"sp_mchid": SP_MCHID, "name": "P"})
    first = paid_order(number="M00001CALLBACK000001")
    deliveries.fan_out(outbox.order_paid_item(first, now()), first, None)
    assert deliveries.views_for_order(first.out_trade_no)["callbacks"] == []

    provider = providers.get(ACCOUNT, SP_MCHID)
    provider.update(actions=[type(provider).callback_url.set(RECEIVER_URL)])
    second = paid_order(number="M00001CALLBACK000002")
    start = now()
    deliveries.fan_out(outbox.order_paid_item(second, start), second, None, at=start)

    delivery = callback(second.out_trade_no)
    assert (delivery.state, delivery.log[0].error, delivery.next_attempt_at) == \
        ("pending", "the provider has no callback secret", start + 30)
    assert receiver_of().requests == []
    secret, _ = providers.rotate_callback_secret(ACCOUNT, ACCOUNT, SP_MCHID)
    assert deliveries.sweep_due(at=start + 30)["attempted"] == 1
    assert callback(second.out_trade_no).state == "delivered"
    [request] = receiver_of().requests
    assert verified(secret, request["headers"], request["body"], 300, start + 30)


def test_a_refund_is_called_back_as_its_own_event(sandbox):
    make_provider()
    order = paid_order()
    at = now()
    refund = Refund(out_refund_no="M00001R0001", out_trade_no=order.out_trade_no, account_id=ACCOUNT, sp_mchid=SP_MCHID,
                    merchant_id="m-1", amount=500, state="SUCCESS", created_at=at, succeeded_at=at,
                    created_key=f"{at:010d}#M00001R0001", channel="official_direct")
    refund.save()

    deliveries.fan_out(outbox.refund_succeeded_item(refund, at), order, refund, at=at)
    deliveries.fan_out(outbox.refund_succeeded_item(refund, at), order, refund, at=at)

    [request] = receiver_of().requests
    body = json.loads(request["body"])
    assert (body["type"], body["data"]["out_refund_no"], body["data"]["amount"]) == \
        ("refund.succeeded", "M00001R0001", 500)
    [view] = deliveries.views_for_order(order.out_trade_no)["callbacks"]
    assert (view["event"], view["out_refund_no"], view["state"]) == ("refund.succeeded", "M00001R0001", "delivered")


def test_an_http_callback_url_is_refused_outside_the_local_and_test_stages(monkeypatch):
    assert providers.callback_url("http://sandbox.test/receiver/p1") == "http://sandbox.test/receiver/p1"
    monkeypatch.setenv("CLOUDPAY_STAGE", "prod")
    with pytest.raises(InvalidField) as refused:
        providers.callback_url("http://example.com/hook")
    assert refused.value.param == "callback_url"
    assert providers.callback_url("https://example.com/hook") == "https://example.com/hook"


@pytest.mark.parametrize("other", ["acct-sub-service-provider", "acct-stranger"])
def test_a_sub_service_provider_or_a_stranger_can_neither_resend_nor_rotate(other):
    make_provider()
    order = paid_order(ssp_account_id="acct-sub-service-provider")

    with pytest.raises(NotFound) as not_found:
        deliveries.resend_callbacks(other, order.out_trade_no)
    assert not_found.value.param == "out_trade_no"
    with pytest.raises(NotFound):
        providers.rotate_callback_secret(other, other, SP_MCHID)
    assert receiver_of().requests == [] and deliveries.views_for_order(order.out_trade_no)["callbacks"] == []


def test_the_console_rotates_the_secret_shows_it_once_and_resends(bound_console, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    app_logger = logging.getLogger("cloudpay")
    app_logger.addHandler(caplog.handler)
    try:
        owner = bound_console.call("GET", "/v1/me").json["id"]
        assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "P",
                                                            "callback_url": RECEIVER_URL}).status == 201
        before = bound_console.call("GET", f"/v1/providers/{SP_MCHID}").json
        rotated = bound_console.call("POST", f"/v1/providers/{SP_MCHID}/callback-secret")
        again = bound_console.call("POST", f"/v1/providers/{SP_MCHID}/callback-secret")
        after = bound_console.call("GET", f"/v1/providers/{SP_MCHID}").json
        order = paid_order(account_id=owner, ssp_account_id="acct-sub-service-provider")
        receiver_of().down = True
        deliveries.fan_out(outbox.order_paid_item(order, now()), order, None)
        receiver_of().down = False
        resent = bound_console.call("POST", f"/v1/orders/{order.out_trade_no}/callbacks/resend")
        detail = bound_console.call("GET", f"/v1/orders/{order.out_trade_no}").json
    finally:
        app_logger.removeHandler(caplog.handler)

    assert before["callback_secret_set_at"] is None and rotated.status == 201
    secret = rotated.json["callback_secret"]
    assert secret.startswith("cbsec_") and again.json["callback_secret"] != secret
    assert after["callback_secret_set_at"] == again.json["set_at"]
    assert secret not in json.dumps(after) and again.json["callback_secret"] not in json.dumps(after)
    assert resent.status == 200 and [c["state"] for c in resent.json["callbacks"]] == ["delivered"]
    assert [entry["status"] for entry in resent.json["callbacks"][0]["log"]] == [503, 200]
    assert detail["callbacks"] == resent.json["callbacks"]
    [request] = [r for r in receiver_of().requests if r["status"] == 200]
    assert verified(again.json["callback_secret"], request["headers"], request["body"], 300, now())
    for value in (secret, again.json["callback_secret"]):
        assert value not in _every_stored_item() and value not in caplog.text
        assert not [record for record in caplog.records if value in repr(vars(record))]
    assert '"ciphertext"' in _every_stored_item() or "ciphertext" in _every_stored_item()


def _every_stored_item() -> str:
    """Every item of every table of the in-memory stack, as text."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    return repr([item.to_json() for table in dynamodb_backends[DEFAULT_ACCOUNT_ID][environment.REGION].tables.values()
                 for item in table.all_items()])
