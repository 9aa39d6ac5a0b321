"""P6: refunds of paid orders, full or partial, on the order's own channel.

A refund starts with ONE transaction: the order takes `refunding_no` (condition: paid, no
refund in progress, `refunded <= total − amount`), the refund item is written PROCESSING,
and the audit entry of who asked. So two requests at once cannot both pass: the second
finds the first's `refunding_no`. Only then is the channel asked; its answer, a verified
notification, or the refund sweep's query settles the refund by one rule (`settle`):
SUCCESS adds the amount to the order's `refunded` and writes the refund's outbox item in
one transaction; FAILED only frees the order for another refund. Each of those writes is
conditional on the refund still being open, so settling twice changes nothing. WeChat
Pay's ABNORMAL is not an end: the refund stays open (state ABNORMAL, the order still held
by it, the sweep still asking) until the merchant has handled it at WeChat Pay and
SUCCESS (or CLOSED) comes.

Who may ask: the console account that owns the order (a sub-service-provider reads but
never refunds: the same 404 as a stranger), a merchant admin with refund permission, a
store manager or clerk with refund permission while on shift.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib import settings
from chalicelib.errors import Conflict, Forbidden, InvalidField, NotFound
from chalicelib.log import logger
from chalicelib.models.audit import AuditEntry
from chalicelib.models.base import condition_failed, now, pause_before_retry, transaction, transaction_conflicted
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode.access import ADMIN, Actor
from chalicelib.payments import channels, outbox, queries
from chalicelib.payments.models import OutboxItem
from chalicelib.payments.settle import PAID
from chalicelib.payments.sweep_shards import SweepDeadline, shard_of

PROCESSING, ABNORMAL, SUCCESS, FAILED = "PROCESSING", "ABNORMAL", "SUCCESS", "FAILED"
OPEN_STATES = (PROCESSING, ABNORMAL)
"""Not settled yet: the order's `refunding_no` holds it and the sweep asks about it."""
OUT_REFUND_NO_LENGTH = 32
"""WeChat Pay's and 买单's limit (Alipay takes 64): prefix + "R" + random base32."""
REASON_MAX_CHARS = 80
"""WeChat Pay's limit for `reason`, the strictest of the three channels."""
FIRST_CHECK_AFTER_SECONDS = 60
"""The sweep's first query: WeChat Pay and 买单 usually notify within seconds."""
MAX_CHECK_INTERVAL_SECONDS = 3600
MAX_ABNORMAL_CHECK_INTERVAL_SECONDS = 6 * 3600
"""An ABNORMAL refund waits for a person at WeChat Pay's merchant platform: hours, not minutes."""
MAX_REFUNDS_PER_RUN = 200
SETTLE_ATTEMPTS = 4
FORM_NONCE_CHARS = OUT_REFUND_NO_LENGTH - 7
"""The phone form's nonce is the out_refund_no's suffix (after the 6-character prefix and "R")."""
_FORM_NONCE = re.compile(rf"^[A-Z2-7]{{{FORM_NONCE_CHARS}}}$")
CONSOLE_NAME = "控制台"

SETTLED_NOW = "settled"
ABNORMAL_NOW = "abnormal"
DUPLICATE = "duplicate"
STILL_PROCESSING = "processing"


class RefundNotAllowed(Forbidden):
    """The phone role holds no refund permission here (or, as staff, is off shift)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


@dataclass(frozen=True)
class Requester:
    """Who asks for a refund, as the refund and the audit log name them: the console account
    id, or "<role>#<admin or staff id>" with the person's name beside it, never an openid."""

    label: str
    name: str | None


def console_requester(account_id: str, order: Order) -> Requester:
    """Only the owning account refunds from the console: the order's sub-service-provider
    gets the same "not found" as a stranger, so a read-only party learns nothing by trying."""
    if order.account_id != account_id:
        raise NotFound("no such order", param="out_trade_no")
    return Requester(account_id, CONSOLE_NAME)


