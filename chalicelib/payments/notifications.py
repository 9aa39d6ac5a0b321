"""P2 and P6: the channels' payment and refund notifications, each as (status, headers, body) for app.py.

Nothing in a notification is believed before it verifies: WeChat Pay's with the provider's
platform key (5-minute window, probe signatures refused) and decrypted with its API v3
key; Alipay's with the provider's Alipay public key (app_id checked, then seller_id against
the merchant's authorization); 买单's with the platform's partner key. A genuine one must
still describe our order (channel, merchant, amount) before the one settle path
(`settle.settle`) moves it to PAID. Anything else changes nothing, is logged without
secrets, and is answered so that the channel sends a genuine one again.
"""
from __future__ import annotations

import json

from pynamodb.exceptions import DoesNotExist

from chalicelib import providers
from chalicelib.errors import Conflict, InvalidField
from chalicelib.log import logger
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import lookup
from chalicelib.payments import channels, refunds, settle
from chalicelib.upstream import alipay, maidan, wechatpay

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
ALIPAY_FAIL = (200, TEXT, "fail")
ALIPAY_SUCCESS = (200, TEXT, alipay.NOTIFICATION_ACK)
ACCEPTED = (settle.PAID_NOW, settle.DUPLICATE)
WECHATPAY_REFUND_EVENTS = {"REFUND.SUCCESS": channels.REFUND_SUCCESS, "REFUND.ABNORMAL": channels.REFUND_ABNORMAL,
                           "REFUND.CLOSED": channels.REFUND_FAILED}
"""ABNORMAL is not final: the refund stays open until the merchant handles it at WeChat Pay."""
WECHATPAY_REFUND_FAILURES = {"REFUND.ABNORMAL": channels.WECHATPAY_ABNORMAL, "REFUND.CLOSED": channels.WECHATPAY_CLOSED}


def _refusal(status: int, message: str) -> tuple[int, dict, str]:
    """WeChat Pay's (and 买单's) shape for "not handled": an error status with code and message."""
    return status, JSON, json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False)


def _settled(outcome: str) -> tuple[int, dict, str]:
    if outcome in ACCEPTED:
        return 204, {}, ""
    return _refusal(404 if outcome == settle.UNKNOWN_ORDER else 400, f"notification not applied: {outcome}")


def _provider(account_id: str, sp_mchid: str) -> Provider | None:
    try:
        return Provider.get(account_id, sp_mchid)
    except DoesNotExist:
        return None


def wechatpay_notification(account_id: str, sp_mchid: str, headers: dict, body: bytes | str) -> tuple[int, dict, str]:
    """`POST /notify/wechatpay/{account_id}/{sp_mchid}`: answered 204 once applied (or already
    applied). The path only says whose key to verify with: nothing in it is believed."""
    provider = _provider(account_id, sp_mchid) if sp_mchid.isdigit() and account_id else None
    if provider is None or not providers.wechat_pay_configured(provider):
        logger.warning("WeChat Pay notification for an unknown provider", extra={"sp_mchid": sp_mchid[:32]})
        return _refusal(404, "unknown sp_mchid")
    try:
        notification = wechatpay.parse_notification(providers.wechat_pay_merchant(provider), headers, body)
    except (wechatpay.WechatPaySignatureError, wechatpay.WechatPayDecryptionError, ValueError, KeyError) as exc:
        logger.warning("WeChat Pay notification refused", extra={"sp_mchid": sp_mchid, "reason": str(exc)[:200]})
        return _refusal(401, "signature or decryption failed")
    if notification.event_type in WECHATPAY_REFUND_EVENTS:
        return _wechatpay_refund(sp_mchid, notification)
    if notification.event_type != "TRANSACTION.SUCCESS":
        logger.warning("WeChat Pay notification not handled", extra={"event_type": notification.event_type})
        return _refusal(400, f"event {notification.event_type} is not handled")
    try:
        transaction = notification.transaction()
    except (KeyError, TypeError, ValueError):
        return _refusal(400, "transaction resource malformed")
    if transaction.sp_mchid != sp_mchid or not transaction.paid or not isinstance(transaction.amount_total, int):
        logger.warning("WeChat Pay notification does not describe a payment to this provider",
                       extra={"sp_mchid": sp_mchid, "out_trade_no": transaction.out_trade_no})
        return _refusal(400, "not a payment to this provider")
    return _settled(settle.settle(settle.Payment(
        out_trade_no=transaction.out_trade_no, channel=channels.OFFICIAL_DIRECT, sp_mchid=transaction.sp_mchid,
        sub_mchid=transaction.sub_mchid, amount_fen=transaction.amount_total,
        upstream_trade_no=transaction.transaction_id), "notification"))


