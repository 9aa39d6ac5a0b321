"""B5: a paid order (and each refund) is POSTed to the provider's callback URL, signed, and
retried on its schedule until a 2xx; played on a virtual clock against the sandbox's receiver."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from chalicelib import providers
from chalicelib.errors import Conflict, InvalidField, NotFound
from chalicelib.models.base import now
from chalicelib.models.deliveries import Delivery
from chalicelib.models.orders import Order, Refund
from chalicelib.payments import deliveries
from chalicelib.upstream import http, provider_callback
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


def paid_order(account_id: str = ACCOUNT, number: str = "M00001CALLBACK000001", ssp_account_id=None,
               **source) -> Order:
    """A paid order; `source` may add sub_mchid, store_id, clerk_id, code_id (a store without
    a Store item has no one to message, so only the callback goes out)."""
    at = now()
    order = Order(out_trade_no=number, account_id=account_id, sp_mchid=SP_MCHID, merchant_id="m-1",
                  ssp_account_id=ssp_account_id, channel="official_direct", wallet="wechat", state="SUCCESS",
                  total=2500, created_at=at - 5, paid_at=at, created_key=f"{at:010d}#{number}",
                  upstream_trade_no="4200000001", **source)
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
    order = paid_order(sub_mchid="1900000101", store_id="s-1", clerk_id="c-1", code_id="code-1")
    receiver_of().down = True
    start = now()

    deliveries.fan_out(order, None, at=start)
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
    assert body["data"] == {  # the fields docs/callbacks.md lists for order.paid, from the order
        "object": "order", "out_trade_no": order.out_trade_no, "state": "SUCCESS", "channel": "official_direct",
        "wallet": "wechat", "total": 2500, "sp_mchid": SP_MCHID, "sub_mchid": "1900000101", "merchant_id": "m-1",
        "store_id": "s-1", "clerk_id": "c-1", "code_id": "code-1", "device_id": None,
        "upstream_trade_no": "4200000001", "created_at": order.created_at, "paid_at": order.paid_at}
    assert len({r["body"] for r in received}) == 1  # the body is fixed; only the timestamp changes
    assert len({r["headers"]["Cloudpay-Signature"] for r in received}) == len(received)


def test_a_replayed_callback_fails_the_receivers_timestamp_check(sandbox):
    secret = make_provider()
    order = paid_order()
    start = now()
    deliveries.fan_out(order, None, at=start)
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

    deliveries.fan_out(order, None, at=start)
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
    deliveries.fan_out(first, None)
    assert deliveries.views_for_order(first.out_trade_no, owner=True)["callbacks"] == []

    provider = providers.get(ACCOUNT, SP_MCHID)
    provider.update(actions=[type(provider).callback_url.set(RECEIVER_URL)])
    second = paid_order(number="M00001CALLBACK000002")
    start = now()
    deliveries.fan_out(second, None, at=start)

    delivery = callback(second.out_trade_no)
    assert (delivery.state, delivery.log[0].error, delivery.next_attempt_at) == \
        ("pending", "未设置回调密钥", start + 30)
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

    deliveries.fan_out(order, refund, at=at)
    deliveries.fan_out(order, refund, at=at)

    [request] = receiver_of().requests
    body = json.loads(request["body"])
    assert (body["type"], body["data"]["out_refund_no"], body["data"]["amount"]) == \
        ("refund.succeeded", "M00001R0001", 500)
    [view] = deliveries.views_for_order(order.out_trade_no, owner=True)["callbacks"]
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
    assert receiver_of().requests == [] and deliveries.views_for_order(order.out_trade_no, owner=True)["callbacks"] == []


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
        deliveries.fan_out(order, None)
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


def other_provider(sp_mchid: str, callback_url: str) -> None:
    """A second provider of the account whose callback URL is written as it is (no checks)."""
    providers.create(ACCOUNT, ACCOUNT, {"sp_mchid": sp_mchid, "name": "另一服务商"})
    providers.rotate_callback_secret(ACCOUNT, ACCOUNT, sp_mchid)
    provider = providers.get(ACCOUNT, sp_mchid)
    provider.update(actions=[type(provider).callback_url.set(callback_url)])


def test_a_callback_url_httpx_cannot_parse_is_a_failed_attempt_and_the_sweep_goes_on_to_the_others(sandbox):
    make_provider()
    other_provider("1900000002", "https://exa\u00admple.com/cb")
    good, bad = paid_order(number="M00001CALLBACK000001"), paid_order(number="M00001CALLBACK000002")
    bad.update(actions=[Order.sp_mchid.set("1900000002")])
    start = now()
    receiver_of().down = True
    deliveries.fan_out(good, None, at=start)
    deliveries.fan_out(bad, None, at=start)
    receiver_of().down = False

    swept = deliveries.sweep_due(at=start + 30)

    assert (swept["attempted"], swept["failed"]) == (2, 0)
    assert callback(good.out_trade_no).state == "delivered"
    broken = callback(bad.out_trade_no)
    assert (broken.state, broken.attempts, broken.next_attempt_at) == ("pending", 2, start + 30 + 60)
    assert [entry.error for entry in broken.log] == ["回调地址无效", "回调地址无效"]


def test_a_delivery_whose_attempt_raises_does_not_stop_the_sweep(sandbox, monkeypatch):
    make_provider()
    first, second = paid_order(number="M00001CALLBACK000001"), paid_order(number="M00001CALLBACK000002")
    start = now()
    receiver_of().down = True
    for order in (first, second):
        deliveries.fan_out(order, None, at=start)
    receiver_of().down = False
    real_attempt = deliveries.attempt

    def attempt_failing_on_the_first(delivery, at, manual=False):
        if delivery.out_trade_no == first.out_trade_no:
            raise RuntimeError("DynamoDB is having a moment")
        return real_attempt(delivery, at, manual)
    monkeypatch.setattr(deliveries, "attempt", attempt_failing_on_the_first)

    swept = deliveries.sweep_due(at=start + 30)

    assert (swept["attempted"], swept["failed"]) == (1, 1)
    assert (callback(first.out_trade_no).state, callback(second.out_trade_no).state) == ("pending", "delivered")


class TrickledAnswer(httpx.SyncByteStream):
    """An answer arriving a byte every 50 ms, 2 s in all."""

    def __iter__(self):
        for _ in range(40):
            time.sleep(0.05)
            yield b"x"


def test_a_receiver_that_trickles_its_answer_is_cut_at_the_attempt_deadline(monkeypatch):
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, stream=TrickledAnswer())))
    monkeypatch.setattr(http, "client", lambda: client)
    monkeypatch.setattr(provider_callback, "ATTEMPT_DEADLINE_SECONDS", 0.3, raising=False)
    started = time.monotonic()

    answer = provider_callback.post("https://hooks.example.com/cb", "s", "evt_1", b"{}", 1, check_addresses=False)

    assert time.monotonic() - started < 0.8
    assert answer.delivered and 3 <= len(answer.answer) <= 8 and answer.error is None


def test_a_receiver_that_trickles_its_status_line_is_cut_at_the_attempt_deadline(monkeypatch):
    """A real socket: the watchdog shuts it while httpx is still waiting for the headers."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve():
        connection, _ = listener.accept()
        connection.recv(65536)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 40:
            if done.wait(0.05):
                break
            try:
                connection.send(bytes([byte]))
            except OSError:
                break
        connection.close()
    server = threading.Thread(target=serve, daemon=True)
    server.start()
    client = httpx.Client()
    monkeypatch.setattr(http, "client", lambda: client)
    started = time.monotonic()
    try:
        answer = provider_callback.post(f"http://127.0.0.1:{listener.getsockname()[1]}/cb", "s", "evt_1", b"{}", 1,
                                        check_addresses=False, deadline_seconds=0.3)
    finally:
        done.set()
        server.join(2)
        listener.close()
        client.close()

    assert time.monotonic() - started < 0.8
    assert (answer.status, answer.error) == (None, "超时（0.3 秒内未应答）")


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/cb", "https://10.1.2.3/cb", "https://169.254.169.254/latest/meta-data", "https://[::1]/cb",
    "https://[fd00::1]/cb", "https://[::ffff:127.0.0.1]/cb", "https://localhost/cb", "https://api.localhost/cb",
    "https://2130706433/cb", "https://127.1/cb", "https://100.64.0.1/cb", "https://[::1", "https://exa\u00admple.com/cb",
    "https://hooks.example.com:99999/cb", "http://hooks.example.com/cb"])
