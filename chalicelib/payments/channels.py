"""The three channels behind one small interface: place, query and close an order.

WeChat Pay partner JSAPI uses the provider's own credentials; 买单 uses the platform's
partner key (chalicelib/upstream/maidan.py); Alipay uses the provider's ISV app and the
merchant's `app_auth_token`. What each answers is read into one `ChannelState`, so the
sweeps and the notifications settle orders by one rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from chalicelib import alipay_authorization, providers, settings
from chalicelib.errors import Conflict
from chalicelib.models.orders import Order
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.payments import errors
from chalicelib.upstream import alipay, maidan, wechatpay

OFFICIAL_DIRECT = "official_direct"
MAIDAN = "maidan"
ALIPAY = "alipay"


@dataclass(frozen=True)
class ChannelState:
    """What the channel says about an order: paid (with its trade number and amount), still
    payable, or never to be paid (closed, failed)."""

    paid: bool
    finished_unpaid: bool
    upstream_trade_no: str | None = None
    amount_fen: int | None = None
    payer_id: str | None = None


class AlreadyPaid(Exception):
    """The channel refused to close the order because it is paid: settle it instead."""


def alipay_credentials(merchant: SubMerchant, provider: Provider | None = None) -> alipay_authorization.MerchantAlipay:
    """The merchant's Alipay token, or `alipay_not_authorized` before anything is sent."""
    try:
        return alipay_authorization.payment_credentials(merchant, provider=provider)
    except Conflict as exc:
        raise errors.refused(errors.ALIPAY_NOT_AUTHORIZED, str(exc), param="alipay_authorization") from None


def check_alipay(merchant: SubMerchant, provider: Provider) -> None:
    """What `alipay_credentials` would refuse, decided on the records at hand (nothing
    decrypted): the pay page asks this before sending anyone through Alipay's OAuth."""
    try:
        if not providers.alipay_configured(provider):
            raise Conflict(f"provider {provider.sp_mchid} has not configured Alipay", code="alipay_not_configured")
        alipay_authorization.check_usable(merchant, providers.mapping(provider.alipay)["app_id"])
    except Conflict as exc:
        raise errors.refused(errors.ALIPAY_NOT_AUTHORIZED, str(exc), param="alipay_authorization") from None


def route(merchant: SubMerchant, provider: Provider, wallet: str) -> str:
    """The channel an attempt goes to, or a refusal naming what is missing (nothing is sent)."""
    if wallet == "alipay":
        check_alipay(merchant, provider)
        return ALIPAY
    if wallet != "wechat":
        raise errors.refused(errors.WALLET_NOT_SUPPORTED, "pay with WeChat or Alipay", param="wallet")
    if not merchant.sub_mchid:
        raise errors.refused(errors.NO_SUB_MCHID, "the merchant has no WeChat Pay sub_mchid", param="sub_mchid")
    if merchant.channel == MAIDAN:
        return MAIDAN
    if not providers.wechat_pay_configured(provider):
        raise errors.refused(errors.WECHAT_PAY_NOT_CONFIGURED,
                             f"provider {provider.sp_mchid} has not configured WeChat Pay", param="wechat_pay")
    return OFFICIAL_DIRECT


def payer_app_id(provider: Provider, wallet: str) -> str:
    """The appid the payer's id must be issued for: the provider's official account (the
    platform's when the provider has none, for 买单), or the provider's Alipay app."""
    if wallet == "alipay":
        return providers.mapping(provider.alipay).get("app_id", "")
    return providers.mapping(provider.wechat).get("app_id") or settings.current().wechat_app_id


def notify_url(channel: str, account_id: str, sp_mchid: str) -> str:
    """Where the channel posts its notifications. WeChat Pay's names the provider's account
    and sp_mchid: the body is encrypted with that provider's key, so the provider is read by
    its key before anything else (one GetItem, no look-up of who holds the sp_mchid)."""
    base = settings.current().public_base_url
    return {OFFICIAL_DIRECT: f"{base}/notify/wechatpay/{account_id}/{sp_mchid}", MAIDAN: f"{base}/notify/maidan",
            ALIPAY: f"{base}/notify/alipay"}[channel]


