"""C6 summary: daily totals per scope, counted exactly once per outbox item, and
`GET /v1/transactions/summary` checked against sums computed independently over a couple of
hundred generated orders across days, merchants, stores, clerks and channels."""
from __future__ import annotations

import contextlib
import random
import threading
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from pynamodb.exceptions import TransactWriteError

from chalicelib.models.daily_totals import DailyTotals
from chalicelib.models.orders import Order
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode.models import Store
from chalicelib.payments import outbox, totals
from chalicelib.payments.models import OutboxItem
from tests import transactions_data as data
from tests.dynamodb_calls import recording_reads

FIRST_DAY = "2026-05-29"
LAST_DAY = "2026-06-27"  # 30 days from FIRST_DAY


def beijing_day(epoch) -> str:
    return datetime.fromtimestamp(int(epoch), ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d")


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": data.SP_MCHID, "name": "演示服务商"}).status == 201
    bound_console.account_id = bound_console.call("GET", "/v1/me").json["id"]
    return bound_console


@pytest.fixture
def reseller(owner, console, phone):
    user = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    user.account_id = user.call("GET", "/v1/me").json["id"]
    assert owner.call("POST", f"/v1/providers/{data.SP_MCHID}/sub-service-providers", {
        "account_id": user.account_id, "name": "杭州渠道商", "admin_name": "王经理", "phone": "13800138000"}).status == 201
    return user


@pytest.fixture
def stranger(console, phone):
    user = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    return user


def make_shop(owner, name: str, number: int, ssp_account_id: str | None = None) -> data.Shop:
    body = {"sp_mchid": data.SP_MCHID, "name": name}
    if ssp_account_id:
        body["sub_service_provider"] = ssp_account_id
    merchant = owner.call("POST", "/v1/sub-merchants", body).json
    shop = data.Shop(owner.account_id, merchant["id"], merchant["order_prefix"], ssp_account_id,
                     {f"st_{number}a": [f"clerk_{number}a1", f"clerk_{number}a2"], f"st_{number}b": [f"clerk_{number}b1"]})
    for store_id, clerks in shop.stores.items():
        for code_id, kind in [(f"code_{store_id}", "store_collection")] + [(f"code_{c}", "clerk_collection") for c in clerks]:
            QrCode(code_id=code_id, kind=kind, state="active", account_id=owner.account_id, created_at=0,
                   merchant_id=shop.merchant_id, store_id=store_id).save()
        Store(store_id=store_id, merchant_id=shop.merchant_id, account_id=owner.account_id, sp_mchid=data.SP_MCHID,
              name=store_id, collection_code_id=f"code_{store_id}", created_at=0, created_key="0", updated_at=0).save()
    return shop


@pytest.fixture
def counted(owner, reseller):
    """Two merchants (the second attributed to the reseller), 200 generated orders between
    them, each paid one counted as the follow-up counts it, and every fifth paid one partly
    refunded (counted too). Answers the shops and what was counted: (order, refund or None)."""
    shops = [make_shop(owner, "直营面馆", 1), make_shop(owner, "渠道面馆", 2, reseller.account_id)]
    generated = [*data.orders(shops[0], 120, seed=1), *data.orders(shops[1], 80, seed=2)]
    data.save_all(generated)
    events = []
    for number, order in enumerate(o for o in generated if o.state == "SUCCESS"):
        data.count_paid(order)
        events.append((order, None))
        if number % 5 == 0:
            refund = data.refund_of(order, int(order.total) // 3)
            data.count_refund(order, refund)
            events.append((order, refund))
    return shops, events


def expected(events, keep=lambda order: True) -> dict:
    """day -> [trade_amount, trade_count, refund_amount, refund_count], summed independently."""
    days: dict = defaultdict(lambda: [0, 0, 0, 0])
    for order, refund in events:
        if not keep(order):
            continue
        if refund is None:
            row = days[beijing_day(order.paid_at)]
            row[0] += int(order.total)
            row[1] += 1
        else:
            row = days[beijing_day(refund.succeeded_at)]
            row[2] += int(refund.amount)
            row[3] += 1
    return days


def answered(answer) -> dict:
    assert answer.status == 200, answer.json
    return {day["day"]: [day["trade_amount"], day["trade_count"], day["refund_amount"], day["refund_count"]]
            for day in answer.json["days"] if day["trade_count"] or day["refund_count"]}


def summary(user, **filters):
    query = "&".join(f"{name}={value}" for name, value in {"from_day": FIRST_DAY, "to_day": LAST_DAY,
                                                           **filters}.items())
    return user.call("GET", f"/v1/transactions/summary?{query}")


def in_range(days: dict) -> dict:
    return {day: row for day, row in days.items() if FIRST_DAY <= day <= LAST_DAY}


def test_the_summary_of_each_scope_matches_an_independent_sum_over_the_generated_orders(owner, reseller, counted):
    shops, events = counted
    store_id = sorted(shops[0].stores)[0]
    clerk_id = shops[0].stores[store_id][0]
    cases = [({}, lambda o: True),
             ({"sp_mchid": data.SP_MCHID}, lambda o: True),
             ({"merchant_id": shops[1].merchant_id}, lambda o: o.merchant_id == shops[1].merchant_id),
             ({"store_id": store_id}, lambda o: o.store_id == store_id),
             ({"store_id": store_id, "clerk_id": clerk_id}, lambda o: o.store_id == store_id and o.clerk_id == clerk_id),
             ({"code_id": f"code_{clerk_id}"}, lambda o: o.code_id == f"code_{clerk_id}"),
             ({"merchant_id": shops[0].merchant_id, "channel": "alipay"},
              lambda o: o.merchant_id == shops[0].merchant_id and o.channel == "alipay")]
    for filters, keep in cases:
        assert answered(summary(owner, **filters)) == in_range(expected(events, keep)), filters

    whole = summary(owner).json
    want = in_range(expected(events))
    trade, refund = sum(row[0] for row in want.values()), sum(row[2] for row in want.values())
    assert (whole["object"], whole["trade_amount"], whole["refund_amount"], whole["net_amount"]) == (
        "transaction_summary", trade, refund, trade - refund)
    assert len(whole["days"]) == 30 and whole["days"][0]["day"] == FIRST_DAY and trade > 0 and refund > 0

    # A sub-service-provider's summary: the sum over the merchants attributed to it now.
    theirs = in_range(expected(events, lambda o: o.merchant_id == shops[1].merchant_id))
    assert answered(summary(reseller)) == theirs
    assert answered(summary(reseller, sub_service_provider=reseller.account_id)) == theirs
    assert answered(summary(owner, sub_service_provider=reseller.account_id)) == theirs
    assert answered(summary(reseller, merchant_id=shops[1].merchant_id)) == theirs
    assert summary(reseller, merchant_id=shops[0].merchant_id).status == 404

    # 90 days of one scope: one Query of at most 90 items.
    with recording_reads() as reads:
        answer = summary(owner, from_day="2026-04-01", to_day="2026-06-29")
    daily = [read for read in reads if "daily-totals" in read[0]]
    assert answer.status == 200 and len(answer.json["days"]) == 90
    assert len(daily) == 1 and 0 < daily[0][2] <= 90


def test_a_stranger_gets_404_for_foreign_scopes_and_nothing_summed_for_its_own(owner, stranger):
    shops = [make_shop(owner, "直营面馆", 1)]
    data.count_paid(data.order(shops[0], 1, random.Random(1), states=("SUCCESS",)))
    store_id = sorted(shops[0].stores)[0]
    for filters, param in (({"merchant_id": shops[0].merchant_id}, "merchant_id"), ({"store_id": store_id}, "store_id"),
                           ({"sp_mchid": data.SP_MCHID}, "sp_mchid"), ({"code_id": f"code_{store_id}"}, "code_id")):
        foreign = summary(stranger, **filters)
        unknown = summary(stranger, **{name: "nosuch" for name in filters})
        assert (foreign.status, foreign.json["error"]["param"]) == (404, param), filters
        assert foreign.json["error"] == unknown.json["error"]
    assert summary(stranger).json["trade_count"] == 0


@pytest.mark.parametrize("query, param", [
    ("from_day=2026-01-01&to_day=2026-04-01", "to_day"),
    ("from_day=2026-05-02&to_day=2026-05-01", "to_day"),
    ("from_day=2026-13-01", "from_day"),
    ("to_day=yesterday", "to_day"),
    ("clerk_id=clerk_1a1", "store_id"),
    ("channel=cash", "channel"),
    ("merchant_id=a%20b", "merchant_id"),
    ("merchant=m1", "merchant"),
])
def test_a_bad_summary_filter_is_refused_naming_the_field(owner, query, param):
    answer = owner.call("GET", f"/v1/transactions/summary?{query}")

    assert (answer.status, answer.error_code, answer.json["error"]["param"]) == (400, "invalid_field", param)


@pytest.fixture
def paid_order(owner):
    shop = make_shop(owner, "单店", 9)
    order = data.order(shop, 1, random.Random(9), states=("SUCCESS",))
    order.save()
    return order


def day_totals(order: Order) -> list[tuple]:
    return [(record.trade_amount, record.trade_count)
            for record in DailyTotals.query(totals.merchant_scope(order.merchant_id))]


def test_a_paid_order_handled_many_times_by_the_follow_up_is_counted_once(paid_order):
    item = outbox.order_paid_item(paid_order, int(paid_order.paid_at))
    item.save()

    outcomes = [outbox.handle_item(item.item_id) for _ in range(3)]
    stale = OutboxItem.get(item.item_id)
    stale.counted_at = None  # a redelivery that read the item before the first count
    again = totals.record_once(stale, paid_order, None)

    assert outcomes[0] == "done" and again is False
    assert day_totals(paid_order) == [(paid_order.total, 1)]
    assert OutboxItem.get(item.item_id).counted_at is not None


def test_concurrent_deliveries_of_one_item_count_it_once(paid_order):
    item = outbox.order_paid_item(paid_order, int(paid_order.paid_at))
    item.save()
    copies = [OutboxItem.get(item.item_id) for _ in range(6)]
    results, start = [], threading.Barrier(len(copies))

    def deliver(copy):
        start.wait()
        try:
            results.append(totals.record_once(copy, paid_order, None))
        except Exception as exc:  # a transaction conflict: the queue retries, and then finds it counted
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver, args=(copy,)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(True) == 1, results
    assert day_totals(paid_order) == [(paid_order.total, 1)]
    assert totals.record_once(OutboxItem.get(item.item_id), paid_order, None) is False


def test_a_refund_counts_on_its_own_day_in_every_scope_of_its_order(paid_order):
    refund = data.refund_of(paid_order, 150)
    refund.succeeded_at = refund.created_at = int(paid_order.paid_at) + 2 * data.DAY
    data.count_refund(paid_order, refund)

    day = beijing_day(refund.succeeded_at)
    for scope in totals.scopes_of(paid_order):
        record = DailyTotals.get(scope, day)
        assert (record.refund_amount, record.refund_count, record.trade_count) == (150, 1, 0), scope


@contextlib.contextmanager
def transactions_conflicting(times: int):
    """The next `times` TransactWriteItems calls are cancelled as DynamoDB cancels a
    transaction that touches an item another transaction is writing (TransactionConflict)."""
    original, conflicts = BaseClient._make_api_call, {"left": times, "made": 0}

    def conflicting(self, operation_name, api_params):
        if operation_name == "TransactWriteItems" and conflicts["left"] > 0:
            conflicts["left"] -= 1
            conflicts["made"] += 1
            reasons = [{"Code": "None"}] * (len(api_params["TransactItems"]) - 1)
            raise ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                               "CancellationReasons": [*reasons, {"Code": "TransactionConflict",
                                                                  "Message": "Transaction is ongoing for the item"}]},
                              operation_name)
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = conflicting
    try:
        yield conflicts
    finally:
        BaseClient._make_api_call = original


