"""Lists that stay fast at any size: every console list is a key or index condition, reads a
bounded number of items per request, and pages through exactly its matches, in order.

The records are written straight into DynamoDB with BatchWriteItem (as the sync writes
them), so the tests also show that the list keys are derived on that path.
"""
from __future__ import annotations

from urllib.parse import urlencode

import pytest

from chalicelib import audit, batch_writes, jobs
from chalicelib.models.jobs import Job
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.models.sub_service_providers import SubServiceProvider
from tests.dynamodb_calls import recording_reads

PROVIDERS = ("1900000109", "1900000110")
PREFIXES = ("一号", "二号", "三号", "老王", "小李")
FLEET_SIZE = 300
LIMIT = 25


def _merchant(account_id: str, number: int, reseller_id: str) -> SubMerchant:
    sp_mchid = PROVIDERS[1] if number % 3 == 0 else PROVIDERS[0]
    return SubMerchant(account_id=account_id, merchant_id=f"m_{number:016x}", sp_mchid=sp_mchid,
                       provider_key=f"{account_id}#{sp_mchid}",
                       ssp_account_id=reseller_id if number % 4 == 0 else None, order_prefix=f"T{number:05d}",
                       name=f"{PREFIXES[number % 5]}店{(number * 7919) % 1000:03d}-{number}",
                       channel="maidan" if number % 7 < 3 else "official_direct", source="manual",
                       created_at=1, updated_at=1, version=1)