def _expiry(order: Order) -> datetime:
    return datetime.fromtimestamp(order.time_expire, tz=timezone.utc)


def description(merchant: SubMerchant) -> str:
    """What the wallet shows: the merchant's name (Alipay forbids / = & in a subject)."""
    name = (merchant.short_name or merchant.name).translate({ord(c): " " for c in "/=&"}).strip() or "收款"
    return name.encode()[:120].decode(errors="ignore")


def place(order: Order, merchant: SubMerchant, provider: Provider) -> tuple[dict, str | None, str | None]:
    """Place `order` at its channel: (what the page passes to the wallet, prepay_id, trade_no).
    Each channel answers the same out_trade_no with the same details with the same order,
    so placing again after a lost answer is safe."""
    url = notify_url(order.channel, order.account_id, order.sp_mchid)
    if order.channel == OFFICIAL_DIRECT:
        credentials = providers.wechat_pay_merchant(provider)
        prepay_id = wechatpay.create_jsapi_order(
            credentials, sp_appid=order.payer_app_id, sub_mchid=order.sub_mchid, description=description(merchant),
            out_trade_no=order.out_trade_no, amount_total=int(order.total), notify_url=url,
            time_expire=_expiry(order), sp_openid=order.payer_id)
        return wechatpay.jsapi_pay_params(credentials, order.payer_app_id, prepay_id), prepay_id, None
    if order.channel == MAIDAN:
        created = maidan.create_order(sp_mchid=order.sp_mchid, sub_mchid=order.sub_mchid, appid=order.payer_app_id,
                                      out_trade_no=order.out_trade_no, description=description(merchant),
                                      total=int(order.total), payer_openid=order.payer_id, notify_url=url,
                                      time_expire=_expiry(order))
        return dict(created.pay_params), created.pay_params.get("package", "").removeprefix("prepay_id="), \
            created.order_id
    credentials = alipay_credentials(merchant, provider)
    trade = alipay.create_trade(credentials.app, app_auth_token=credentials.app_auth_token,
                                out_trade_no=order.out_trade_no, total_fen=int(order.total),
                                subject=description(merchant), buyer_id=order.payer_id, time_expire=_expiry(order),
                                notify_url=url, seller_id=credentials.user_id)
    return {"tradeNO": trade.trade_no}, None, trade.trade_no


def query(order: Order, merchant: SubMerchant, provider: Provider) -> ChannelState:
    """The order as its channel sees it now; an order the channel never saw is not paid."""
    if order.channel == OFFICIAL_DIRECT:
        try:
            found = wechatpay.query_order_by_out_trade_no(providers.wechat_pay_merchant(provider), order.sub_mchid,
                                                          order.out_trade_no)
        except wechatpay.WechatPayNotFound:
            return ChannelState(paid=False, finished_unpaid=False)
        return ChannelState(paid=found.paid, finished_unpaid=found.trade_state in ("CLOSED", "REVOKED", "PAYERROR"),
                            upstream_trade_no=found.transaction_id, amount_fen=found.amount_total,
                            payer_id=found.sp_openid)
    if order.channel == MAIDAN:
        try:
            found = maidan.query_order(order.sp_mchid, order.out_trade_no)
        except maidan.MaidanError as exc:
            if exc.code == "ORDER_NOT_EXIST":
                return ChannelState(paid=False, finished_unpaid=False)
            raise
        return ChannelState(paid=found.trade_state == "SUCCESS",
                            finished_unpaid=found.trade_state in ("CLOSED", "PAYERROR"),
                            upstream_trade_no=found.order_id, amount_fen=found.total, payer_id=found.payer_openid)
    credentials = alipay_credentials(merchant, provider)
    try:
        trade = alipay.query_trade(credentials.app, app_auth_token=credentials.app_auth_token,
                                   out_trade_no=order.out_trade_no)
    except alipay.TradeNotExist:
        return ChannelState(paid=False, finished_unpaid=False)
    return ChannelState(paid=trade.paid, finished_unpaid=trade.trade_status == "TRADE_CLOSED",
                        upstream_trade_no=trade.trade_no, amount_fen=trade.total_fen, payer_id=trade.buyer_id)