def maidan_notification(headers: dict, body: bytes | str) -> tuple[int, dict, str]:
    """`POST /notify/maidan`: answered 204 once applied; 买单 retries anything else."""
    try:
        event = maidan.verify_notification(headers, body)
        if event.get("event_type") == "REFUND.SUCCESS":
            return _maidan_refund(maidan.MaidanRefund.from_json(event["refund"]))
        if event.get("event_type") != "TRANSACTION.SUCCESS":
            return _refusal(400, f"event {event.get('event_type')} is not handled")
        paid = maidan.MaidanOrder.from_json(event["order"])
    except (maidan.MaidanSignatureError, ValueError, KeyError, TypeError) as exc:
        logger.warning("买单 notification refused", extra={"reason": str(exc)[:200]})
        return _refusal(401, "signature failed or event malformed")
    if paid.trade_state != "SUCCESS":
        return _refusal(400, "not a payment")
    return _settled(settle.settle(settle.Payment(
        out_trade_no=paid.out_trade_no, channel=channels.MAIDAN, sp_mchid=paid.sp_mchid, sub_mchid=paid.sub_mchid,
        amount_fen=paid.total, upstream_trade_no=paid.order_id), "notification"))


def alipay_notification(body: bytes | str) -> tuple[int, dict, str]:
    """`POST /notify/alipay`: answered `success` once applied; anything else is `fail`."""
    from urllib.parse import parse_qsl

    raw = body.decode("latin-1") if isinstance(body, bytes) else body
    claimed = dict(parse_qsl(raw)).get("out_trade_no", "")
    order = merchant = app = None
    try:
        order = Order.get(claimed, consistent_read=True) if claimed else None
        merchant, provider = lookup.get_many([(SubMerchant, order.account_id, order.merchant_id),
                                              (Provider, order.account_id, order.sp_mchid)]) if order else (None, None)
        app = providers.alipay_app(provider) if provider is not None else None
    except (DoesNotExist, Conflict, InvalidField):
        order = None
    if merchant is None or app is None:
        order = None
    if order is None or order.channel != channels.ALIPAY:
        logger.warning("Alipay notification for an unknown order", extra={"out_trade_no": claimed[:64]})
        return ALIPAY_FAIL
    try:
        notification = alipay.verify_notification(app, body)
    except alipay.AlipaySignatureError as exc:
        logger.warning("Alipay notification refused", extra={"out_trade_no": order.out_trade_no,
                                                              "reason": str(exc)[:200]})
        return ALIPAY_FAIL
    seller = merchant.alipay.user_id if merchant.alipay is not None else None
    if notification.seller_id != seller:
        logger.warning("Alipay notification for another seller; nothing changed",
                       extra={"out_trade_no": order.out_trade_no})
        return ALIPAY_FAIL
    if notification.out_biz_no is not None:
        return _alipay_refund(order, notification)
    if notification.trade_status not in alipay.PAID_STATUSES:
        return ALIPAY_SUCCESS  # WAIT_BUYER_PAY / TRADE_CLOSED: nothing to record; the sweep closes
    outcome = settle.settle(settle.Payment(
        out_trade_no=notification.out_trade_no, channel=channels.ALIPAY, sp_mchid=None, sub_mchid=None,
        amount_fen=notification.total_fen, upstream_trade_no=notification.trade_no), "notification",
        read=order if notification.out_trade_no == order.out_trade_no else None)
    return ALIPAY_SUCCESS if outcome in ACCEPTED else ALIPAY_FAIL


# --- P6 refund notifications -----------------------------------------------------------------

