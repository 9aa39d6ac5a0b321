"""P2: the channels' payment notifications, each as (status, headers, body) for app.py.

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
from chalicelib.models.orders import Order
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import lookup
from chalicelib.payments import channels, settle
from chalicelib.upstream import alipay, maidan, wechatpay

JSON = {"Content-Type": "application/json"}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
ALIPAY_FAIL = (200, TEXT, "fail")
ALIPAY_SUCCESS = (200, TEXT, alipay.NOTIFICATION_ACK)
ACCEPTED = (settle.PAID_NOW, settle.DUPLICATE)


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
    if notification.trade_status not in alipay.PAID_STATUSES:
        return ALIPAY_SUCCESS  # WAIT_BUYER_PAY / TRADE_CLOSED: nothing to record; the sweep closes
    outcome = settle.settle(settle.Payment(
        out_trade_no=notification.out_trade_no, channel=channels.ALIPAY, sp_mchid=None, sub_mchid=None,
        amount_fen=notification.total_fen, upstream_trade_no=notification.trade_no), "notification",
        read=order if notification.out_trade_no == order.out_trade_no else None)
    return ALIPAY_SUCCESS if outcome in ACCEPTED else ALIPAY_FAIL