def refusal_for(actor: Actor) -> RefundNotAllowed | None:
    """Why this phone role may not refund, or None: admins need the permission, managers
    and clerks the permission and a shift in progress (read when `actor` was made)."""
    if actor.role == ADMIN:
        if actor.admin is None or not actor.admin.can_refund:
            return RefundNotAllowed("this admin has no refund permission", "refund_not_permitted")
        return None
    if actor.staff is None or not actor.staff.can_refund:
        return RefundNotAllowed("this staff member has no refund permission", "refund_not_permitted")
    if not actor.staff.on_shift:
        return RefundNotAllowed("staff refund only while on shift", "off_shift")
    return None


def phone_requester(actor: Actor, order: Order) -> Requester:
    if actor.merchant_id != order.merchant_id or (actor.store_id is not None and actor.store_id != order.store_id):
        raise NotFound("no such order", param="out_trade_no")
    refused = refusal_for(actor)
    if refused is not None:
        raise refused
    return Requester(actor.label, actor.name)


def find(out_trade_no: str) -> Order:
    try:
        return Order.get(out_trade_no, consistent_read=True)
    except DoesNotExist:
        raise NotFound("no such order", param="out_trade_no") from None


def refundable(order: Order) -> int:
    return int(order.total) - int(order.refunded or 0) if order.state == PAID else 0


def _checked_amount(amount) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        raise InvalidField("amount", "amount must be a positive whole number of fen")
    return amount


def _checked_reason(reason) -> str | None:
    if reason is None:
        return None
    if not isinstance(reason, str) or len(reason.strip()) > REASON_MAX_CHARS:
        raise InvalidField("reason", f"退款原因最多 {REASON_MAX_CHARS} 个字")
    return reason.strip() or None


def new_form_nonce() -> str:
    """25 random base32 characters (125 bits): unique without a look-up."""
    return base64.b32encode(secrets.token_bytes(20)).decode()[:FORM_NONCE_CHARS]


def out_refund_no_for(order_prefix: str, form_nonce: str | None = None) -> str:
    """The merchant's prefix + "R" + a nonce: the phone form's own (so the same form posted
    again names the same refund), else a fresh one; written with `does_not_exist` all the same."""
    if form_nonce is not None and not _FORM_NONCE.match(form_nonce):
        raise InvalidField("refund_nonce", "the refund form is not genuine: open the order again")
    return (order_prefix + "R" + (form_nonce or new_form_nonce()))[:OUT_REFUND_NO_LENGTH]


def _why_refused(order: Order, amount: int) -> Exception:
    """The reason a start transaction's condition failed, from the order as it is now."""
    if order.state != PAID:
        return Conflict("only a paid order can be refunded", code="order_not_paid")
    if order.refunding_no:
        return Conflict(f"refund {order.refunding_no} of this order is still in progress", code="refund_in_progress")
    if amount > refundable(order):
        return InvalidField("amount", f"at most {refundable(order)} fen of this order can still be refunded",
                            code="amount_exceeds_refundable")
    return Conflict("the order changed meanwhile: try again", code="order_changed")


def _audit_entry(order: Order, refund: Refund, at: int) -> AuditEntry:
    return AuditEntry(account_id=order.account_id, entry_id=f"{at * 1000:015d}#refund#{refund.out_refund_no}",
                      at=at, actor=refund.requested_by, entity=f"order#{order.out_trade_no}",
                      action="order.refund_requested",
                      changes={"out_refund_no": refund.out_refund_no, "amount": int(refund.amount),
                               "reason": refund.reason, "actor_name": {"from": None, "to": refund.requested_by_name}})


def made_by_form(order: Order, form_nonce: str) -> Refund | None:
    """The refund the phone form with this nonce already made (the form posted again), or None."""
    merchant = SubMerchant.get(order.account_id, order.merchant_id)
    return _made_by_this_form(out_refund_no_for(merchant.order_prefix, form_nonce), order)