def close(order: Order, merchant: SubMerchant, provider: Provider) -> None:
    """Close the order at its channel (closing a closed or unknown order is fine); raises
    AlreadyPaid when the channel says it was paid after all."""
    try:
        if order.channel == OFFICIAL_DIRECT:
            wechatpay.close_order(providers.wechat_pay_merchant(provider), order.sub_mchid, order.out_trade_no)
        elif order.channel == MAIDAN:
            maidan.close_order(order.sp_mchid, order.out_trade_no)
        else:
            credentials = alipay_credentials(merchant, provider)
            alipay.close_trade(credentials.app, app_auth_token=credentials.app_auth_token,
                               out_trade_no=order.out_trade_no)
    except (wechatpay.WechatPayOrderPaid, alipay.TradeStatusError) as exc:
        raise AlreadyPaid(str(exc)) from None
    except (wechatpay.WechatPayNotFound, wechatpay.WechatPayOrderClosed, alipay.TradeNotExist,
            alipay.TradeHasClosed):
        return
    except maidan.MaidanError as exc:
        if exc.code == "ORDER_PAID":
            raise AlreadyPaid(str(exc)) from None
        if exc.code != "ORDER_NOT_EXIST":
            raise


# --- P6 refunds ------------------------------------------------------------------------------

REFUND_SUCCESS = "SUCCESS"
REFUND_PROCESSING = "PROCESSING"
REFUND_ABNORMAL = "ABNORMAL"
REFUND_FAILED = "FAILED"
WECHATPAY_ABNORMAL = "退款异常，请在微信支付商户平台处理（用户的收款账户不可用）"
WECHATPAY_CLOSED = "微信支付已关闭这笔退款"
WECHATPAY_UNVERIFIED = "UNVERIFIED"
"""The code upstream.wechatpay gives an unsigned error answer (only its status is real)."""

MAIDAN_REFUSALS = {"NOT_ENOUGH": "商户可退余额不足，请稍后再试", "PARAM_ERROR": "退款参数有误",
                   "ORDER_NOT_EXIST": "买单没有找到这笔订单", "ORDER_NOT_PAID": "订单未支付，不能退款"}
"""买单 answers in English: the refusals a merchant may see, in Chinese."""
MAIDAN_TRANSIENT = ("SYSTEM_ERROR", "FREQUENCY_LIMITED")


@dataclass(frozen=True)
class RefundState:
    """What the channel says about one refund: done, refused for good (`failure`, the
    channel's reason in Chinese), abnormal (WeChat Pay could not pay it out: not final, the
    merchant handles it at WeChat Pay and SUCCESS may follow), or still processing."""

    state: str
    failure: str | None = None
    upstream_refund_id: str | None = None


def _wechatpay_refund_state(found: wechatpay.Refund) -> RefundState:
    """SUCCESS is done and CLOSED refused for good; ABNORMAL (money back to an account that
    no longer takes it) waits for the merchant at WeChat Pay; anything else is processing."""
    if found.status == "SUCCESS":
        return RefundState(REFUND_SUCCESS, upstream_refund_id=found.refund_id)
    if found.status == "CLOSED":
        return RefundState(REFUND_FAILED, WECHATPAY_CLOSED, found.refund_id)
    if found.status == "ABNORMAL":
        return RefundState(REFUND_ABNORMAL, WECHATPAY_ABNORMAL, found.refund_id)
    return RefundState(REFUND_PROCESSING, upstream_refund_id=found.refund_id)


def _maidan_refund_state(found: maidan.MaidanRefund) -> RefundState:
    state = REFUND_SUCCESS if found.status == "SUCCESS" else REFUND_PROCESSING
    return RefundState(state, upstream_refund_id=found.refund_id)


