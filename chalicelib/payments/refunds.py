"""P6: refunds of paid orders, full or partial, on the order's own channel.

A refund starts with ONE transaction: the order takes `refunding_no` (condition: paid, no
refund in progress, `refunded <= total − amount`), the refund item is written PROCESSING,
and the audit entry of who asked. So two requests at once cannot both pass: the second
finds the first's `refunding_no`. Only then is the channel asked; its answer, a verified
notification, or the refund sweep's query settles the refund by one rule (`settle`):
SUCCESS adds the amount to the order's `refunded` and writes the refund's outbox item in
one transaction; FAILED only frees the order for another refund. Each of those writes is
conditional on the refund still being PROCESSING, so settling twice changes nothing.

Who may ask: the console account that owns the order (a sub-service-provider reads but
never refunds: the same 404 as a stranger), a merchant admin with refund permission, a
store manager or clerk with refund permission while on shift.
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib import settings
from chalicelib.errors import Conflict, Forbidden, InvalidField, NotFound
from chalicelib.log import logger
from chalicelib.models.audit import AuditEntry
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode.access import ADMIN, Actor
from chalicelib.payments import channels, outbox
from chalicelib.payments.models import OutboxItem
from chalicelib.payments.settle import PAID

PROCESSING, SUCCESS, FAILED = "PROCESSING", "SUCCESS", "FAILED"
OUT_REFUND_NO_LENGTH = 32
"""WeChat Pay's and 买单's limit (Alipay takes 64): prefix + "R" + random base32."""
REASON_MAX_CHARS = 80
"""WeChat Pay's limit for `reason`, the strictest of the three channels."""
FIRST_CHECK_AFTER_SECONDS = 60
"""The sweep's first query: WeChat Pay and 买单 usually notify within seconds."""
MAX_CHECK_INTERVAL_SECONDS = 3600
MAX_REFUNDS_PER_RUN = 200
CONSOLE_NAME = "控制台"

SETTLED_NOW = "settled"
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


def out_refund_no_for(order_prefix: str) -> str:
    """Unique without a look-up: 25 random base32 characters after a 6-character prefix
    (125 bits), and the refund is written with `does_not_exist` all the same."""
    suffix = base64.b32encode(secrets.token_bytes(20)).decode()
    return (order_prefix + "R" + suffix)[:OUT_REFUND_NO_LENGTH]


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


def start(out_trade_no: str, amount, reason, requester: Requester, order: Order | None = None,
          at: int | None = None) -> Refund:
    """Start a refund of `amount` fen and ask the channel; answers the refund as it stands
    (SUCCESS, FAILED with the channel's reason, or PROCESSING until the channel says)."""
    amount, reason = _checked_amount(amount), _checked_reason(reason)
    order = order or find(out_trade_no)
    at = now() if at is None else at
    if order.state != PAID or order.refunding_no or amount > refundable(order):
        raise _why_refused(order, amount)
    merchant = SubMerchant.get(order.account_id, order.merchant_id)
    provider = Provider.get(order.account_id, order.sp_mchid)
    channels.check_refundable(order, merchant, provider)
    refund = _write_start(order, merchant, amount, reason, requester, at)
    try:
        answer = channels.refund(order, refund, merchant, provider)
    except Exception as exc:  # the refund may or may not exist at the channel: the sweep asks
        logger.warning("refund request failed on the way; the refund sweep asks again",
                       extra={"out_refund_no": refund.out_refund_no, "error": type(exc).__name__})
        return refund
    settle(refund.out_refund_no, answer, "channel_answer", at=at)
    return Refund.get(refund.out_refund_no, consistent_read=True)


