"""C5.5 on the phone: the page Alipay sends a merchant back to after it authorized (or not)
the provider's app. Every outcome is a page in words the merchant understands, never a
trace; tokens, codes and the state never appear on it or in the logs."""
from __future__ import annotations

from chalicelib import alipay_authorization
from chalicelib.h5 import PageResponse
from chalicelib.log import logger
from chalicelib.web import render

_REFUSAL_PAGES = {
    "state_invalid": (400, "授权链接无效", "这个授权链接不完整，或不是云支付生成的。请让服务商在控制台重新生成支付宝授权链接。"),
    "state_expired": (410, "授权链接已过期", "授权链接的有效期（24 小时）已过。请让服务商在控制台重新生成支付宝授权链接后再授权。"),
    "merchant_gone": (404, "商户不存在", "这个授权链接对应的商户已不存在，无需授权。如有疑问请联系服务商。"),
    "not_configured": (409, "服务商尚未配置支付宝", "服务商还没有在云支付控制台配置支付宝应用，暂时无法授权。请联系服务商。"),
    "app_mismatch": (409, "授权的应用不一致",
                     "您授权的支付宝应用与服务商当前配置的应用不一致（服务商可能更换了应用）。请让服务商重新生成授权链接。"),
    "code_missing": (400, "授权未完成", "支付宝没有返回授权码，授权未完成。请重新打开授权链接，在支付宝页面确认授权。"),
    "code_used": (410, "授权码已使用或已过期",
                  "这个支付宝授权码已经使用过或已过期（刷新本页面会重复提交）。如果刚才已授权成功，服务商控制台会显示“已授权”；"
                  "否则请重新打开授权链接。"),
    "other_user": (409, "商户已由其他支付宝账号授权",
                   "该商户已由另一个支付宝账号授权。如需更换账号，请服务商先在控制台清除原授权，再重新授权。"),
    "alipay_unavailable": (502, "支付宝暂时不可用", "支付宝暂时没有响应，请稍后重新打开授权链接。"),
    "alipay_refused": (502, "支付宝拒绝了授权", "支付宝没有接受这次授权。请稍后重试，或联系服务商检查支付宝应用配置。"),
    "busy": (503, "系统繁忙", "保存授权时商户资料正在被修改，请重新打开授权链接再授权一次。"),
}


def _page(status_code: int, page_id: str, title: str, message: str, tone: str, detail: str | None) -> PageResponse:
    html = render("message.html", page_id=page_id, title=title, message=message, tone=tone, steps=[], detail=detail)
    return PageResponse(status_code, html, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"})


def callback_page(query: dict) -> PageResponse:
    """GET alipay_authorization.CALLBACK_PATH: where Alipay sends the merchant back; always a page, never a trace."""
    try:
        merchant = alipay_authorization.complete_authorization(query)
    except alipay_authorization.AuthorizationRefused as refused:
        logger.info("alipay authorization refused", extra={"reason": refused.reason, "detail": refused.detail})
        status_code, title, message = _REFUSAL_PAGES[refused.reason]
        detail = None
        if refused.reason == "other_user":
            detail = f"已授权的支付宝账号：{refused.detail}"
        elif refused.reason == "alipay_refused":
            detail = f"支付宝返回：{refused.detail}"
        return _page(status_code, "alipay-auth-" + refused.reason.replace("_", "-"), title, message, "err", detail)
    logger.info("alipay authorized", extra={"merchant_id": merchant.merchant_id})
    return _page(200, "alipay-authorized", "授权成功", f"商户“{merchant.name}”已授权服务商代为使用支付宝收款。", "ok",
                 f"支付宝账号：{alipay_authorization.masked(merchant.alipay.user_id)}。现在可以关闭此页面。")
