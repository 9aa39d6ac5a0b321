"""C6: the day's trade and refund totals of one scope (an account, a provider, a merchant, a
store, a clerk, a device, a collection code; each also per channel).

One item per (scope, Beijing day), added to once per paid order or succeeded refund by
`payments.totals.record_once`, so a 90-day summary reads at most 90 small items of one
partition instead of every order.
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class DailyTotals(Model):
    Meta = table_meta("daily_totals_table")

    scope = UnicodeAttribute(hash_key=True)  # e.g. "merchant#<merchant_id>", "store#<id>|channel#alipay"
    day = UnicodeAttribute(range_key=True)  # "YYYY-MM-DD", Beijing time
    trade_amount = NumberAttribute(default=0)  # fen
    trade_count = NumberAttribute(default=0)
    refund_amount = NumberAttribute(default=0)  # fen
    refund_count = NumberAttribute(default=0)
