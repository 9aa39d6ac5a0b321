"""B4 clerk messages and B5 provider callbacks: what a payment (or a refund) tells the people
and systems that wait for it, each at least once, each recorded attempt by attempt.

`fan_out` (a step of the outbox follow-up, run once or many times per item) creates one
delivery per recipient with `does_not_exist` and makes the first attempt of those never
tried; `sweep_due` (scheduled) makes the later ones, from the sparse `deliveries-due` index.
Each attempt is claimed first (a write conditional on the number of attempts seen and on no
live claim), so the sweep, the follow-up and a manual re-send never make one attempt twice or
at once; whatever goes wrong inside an attempt is recorded as a failed attempt, never raised.

Clerk messages retry a handful of times over about half an hour (a payment notice that
arrives later than that is noise); callbacks double their wait from 30 s up to an hour and
give up 48 hours after the event, so a receiver down for a day still gets every event.
"""
from __future__ import annotations

import base64
import hashlib
import json

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.expressions.condition import size

from chalicelib import beijing, providers, settings
from chalicelib.errors import Conflict, NotFound
from chalicelib.log import logger
from chalicelib.models.base import condition_failed, now
from chalicelib.models.deliveries import Attempt, Delivery
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.onecode.models import Staff, Store
from chalicelib.payments import amounts, queries
from chalicelib.payments.sweep_shards import SweepDeadline, shard_of
from chalicelib.upstream import provider_callback, wechat_message
from chalicelib.upstream.http import UpstreamUnavailable
from chalicelib.upstream.wechat_api import WechatApiError

CALLBACK, CLERK_MESSAGE = "callback", "clerk_message"
ORDER_PAID_EVENT, REFUND_SUCCEEDED_EVENT = "order.paid", "refund.succeeded"
PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"

CALLBACK_FIRST_RETRY_SECONDS = 30
CALLBACK_MAX_RETRY_SECONDS = 3600
CALLBACK_GIVE_UP_SECONDS = 48 * 3600
"""Retries stop once the next one would fall this long after the event."""
MESSAGE_RETRY_SECONDS = (60, 120, 300, 600, 900)
"""The waits before a message's 2nd..6th attempt (33 minutes in all); then it has failed."""
CLAIM_SECONDS = 120
"""How long a claimed attempt keeps others off the delivery (a crashed attempt is tried again
after this); far longer than an attempt may take (provider_callback's deadline)."""
LOG_LIMIT = 100
"""Attempts kept per delivery (48 hours of callback retries make about 55; re-sends add more):
past it, the oldest go."""
SUMMARY_TEXT_CHARS = 20
"""WeChat's `thing` keywords take at most 20 characters."""
ORDER_PAYLOAD_FIELDS = ("object", "out_trade_no", "state", "channel", "wallet", "total", "sp_mchid", "sub_mchid",
                        "merchant_id", "store_id", "clerk_id", "code_id", "device_id", "upstream_trade_no",
                        "created_at", "paid_at")
REFUND_PAYLOAD_FIELDS = ("object", "out_refund_no", "out_trade_no", "amount", "state", "channel", "sp_mchid",
                         "merchant_id", "store_id", "clerk_id", "created_at", "succeeded_at")
"""A callback's `data`: these fields of the console's order or refund view (docs/callbacks.md
lists them), so a field added to a view for the console reaches no receiver unannounced."""


def retry_delay(kind: str, attempts: int) -> int | None:
    """Seconds to wait after the `attempts`-th try before the next; None: no more tries."""
    if kind == CALLBACK:
        return min(CALLBACK_FIRST_RETRY_SECONDS * 2 ** (attempts - 1), CALLBACK_MAX_RETRY_SECONDS)
    return MESSAGE_RETRY_SECONDS[attempts - 1] if attempts <= len(MESSAGE_RETRY_SECONDS) else None


# --- fan-out ------------------------------------------------------------------------------------


def fan_out(order: Order, refund: Refund | None, at: int | None = None) -> None:
    """The outbox step: create the deliveries of a payment (`refund` None) or of a refund once
    each, and try the untried ones.

    A payment: one message per clerk who is to be told now (B4) and the provider's callback;
    a refund: the callback. Failed sends do not raise (their delivery retries on its own
    schedule); a failing write does, so the queue retries the whole item."""
    at = now() if at is None else at
    if refund is None:
        store, staff = recipients(order)
        planned = [_message(order, store, member, at) for member in staff]
        planned.append(_callback(order.account_id, order.sp_mchid, order.out_trade_no, None, ORDER_PAID_EVENT,
                                 order_data(order), int(order.paid_at or at), at))
    else:
        planned = [_callback(refund.account_id, refund.sp_mchid, refund.out_trade_no, refund.out_refund_no,
                             REFUND_SUCCEEDED_EVENT, refund_data(refund), int(refund.succeeded_at or at), at)]
    for delivery in planned:
        if delivery is None:
            continue
        _create(delivery)
        current = Delivery.get(delivery.delivery_id, consistent_read=True)
        if current.state == PENDING and current.attempts == 0:
            attempt(current, at)