def _write_start(order: Order, merchant: SubMerchant, amount: int, reason: str | None, requester: Requester,
                 at: int) -> Refund:
    out_refund_no = out_refund_no_for(merchant.order_prefix)
    refund = Refund(out_refund_no=out_refund_no, out_trade_no=order.out_trade_no, account_id=order.account_id,
                    sp_mchid=order.sp_mchid, merchant_id=order.merchant_id, ssp_account_id=order.ssp_account_id,
                    amount=amount, state=PROCESSING, created_at=at, created_key=f"{at:010d}#{out_refund_no}",
                    store_id=order.store_id, clerk_id=order.clerk_id, code_id=order.code_id, channel=order.channel,
                    sub_mchid=order.sub_mchid, reason=reason, requested_by=requester.label,
                    requested_by_name=requester.name, check_shard=outbox.shard_of(out_refund_no),
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
            raise _why_refused(find(order.out_trade_no), amount) from None
        raise
    logger.info("refund started", extra={"out_refund_no": out_refund_no, "out_trade_no": order.out_trade_no})
    return refund


def settle(out_refund_no: str, answer: channels.RefundState, settled_by: str, at: int | None = None) -> str:
    """Apply what the channel said: SUCCESS or FAILED once (conditional on PROCESSING), with
    the order freed and, on success, its `refunded` grown and the outbox item written."""
    at = now() if at is None else at
    try:
        refund = Refund.get(out_refund_no, consistent_read=True)
    except DoesNotExist:
        return "unknown"
    if refund.state != PROCESSING:
        return DUPLICATE
    if answer.state == channels.REFUND_PROCESSING:
        return STILL_PROCESSING
    order = Order.get(refund.out_trade_no, consistent_read=True)
    done = [Refund.settled_by.set(settled_by), Refund.check_shard.remove(), Refund.check_at.remove()]
    if answer.upstream_refund_id:
        done.append(Refund.upstream_refund_id.set(answer.upstream_refund_id))
    freed = Order.refunding_no == out_refund_no
    item = outbox.refund_succeeded_item(refund, at) if answer.state == channels.REFUND_SUCCESS else None
    try:
        with transaction() as tx:
            if item is not None:
                tx.update(refund, actions=done + [Refund.state.set(SUCCESS), Refund.succeeded_at.set(at)],
                          condition=Refund.state == PROCESSING, add_version_condition=False)
                tx.update(order, actions=[Order.refunded.add(int(refund.amount)), Order.refunding_no.remove()],
                          condition=freed, add_version_condition=False)
                tx.save(item, condition=OutboxItem.item_id.does_not_exist())
            else:
                tx.update(refund, actions=done + [Refund.state.set(FAILED), Refund.failed_at.set(at),
                                                  Refund.failure.set((answer.failure or "渠道拒绝了退款")[:200])],
                          condition=Refund.state == PROCESSING, add_version_condition=False)
                tx.update(order, actions=[Order.refunding_no.remove()], condition=freed, add_version_condition=False)
    except TransactWriteError as exc:
        if condition_failed(exc):
            return DUPLICATE
        raise
    logger.info("refund settled", extra={"out_refund_no": out_refund_no, "state": answer.state,
                                         "settled_by": settled_by})
    if item is not None:
        outbox.hand_over(item.item_id)
    return SETTLED_NOW


def sweep_processing_refunds(at: int | None = None) -> dict:
    """The refund query sweep: refunds still processing past their `check_at`, from the
    sparse index only, each asked of its channel (asked again where the channel never got
    it: the same out_refund_no refunds once)."""
    at = now() if at is None else at
    counts = {"examined": 0, "settled": 0, "later": 0, "failed": 0}
    for shard in range(settings.current().order_sweep_shards):
        for key in Refund.processing_by_check.query(str(shard), Refund.check_at <= at, limit=MAX_REFUNDS_PER_RUN):
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
    if refund.state != PROCESSING:
        return DUPLICATE
    order = Order.get(refund.out_trade_no, consistent_read=True)
    merchant = SubMerchant.get(order.account_id, order.merchant_id)
    provider = Provider.get(order.account_id, order.sp_mchid)
    answer = channels.query_refund(order, refund, merchant, provider)
    if answer is None:
        answer = channels.refund(order, refund, merchant, provider)
    outcome = settle(out_refund_no, answer, "query", at=at)
    if outcome == STILL_PROCESSING:
        _look_again(refund, at)
    return outcome


def _look_again(refund: Refund, at: int) -> None:
    """Backoff by age: a minute, then about as long again as the refund has waited, at most an hour."""
    wait = min(MAX_CHECK_INTERVAL_SECONDS, max(FIRST_CHECK_AFTER_SECONDS, at - int(refund.created_at)))
    try:
        refund.update(actions=[Refund.check_at.set(at + wait)],
                      condition=(Refund.state == PROCESSING) & Refund.check_shard.exists(), add_version_condition=False)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def for_order(out_trade_no: str) -> list[Refund]:
    """The order's refunds, oldest first (one bounded index query: refunds are one at a time)."""
    return list(Refund.by_order.query(out_trade_no, limit=100))


def view(refund: Refund) -> dict:
    return {"object": "refund", "out_refund_no": refund.out_refund_no, "out_trade_no": refund.out_trade_no,
            "amount": int(refund.amount), "state": refund.state, "reason": refund.reason, "channel": refund.channel,
            "merchant_id": refund.merchant_id, "store_id": refund.store_id, "clerk_id": refund.clerk_id,
            "code_id": refund.code_id, "sub_service_provider": refund.ssp_account_id, "requested_by": refund.requested_by,
            "requested_by_name": refund.requested_by_name, "created_at": refund.created_at,
            "succeeded_at": refund.succeeded_at, "failed_at": refund.failed_at, "failure": refund.failure}


def views_for_order(out_trade_no: str) -> list[dict]:
    return [view(refund) for refund in for_order(out_trade_no)]