@pytest.fixture
def fleet(bound_console, console, phone):
    """An account with two providers, a reseller attached to both, and 300 sub-merchants."""
    owner = bound_console
    for sp_mchid in PROVIDERS:
        assert owner.call("POST", "/v1/providers", {"sp_mchid": sp_mchid, "name": "服务商"}).status == 201
    reseller = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(reseller.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    reseller_id = reseller.call("GET", "/v1/me").json["id"]
    account_id = owner.call("GET", "/v1/me").json["id"]
    merchants = [_merchant(account_id, number, reseller_id) for number in range(FLEET_SIZE)]
    batch_writes.put_all(SubMerchant, merchants)
    for sp_mchid in PROVIDERS:
        owner.call("POST", f"/v1/providers/{sp_mchid}/sub-service-providers",
                   {"account_id": reseller_id, "name": "渠道商", "admin_name": "王", "phone": "13800138000"})
        attributed = sum(1 for m in merchants if m.ssp_account_id and m.sp_mchid == sp_mchid)
        SubServiceProvider.get(reseller_id, sp_mchid).update(actions=[SubServiceProvider.merchant_count.set(attributed)])
    return owner, reseller, reseller_id, merchants


def _page_through(client, path: str, query: dict, limit: int = LIMIT, table: str = "-sub-merchants"):
    """Every page of the list: (its reply, the items it read from `table`)."""
    pages, cursor = [], None
    while True:
        params = {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        with recording_reads() as reads:
            answer = client.call("GET", f"{path}?{urlencode(params)}")
        assert answer.status == 200, answer.json
        pages.append((answer.json, sum(read for name, _, read in reads if name.endswith(table))))
        cursor = answer.json["next_cursor"]
        if not cursor:
            return pages
        assert len(pages) < 100, "the list never ended"


def _expected(merchants, **wanted) -> list[str]:
    prefix = wanted.pop("name", "")
    matches = [m for m in merchants if m.name.startswith(prefix)
               and all(getattr(m, field) == value for field, value in wanted.items())]
    return [m.merchant_id for m in sorted(matches, key=lambda m: m.name.encode())]


INDEXED_FILTERS = [
    {},
    {"channel": "maidan"},
    {"sp_mchid": PROVIDERS[0]},
    {"sp_mchid": PROVIDERS[1], "channel": "official_direct"},
    {"sub_service_provider": "RESELLER"},
    {"sub_service_provider": "RESELLER", "channel": "maidan"},
    {"name": "老王"},
    {"name": "二号店1"},
    {"name": "一号", "channel": "official_direct"},
    {"name": "小李", "sp_mchid": PROVIDERS[0], "channel": "maidan"},
    {"name": "三号", "sub_service_provider": "RESELLER"},
]


@pytest.mark.parametrize("query", INDEXED_FILTERS, ids=lambda query: "&".join(query) or "all")
def test_each_indexed_sub_merchant_filter_reads_at_most_a_page_and_lists_every_match_once_in_name_order(fleet, query):
    owner, _, reseller_id, merchants = fleet
    query = {name: reseller_id if value == "RESELLER" else value for name, value in query.items()}
    wanted = {"ssp_account_id" if name == "sub_service_provider" else name: value for name, value in query.items()}

    pages = _page_through(owner, "/v1/sub-merchants", query)

    listed = [m["id"] for page, _ in pages for m in page["data"]]
    assert listed == _expected(merchants, **wanted) and listed
    assert all(read <= LIMIT for _, read in pages)
    assert not any(page["partial"] for page, _ in pages)
    assert all(len(page["data"]) == LIMIT for page, _ in pages[:-1])


def test_the_whole_list_reads_one_page_of_items_whatever_the_accounts_size(fleet):
    owner, *_ = fleet

    with recording_reads() as reads:
        first = owner.call("GET", "/v1/sub-merchants?channel=maidan&limit=20").json

    list_reads = [read for table, _, read in reads if table.endswith("-sub-merchants")]
    assert len(first["data"]) == 20 and first["has_more"] and first["partial"] is False
    assert list_reads == [20]


def test_a_provider_together_with_a_sub_service_provider_reads_bounded_slices_and_says_when_a_page_is_partial(fleet):
    owner, _, reseller_id, merchants = fleet
    limit = 10

    pages = _page_through(owner, "/v1/sub-merchants",
                          {"sp_mchid": PROVIDERS[1], "sub_service_provider": reseller_id}, limit=limit)

    listed = [m["id"] for page, _ in pages for m in page["data"]]
    assert listed == _expected(merchants, sp_mchid=PROVIDERS[1], ssp_account_id=reseller_id)
    assert all(read <= 2 * limit for _, read in pages)
    partial = [page for page, _ in pages if page["partial"]]
    assert partial and all(page["has_more"] and len(page["data"]) < limit for page in partial)


def test_a_sub_service_provider_filter_counts_its_total_from_the_attribution_counters(fleet):
    owner, _, reseller_id, merchants = fleet

    everywhere = owner.call("GET", f"/v1/sub-merchants?sub_service_provider={reseller_id}").json
    one_provider = owner.call("GET", f"/v1/sub-merchants?sub_service_provider={reseller_id}"
                                     f"&sp_mchid={PROVIDERS[0]}").json
    by_channel = owner.call("GET", "/v1/sub-merchants?channel=maidan").json

    assert everywhere["total"] == sum(1 for m in merchants if m.ssp_account_id) == 75
    assert one_provider["total"] == len(_expected(merchants, ssp_account_id=reseller_id, sp_mchid=PROVIDERS[0]))
    assert by_channel["total"] is None


def test_a_sub_service_providers_own_view_lists_its_merchants_in_name_order_and_filters_channel_in_bounded_slices(
        fleet):
    _, reseller, reseller_id, merchants = fleet

    everything = _page_through(reseller, "/v1/sub-merchants", {"as": "sub_service_provider"})
    maidan = _page_through(reseller, "/v1/sub-merchants", {"as": "sub_service_provider", "channel": "maidan"})

    assert [m["id"] for page, _ in everything for m in page["data"]] == _expected(merchants,
                                                                                   ssp_account_id=reseller_id)
    assert [m["id"] for page, _ in maidan for m in page["data"]] == _expected(
        merchants, ssp_account_id=reseller_id, channel="maidan")
    assert all(read <= LIMIT for _, read in everything) and all(read <= 2 * LIMIT for _, read in maidan)


def test_a_channel_switch_and_a_reattribution_move_the_merchant_between_the_filtered_lists(fleet):
    owner, _, reseller_id, merchants = fleet
    merchant = next(m for m in merchants if m.ssp_account_id and m.channel == "maidan")
    ids = lambda query: [m["id"] for page, _ in _page_through(owner, "/v1/sub-merchants", query)  # noqa: E731
                         for m in page["data"]]

    switched = owner.call("PUT", f"/v1/sub-merchants/{merchant.merchant_id}/channel",
                          {"channel": "official_direct", "version": 1})
    moved = owner.call("PATCH", f"/v1/sub-merchants/{merchant.merchant_id}",
                       {"version": switched.json["version"], "sub_service_provider": None})

    assert switched.status == 200 and moved.status == 200
    assert merchant.merchant_id in ids({"channel": "official_direct", "sp_mchid": merchant.sp_mchid})
    assert merchant.merchant_id not in ids({"channel": "maidan"})
    assert merchant.merchant_id not in ids({"sub_service_provider": reseller_id})
    assert merchant.merchant_id not in ids({"sub_service_provider": reseller_id, "channel": "official_direct"})


@pytest.fixture
def job_history(bound_console):
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    statuses = (jobs.COMPLETED, jobs.FAILED, jobs.COMPLETED_WITH_FAILURES, jobs.COMPLETED, jobs.RUNNING)
    history = [Job(account_id=account_id, job_id=f"job_{number:012x}00000000",
                   kind=jobs.REATTRIBUTION if number % 4 == 0 else jobs.SUB_MERCHANT_SYNC,
                   status=statuses[number % 5], created_at=number) for number in range(120)]
    batch_writes.put_all(Job, history)
    return bound_console, history


def test_jobs_by_kind_come_from_their_index_newest_first(job_history):
    owner, history = job_history

    pages = _page_through(owner, "/v1/jobs", {"kind": jobs.REATTRIBUTION}, limit=10, table="-jobs")

    expected = [job.job_id for job in sorted(history, key=lambda job: job.job_id, reverse=True)
                if job.kind == jobs.REATTRIBUTION]
    assert [job["id"] for page, _ in pages for job in page["data"]] == expected
    assert all(read <= 10 for _, read in pages)


def test_jobs_by_status_read_bounded_slices_and_list_every_match_newest_first(job_history):
    owner, history = job_history

    pages = _page_through(owner, "/v1/jobs", {"status": jobs.FAILED, "kind": jobs.SUB_MERCHANT_SYNC}, limit=10,
                          table="-jobs")

    expected = [job.job_id for job in sorted(history, key=lambda job: job.job_id, reverse=True)
                if job.kind == jobs.SUB_MERCHANT_SYNC and job.status == jobs.FAILED]
    assert [job["id"] for page, _ in pages for job in page["data"]] == expected
    assert all(read <= 20 for _, read in pages)
    assert any(page["partial"] for page, _ in pages)


def test_one_entitys_audit_entries_come_from_their_index_newest_first(bound_console):
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    for number in range(90):
        audit.record(account_id, account_id, f"sub_merchant#m_{number % 6}", "sub_merchant.updated", {})

    pages = _page_through(bound_console, "/v1/audit-log", {"entity": "sub_merchant#m_2"}, limit=5,
                          table="-audit-log")

    listed = [entry["id"] for page, _ in pages for entry in page["data"]]
    assert len(listed) == 15 and listed == sorted(listed, reverse=True)
    assert all(entry["entity"] == "sub_merchant#m_2" for page, _ in pages for entry in page["data"])
    assert all(read <= 5 for _, read in pages)