def _made_by_this_form(out_refund_no: str, order: Order) -> Refund | None:
    """The refund with this number, or None; one of another order means the form is not this order's."""
    try:
        made = Refund.get(out_refund_no, consistent_read=True)
    except DoesNotExist:
        return None
    if made.out_trade_no != order.out_trade_no:
        raise InvalidField("refund_nonce", "the refund form is not genuine: open the order again")
    return made


def start(out_trade_no: str, amount, reason, requester: Requester, order: Order | None = None,
          at: int | None = None, form_nonce: str | None = None) -> Refund:
    """Start a refund of `amount` fen and ask the channel; answers the refund as it stands
    (SUCCESS, FAILED with the channel's reason, ABNORMAL, or PROCESSING until the channel
    says). `form_nonce` (the phone form's): the form posted again answers the refund it made."""
    amount, reason = _checked_amount(amount), _checked_reason(reason)
    order = order or find(out_trade_no)
    at = now() if at is None else at
    merchant = SubMerchant.get(order.account_id, order.merchant_id)
    out_refund_no = out_refund_no_for(merchant.order_prefix, form_nonce)
    made = _made_by_this_form(out_refund_no, order) if form_nonce is not None else None
    if made is not None:
        return made
    if order.state != PAID or order.refunding_no or amount > refundable(order):
        raise _why_refused(order, amount)
    provider = Provider.get(order.account_id, order.sp_mchid)
    channels.check_refundable(order, merchant, provider)
    refund, written = _write_start(order, out_refund_no, amount, reason, requester, at, form_nonce is not None)
    if not written:
        return refund
    try:
        answer = channels.refund(order, refund, merchant, provider)
        settle(refund.out_refund_no, answer, "channel_answer", at=at)
    except Exception as exc:  # the refund may exist at the channel: the notification or the sweep settles it
        logger.warning("refund not settled on the channel's answer; the refund sweep asks again",
                       extra={"out_refund_no": refund.out_refund_no, "error": type(exc).__name__})
    return Refund.get(refund.out_refund_no, consistent_read=True)


def _write_start(order: Order, out_refund_no: str, amount: int, reason: str | None, requester: Requester,
                 at: int, from_form: bool) -> tuple[Refund, bool]:
    """(the refund, True) once written; (the refund the same form made, False) when the
    same form posted at the same moment won the race."""
    refund = Refund(out_refund_no=out_refund_no, out_trade_no=order.out_trade_no, account_id=order.account_id,
                    sp_mchid=order.sp_mchid, merchant_id=order.merchant_id, ssp_account_id=order.ssp_account_id,
                    amount=amount, state=PROCESSING, created_at=at, created_key=f"{at:010d}#{out_refund_no}",
                    store_id=order.store_id, clerk_id=order.clerk_id, code_id=order.code_id, channel=order.channel,
                    sub_mchid=order.sub_mchid, reason=reason, requested_by=requester.label,
                    requested_by_name=requester.name, check_shard=shard_of(out_refund_no),
                    check_at=at + FIRST_CHECK_AFTER_SECONDS)
    condition = (Order.state == PAID) & Order.refunding_no.does_not_exist() & \
        (Order.refunded.does_not_exist() | (Order.refunded <= int(order.total) - amount))
    try:
        with transaction() as tx:
            tx.update(order, actions=[Order.refunding_no.set(out_refund_no)], condition=condition,
                      add_version_condition=False)
            tx.save(refund, condition=Refund.out_refund_no.does_not_exist())
            tx.save(_audit_entry(order, refund, at), condition=AuditEntry.entry_id.does_not_exist())
    except TransactWriteError as exc:
        if condition_failed(exc):
            current = find(order.out_trade_no)
            made = _made_by_this_form(out_refund_no, current) if from_form else None
            if made is not None:
                return made, False
            raise _why_refused(current, amount) from None
        raise
    logger.info("refund started", extra={"out_refund_no": out_refund_no, "out_trade_no": order.out_trade_no})
    return refund, True


