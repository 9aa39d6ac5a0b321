"""C6 on the phone: the merchant's order list shows today's and this month's figures for its
admins, the store's list today's for the store; the figures come from the daily totals as
the payment follow-up counts them (paid orders on their paid day, refunds on theirs)."""
from __future__ import annotations

import re

import pytest

from chalicelib.models.orders import Order
from chalicelib.payments import phone_orders
from tests import transactions_data as data
from tests.test_onecode_store_pages import shop  # noqa: F401 (the fixture)

AT = 1_780_000_000  # 2026-05-29 04:26:40 in Beijing
DAY = 86_400
OTHER_STORE = "st_other_store"


def counted_order(of_shop, number: int, store_id: str, paid_at: int, total: int) -> Order:
    """A paid order, stored and counted into the daily totals as the follow-up counts it."""
    out_trade_no = f"M00001SUM{number:04d}"
    order = Order(out_trade_no=out_trade_no, account_id=of_shop.account_id, sp_mchid=data.SP_MCHID,
                  merchant_id=of_shop.merchant_id, store_id=store_id, channel="official_direct", wallet="wechat",
                  state="SUCCESS", total=total, refunded=0, created_at=paid_at - 30, paid_at=paid_at,
                  created_key=f"{paid_at - 30:010d}#{out_trade_no}")
    order.save()
    data.count_paid(order)
    return order


@pytest.fixture
def takings(shop, monkeypatch):  # noqa: F811 (the imported fixture)
    """Today (2026-05-29, Beijing) the store took 12.34 and 5.00 (1.00 of it refunded three
    hours later) and another store 9.99; on 2026-05-10 the store took 20.00; on 2026-04-30
    (last month) 77.00. The phone pages read "now" as today at 09:26."""
    store_id = shop.store.store_id
    counted_order(shop, 1, store_id, AT, 1234)
    refunded = counted_order(shop, 2, store_id, AT + 60, 500)
    data.count_refund(refunded, data.refund_of(refunded, 100))
    counted_order(shop, 3, OTHER_STORE, AT + 120, 999)
    counted_order(shop, 4, store_id, AT - 19 * DAY, 2000)
    counted_order(shop, 5, store_id, AT - 29 * DAY, 7700)
    monkeypatch.setattr(phone_orders, "now", lambda: AT + 5 * 3600)


def summaries_shown(phone) -> list[str]:
    """The summary lines on top of the list, as the reader sees them (tags and spacing gone)."""
    assert phone.status == 200 and phone.page_id == "orders", phone.html
    lines = re.findall(r'<p class="summary" id="summary-\d">(.*?)</p>', phone.html, re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", "", line).split()) for line in lines]


def test_a_merchant_admin_sees_todays_and_this_months_figures_on_the_merchant_orders_page(shop, takings):  # noqa: F811
    page = shop.admin.open(f"/h5/merchants/{shop.merchant_id}/orders")

    assert summaries_shown(page) == [
        "今日 收款 27.33 元（3 笔） · 退款 1.00 元（1 笔） · 净额 26.33 元",
        "本月 收款 47.33 元（4 笔） · 退款 1.00 元（1 笔） · 净额 46.33 元"]


def test_the_store_orders_page_shows_the_stores_figures_of_today_only(shop, takings):  # noqa: F811
    store_path = f"/h5/stores/{shop.store.store_id}/orders"
    expected = ["今日 收款 17.34 元（2 笔） · 退款 1.00 元（1 笔） · 净额 16.34 元"]

    assert summaries_shown(shop.manager.open(store_path)) == expected
    assert summaries_shown(shop.admin.open(store_path)) == expected
