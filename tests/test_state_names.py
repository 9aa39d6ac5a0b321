"""The phone pages, the CSV and the console word order and refund states alike."""
from __future__ import annotations

import re
from pathlib import Path

from chalicelib.payments import names

ORDERS_JS = Path(__file__).resolve().parent.parent / "chalicelib" / "web" / "static" / "console" / "orders.js"


def console_words(table: str) -> dict:
    body = re.search(rf"export const {table} = \{{(.*?)\}};", ORDERS_JS.read_text(encoding="utf-8"), re.S).group(1)
    return dict(re.findall(r'(\w+): \["([^"]+)"', body))


def test_the_phone_and_the_console_name_each_order_and_refund_state_the_same():
    assert names.ORDER_STATES == console_words("ORDER_STATE")
    assert names.REFUND_STATES == console_words("REFUND_STATE")
