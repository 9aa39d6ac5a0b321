"""C6 lists and CSV: `GET /v1/transactions/orders|refunds` filtered, in cursor pages, scoped to
the owner or the sub-service-provider the item is attributed to; `GET
/v1/transactions/orders.csv` in chunks, safe against formula injection, and a writer whose
memory stays bounded over 100,000 orders."""
from __future__ import annotations

import csv
import io
import random
import tracemalloc
from urllib.parse import urlencode

import pytest

from chalicelib.payments import transactions
from tests import transactions_data as data
from tests.dynamodb_calls import counting_aws_calls, recording_reads
from tests.test_daily_totals import make_shop, owner, reseller, stranger  # noqa: F401 (fixtures)


@pytest.fixture
def listed(owner, reseller):  # noqa: F811 (the imported fixtures)
    """60 orders of the owner's merchant and 40 of the reseller's, and a refund of five of each."""
    shops = [make_shop(owner, "直营面馆", 1), make_shop(owner, "渠道面馆", 2, reseller.account_id)]
    orders = [*data.orders(shops[0], 60, seed=3), *data.orders(shops[1], 40, seed=4)]
    paid = [order for order in orders if order.state == "SUCCESS"]
    refunds = [data.refund_of(order, 100) for order in paid[:5] + paid[-5:]]
    data.save_all(orders + refunds)
    return shops, orders, refunds


def numbers(user, path: str, **filters) -> list[str]:
    """Every item of the list with these filters, following the cursor page by page."""
    found, cursor = [], None
    while True:
        query = {**filters, "limit": 7, **({"cursor": cursor} if cursor else {})}
        answer = user.call("GET", f"{path}?{urlencode(query)}")
        assert answer.status == 200, answer.json
        found += [item.get("out_refund_no") or item["out_trade_no"] for item in answer.json["data"]]
        assert len(answer.json["data"]) <= 7
        cursor = answer.json["next_cursor"]
        if not cursor:
            return found


def newest_first(orders) -> list[str]:
    return [order.out_trade_no for order in sorted(orders, key=lambda o: o.created_key, reverse=True)]