def _refund_mismatch(claimed_no: str, channel: str, sp_mchid: str | None, sub_mchid: str | None, out_trade_no: str,
                     amount_fen: int | None) -> tuple[Refund | None, str | None]:
    """The refund a genuine notification names, and why it does not describe it (or None):
    a channel's own signature proves who sent it, not that it is about our refund."""
    try:
        refund = Refund.get(claimed_no, consistent_read=True)
    except DoesNotExist:
        return None, "unknown_refund"
    for why, differs in (("channel", refund.channel != channel),
                         ("sp_mchid", sp_mchid is not None and sp_mchid != refund.sp_mchid),
                         ("sub_mchid", sub_mchid is not None and sub_mchid != (refund.sub_mchid or "")),
                         ("out_trade_no", out_trade_no != refund.out_trade_no),
                         ("amount", amount_fen is not None and amount_fen != int(refund.amount))):
        if differs:
            logger.warning("refund notification does not match its refund; nothing changed",
                           extra={"out_refund_no": claimed_no, "mismatch": why})
            return refund, why
    return refund, None


def _refund_settled(outcome: str, why: str | None) -> tuple[int, dict, str]:
    if why is not None:
        return _refusal(404 if why == "unknown_refund" else 400, f"refund notification not applied: {why}")
    return (204, {}, "") if outcome != "unknown" else _refusal(404, "unknown refund")


def _wechatpay_refund(sp_mchid: str, notification: wechatpay.Notification) -> tuple[int, dict, str]:
    """REFUND.SUCCESS / ABNORMAL / CLOSED at the payment notify URL: decrypted already; the
    resource must name this provider, the order's sub-merchant, our refund and its amount."""
    resource = notification.resource
    try:
        found = notification.refund()
    except (KeyError, TypeError, ValueError):
        return _refusal(400, "refund resource malformed")
    if resource.get("sp_mchid") != sp_mchid:
        return _refusal(400, "not a refund of this provider")
    _, why = _refund_mismatch(found.out_refund_no, channels.OFFICIAL_DIRECT, sp_mchid,
                              str(resource.get("sub_mchid") or ""), found.out_trade_no, found.refund)
    if why is not None:
        return _refund_settled("", why)
    state = WECHATPAY_REFUND_EVENTS[notification.event_type]
    answer = channels.RefundState(state, WECHATPAY_REFUND_FAILURES.get(notification.event_type), found.refund_id)
    return _refund_settled(refunds.settle(found.out_refund_no, answer, "notification"), None)


def _maidan_refund(found: maidan.MaidanRefund) -> tuple[int, dict, str]:
    if found.status != "SUCCESS":
        return _refusal(400, "not a settled refund")
    _, why = _refund_mismatch(found.out_refund_no, channels.MAIDAN, found.sp_mchid, None, found.out_trade_no,
                              found.refund)
    if why is not None:
        return _refund_settled("", why)
    answer = channels.RefundState(channels.REFUND_SUCCESS, upstream_refund_id=found.refund_id)
    return _refund_settled(refunds.settle(found.out_refund_no, answer, "notification"), None)


def _alipay_refund(order: Order, notification: alipay.TradeNotification) -> tuple[int, dict, str]:
    """A trade_status_sync carrying `out_biz_no` (our out_refund_no) and `refund_fee` (all
    refunded on the trade so far). Alipay's refund answer is synchronous, so this mostly
    confirms what is settled; it settles a refund whose answer was lost only when the
    total it reports is the order's refunded amount plus this refund."""
    refund, why = _refund_mismatch(notification.out_biz_no, channels.ALIPAY, None, None, notification.out_trade_no,
                                   None)
    if why is None and refund.out_trade_no != order.out_trade_no:
        why = "out_trade_no"
    if why is not None:
        return ALIPAY_FAIL
    if refund.state not in refunds.OPEN_STATES:
        return ALIPAY_SUCCESS
    if notification.refund_fee_fen != int(order.refunded or 0) + int(refund.amount):
        logger.warning("Alipay refund notification's total does not match; nothing changed",
                       extra={"out_refund_no": refund.out_refund_no})
        return ALIPAY_FAIL
    refunds.settle(refund.out_refund_no, channels.RefundState(channels.REFUND_SUCCESS,
                                                              upstream_refund_id=notification.trade_no),
                   "notification")
    return ALIPAY_SUCCESS
