"""Figures of the queue jobs (B1 sync, B3 re-attribution), on the local stack's parts in one
process: moto, the sandbox (with a fixed latency per 买单 page) and the local dispatcher
with several workers per queue, as Lambda runs several invocations at once.

Printed: wall time against the critical-path lower bound (the slowest provider's pages in
a row, times the page latency), DynamoDB write calls per 1,000 sub-merchants (the floor is
40: 25 items per BatchWriteItem), upstream calls per page; DynamoDB calls per 1,000 orders
moved.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import Counter

import boto3

from tests import environment

SUB_MERCHANTS = int(os.environ.get("BENCH_SUB_MERCHANTS", "20000"))
PROVIDERS = int(os.environ.get("BENCH_PROVIDERS", "50"))
PAGE_LATENCY_SECONDS = float(os.environ.get("BENCH_PAGE_LATENCY", "0.2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "16"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "10000"))
_NOT_COUNTED = threading.local()
"""Set while the benchmark itself polls the job, so its own reads are not in the figures."""
_WRITES = ("BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem")


def _counted_calls():
    """A thread-safe count of every botocore call, by service operation."""
    from botocore.client import BaseClient
    calls, lock, original = Counter(), threading.Lock(), BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        if getattr(_NOT_COUNTED, "on", False):
            return original(self, operation_name, api_params)
        with lock:
            calls[(self.meta.service_model.service_name, operation_name)] += 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted
    return calls, lambda: setattr(BaseClient, "_make_api_call", original)


def _run_until(app, done, timeout: float = 3600) -> None:
    from local import dispatcher
    stop = threading.Event()
    dispatcher.start(app, boto3.client("sqs", region_name=environment.REGION), stop, environment.STACK_NAME,
                     dispatcher.job_page_concurrency(WORKERS))
    try:
        deadline = time.monotonic() + timeout
        while True:
            _NOT_COUNTED.on = True
            try:
                if done():
                    return
            finally:
                _NOT_COUNTED.on = False
            if time.monotonic() > deadline:
                raise TimeoutError("the job did not end")
            time.sleep(0.2)
    finally:
        stop.set()


def _one_sync(app, account_id: str, wire, pages: list[int]) -> dict:
    from chalicelib import jobs, sub_merchant_sync
    from local import moto_atomic

    calls, restore = _counted_calls()
    busy_before = moto_atomic.busy_seconds()
    requests_before = len(wire.requests)
    started = time.monotonic()
    try:
        job, _ = sub_merchant_sync.start(account_id)
        _run_until(app, lambda: jobs.load(account_id, job.job_id).status != jobs.RUNNING)
    finally:
        restore()
    wall = time.monotonic() - started
    aws_seconds = moto_atomic.busy_seconds() - busy_before
    job = jobs.load(account_id, job.job_id)
    sent = wire.requests[requests_before:]
    page_requests = sum(1 for r in sent if r.url.path.endswith("/sub-merchants"))
    admin_lookups = sum(1 for r in sent if r.url.path.endswith("/assistant/admin-lookups"))
    dynamodb = {op: n for (service, op), n in calls.items() if service == "dynamodb"}
    writes = sum(n for op, n in dynamodb.items() if op in _WRITES)
    critical = max(pages) * PAGE_LATENCY_SECONDS
    return {"status": job.status, "created": job.created, "updated": job.updated, "unchanged": job.unchanged,
            "pages": job.pages_done, "wall": wall, "aws_seconds": aws_seconds, "critical": critical,
            "writes_per_1000": 1000 * writes / SUB_MERCHANTS,
            "batch_writes_per_1000": 1000 * dynamodb.get("BatchWriteItem", 0) / SUB_MERCHANTS,
            "upstream_per_page": page_requests / max(1, job.pages_done),
            "admin_lookups_per_page": admin_lookups / max(1, job.pages_done), "dynamodb": dynamodb}


def sync_figures() -> list[tuple[str, dict]]:
    """Three syncs of the same account: the first creates every merchant, the second finds
    nothing changed, the third runs after 买单 renamed every merchant."""
    from app import app
    from chalicelib import accounts, providers, sub_merchant_sync
    from sandbox.world import SandboxConfig

    config = SandboxConfig(providers=PROVIDERS, sub_merchants=SUB_MERCHANTS, in_process=True,
                           maidan_page_latency_seconds=PAGE_LATENCY_SECONDS)
    with environment.in_memory_aws(), environment.sandbox_in_process(config) as (world, wire):
        account = accounts.sign_up("bench-sync@example.com", "correct horse battery", "bench")
        _bind_every_admin(account.account_id, world)
        for index in range(PROVIDERS):
            provider = world.provider(index)
            providers.upsert_from_maidan(account.account_id, account.account_id, provider.sp_mchid, provider.name)
        pages = [max(1, math.ceil(world.sub_merchant_count(i) / sub_merchant_sync.PAGE_SIZE)) for i in range(PROVIDERS)]
        first = _one_sync(app, account.account_id, wire, pages)
        again = _one_sync(app, account.account_id, wire, pages)
        world.maidan_renamed_at = world.clock.now()
        renamed = _one_sync(app, account.account_id, wire, pages)
    return [("first sync", first), ("re-sync, nothing changed", again), ("re-sync after 买单 renamed all", renamed)]


def _bind_every_admin(account_id: str, world) -> None:
    """The account's bound WeChats: every 买单 admin of the generated providers (each holds
    `PROVIDERS / admin_count` of them), as binding codes confirmed on the phone would leave
    them; the sync reads only providers a bound WeChat administers."""
    from chalicelib.models.bindings import WechatBinding
    for index in range(world.admin_count):
        user = world.users[f"admin-{index + 1:02d}"]
        WechatBinding(account_id=account_id, openid=user.openid(world.config.wechat_app_id), unionid=user.unionid,
                      nickname=user.nickname, bound_at=int(time.time()), code_id="bench").save()


def reattribution_figures() -> dict:
    from app import app
    from chalicelib import accounts, jobs, providers, reattribution, sub_merchants, sub_service_providers
    from chalicelib.models.sub_merchants import SubMerchant
    from tests.test_reattribution import generate_history

    with environment.in_memory_aws():
        account = accounts.sign_up("bench-move@example.com", "correct horse battery", "bench")
        reseller = accounts.sign_up("bench-reseller@example.com", "correct horse battery", "reseller")
        providers.create(account.account_id, account.account_id, {"sp_mchid": "1900000109", "name": "bench"})
        target = sub_service_providers.attach(account.account_id, "1900000109", {
            "account_id": reseller.account_id, "name": "reseller", "admin_name": "王", "phone": "13800138000"})
        merchant = sub_merchants.create(account.account_id, account.account_id,
                                        {"sp_mchid": "1900000109", "name": "bench"})
        generate_history(account.account_id, sub_merchants.view(merchant), None, ORDERS, 0)
        calls, restore = _counted_calls()
        started = time.monotonic()
        try:
            job = reattribution.start(SubMerchant.get(account.account_id, merchant.merchant_id), account.account_id,
                                      None, target)
            _run_until(app, lambda: jobs.load(account.account_id, job.job_id).status != jobs.RUNNING)
        finally:
            restore()
        wall = time.monotonic() - started
        job = jobs.load(account.account_id, job.job_id)
    dynamodb = {op: n for (service, op), n in calls.items() if service == "dynamodb"}
    return {"status": job.status, "moved": job.moved, "wall": wall,
            "per_1000": 1000 * sum(dynamodb.values()) / ORDERS, "dynamodb": dynamodb}


def report() -> None:
    print(f"\nB1 sync: {SUB_MERCHANTS:,} sub-merchants over {PROVIDERS} providers, {PAGE_LATENCY_SECONDS:.2f} s per "
          f"买单 page, {WORKERS} workers")
    for label, sync in sync_figures():
        print(f"  {label}: job {sync['status']}, created {sync['created']:,}, updated {sync['updated']:,}, "
              f"unchanged {sync['unchanged']:,} in {sync['pages']} pages")
        print(f"    wall time {sync['wall']:.1f} s; critical path {sync['critical']:.1f} s; "
              f"ratio {sync['wall'] / sync['critical']:.2f}")
        print(f"    of which moto was busy {sync['aws_seconds']:.1f} s: it serves one request at a time, so "
              f"that is this run's floor (DynamoDB and SQS serve in parallel)")
        print(f"    DynamoDB write calls per 1,000 sub-merchants: {sync['writes_per_1000']:.1f} "
              f"(BatchWriteItem alone {sync['batch_writes_per_1000']:.1f}; floor 40)")
        print(f"    upstream calls per page: {sync['upstream_per_page']:.2f} page fetches, "
              f"{sync['admin_lookups_per_page']:.2f} admin look-ups (is the provider still administered?)")
        print(f"    DynamoDB calls by operation: {dict(sorted(sync['dynamodb'].items()))}")
    move = reattribution_figures()
    print(f"\nB3 re-attribution of {ORDERS:,} orders: job {move['status']}, {move['moved']:,} moved "
          f"in {move['wall']:.1f} s")
    print(f"  DynamoDB calls per 1,000 orders: {move['per_1000']:.1f} {dict(sorted(move['dynamodb'].items()))}")
