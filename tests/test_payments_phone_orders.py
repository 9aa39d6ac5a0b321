"""P7 on the phone: a merchant admin reads the merchant's orders, a store manager the store's,
a clerk the store's only while on shift; a stranger learns nothing. The shop (admin, manager,
clerk) is set up as tests/test_onecode_store_pages.py sets it up; orders are stored as the
payment path stores them."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from chalicelib.models.orders import Order
from chalicelib.onecode import access, staff
from chalicelib.payments import phone_orders, queries
from tests.drivers import Phone
from tests.test_h5_words import visible_words
from tests.test_onecode_store_pages import shop  # noqa: F401 (the fixture)

OTHER_STORE = "st_other_store"
AT = 1_780_000_000  # 2026-05-28 20:26:40 UTC, 2026-05-29 04:26:40 in Beijing


def save_order(of_shop, number: int, store_id: str, *, total: int = 1234, state: str = "SUCCESS",
               refunded: int = 0) -> Order:
    out_trade_no = f"M00001ORDER{number:04d}"
    at = AT + number * 60
    order = Order(out_trade_no=out_trade_no, account_id=of_shop.account_id, sp_mchid="1900000109",
                  merchant_id=of_shop.merchant_id, store_id=store_id, channel="official_direct", wallet="wechat",
                  state=state, total=total, refunded=refunded, created_at=at, created_key=f"{at:010d}#{out_trade_no}")
    order.save()
    return order


def listed(phone: Phone) -> list[str]:
    """The order numbers the page lists, top to bottom (each row shows it and links to it)."""
    return list(dict.fromkeys(re.findall(r"M00001ORDER\d{4}", phone.html)))


def orders_of(phone: Phone, path: str) -> Phone:
    phone.open(path)
    assert phone.status == 200 and phone.page_id == "orders", phone.html
    return phone


@pytest.fixture
def orders(shop):  # noqa: F811 (the imported fixture)
    """Two orders of the shop's store (the newer one closed) and one of another store."""
    store_id = shop.store.store_id
    return {"paid": save_order(shop, 1, store_id), "closed": save_order(shop, 2, store_id, total=50, state="CLOSED"),
            "elsewhere": save_order(shop, 3, OTHER_STORE, total=999)}


def test_a_manager_sees_the_stores_orders_newest_first_in_beijing_time_yuan_and_chinese(shop, orders):  # noqa: F811
    page = orders_of(shop.manager, f"/h5/stores/{shop.store.store_id}/orders")

    assert listed(page) == ["M00001ORDER0002", "M00001ORDER0001"]
    beijing = datetime.fromtimestamp(AT + 60, ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert beijing == "2026-05-29 04:27:40" and beijing in page.html
    assert "12.34 元" in page.html and "0.50 元" in page.html and "9.99 元" not in page.html
    assert "已支付" in page.html and "已关闭" in page.html and "微信" in page.html
    assert visible_words(re.sub(r"M00001ORDER\d{4}", "", page.html)) == []  # order numbers aside, all Chinese


def test_an_admin_sees_the_whole_merchant_on_its_page_and_one_store_on_the_store_page(shop, orders):  # noqa: F811
    merchant = orders_of(shop.admin, f"/h5/merchants/{shop.merchant_id}/orders")
    assert listed(merchant) == ["M00001ORDER0003", "M00001ORDER0002", "M00001ORDER0001"]

    store = orders_of(shop.admin, f"/h5/stores/{shop.store.store_id}/orders")
    assert listed(store) == ["M00001ORDER0002", "M00001ORDER0001"]


def test_a_clerk_sees_the_stores_orders_only_while_on_shift(shop, orders):  # noqa: F811
    path = f"/h5/stores/{shop.store.store_id}/orders"

    off = shop.clerk.open(path)
    assert (off.status, off.page_id) == (403, "clerk-off-shift") and "上班打卡" in off.html
    assert listed(off) == []

    clerk, _ = access.in_store(shop.store.store_id, shop.openids[shop.clerk.user_id])
    staff.clock_in(clerk)
    assert listed(orders_of(shop.clerk, path)) == ["M00001ORDER0002", "M00001ORDER0001"]

    staff.clock_out(access.in_store(shop.store.store_id, shop.openids[shop.clerk.user_id])[0])
    assert shop.clerk.open(path).status == 403


def test_a_clerk_off_shift_is_refused_by_the_query_itself(shop, orders):  # noqa: F811
    clerk, _ = access.in_store(shop.store.store_id, shop.openids[shop.clerk.user_id])

    with pytest.raises(queries.ClerkOffShift) as refused:
        queries.for_phone(clerk, 20, None)

    assert refused.value.status == 403 and "上班打卡" in refused.value.message


def test_a_stranger_and_a_manager_without_admin_role_get_the_no_role_page(shop, orders, client):  # noqa: F811
    stranger = Phone(client, "guest-01")
    for path in (f"/h5/stores/{shop.store.store_id}/orders", f"/h5/merchants/{shop.merchant_id}/orders",
                 f"/h5/stores/{OTHER_STORE}/orders"):
        assert (stranger.open(path).status, stranger.page_id) == (404, "no-role-here"), path
        assert listed(stranger) == []
    manager = shop.manager.open(f"/h5/merchants/{shop.merchant_id}/orders")
    assert (manager.status, manager.page_id) == (404, "no-role-here")


def test_the_list_is_paged_with_a_cursor_that_only_its_reader_can_use(shop, monkeypatch, client):  # noqa: F811
    monkeypatch.setattr(phone_orders, "ORDERS_PER_PAGE", 2)
    for number in range(1, 6):
        save_order(shop, number, shop.store.store_id)
    path = f"/h5/stores/{shop.store.store_id}/orders"

    page = orders_of(shop.manager, path)
    first, more = listed(page), re.search(r'href="([^"]+)" id="more-orders"', page.html).group(1).replace("&amp;", "&")
    second = listed(orders_of(shop.manager, more))

    assert first == ["M00001ORDER0005", "M00001ORDER0004"] and second == ["M00001ORDER0003", "M00001ORDER0002"]
    admin = shop.admin.open(more)  # another reader's cursor is refused as a bad link, in Chinese
    assert admin.status == 400 and "翻页链接已失效" in admin.html


def test_the_store_and_merchant_pages_link_to_their_order_lists(shop):  # noqa: F811
    store = shop.manager.open(f"/h5/stores/{shop.store.store_id}")
    merchant = shop.admin.open(f"/h5/merchants/{shop.merchant_id}")

    assert f'href="/h5/stores/{shop.store.store_id}/orders"' in store.html
    assert f'href="/h5/merchants/{shop.merchant_id}/orders"' in merchant.html


def test_a_refunded_order_shows_what_was_refunded(shop):  # noqa: F811
    save_order(shop, 1, shop.store.store_id, total=1000, refunded=300)

    page = orders_of(shop.manager, f"/h5/stores/{shop.store.store_id}/orders")

    assert "已支付（已退 3.00 元）" in page.html