def _lost_race(exc: TransactWriteError | UpdateError) -> bool:
    """Another write got there first: its condition failed, or DynamoDB cancelled ours for a
    concurrent transaction on the same items (TransactionConflict). Either way: read again."""
    return condition_failed(exc) or transaction_conflicted(exc)


def settle(out_refund_no: str, answer: channels.RefundState, settled_by: str, at: int | None = None) -> str:
    """Apply what the channel said to an open refund, once: SUCCESS or FAILED (the order
    freed and, on success, its `refunded` grown and the outbox item written), or ABNORMAL
    (still open, the order still held). A lost race reads the refund again and decides again."""
    at = now() if at is None else at
    lost = 0
    while True:
        try:
            refund = Refund.get(out_refund_no, consistent_read=True)
        except DoesNotExist:
            return "unknown"
        if refund.state not in OPEN_STATES:
            return DUPLICATE
        if answer.state == channels.REFUND_PROCESSING or (answer.state == channels.REFUND_ABNORMAL
                                                          and refund.state == ABNORMAL):
            return STILL_PROCESSING
        try:
            if answer.state == channels.REFUND_ABNORMAL:
                _mark_abnormal(refund, answer, settled_by, at)
                return ABNORMAL_NOW
            item = _write_end(refund, answer, settled_by, at)
        except (TransactWriteError, UpdateError) as exc:
            lost += 1
            if not _lost_race(exc) or lost == SETTLE_ATTEMPTS:
                raise
            pause_before_retry(lost - 1)
            continue
        logger.info("refund settled", extra={"out_refund_no": out_refund_no, "state": answer.state,
                                             "settled_by": settled_by})
        if item is not None:
            outbox.hand_over(item.item_id)
        return SETTLED_NOW


def _mark_abnormal(refund: Refund, answer: channels.RefundState, settled_by: str, at: int) -> None:
    """PROCESSING → ABNORMAL: the order keeps its `refunding_no` (no second refund of money
    that may still reach the customer) and the sweep keeps asking, hours apart."""
    actions = [Refund.state.set(ABNORMAL), Refund.abnormal_at.set(at), Refund.settled_by.set(settled_by),
               Refund.failure.set((answer.failure or channels.WECHATPAY_ABNORMAL)[:200]),
               Refund.check_at.set(at + _wait(ABNORMAL, int(refund.created_at), at))]
    if answer.upstream_refund_id:
        actions.append(Refund.upstream_refund_id.set(answer.upstream_refund_id))
    refund.update(actions=actions, condition=Refund.state == PROCESSING, add_version_condition=False)
    logger.warning("refund abnormal at WeChat Pay: the merchant must handle it there",
                   extra={"out_refund_no": refund.out_refund_no, "settled_by": settled_by})


def _write_end(refund: Refund, answer: channels.RefundState, settled_by: str, at: int) -> OutboxItem | None:
    """SUCCESS or FAILED in one transaction, conditional on the refund still being open and
    the order still held by it; the outbox item of a success (None for a failure)."""
    order = Order.get(refund.out_trade_no, consistent_read=True)
    done = [Refund.settled_by.set(settled_by), Refund.check_shard.remove(), Refund.check_at.remove()]
    if answer.upstream_refund_id:
        done.append(Refund.upstream_refund_id.set(answer.upstream_refund_id))
    still_open = Refund.state.is_in(*OPEN_STATES)
    freed = Order.refunding_no == refund.out_refund_no
    item = outbox.refund_succeeded_item(refund, at) if answer.state == channels.REFUND_SUCCESS else None
    with transaction() as tx:
        if item is not None:
            tx.update(refund, actions=done + [Refund.state.set(SUCCESS), Refund.succeeded_at.set(at),
                                              Refund.failure.remove()],
                      condition=still_open, add_version_condition=False)
            tx.update(order, actions=[Order.refunded.add(int(refund.amount)), Order.refunding_no.remove()],
                      condition=freed, add_version_condition=False)
            tx.save(item, condition=OutboxItem.item_id.does_not_exist())
        else:
            tx.update(refund, actions=done + [Refund.state.set(FAILED), Refund.failed_at.set(at),
                                              Refund.failure.set((answer.failure or "渠道拒绝了退款")[:200])],
                      condition=still_open, add_version_condition=False)
            tx.update(order, actions=[Order.refunding_no.remove()], condition=freed, add_version_condition=False)
    return item