def test_a_count_cancelled_by_a_concurrent_payments_transaction_is_retried_at_once_and_counted_once(paid_order):
    item = outbox.order_paid_item(paid_order, int(paid_order.paid_at))
    item.save()

    with transactions_conflicting(2) as conflicts:
        counted = totals.record_once(item, paid_order, None)

    assert counted is True and conflicts["made"] == 2
    assert day_totals(paid_order) == [(paid_order.total, 1)]
    assert OutboxItem.get(item.item_id).counted_at is not None


def test_a_conflict_that_outlasts_the_retries_raises_for_the_queue_and_counts_nothing(paid_order):
    item = outbox.order_paid_item(paid_order, int(paid_order.paid_at))
    item.save()

    with transactions_conflicting(totals.RECORD_ATTEMPTS) as conflicts, pytest.raises(TransactWriteError):
        totals.record_once(item, paid_order, None)

    assert conflicts["made"] == totals.RECORD_ATTEMPTS
    assert day_totals(paid_order) == []
    assert OutboxItem.get(item.item_id).counted_at is None
    assert totals.record_once(OutboxItem.get(item.item_id), paid_order, None) is True  # the queue's retry


def attributed_merchants(owner, reseller, count: int) -> list[str]:
    """`count` merchants attributed to the reseller, stored as attribution leaves them, each
    with a paid day in its daily totals (merchant number n took n+1 yuan in n % 3 + 1 orders)."""
    merchant_ids = [f"m_many_{number:03d}" for number in range(count)]
    data.save_all([SubMerchant(account_id=owner.account_id, merchant_id=merchant_id, sp_mchid=data.SP_MCHID,
                               provider_key=f"{owner.account_id}#{data.SP_MCHID}", ssp_account_id=reseller.account_id,
                               order_prefix=f"MM{number:03d}", name=f"商户{number}", channel="official_direct",
                               source="manual", created_at=0, updated_at=0)
                   for number, merchant_id in enumerate(merchant_ids)]
                  + [DailyTotals(totals.merchant_scope(merchant_id), FIRST_DAY, trade_amount=(number + 1) * 100,
                                 trade_count=number % 3 + 1)
                     for number, merchant_id in enumerate(merchant_ids)])
    return merchant_ids