def test_a_callback_url_to_this_machine_a_private_address_or_unparsable_is_refused_naming_it(monkeypatch, url):
    monkeypatch.setenv("CLOUDPAY_STAGE", "prod")

    with pytest.raises(InvalidField) as refused:
        providers.callback_url(url)

    assert refused.value.param == "callback_url"


def test_the_local_and_test_stages_accept_the_sandbox_on_this_machine_but_no_private_network():
    for url in ("http://127.0.0.1:8001/receiver/p1", "http://localhost:8001/receiver/p1", RECEIVER_URL,
                "https://hooks.example.com:8443/cb"):
        assert providers.callback_url(url) == url
    with pytest.raises(InvalidField):
        providers.callback_url("http://10.0.0.8/receiver/p1")


def test_an_unparsable_callback_url_is_a_400_naming_it_not_a_500(bound_console):
    answer = bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "P",
                                                          "callback_url": "https://[::1"})

    assert (answer.status, answer.error_code, answer.json["error"]["param"]) == (400, "invalid_field", "callback_url")


def test_a_callback_host_resolving_to_a_private_address_is_not_sent_and_a_public_one_is(sandbox, monkeypatch):
    make_provider()
    order = paid_order()
    monkeypatch.setenv("CLOUDPAY_STAGE", "dev")
    monkeypatch.setattr(provider_callback, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    start = now()

    deliveries.fan_out(order, None, at=start)

    refused = callback(order.out_trade_no)
    assert (refused.state, refused.log[0].status, refused.log[0].error) == \
        ("pending", None, "回调地址指向内网或保留地址，未发送")
    assert receiver_of().requests == []
    monkeypatch.setattr(provider_callback, "resolve", lambda host, port: ["93.184.216.34"])
    assert deliveries.sweep_due(at=start + 30)["attempted"] == 1
    assert callback(order.out_trade_no).state == "delivered" and len(receiver_of().requests) == 1


def test_a_resend_while_the_sweep_is_sending_is_refused_and_the_sweeps_outcome_is_kept(sandbox, monkeypatch):
    make_provider()
    order = paid_order()
    start = now()
    receiver_of().down = True
    deliveries.fan_out(order, None, at=start)
    receiver_of().down = False
    real_post, refusals = provider_callback.post, []

    def post_while_someone_presses_resend(*args, **kwargs):
        with pytest.raises(Conflict) as refused:
            deliveries.resend_callbacks(ACCOUNT, order.out_trade_no, at=start + 31)
        refusals.append((refused.value.status, refused.value.code))
        return real_post(*args, **kwargs)
    monkeypatch.setattr(provider_callback, "post", post_while_someone_presses_resend)

    assert deliveries.sweep_due(at=start + 30)["attempted"] == 1

    delivery = callback(order.out_trade_no)
    assert refusals == [(409, "attempt_in_progress")]
    assert (delivery.state, delivery.attempts, [entry.status for entry in delivery.log]) == ("delivered", 2, [503, 200])
    assert len(receiver_of().requests) == 2 and delivery.claimed_until is None


def test_an_attempt_that_outlived_its_claim_still_logs_what_happened(sandbox, monkeypatch):
    """The sweep's POST hangs past its claim; a re-send takes over and delivers; the sweep's
    503 arrives afterwards and is logged, without undoing the delivery."""
    make_provider()
    order = paid_order()
    start = now()
    receiver_of().down = True
    deliveries.fan_out(order, None, at=start)
    real_post = provider_callback.post
    late = start + 30 + deliveries.CLAIM_SECONDS + 1

    def post_that_outlives_its_claim(*args, **kwargs):
        monkeypatch.setattr(provider_callback, "post", real_post)
        receiver_of().down = False
        deliveries.resend_callbacks(ACCOUNT, order.out_trade_no, at=late)
        receiver_of().down = True
        return real_post(*args, **kwargs)
    monkeypatch.setattr(provider_callback, "post", post_that_outlives_its_claim)

    deliveries.sweep_due(at=start + 30)

    delivery = callback(order.out_trade_no)
    assert [(int(entry.at), entry.status) for entry in delivery.log] == [(start, 503), (late, 200), (start + 30, 503)]
    assert (delivery.state, delivery.delivered_at, delivery.attempts) == ("delivered", late, 3)


def test_the_callback_log_says_in_chinese_what_went_wrong(sandbox):
    make_provider()
    order = paid_order()
    start = now()
    receiver_of().down = True

    deliveries.fan_out(order, None, at=start)

    [entry] = deliveries.views_for_order(order.out_trade_no, owner=True)["callbacks"][0]["log"]
    assert (entry["status"], entry["error"], entry["answer"]) == (503, "对方返回 HTTP 503", "receiver is down")


def test_a_sub_service_provider_reads_the_callback_log_without_the_receivers_answer_or_errors(
        bound_console, console, phone, sandbox):
    owner = bound_console
    owner_id = owner.call("GET", "/v1/me").json["id"]
    assert owner.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "P", "callback_url": RECEIVER_URL}).status == 201
    owner.call("POST", f"/v1/providers/{SP_MCHID}/callback-secret")
    reseller = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(reseller.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    reseller_id = reseller.call("GET", "/v1/me").json["id"]
    assert owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", {
        "account_id": reseller_id, "name": "杭州渠道商", "admin_name": "王经理", "phone": "13800138000"}).status == 201
    merchant = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "渠道面馆",
                                                       "sub_service_provider": reseller_id}).json
    order = paid_order(account_id=owner_id, number=f"{merchant['order_prefix']}CALLBACK0001", ssp_account_id=reseller_id)
    order.update(actions=[Order.merchant_id.set(merchant["id"])])
    receiver_of().down = True
    deliveries.fan_out(order, None)

    theirs = reseller.call("GET", f"/v1/orders/{order.out_trade_no}")
    ours = owner.call("GET", f"/v1/orders/{order.out_trade_no}")

    assert theirs.status == 200 and ours.status == 200
    [entry] = theirs.json["callbacks"][0]["log"]
    assert (entry["status"], entry["answer"], entry["error"]) == (503, None, None) and entry["at"]
    assert theirs.json["callbacks"][0]["state"] == "pending" and theirs.json["callbacks"][0]["attempts"] == 1
    [entry] = ours.json["callbacks"][0]["log"]
    assert (entry["answer"], entry["error"]) == ("receiver is down", "对方返回 HTTP 503")


def test_the_verification_example_in_the_docs_accepts_a_real_callback_and_refuses_odd_headers(sandbox):
    secret = make_provider()
    order = paid_order()
    deliveries.fan_out(order, None)
    [request] = receiver_of().requests
    text = (Path(__file__).parents[1] / "docs" / "callbacks.md").read_text(encoding="utf-8")
    example = text.split("## Verifying a callback (Python)")[1].split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(example, "docs/callbacks.md", "exec"), namespace)  # noqa: S102 - the repository's own docs
    verify = namespace["verify_cloudpay_callback"]
    header, body = request["headers"]["Cloudpay-Signature"], request["body"].encode()

    assert verify(secret, header, body) is True
    assert verify("another secret", header, body) is False
    assert verify(secret, header.split(",v1=")[0] + ",v1=é" + "0" * 63, body) is False
