"""The Chinese names of order states, refund states and wallets, one wording for the phone
pages, the CSV export and the console (whose orders.js ORDER_STATE and REFUND_STATE say the
same words): a merchant who reads "退款中" on the phone finds "退款中" in the console.
"""
from __future__ import annotations

ORDER_STATES = {"NOTPAY": "待支付", "SUCCESS": "已支付", "CLOSED": "已关闭", "PAYERROR": "支付失败"}
REFUND_STATES = {"PROCESSING": "退款中", "ABNORMAL": "退款异常", "SUCCESS": "退款成功", "FAILED": "退款失败"}
WALLETS = {"wechat": "微信", "alipay": "支付宝"}
