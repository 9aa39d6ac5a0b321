"""P1: one order per payment attempt, attributed, written once, placed at its channel.

`out_trade_no` is the merchant's order prefix plus a suffix derived from the attempt id (an
HMAC-free hash is enough: the id is the page's own random token, and the prefix already
separates merchants), so a retried create — a double tap, an answer lost on the way back —
lands on the same key. The order is written with `attribute_not_exists(out_trade_no)`
before the channel is called; a retry finds it and places it again, which every channel
answers with the same order (same out_trade_no, same details).

The pay page hands in the merchant, provider and clerk it read in its one BatchGetItem, so
an order costs PutItem + the channel call + UpdateItem. An Alipay order is checked without
decrypting anything and placed with the app's key and the merchant's token decrypted once
each (`channels.route`/`channels.place` read the provider again on each call).
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib import providers, qrcodes, settings
from chalicelib.errors import InvalidField
from chalicelib.log import logger
from chalicelib.models.base import condition_failed, now
from chalicelib.models.providers import Provider
from chalicelib.models.orders import Order
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import codes as onecode_codes
from chalicelib.onecode.models import Staff
from chalicelib.payments import channels, errors, outbox
from chalicelib.payments.settle import NOTPAY, PAID

_ATTEMPT_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
SOURCES = {onecode_codes.STORE_COLLECTION: "store_code", onecode_codes.CLERK_COLLECTION: "clerk_code"}
SUFFIX_LENGTH = 20
"""32 (WeChat Pay's limit) minus the 6-character prefix, rounded down; 100 bits of hash."""


@dataclass(frozen=True)
class Payer:
    """Who pays: a WeChat `sp_openid` issued for the provider's official account, or an
    Alipay `buyer_id` issued for the provider's app (from the pay page's OAuth)."""

    payer_id: str


@dataclass(frozen=True)
class CreatedOrder:
    order: Order
    pay_params: dict | None
    """What the page hands to the wallet; None when the order is no longer payable (paid
    or closed): the page then shows its result, never a new payment."""


def out_trade_no_for(order_prefix: str, attempt_id: str) -> str:
    digest = hashlib.sha256(f"{order_prefix}:{attempt_id}".encode()).digest()
    return order_prefix + base64.b32encode(digest).decode()[:SUFFIX_LENGTH]


def _usable_code(code: QrCode) -> str:
    if code.kind not in SOURCES or qrcodes.effective_state(code) != qrcodes.ACTIVE:
        raise errors.refused(errors.CODE_NOT_USABLE, "this collection code cannot take payments", param="code")
    return SOURCES[code.kind]


def _clerk_id(code: QrCode, clerk: Staff | None) -> str | None:
    if code.kind != onecode_codes.CLERK_COLLECTION:
        return None
    if clerk is not None:
        return clerk.staff_id
    try:
        return Staff.get(code.store_id, code.member_key).staff_id
    except DoesNotExist:
        raise errors.refused(errors.CODE_NOT_USABLE, "the clerk of this code is gone", param="code") from None


def create(code: QrCode, payer: Payer, amount_fen: int, remark: str | None, attempt_id: str,
           channel_wallet: str, merchant: SubMerchant | None = None, provider: Provider | None = None,
           clerk: Staff | None = None) -> CreatedOrder:
    """The order of this attempt, placed at its channel. Refusals (setup missing, code not
    usable) come before any write and before anything is sent upstream. `merchant`,
    `provider` and `clerk` are the code's records when the caller already read them."""
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        raise InvalidField("amount", "amount must be a positive whole number of fen")
    if not isinstance(attempt_id, str) or not _ATTEMPT_ID.match(attempt_id):
        raise InvalidField("attempt_id", "attempt_id must be 16-64 of A-Z a-z 0-9 _ -")
    if not payer.payer_id:
        raise errors.refused(errors.PAYER_MISSING, "the payer is not identified", param="payer")
    if remark is not None and (not isinstance(remark, str) or len(remark) > 64):
        raise InvalidField("remark", "备注最多 64 个字")
    source = _usable_code(code)
    merchant = merchant or SubMerchant.get(code.account_id, code.merchant_id)
    provider = provider or providers.get(merchant.account_id, merchant.sp_mchid)
    channel = channels.route(merchant, provider, channel_wallet)
    order = _write_once(code, source, merchant, provider, channel, channel_wallet, payer, amount_fen, remark,
                        attempt_id, clerk)
    if order.state != NOTPAY:
        return CreatedOrder(order, None)
    pay_params, prepay_id, trade_no = channels.place(order, merchant, provider)
    _remember_channel_ids(order, prepay_id, trade_no)
    return CreatedOrder(order, pay_params)


def _write_once(code: QrCode, source: str, merchant: SubMerchant, provider, channel: str, wallet: str,
                payer: Payer, amount_fen: int, remark: str | None, attempt_id: str, clerk: Staff | None) -> Order:
    current, at = settings.current(), now()
    out_trade_no = out_trade_no_for(merchant.order_prefix, attempt_id)
    order = Order(out_trade_no=out_trade_no, account_id=merchant.account_id, sp_mchid=merchant.sp_mchid,
                  merchant_id=merchant.merchant_id, ssp_account_id=merchant.ssp_account_id, store_id=code.store_id,
                  clerk_id=_clerk_id(code, clerk), code_id=code.code_id, source=source, channel=channel, wallet=wallet,
                  state=NOTPAY, total=amount_fen, description=channels.description(merchant),
                  payer_id=payer.payer_id, payer_app_id=channels.payer_app_id(provider, wallet),
                  sub_mchid=merchant.sub_mchid if channel != channels.ALIPAY else None, remark=remark or None,
                  attempt_id=attempt_id, created_at=at, created_key=f"{at:010d}#{out_trade_no}",
                  time_expire=at + current.order_expire_seconds,
                  open_shard=outbox.shard_of(out_trade_no), check_at=at + current.order_catch_up_after_seconds)
    try:
        order.save(condition=Order.out_trade_no.does_not_exist())
        return order
    except PutError as exc:
        if not condition_failed(exc):
            raise
    existing = Order.get(out_trade_no, consistent_read=True)
    if (existing.merchant_id, existing.attempt_id, existing.total, existing.payer_id, existing.channel) != \
            (merchant.merchant_id, attempt_id, amount_fen, payer.payer_id, channel):
        raise errors.refused(errors.ATTEMPT_REUSED, "this attempt id was used for another payment: start a new one",
                             param="attempt_id")
    return existing


def _remember_channel_ids(order: Order, prepay_id: str | None, trade_no: str | None) -> None:
    actions = ([Order.prepay_id.set(prepay_id)] if prepay_id else []) + \
        ([Order.upstream_trade_no.set(trade_no)] if trade_no else [])
    if not actions or (order.prepay_id == prepay_id and order.upstream_trade_no == trade_no):
        return
    try:
        order.update(actions=actions, condition=Order.state == NOTPAY, add_version_condition=False)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        logger.info("order settled before its channel ids were stored", extra={"out_trade_no": order.out_trade_no})


def is_paid(order: Order) -> bool:
    return order.state == PAID