def sweep_processing_refunds(at: int | None = None) -> dict:
    """The refund query sweep: open refunds past their `check_at`, from the sparse index
    only, each asked of its channel (asked again where the channel never got it: the same
    out_refund_no refunds once). A check that fails backs off like one that found nothing
    new; no check starts after sweep_shards.SWEEP_BUDGET_SECONDS, and each run starts at another shard so
    that a slow channel in one shard does not starve the others."""
    at = now() if at is None else at
    deadline = SweepDeadline()
    counts = {"examined": 0, "settled": 0, "later": 0, "failed": 0}
    shards = settings.current().order_sweep_shards
    for step in range(shards):
        shard = (at // 60 + step) % shards
        for key in Refund.processing_by_check.query(str(shard), Refund.check_at <= at, limit=MAX_REFUNDS_PER_RUN):
            if deadline.passed():
                logger.warning("refund sweep out of time; the rest wait for the next run", extra=counts)
                return counts
            counts["examined"] += 1
            try:
                counts["settled" if _check(key.out_refund_no, at) == SETTLED_NOW else "later"] += 1
            except Exception as exc:  # one channel's trouble must not stop the others
                counts["failed"] += 1
                logger.warning("refund check failed", extra={"out_refund_no": key.out_refund_no,
                                                              "error": type(exc).__name__})
    return counts


def _check(out_refund_no: str, at: int) -> str:
    refund = Refund.get(out_refund_no, consistent_read=True)
    if refund.state not in OPEN_STATES:
        return DUPLICATE
    try:
        order = Order.get(refund.out_trade_no, consistent_read=True)
        merchant = SubMerchant.get(order.account_id, order.merchant_id)
        provider = Provider.get(order.account_id, order.sp_mchid)
        answer = channels.query_refund(order, refund, merchant, provider)
        if answer is None:
            answer = channels.refund(order, refund, merchant, provider)
        outcome = settle(out_refund_no, answer, "query", at=at)
    except Exception:
        _look_again(refund, at)  # not every minute while the channel is in trouble
        raise
    if outcome == STILL_PROCESSING:
        _look_again(refund, at)
    return outcome


def _wait(state: str, created_at: int, at: int) -> int:
    """Backoff by age: a minute, then about as long again as the refund has waited, at most
    an hour (six while ABNORMAL)."""
    ceiling = MAX_ABNORMAL_CHECK_INTERVAL_SECONDS if state == ABNORMAL else MAX_CHECK_INTERVAL_SECONDS
    return min(ceiling, max(FIRST_CHECK_AFTER_SECONDS, at - created_at))


def _look_again(refund: Refund, at: int) -> None:
    try:
        refund.update(actions=[Refund.check_at.set(at + _wait(refund.state, int(refund.created_at), at))],
                      condition=Refund.state.is_in(*OPEN_STATES) & Refund.check_shard.exists(),
                      add_version_condition=False)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def for_order(out_trade_no: str) -> list[Refund]:
    """The order's refunds, oldest first (one bounded index query: refunds are one at a time)."""
    return list(Refund.by_order.query(out_trade_no, limit=100))


def views_for_order(out_trade_no: str) -> list[dict]:
    return [queries.refund_view(refund) for refund in for_order(out_trade_no)]