def refund(order: Order, refund_record, merchant: SubMerchant, provider: Provider) -> RefundState:
    """Ask the order's channel for the refund. Each channel answers the same out_refund_no
    with the same refund, so asking again is safe, and is how a lost answer (or, for Alipay,
    which has no refund notification of its own, a refund still unknown) is found out.
    A verified refusal is a `REFUND_FAILED` state; an unsigned error answer is processing
    (anyone on the way could have written it); trouble on the way (a timeout) raises: the
    refund stays processing and the refund sweep asks again."""
    amount, out_refund_no = int(refund_record.amount), refund_record.out_refund_no
    try:
        if order.channel == OFFICIAL_DIRECT:
            return _wechatpay_refund_state(wechatpay.create_refund(
                providers.wechat_pay_merchant(provider), sub_mchid=order.sub_mchid, out_refund_no=out_refund_no,
                refund=amount, total=int(order.total), out_trade_no=order.out_trade_no,
                reason=refund_record.reason or None,
                notify_url=notify_url(OFFICIAL_DIRECT, order.account_id, order.sp_mchid)))
        if order.channel == MAIDAN:
            return _maidan_refund_state(maidan.create_refund(
                sp_mchid=order.sp_mchid, out_trade_no=order.out_trade_no, out_refund_no=out_refund_no, refund=amount,
                total=int(order.total), notify_url=notify_url(MAIDAN, order.account_id, order.sp_mchid)))
        credentials = alipay_credentials(merchant, provider)
        answer = alipay.refund_trade(credentials.app, app_auth_token=credentials.app_auth_token, refund_fen=amount,
                                     out_request_no=out_refund_no, out_trade_no=order.out_trade_no,
                                     refund_reason=refund_record.reason or None)
        return RefundState(REFUND_SUCCESS, upstream_refund_id=answer.trade_no)
    except wechatpay.WechatPayTryLater:
        return RefundState(REFUND_PROCESSING)
    except wechatpay.WechatPayError as exc:
        if exc.code == WECHATPAY_UNVERIFIED:  # nothing in an unsigned answer may be believed
            return RefundState(REFUND_PROCESSING)
        return RefundState(REFUND_FAILED, exc.message or exc.code)
    except maidan.MaidanError as exc:
        if exc.status >= 500 or exc.code in MAIDAN_TRANSIENT:
            return RefundState(REFUND_PROCESSING)
        return RefundState(REFUND_FAILED, MAIDAN_REFUSALS.get(exc.code, f"买单拒绝了退款（{exc.code}）"))
    except alipay.AlipayError as exc:
        if exc.transient or not exc.verified:
            return RefundState(REFUND_PROCESSING)
        return RefundState(REFUND_FAILED, exc.sub_msg or exc.msg or exc.sub_code)
    except errors.PaymentRefused:
        return RefundState(REFUND_FAILED, "商户尚未授权服务商的支付宝应用，不能退款")


def query_refund(order: Order, refund_record, merchant: SubMerchant, provider: Provider) -> RefundState | None:
    """The refund as its channel sees it now; None when the channel never received it (the
    caller then asks for it again with the same out_refund_no). Alipay has no separate
    answer to wait for: asking again answers the refund itself."""
    try:
        if order.channel == OFFICIAL_DIRECT:
            return _wechatpay_refund_state(wechatpay.query_refund(providers.wechat_pay_merchant(provider),
                                                                  order.sub_mchid, refund_record.out_refund_no))
        if order.channel == MAIDAN:
            return _maidan_refund_state(maidan.query_refund(order.sp_mchid, refund_record.out_refund_no))
    except wechatpay.WechatPayNotFound:
        return None
    except maidan.MaidanError as exc:
        if exc.code == "ORDER_NOT_EXIST":
            return None
        raise
    return refund(order, refund_record, merchant, provider)


def check_refundable(order: Order, merchant: SubMerchant, provider: Provider) -> None:
    """What the channel needs before a refund is written, decided on the records at hand
    (nothing decrypted): a refusal here leaves no refund and no trace at the channel."""
    if order.channel == ALIPAY:
        check_alipay(merchant, provider)
    elif order.channel == OFFICIAL_DIRECT and not providers.wechat_pay_configured(provider):
        raise errors.refused(errors.WECHAT_PAY_NOT_CONFIGURED,
                             f"provider {provider.sp_mchid} has not configured WeChat Pay", param="wechat_pay")
