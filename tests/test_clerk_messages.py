"""B4: a payment tells the store's clerks by WeChat template message, once each, through the
in-process sandbox. Records are built with the models (not through the phone pages): what is
under test is who is told, how often, and what happens when WeChat fails."""
from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from chalicelib.models.base import now
from chalicelib.models.deliveries import Delivery
from chalicelib.models.orders import Order
from chalicelib.onecode.models import Staff, Store
from chalicelib.payments import deliveries, outbox
from chalicelib.upstream import wechat_token
from sandbox.wechat import sent_messages
from tests.environment import PARAMETERS

APP_ID = PARAMETERS["WechatAppId"]
ACCOUNT = "acct-owner"
STORE = "s-1"
_numbers = itertools.count(1)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def tokens_on_the_sandbox_clock(sandbox, monkeypatch):
    """A fresh token cache per test: the last test's sandbox issued the cached one."""
    monkeypatch.setattr(wechat_token, "tokens", wechat_token.AccessTokens(clock=sandbox.clock.now))


def make_store(notify_off_shift: bool = False, store_id: str = STORE) -> Store:
    at = now()
    store = Store(store_id=store_id, merchant_id="m-1", account_id=ACCOUNT, name="一号门店", notify_off_shift=notify_off_shift,
                  collection_code_id=f"code-{store_id}", created_at=at, created_key=f"{at:010d}#{store_id}",
                  updated_at=at)
    store.save()
    return store


def make_staff(sandbox, name: str, *, on_shift: bool = True, messages_on: bool = True, role: str = "clerk",
               activated: bool = True, store_id: str = STORE) -> Staff:
    user = sandbox.create_user(name, "NOT_OPENED")
    openid = user.openid(APP_ID)
    member = Staff(store_id=store_id, member_key=openid if activated else f"invite:{name}", staff_id=f"st-{name}",
                   merchant_id="m-1", account_id=ACCOUNT, role=role, name=name, openid=openid if activated else None,
                   messages_on=messages_on, on_shift=on_shift, invited_by="test", created_at=now())
    member.save()
    member.user_id = user.user_id
    return member


def paid_order(store_id: str = STORE, clerk_id: str | None = None, total: int = 1234) -> Order:
    at = now()
    number = f"M00001TEST{next(_numbers):06d}"
    order = Order(out_trade_no=number, account_id=ACCOUNT, sp_mchid="1900000001", merchant_id="m-1", store_id=store_id,
                  clerk_id=clerk_id, channel="official_direct", state="SUCCESS", total=total, created_at=at - 5,
                  paid_at=at, created_key=f"{at:010d}#{number}", source="clerk_code" if clerk_id else "store_code")
    order.save()
    return order


def told(sandbox) -> list[str]:
    """The sandbox users that received a payment message, in order."""
    return [m["user_id"] for m in sent_messages(sandbox) if m["template_id"] == "cp_sandbox_payment_received"]