def test_each_order_filter_narrows_the_list_to_exactly_its_orders_across_cursor_pages(owner, listed):  # noqa: F811 (the imported fixtures)
    shops, orders, _ = listed
    store_id = sorted(shops[0].stores)[1]
    clerk_id = shops[0].stores[sorted(shops[0].stores)[0]][0]
    middle = sorted(order.created_at for order in orders)[len(orders) // 2]
    cases = [({}, lambda o: True),
             ({"sp_mchid": data.SP_MCHID}, lambda o: True),
             ({"merchant_id": shops[1].merchant_id}, lambda o: o.merchant_id == shops[1].merchant_id),
             ({"sub_service_provider": shops[1].ssp_account_id}, lambda o: o.ssp_account_id == shops[1].ssp_account_id),
             ({"store_id": store_id, "state": "SUCCESS"}, lambda o: o.store_id == store_id and o.state == "SUCCESS"),
             ({"clerk_id": clerk_id}, lambda o: o.clerk_id == clerk_id),
             ({"code_id": f"code_{clerk_id}"}, lambda o: o.code_id == f"code_{clerk_id}"),
             ({"channel": "alipay", "merchant_id": shops[0].merchant_id},
              lambda o: o.channel == "alipay" and o.merchant_id == shops[0].merchant_id),
             ({"from": middle, "to": middle + 5 * data.DAY}, lambda o: middle <= o.created_at < middle + 5 * data.DAY),
             ({"device_id": "till-1"}, lambda o: False)]
    for filters, keep in cases:
        assert numbers(owner, "/v1/transactions/orders", **filters) == newest_first(filter(keep, orders)), filters


def test_refunds_are_listed_with_the_same_filters(owner, reseller, listed):  # noqa: F811 (the imported fixtures)
    _, _, refunds = listed
    store_id = refunds[0].store_id

    assert numbers(owner, "/v1/transactions/refunds") == [
        r.out_refund_no for r in sorted(refunds, key=lambda r: r.created_key, reverse=True)]
    assert sorted(numbers(owner, "/v1/transactions/refunds", store_id=store_id)) == sorted(
        r.out_refund_no for r in refunds if r.store_id == store_id)
    assert sorted(numbers(reseller, "/v1/transactions/refunds")) == sorted(
        r.out_refund_no for r in refunds if r.ssp_account_id == reseller.account_id)
    answer = owner.call("GET", "/v1/transactions/refunds?limit=1")
    assert answer.json["data"][0]["object"] == "refund" and answer.json["data"][0]["amount"] == 100


def test_a_sub_service_provider_lists_only_what_is_attributed_to_it_and_a_stranger_nothing(
        owner, reseller, stranger, listed):  # noqa: F811
    shops, orders, _ = listed
    theirs = newest_first(o for o in orders if o.merchant_id == shops[1].merchant_id)

    assert numbers(reseller, "/v1/transactions/orders") == theirs
    assert numbers(reseller, "/v1/transactions/orders", merchant_id=shops[1].merchant_id) == theirs
    for filters in ({"merchant_id": shops[0].merchant_id}, {"store_id": sorted(shops[0].stores)[0]},
                    {"sub_service_provider": reseller.account_id}):
        assert numbers(stranger, "/v1/transactions/orders", **filters) == [], filters
        assert numbers(stranger, "/v1/transactions/orders", **{k: "nosuch" for k in filters}) == []
    assert numbers(reseller, "/v1/transactions/orders", merchant_id=shops[0].merchant_id) == []
    assert numbers(stranger, "/v1/transactions/orders") == []
    assert numbers(stranger, "/v1/transactions/refunds") == []


def test_list_rows_name_their_merchant_and_store_read_in_one_batch_per_page(owner, reseller, listed):  # noqa: F811
    shops, orders, refunds = listed
    merchant_names = {shops[0].merchant_id: "直营面馆", shops[1].merchant_id: "渠道面馆"}

    with counting_aws_calls() as calls:
        page = owner.call("GET", "/v1/transactions/orders?limit=100").json["data"]

    assert len(page) == 100 and calls["BatchGetItem"] == 1
    assert all((row["merchant_name"], row["store_name"]) == (merchant_names[row["merchant_id"]], row["store_id"])
               for row in page)  # make_shop names each store by its id
    refund_rows = reseller.call("GET", "/v1/transactions/refunds").json["data"]
    assert refund_rows and all((row["merchant_name"], row["store_name"]) == ("渠道面馆", row["store_id"])
                               for row in refund_rows)


@pytest.mark.parametrize("path, query, param", [
    ("orders", "from=yesterday", "from"),
    ("orders", "from=200&to=100", "to"),
    ("orders", "state=PAID", "state"),
    ("refunds", "state=NOTPAY", "state"),
    ("refunds", "device_id=till-1", "device_id"),
    ("orders", "channel=cash", "channel"),
    ("orders", "store_id=%3Cscript%3E", "store_id"),
    ("orders", "limit=1000", "limit"),
    ("orders", "merchant=m1", "merchant"),
    ("orders.csv", "to=-1", "to"),
])
def test_a_bad_list_filter_is_refused_naming_the_field(owner, path, query, param):  # noqa: F811 (the imported fixtures)
    answer = owner.call("GET", f"/v1/transactions/{path}?{query}")

    assert (answer.status, answer.json["error"]["param"]) == (400, param)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_the_csv_export_comes_in_chunks_that_join_into_every_filtered_order(owner, listed, monkeypatch):  # noqa: F811 (the imported fixtures)
    shops, orders, _ = listed
    monkeypatch.setattr(transactions, "CSV_CHUNK_ROWS", 25)
    chunks, cursor = [], None
    while True:
        answer = owner.call("GET", "/v1/transactions/orders.csv?" + urlencode(
            {"merchant_id": shops[0].merchant_id, **({"cursor": cursor} if cursor else {})}))
        assert answer.status == 200 and answer.headers["content-type"] == "text/csv; charset=utf-8"
        chunks.append(answer.raw.decode("utf-8"))
        cursor = answer.headers.get("x-next-cursor")
        if not cursor:
            break

    assert len(chunks) == 3 and chunks[0].startswith("\ufeff商户订单号,") and not chunks[1].startswith("\ufeff")
    rows = csv_rows("".join(chunks).removeprefix("\ufeff"))
    assert rows[0] == list(transactions.CSV_HEADER)
    assert [row[0] for row in rows[1:]] == newest_first(o for o in orders if o.merchant_id == shops[0].merchant_id)
    first = next(o for o in orders if o.out_trade_no == rows[1][0])
    assert rows[1][6:8] == [f"{first.total // 100}.{first.total % 100:02d}", str(first.total)]


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_are_quoted_as_text():
    order = data.order(data.Shop("acct", "m1", "M1", None, {"st": ["c1"]}), 1, random.Random(1), states=("SUCCESS",))
    for evil in ("=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\t=1"):
        order.remark = evil
        [header, row] = csv_rows("".join(transactions.csv_pieces([order], with_header=True)).removeprefix("\ufeff"))
        assert row[header.index("备注")] == "'" + evil
    order.remark = "加辣 = 好吃"
    assert transactions.csv_row(order)[-1] == "加辣 = 好吃"


def test_the_csv_writer_holds_far_less_than_its_output_over_100000_orders():
    """All 100,000 rows go through the writer; tracemalloc (which makes each allocation about
    four times dearer) traces the last TRACED rows only. Anything the writer kept per row
    would keep growing while traced, so the memory it holds is sampled at every piece over
    those rows and must stay flat, and the peak far below what was written."""
    shop = data.Shop("acct", "merchant_1", "M00001", None, {"st_1": ["clerk_1", "clerk_2"], "st_2": ["clerk_3"]})
    distinct = list(data.orders(shop, 1000, seed=5))  # made before measuring: what is measured is the writer
    total, traced = 100_000, 25_000
    written = rows = 0
    held = []

    def stream():
        for number in range(total):
            if number == total - traced:
                tracemalloc.start()
            yield distinct[number % 1000]

    try:
        for piece in transactions.csv_pieces(stream(), with_header=True):
            written += len(piece.encode("utf-8"))
            rows += piece.count("\r\n")
            if tracemalloc.is_tracing():
                held.append(tracemalloc.get_traced_memory()[0])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert rows == total + 1 and written > 15_000_000
    assert len(held) >= traced // transactions.CSV_BATCH_ROWS - 1
    assert max(held[1:]) - min(held[1:]) < 32_000, held  # flat: under ~1.3 bytes per traced row
    assert peak < written / 10, (peak, written)


def test_the_dynamodb_backed_export_reads_its_orders_page_by_page_across_chunks(owner, monkeypatch):  # noqa: F811 (the imported fixtures)
    """Pages and chunks lowered (50 orders a Query, 120 rows a chunk) so that 300 stored
    orders cross several pages and two chunk boundaries, as 5,000-row chunks of 1,000-order
    pages do over a big merchant (moto's Query walks the whole index: thousands of stored
    orders made this test take 15 s on the shared machine)."""
    monkeypatch.setattr(transactions, "CSV_PAGE", 50)
    monkeypatch.setattr(transactions, "CSV_CHUNK_ROWS", 120)
    monkeypatch.setattr(transactions, "CSV_CHUNK_READ_BUDGET", 480)
    shop = make_shop(owner, "大店", 5)
    orders = list(data.orders(shop, 300, seed=6))
    data.save_all(orders)
    chunks, queries, cursor = [], [], None
    while True:
        with recording_reads() as reads:
            chunk = transactions.export_chunk(owner.account_id, {"merchant_id": shop.merchant_id,
                                                                 **({"cursor": cursor} if cursor else {})})
        chunks.append(chunk)
        queries.append([read[2] for read in reads if read[1] == "orders-by-merchant"])
        cursor = chunk.next_cursor
        if cursor is None:
            break

    assert [chunk.rows for chunk in chunks] == [120, 120, 60]
    assert queries == [[50, 50, 20], [50, 50, 20], [50, 10]]  # a page asks only for what the chunk lacks
    rows = csv_rows("".join(chunk.text for chunk in chunks).removeprefix("\ufeff"))
    assert rows[0] == list(transactions.CSV_HEADER)
    assert [row[0] for row in rows[1:]] == newest_first(orders)
