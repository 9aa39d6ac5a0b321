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
