"""Why a payment cannot be made, as a code the pay page words in Chinese, and a status.

Each is raised before anything is sent upstream, so a refused attempt leaves no trace at
any channel.
"""
from __future__ import annotations

from chalicelib.errors import ApiError


class PaymentRefused(ApiError):
    """The attempt cannot go ahead (setup missing, code not usable, attempt reused)."""

    status = 409
    type = "invalid_request_error"
    code = "payment_refused"


def refused(code: str, message: str, param: str | None = None) -> PaymentRefused:
    return PaymentRefused(message, param=param, code=code)


WECHAT_PAY_NOT_CONFIGURED = "wechat_pay_not_configured"
ALIPAY_NOT_AUTHORIZED = "alipay_not_authorized"
NO_SUB_MCHID = "sub_mchid_missing"
CODE_NOT_USABLE = "collection_code_not_usable"
WALLET_NOT_SUPPORTED = "wallet_not_supported"
ATTEMPT_REUSED = "attempt_reused"
PAYER_MISSING = "payer_missing"
