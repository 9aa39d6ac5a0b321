"""Figures of the console's sub-merchant list at 20,000 sub-merchants in one account.

The merchants are written straight into the table with BatchWriteItem (through the model,
as the sync writes them), not by a sync. Each filter's first and a later page are asked
through `chalice.test.Client` on in-process moto; for each request the bench prints the
DynamoDB calls and the items DynamoDB read for the list (its ScannedCount, what DynamoDB
evaluates and bills) next to the items returned, and the time.

The items read are the real measure. The time is not: moto answers a Query on an index by
going through the whole table, so locally it grows with the table even when the items read
(and DynamoDB's time) do not.
"""
from __future__ import annotations

import os
import time
from urllib.parse import urlencode

from tests import environment

MERCHANTS = int(os.environ.get("BENCH_LIST_MERCHANTS", "20000"))
PAGE_SIZE = 20
PROVIDERS = ("1900000109", "1900000110", "1900000111", "1900000112", "1900000113")
PREFIXES = ("一号", "二号", "三号", "老王", "小李", "阿强", "和记", "福满")


def _fleet(account_id: str, reseller_id: str) -> None:
    from chalicelib import batch_writes
    from chalicelib.models.sub_merchants import SubMerchant
    merchants = []
    for number in range(MERCHANTS):
        sp_mchid = PROVIDERS[number % len(PROVIDERS)]
        merchants.append(SubMerchant(
            account_id=account_id, merchant_id=f"m_{number:016x}", sp_mchid=sp_mchid,
            provider_key=f"{account_id}#{sp_mchid}", ssp_account_id=reseller_id if number % 40 in (0, 1) else None,
            order_prefix=f"B{number:05d}", name=f"{PREFIXES[number % len(PREFIXES)]}店{(number * 7919) % 100000:05d}",
            channel="maidan" if number % 3 == 0 else "official_direct", source="maidan", created_at=1, updated_at=1,
            version=1))
    batch_writes.put_all(SubMerchant, merchants)


def list_figures() -> list[tuple[str, int, int, int, int, float, bool]]:
    """Per request: (query, page, DynamoDB calls, list items read, items returned, seconds, partial)."""
    from chalice.test import Client

    from app import app
    from tests.drivers import Console, Phone
    from tests.dynamodb_calls import counting_aws_calls, recording_reads

    rows = []
    with environment.in_memory_aws(), environment.sandbox_in_process(), Client(app, stage_name="local") as client:
        owner = Console(client).sign_up_and_in("bench-lists@example.com")
        Phone(client, "admin-01").open(owner.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
        reseller = Console(client).sign_up_and_in("bench-lists-reseller@example.com")
        account_id, reseller_id = owner.call("GET", "/v1/me").json["id"], reseller.call("GET", "/v1/me").json["id"]
        for sp_mchid in PROVIDERS:
            owner.call("POST", "/v1/providers", {"sp_mchid": sp_mchid, "name": "bench"})
        owner.call("POST", f"/v1/providers/{PROVIDERS[0]}/sub-service-providers",
                   {"account_id": reseller_id, "name": "reseller", "admin_name": "王", "phone": "13800138000"})
        _fleet(account_id, reseller_id)
        queries = [
            {}, {"channel": "maidan"}, {"sp_mchid": PROVIDERS[1]}, {"sp_mchid": PROVIDERS[1], "channel": "maidan"},
            {"sub_service_provider": reseller_id}, {"sub_service_provider": reseller_id, "channel": "official_direct"},
            {"name": "老王"}, {"name": "老王店1", "channel": "official_direct"},
            {"name": "阿强", "sp_mchid": PROVIDERS[2]},
            {"sub_service_provider": reseller_id, "sp_mchid": PROVIDERS[1]},
        ]
        for query in queries:
            cursor = None
            for page in (1, 2, 3):
                params = {**query, "limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
                with counting_aws_calls() as calls, recording_reads() as reads:
                    started = time.perf_counter()
                    answer = owner.call("GET", f"/v1/sub-merchants?{urlencode(params)}")
                    seconds = time.perf_counter() - started
                read = sum(count for table, _, count in reads if table.endswith("-sub-merchants"))
                label = "&".join(f"{name}={'R' if value == reseller_id else value}" for name, value in query.items())
                rows.append((label or "(none)", page, sum(calls.values()), read, len(answer.json["data"]), seconds,
                             answer.json["partial"]))
                cursor = answer.json["next_cursor"]
                if not cursor:
                    break
    return rows


def report() -> None:
    print(f"Sub-merchant list, {MERCHANTS:,} sub-merchants in one account, page size {PAGE_SIZE} "
          "(in-process moto through chalice.test.Client)")
    print(f"{'filter':56} {'page':>4} {'AWS calls':>9} {'items read':>10} {'returned':>8} {'ms':>7}  partial")
    for label, page, calls, read, returned, seconds, partial in list_figures():
        print(f"{label:56} {page:>4} {calls:>9} {read:>10} {returned:>8} {seconds * 1000:>7.0f}  {partial}")
    print("AWS calls include the authorizer's 2 GetItems; a sub-service-provider filter adds the "
          "GetItem/Query of its counters (total).")