@pytest.mark.parametrize("notify_off_shift", [False, True])
def test_a_store_code_payment_tells_exactly_the_staff_with_messages_on_and_on_shift_or_allowed_off_shift(
        sandbox, notify_off_shift):
    make_store(notify_off_shift=notify_off_shift)
    staff = {(on_shift, messages_on): make_staff(sandbox, f"c{int(on_shift)}{int(messages_on)}", on_shift=on_shift,
                                                 messages_on=messages_on)
             for on_shift in (True, False) for messages_on in (True, False)}
    manager = make_staff(sandbox, "manager", role="manager", on_shift=False)
    invited = make_staff(sandbox, "invited", activated=False)
    order = paid_order()

    deliveries.fan_out(order, None)

    expected = {member.user_id for (on_shift, messages_on), member in staff.items()
                if messages_on and (on_shift or notify_off_shift)}
    if notify_off_shift:
        expected.add(manager.user_id)
    assert sorted(told(sandbox)) == sorted(expected)
    assert invited.user_id not in told(sandbox)
    messages = deliveries.views_for_order(order.out_trade_no, owner=True)["messages"]
    assert {m["state"] for m in messages} == {"delivered"} and len(messages) == len(expected)
    first = next(m for m in sent_messages(sandbox) if m["user_id"] == staff[(True, True)].user_id)
    paid_in_beijing = datetime.fromtimestamp(order.paid_at, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert first["data"] == {"thing1": "一号门店", "amount2": "¥12.34", "time3": paid_in_beijing,
                             "character_string4": order.out_trade_no}
    assert first["url"] == f"http://h5.test/h5/orders/{order.out_trade_no}"


def test_a_clerk_code_payment_tells_only_that_clerk(sandbox):
    make_store()
    clerk, other = make_staff(sandbox, "own"), make_staff(sandbox, "other")
    make_staff(sandbox, "boss", role="manager")
    order = paid_order(clerk_id=clerk.staff_id)

    deliveries.fan_out(order, None)

    assert told(sandbox) == [clerk.user_id]
    [message] = deliveries.views_for_order(order.out_trade_no, owner=True)["messages"]
    assert (message["recipient_name"], message["state"], message["attempts"]) == ("own", "delivered", 1)
    assert other.user_id not in told(sandbox)


def test_a_clerk_code_payment_to_a_clerk_off_shift_tells_nobody_unless_the_store_allows_it(sandbox):
    make_store(notify_off_shift=False)
    clerk = make_staff(sandbox, "resting", on_shift=False)
    order = paid_order(clerk_id=clerk.staff_id)

    deliveries.fan_out(order, None)

    assert told(sandbox) == [] and deliveries.views_for_order(order.out_trade_no, owner=True)["messages"] == []


def test_duplicate_work_items_still_send_one_message_per_clerk(sandbox):
    make_store()
    clerks = [make_staff(sandbox, "a"), make_staff(sandbox, "b")]
    order = paid_order()
    item = outbox.order_paid_item(order, now())
    item.save()

    assert outbox.handle_item(item.item_id) == "done"
    item.refresh()
    item.update(actions=[type(item).done_at.remove()])  # redelivered as if the first run had crashed at the end
    assert outbox.handle_item(item.item_id) == "done"
    deliveries.fan_out(order, None)

    assert sorted(told(sandbox)) == sorted(c.user_id for c in clerks)
    assert sorted(d.delivery_id for d in Delivery.scan()) == sorted(
        deliveries.message_id(order.out_trade_no, c.staff_id) for c in clerks)
    assert [m["attempts"] for m in deliveries.views_for_order(order.out_trade_no, owner=True)["messages"]] == [1, 1]


def test_a_failing_template_call_is_retried_later_and_then_delivered_once(sandbox):
    make_store()
    clerk = make_staff(sandbox, "busy")
    order = paid_order()
    start = now()
    sandbox.faults.arm("wechat", "SYSTEM_ERROR", times=2)  # WeChat's "system busy", past the client's one retry

    deliveries.fan_out(order, None, at=start)

    delivery = Delivery.get(deliveries.message_id(order.out_trade_no, clerk.staff_id))
    assert (delivery.state, delivery.attempts, told(sandbox)) == ("pending", 1, [])
    assert delivery.next_attempt_at == start + deliveries.MESSAGE_RETRY_SECONDS[0]
    assert delivery.log[0].error == "微信接口暂时无法访问"
    assert deliveries.sweep_due(at=start + 59)["examined"] == 0

    assert deliveries.sweep_due(at=start + 60)["attempted"] == 1

    delivery.refresh()
    assert (delivery.state, delivery.attempts, delivery.delivered_at) == ("delivered", 2, start + 60)
    assert delivery.due_shard is None and told(sandbox) == [clerk.user_id]
    assert deliveries.sweep_due(at=start + 3600)["attempted"] == 0


def test_a_message_that_keeps_failing_gives_up_after_the_last_retry(sandbox):
    make_store()
    clerk = make_staff(sandbox, "unlucky")
    order = paid_order()
    start = now()
    sandbox.faults.arm("wechat", "RATE_LIMITED", times=len(deliveries.MESSAGE_RETRY_SECONDS) + 1)

    deliveries.fan_out(order, None, at=start)
    at = start
    for wait in deliveries.MESSAGE_RETRY_SECONDS:
        at += wait
        assert deliveries.sweep_due(at=at)["attempted"] == 1

    delivery = Delivery.get(deliveries.message_id(order.out_trade_no, clerk.staff_id))
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == ("failed", 6, None)
    assert [entry.at for entry in delivery.log] == list(itertools.accumulate((start, *deliveries.MESSAGE_RETRY_SECONDS)))
    assert told(sandbox) == []


def test_a_clerk_who_unsubscribed_fails_at_once_without_retries(sandbox):
    make_store()
    clerk = make_staff(sandbox, "gone")
    sandbox.users[clerk.user_id].subscribed = False
    order = paid_order()

    deliveries.fan_out(order, None)

    delivery = Delivery.get(deliveries.message_id(order.out_trade_no, clerk.staff_id))
    assert (delivery.state, delivery.attempts, delivery.due_shard) == ("failed", 1, None)
    assert delivery.log[0].error == "店员未关注公众号（43004）"


@pytest.mark.parametrize("change", ["messages_off", "clocked_out", "removed"])
def test_a_clerk_who_turned_messages_off_clocked_out_or_was_removed_before_the_retry_is_skipped(sandbox, change):
    make_store()
    clerk = make_staff(sandbox, "changed")
    order = paid_order()
    start = now()
    sandbox.faults.arm("wechat", "RATE_LIMITED")
    deliveries.fan_out(order, None, at=start)
    if change == "removed":
        clerk.delete()
    else:
        clerk.update(actions=[Staff.messages_on.set(False) if change == "messages_off" else Staff.on_shift.set(False)])

    assert deliveries.sweep_due(at=start + 60)["attempted"] == 1

    delivery = Delivery.get(deliveries.message_id(order.out_trade_no, clerk.staff_id))
    assert (delivery.state, delivery.attempts, delivery.due_shard) == ("skipped", 1, None)
    assert told(sandbox) == []


def test_no_openid_is_stored_in_a_delivery(sandbox):
    make_store()
    clerk = make_staff(sandbox, "private")
    order = paid_order()

    deliveries.fan_out(order, None)

    [stored] = [d.attribute_values for d in Delivery.scan()]
    assert stored["state"] == "delivered" and clerk.openid not in repr(stored)


def test_a_message_to_a_clerk_off_shift_carries_no_link_to_the_order_page_they_may_not_open(sandbox):
    make_store(notify_off_shift=True)
    resting, working = make_staff(sandbox, "resting", on_shift=False), make_staff(sandbox, "working")
    order = paid_order()

    deliveries.fan_out(order, None)

    sent = {m["user_id"]: m for m in sent_messages(sandbox)}
    assert set(sent) == {resting.user_id, working.user_id}
    assert "url" not in sent[resting.user_id] or not sent[resting.user_id]["url"]
    assert sent[resting.user_id]["data"]["character_string4"] == order.out_trade_no
    assert sent[working.user_id]["url"] == f"http://h5.test/h5/orders/{order.out_trade_no}"


def test_the_message_log_says_in_chinese_why_a_clerk_was_not_told(sandbox):
    make_store()
    resting, unfollowed = make_staff(sandbox, "resting"), make_staff(sandbox, "unfollowed")
    sandbox.users[unfollowed.user_id].subscribed = False
    to_resting, to_unfollowed = paid_order(clerk_id=resting.staff_id), paid_order(clerk_id=unfollowed.staff_id)
    start = now()
    sandbox.faults.arm("wechat", "RATE_LIMITED")
    deliveries.fan_out(to_resting, None, at=start)
    deliveries.fan_out(to_unfollowed, None, at=start)
    resting.update(actions=[Staff.on_shift.set(False)])

    deliveries.sweep_due(at=start + 60)

    def errors(order):
        [message] = deliveries.views_for_order(order.out_trade_no, owner=True)["messages"]
        return [entry["error"] for entry in message["log"]]
    assert errors(to_resting) == ["微信接口出错（45011）", "店员已下班"]
    assert errors(to_unfollowed) == ["店员未关注公众号（43004）"]