def test_a_sub_service_provider_with_many_merchants_is_summed_right_with_the_queries_in_parallel(owner, reseller):
    count = 40
    attributed_merchants(owner, reseller, count)
    threads = set()
    original = BaseClient._make_api_call

    def noting_the_thread(self, operation_name, api_params):
        if operation_name == "Query" and "daily-totals" in api_params["TableName"]:
            threads.add(threading.get_ident())
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = noting_the_thread
    try:
        answer = summary(reseller)
    finally:
        BaseClient._make_api_call = original

    assert answered(answer) == {FIRST_DAY: [sum((n + 1) * 100 for n in range(count)),
                                            sum(n % 3 + 1 for n in range(count)), 0, 0]}
    assert answered(summary(owner, sub_service_provider=reseller.account_id)) == answered(answer)
    assert 1 < len(threads) <= totals.SUMMARY_WORKERS


def test_a_summary_by_a_foreign_or_unknown_sub_service_provider_is_the_same_404(owner, reseller, stranger):
    shop = make_shop(owner, "渠道面馆", 2, reseller.account_id)
    data.count_paid(data.order(shop, 1, random.Random(2), states=("SUCCESS",)))

    foreign = summary(stranger, sub_service_provider=reseller.account_id)
    unknown = summary(stranger, sub_service_provider="nosuch")
    wrong_provider = summary(owner, sub_service_provider=reseller.account_id, sp_mchid="1900000999")

    assert (foreign.status, foreign.json["error"]["param"]) == (404, "sub_service_provider")
    assert foreign.json["error"] == unknown.json["error"] == wrong_provider.json["error"]
    assert summary(owner, sub_service_provider=reseller.account_id).json["trade_count"] == 1