def recipients(order: Order) -> tuple[Store | None, list[Staff]]:
    """Who is told of a payment now: for a clerk's code only that clerk, for a store's code
    every activated clerk and manager of the store; each with messages on, and on shift
    unless the store wants its staff told off shift too."""
    if not order.store_id:
        return None, []
    try:
        store = Store.get(order.store_id, consistent_read=True)
    except DoesNotExist:
        return None, []
    staff = list(Staff.query(order.store_id, consistent_read=True))
    if order.clerk_id:
        staff = [member for member in staff if member.staff_id == order.clerk_id]
    return store, [member for member in staff if _to_be_told(member, store)]


def _to_be_told(member: Staff, store: Store) -> bool:
    return bool(member.openid) and bool(member.messages_on) and (bool(member.on_shift) or bool(store.notify_off_shift))


def message_id(out_trade_no: str, staff_id: str) -> str:
    return f"message#{out_trade_no}#{staff_id}"


def callback_id(event: str, number: str) -> str:
    return f"callback#{event}#{number}"


def _message(order: Order, store: Store, staff: Staff, at: int) -> Delivery:
    data = {"thing1": store.name[:SUMMARY_TEXT_CHARS], "amount2": f"¥{amounts.format_yuan(int(order.total))}",
            "time3": beijing.date_time(order.paid_at or at), "character_string4": order.out_trade_no}
    return Delivery(delivery_id=message_id(order.out_trade_no, staff.staff_id), kind=CLERK_MESSAGE,
                    event=ORDER_PAID_EVENT, account_id=order.account_id, out_trade_no=order.out_trade_no,
                    store_id=order.store_id, staff_id=staff.staff_id, payload=json.dumps(data, ensure_ascii=False),
                    state=PENDING, attempts=0, created_at=at)


def _callback(account_id: str, sp_mchid: str, out_trade_no: str, out_refund_no: str | None, event: str,
              data: dict, event_at: int, at: int) -> Delivery | None:
    """The provider's callback, or None when the provider has no callback URL (it has not
    asked for callbacks; one set later receives the events from then on, or a re-send)."""
    try:
        provider = Provider.get(account_id, sp_mchid)
    except DoesNotExist:
        return None
    if not provider.callback_url:
        return None
    delivery_id = callback_id(event, out_refund_no or out_trade_no)
    body = {"id": event_id(delivery_id), "type": event, "created_at": event_at, "data": data}
    return Delivery(delivery_id=delivery_id, kind=CALLBACK, event=event, account_id=account_id,
                    out_trade_no=out_trade_no, out_refund_no=out_refund_no, sp_mchid=sp_mchid,
                    payload=json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True),
                    state=PENDING, attempts=0, created_at=at)


def event_id(delivery_id: str) -> str:
    """Stable per event, so a receiver can drop the copies that retries and re-sends bring."""
    digest = hashlib.sha256(delivery_id.encode()).digest()
    return "evt_" + base64.b32encode(digest).decode().lower().rstrip("=")[:26]


def order_data(order: Order) -> dict:
    view = queries.order_view(order)
    return {name: view[name] for name in ORDER_PAYLOAD_FIELDS}


def refund_data(refund: Refund) -> dict:
    view = queries.refund_view(refund)
    return {name: view[name] for name in REFUND_PAYLOAD_FIELDS}


def _create(delivery: Delivery) -> None:
    try:
        delivery.save(condition=Delivery.delivery_id.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise


# --- attempts -----------------------------------------------------------------------------------


def attempt(delivery: Delivery, at: int, manual: bool = False) -> bool:
    """One try of `delivery` at `at`; False when another worker claimed it first.

    `manual` (a re-send): one more try whatever the state; success delivers it, failure
    leaves its state and schedule as they were."""
    seen = int(delivery.attempts)
    if delivery.kind == CLERK_MESSAGE:
        staff, reason = _recipient_now(delivery)
        if staff is None:
            return _skip(delivery, seen, at, reason)
    if not _claim(delivery, seen, at, manual):
        return False
    try:
        if delivery.kind == CLERK_MESSAGE:
            entry, outcome = _send_message(delivery, staff, at)
        else:
            entry, outcome = _send_callback(delivery, at)
    except Exception as exc:  # noqa: BLE001 - a bad URL, KMS, DynamoDB: a failed try, on the schedule
        logger.exception("delivery attempt failed unexpectedly", extra={"delivery_id": delivery.delivery_id})
        entry, outcome = {"at": at, "error": f"发送出错（{type(exc).__name__}）"}, RETRY
    _record(delivery, seen + 1, at, entry, outcome, manual)
    return True


def claimed(delivery: Delivery, at: int) -> bool:
    """Whether an attempt of `delivery` is under way (claimed and not yet recorded) at `at`."""
    return delivery.claimed_until is not None and int(delivery.claimed_until) > at


def _claim(delivery: Delivery, seen: int, at: int, manual: bool) -> bool:
    actions = [Delivery.attempts.set(seen + 1), Delivery.claimed_until.set(at + CLAIM_SECONDS)]
    if delivery.state == PENDING and not manual:
        actions += [Delivery.next_attempt_at.set(at + CLAIM_SECONDS),
                    Delivery.due_shard.set(shard_of(delivery.delivery_id))]
    try:
        delivery.update(actions=actions, condition=(Delivery.attempts == seen) & (
            Delivery.claimed_until.does_not_exist() | (Delivery.claimed_until <= at)))
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


RETRY, GIVE_UP = "retry", "give_up"


def _appended(entry: dict):
    """The action adding `entry` at the end of the stored log (list_append, never the log as
    read: another attempt's entry written meanwhile stays)."""
    return Delivery.log.set((Delivery.log | []).append([Attempt(**entry)]))


def _trim_log(delivery: Delivery) -> None:
    """Drop the oldest entries past LOG_LIMIT from the log as just written (`delivery` holds
    it: an update answers the item as stored); skipped when an entry came meanwhile (the
    next write trims), so two trims never drop one entry too many."""
    excess = len(delivery.log) - LOG_LIMIT
    if excess <= 0:
        return
    try:
        delivery.update(actions=[Delivery.log[index].remove() for index in range(excess)],
                        condition=size(Delivery.log) == len(delivery.log))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def _record(delivery: Delivery, number: int, at: int, entry: dict, outcome: str, manual: bool) -> None:
    """Write the try's log entry and what follows from it. A claim lost meanwhile (it lapsed
    and another attempt took over) still gets its entry, and a delivery, though nothing else."""
    actions = [_appended(entry), Delivery.claimed_until.remove()]
    if outcome == DELIVERED:
        actions += [Delivery.state.set(DELIVERED), Delivery.delivered_at.set(at), Delivery.finished_at.set(at),
                    Delivery.next_attempt_at.remove(), Delivery.due_shard.remove()]
    elif manual:
        pass  # a failed re-send changes neither the state nor the schedule
    elif outcome == RETRY and (next_at := _next_attempt(delivery, number, at)) is not None:
        actions += [Delivery.next_attempt_at.set(next_at), Delivery.due_shard.set(shard_of(delivery.delivery_id))]
    else:
        actions += [Delivery.state.set(FAILED), Delivery.finished_at.set(at), Delivery.next_attempt_at.remove(),
                    Delivery.due_shard.remove()]
    try:
        delivery.update(actions=actions, condition=Delivery.attempts == number)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        logger.warning("delivery attempt outlived its claim", extra={"delivery_id": delivery.delivery_id})
        _record_late(delivery, at, entry, outcome)
        return
    _trim_log(delivery)
    logger.info("delivery attempted", extra={"delivery_id": delivery.delivery_id, "attempt": number,
                                             "status": entry.get("status"), "outcome": outcome})


def _record_late(delivery: Delivery, at: int, entry: dict, outcome: str) -> None:
    """The entry of an attempt whose claim was lost, appended as it happened; a 2xx it got
    delivers the delivery (the receiver has the event), a failure changes nothing else. A delivery gone
    meanwhile gets nothing written."""
    actions = [_appended(entry)]
    if outcome == DELIVERED:
        actions += [Delivery.state.set(DELIVERED), Delivery.delivered_at.set(at), Delivery.finished_at.set(at),
                    Delivery.next_attempt_at.remove(), Delivery.due_shard.remove()]
    try:
        delivery.update(actions=actions, condition=Delivery.delivery_id.exists())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        return
    _trim_log(delivery)


def _next_attempt(delivery: Delivery, number: int, at: int) -> int | None:
    delay = retry_delay(delivery.kind, number)
    if delay is None:
        return None
    if delivery.kind == CALLBACK and at + delay > int(delivery.created_at) + CALLBACK_GIVE_UP_SECONDS:
        return None
    return at + delay


def _skip(delivery: Delivery, seen: int, at: int, reason: str) -> bool:
    try:
        delivery.update(actions=[Delivery.state.set(SKIPPED), Delivery.finished_at.set(at),
                                 _appended({"at": at, "error": reason}), Delivery.next_attempt_at.remove(),
                                 Delivery.due_shard.remove()],
                        condition=(Delivery.attempts == seen) & (Delivery.state == PENDING))
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise
    _trim_log(delivery)
    return True


def _recipient_now(delivery: Delivery) -> tuple[Staff | None, str]:
    """The clerk as they are now, or why they are no longer to be told."""
    try:
        store = Store.get(delivery.store_id, consistent_read=True)
    except DoesNotExist:
        return None, "门店已删除"
    member = next((m for m in Staff.query(delivery.store_id, consistent_read=True)
                   if m.staff_id == delivery.staff_id), None)
    if member is None or not member.openid:
        return None, "店员已被移除"
    if not member.messages_on:
        return None, "店员已关闭收款消息"
    if not (member.on_shift or store.notify_off_shift):
        return None, "店员已下班"
    return member, ""


def _send_message(delivery: Delivery, staff: Staff, at: int) -> tuple[dict, str]:
    """A template message from the platform's official account; the client_msg_id is the
    delivery's, so WeChat drops a repeat of a try whose answer was lost.

    It links to the order's phone page only for a clerk on shift: off shift that page answers
    "clerk off shift", and the message already says store, amount, time and number."""
    client_msg_id = "cp" + hashlib.sha256(delivery.delivery_id.encode()).hexdigest()[:30]
    url = f"{settings.current().public_base_url}/h5/orders/{delivery.out_trade_no}" if staff.on_shift else None
    try:
        msgid = wechat_message.send_template(staff.openid, settings.current().wechat_payment_template_id,
                                             json.loads(delivery.payload), client_msg_id=client_msg_id, url=url)
    except wechat_message.RecipientNotSubscribed as exc:
        return {"at": at, "error": f"店员未关注公众号（{exc.errcode}）"}, GIVE_UP
    except wechat_message.InvalidRecipient as exc:
        return {"at": at, "error": f"店员的微信身份无效（{exc.errcode}）"}, GIVE_UP
    except WechatApiError as exc:
        logger.warning("template message refused", extra={"delivery_id": delivery.delivery_id,
                                                          "errcode": exc.errcode, "errmsg": exc.errmsg})
        return {"at": at, "error": f"微信接口出错（{exc.errcode}）"}, RETRY
    except UpstreamUnavailable as exc:
        logger.warning("template message unavailable", extra={"delivery_id": delivery.delivery_id,
                                                              "detail": exc.detail})
        return {"at": at, "error": "微信接口暂时无法访问"}, RETRY
    return {"at": at, "status": 200, "answer": f"msgid {msgid}"}, DELIVERED


def _send_callback(delivery: Delivery, at: int) -> tuple[dict, str]:
    """The signed POST to the provider's URL as it is now, with a fresh timestamp. No URL or
    no secret is a try that could not be made: logged, and retried on the schedule."""
    try:
        provider = Provider.get(delivery.account_id, delivery.sp_mchid)
    except DoesNotExist:
        return {"at": at, "error": "服务商已删除"}, GIVE_UP
    if not provider.callback_url:
        return {"at": at, "error": "未设置回调地址"}, RETRY
    if providers.CALLBACK_SECRET not in providers.mapping(provider.secrets):
        return {"at": at, "error": "未设置回调密钥"}, RETRY
    secret = providers.secret(provider, providers.CALLBACK_SECRET)
    answer = provider_callback.post(provider.callback_url, secret, json.loads(delivery.payload)["id"],
                                    delivery.payload.encode(), at,
                                    check_addresses=not providers.local_receivers_allowed())
    entry = {"at": at, "status": answer.status, "latency_ms": answer.latency_ms, "answer": answer.answer,
             "error": answer.error}
    return entry, DELIVERED if answer.delivered else RETRY


# --- the sweep, re-sends and views ---------------------------------------------------------------


def sweep_due(at: int | None = None) -> dict:
    """Try every pending delivery whose next attempt is due, shard by shard, for at most
    sweep_shards.SWEEP_BUDGET_SECONDS of real time."""
    at = now() if at is None else at
    deadline = SweepDeadline()
    examined = attempted = failed = 0
    for shard in range(settings.current().order_sweep_shards):
        for key in Delivery.due.query(str(shard), Delivery.next_attempt_at <= at):
            if deadline.passed():
                return {"examined": examined, "attempted": attempted, "failed": failed, "out_of_time": True}
            examined += 1
            try:
                delivery = Delivery.get(key.delivery_id, consistent_read=True)
            except DoesNotExist:
                continue
            if delivery.state != PENDING or delivery.next_attempt_at is None or delivery.next_attempt_at > at:
                continue
            try:
                attempted += attempt(delivery, at)
            except Exception:  # noqa: BLE001 - one delivery's failing write must not starve the others
                failed += 1
                logger.exception("delivery sweep: attempt failed", extra={"delivery_id": delivery.delivery_id})
    return {"examined": examined, "attempted": attempted, "failed": failed, "out_of_time": False}


def resend_callbacks(account_id: str, out_trade_no: str, at: int | None = None) -> dict:
    """One try now of each callback of the order and its refunds (delivered or failed ones
    too), creating those its provider had no callback URL for when they happened.

    Refused (409) while an attempt of one of them is under way: a re-send taking over a live
    claim would send the event twice at once and lose the other attempt's outcome."""
    at = now() if at is None else at
    try:
        order = Order.get(out_trade_no, consistent_read=True)
    except DoesNotExist:
        order = None
    if order is None or order.account_id != account_id:
        raise NotFound("no such order", param="out_trade_no")
    if order.state == "SUCCESS":
        _create_missing(_callback(order.account_id, order.sp_mchid, order.out_trade_no, None, ORDER_PAID_EVENT,
                                  order_data(order), int(order.paid_at or at), at))
        for refund in Refund.by_order.query(out_trade_no):
            if refund.state == "SUCCESS":
                _create_missing(_callback(refund.account_id, refund.sp_mchid, refund.out_trade_no,
                                          refund.out_refund_no, REFUND_SUCCEEDED_EVENT, refund_data(refund),
                                          int(refund.succeeded_at or at), at))
    callbacks = [Delivery.get(key.delivery_id, consistent_read=True)
                 for key in Delivery.by_order.query(out_trade_no) if key.kind == CALLBACK]
    if any(claimed(delivery, at) for delivery in callbacks):
        raise Conflict("an attempt of this order's callbacks is in progress; try again in a minute",
                       code="attempt_in_progress")
    for delivery in callbacks:
        attempt(delivery, at, manual=True)
    return views_for_order(out_trade_no, owner=True)


def _create_missing(delivery: Delivery | None) -> None:
    if delivery is not None:
        _create(delivery)


def views_for_order(out_trade_no: str, *, owner: bool) -> dict:
    """{"callbacks": [...], "messages": [...]} of an order, for its detail (oldest first).

    Only the order's `owner` reads what the receivers answered and what went wrong: a
    sub-service-provider reads the owner's order but not the owner's receiver's words."""
    found = sorted(Delivery.by_order.query(out_trade_no), key=lambda d: (d.created_at, d.delivery_id))
    names: dict[str, dict[str, str]] = {}
    for store_id in {d.store_id for d in found if d.kind == CLERK_MESSAGE}:
        names[store_id] = {m.staff_id: m.name for m in Staff.query(store_id)}
    return {"callbacks": [delivery_view(d, owner) for d in found if d.kind == CALLBACK],
            "messages": [delivery_view(d, owner, names.get(d.store_id, {}).get(d.staff_id))
                         for d in found if d.kind == CLERK_MESSAGE]}


def delivery_view(delivery: Delivery, owner: bool, recipient_name: str | None = None) -> dict:
    view = {"delivery_id": delivery.delivery_id, "kind": delivery.kind, "event": delivery.event,
            "out_refund_no": delivery.out_refund_no, "state": delivery.state, "attempts": int(delivery.attempts),
            "next_attempt_at": None if delivery.next_attempt_at is None else int(delivery.next_attempt_at),
            "delivered_at": None if delivery.delivered_at is None else int(delivery.delivered_at),
            "created_at": int(delivery.created_at),
            "log": [{"at": int(entry.at), "status": None if entry.status is None else int(entry.status),
                     "latency_ms": None if entry.latency_ms is None else int(entry.latency_ms),
                     "answer": entry.answer if owner else None, "error": entry.error if owner else None}
                    for entry in delivery.log]}
    if delivery.kind == CLERK_MESSAGE:
        view["recipient_name"] = recipient_name
    return view
