"""C5.3 / B1 / C7: syncing sub-merchants from 买单 through the queues, exactly, under faults."""
from __future__ import annotations

import json
import threading

import boto3
import pytest

from chalicelib import batch_writes, job_detail, jobs, queues, sub_merchant_sync
from chalicelib.models.accounts import UniqueClaim
from chalicelib.models.base import now
from chalicelib.models.jobs import JobStep
from chalicelib.models.sub_merchants import SubMerchant
from sandbox.world import SandboxConfig
from tests import environment
from tests.queues import Throttled, WorkerKilled, drain, fail_once, heal_stalled_jobs_again_and_again, make_messages_return_at_once, waiting

PROVIDERS = 5
SUB_MERCHANTS = 1200
A_FEW_THOUSAND = pytest.mark.sub_merchants(3000)
"""For the tests that check exactness at scale: 3,000 in 买单, about 2,400 of them synced."""
TWO_ADMINS = pytest.mark.parametrize(
    "sandbox_and_wire", [SandboxConfig(providers=10, sub_merchants=400, in_process=True)], indirect=True,
    ids=["two_admins"])
"""Ten 买单 providers: admin-01 holds 0, 2, 4, 6, 8 (so 1901000004), admin-02 holds the odd ones."""


@pytest.fixture
def sandbox_and_wire(request):
    """Five 买单 providers, all administered by admin-01, with 1,200 sub-merchants between them
    (or as many as the test's `sub_merchants` mark says)."""
    mark = request.node.get_closest_marker("sub_merchants")
    config = getattr(request, "param", None) or SandboxConfig(
        providers=PROVIDERS, sub_merchants=mark.args[0] if mark else SUB_MERCHANTS, in_process=True)
    with environment.sandbox_in_process(config) as world_and_wire:
        yield world_and_wire


@pytest.fixture
def app(client):
    from app import app as chalice_app
    make_messages_return_at_once(chalice_app)
    return chalice_app


@pytest.fixture
def owner(bound_console, sandbox, app):
    """The account with admin-01's providers synced into it (all but the last one)."""
    from chalicelib import providers
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    for provider in sandbox.providers_of("admin-01")[:-1]:
        providers.upsert_from_maidan(account_id, account_id, provider.sp_mchid, provider.name)
    bound_console.account_id = account_id
    return bound_console


def _expected(sandbox, synced: int = PROVIDERS - 1) -> dict[str, int]:
    return {sandbox.provider(i).sp_mchid: sandbox.sub_merchant_count(i) for i in range(synced)}


def _start(owner):
    answer = owner.call("POST", "/v1/sub-merchant-sync-jobs")
    assert answer.status == 202, answer.json
    return answer.json


def _job(owner, job_id):
    return owner.call("GET", f"/v1/jobs/{job_id}").json


def _records(account_id):
    return {record.sub_mchid: record for record in SubMerchant.query(account_id)}


def _assert_exact(owner, sandbox, job):
    expected = _expected(sandbox)
    total = sum(expected.values())
    records = _records(owner.account_id)
    assert job["status"] == "COMPLETED", job
    assert job["progress"]["merchants"] | {"expected": None} == {
        "expected": None, "created": total, "updated": 0, "unchanged": 0, "failed": 0}
    assert job["progress"]["merchants"]["expected"] == total and job["progress"]["percent"] == 100.0
    assert job["progress"]["providers"] == {"total": PROVIDERS - 1, "done": PROVIDERS - 1, "failed": 0}
    assert job["progress"]["pages"]["done"] == sum(max(1, -(-n // 100)) for n in expected.values())
    assert len(records) == total
    for index, (sp_mchid, count) in enumerate(expected.items()):
        generated = [sandbox.sub_merchant(index, number) for number in range(count)]
        for merchant in generated:
            record = records[merchant.sub_mchid]
            assert (record.sp_mchid, record.name, record.admin_email, record.channel, record.source) == (
                sp_mchid, merchant.name, merchant.admin_email, "maidan", "maidan")
    assert len({record.order_prefix for record in records.values()}) == total
    claims = list(UniqueClaim.batch_get([f"sub_mchid#{sub_mchid}" for sub_mchid in records]))
    assert {claim.owner_id for claim in claims} == {record.merchant_id for record in records.values()}
    assert all(step["status"] == "DONE" for step in job["providers"])
    assert job["ended_at"] is not None


@A_FEW_THOUSAND
def test_a_sync_of_every_provider_creates_each_sub_merchant_once_with_exact_counts(owner, sandbox, app):
    started = _start(owner)

    assert started["status"] == "RUNNING" and started["kind"] == "sub_merchant_sync"
    drain(app)
    _assert_exact(owner, sandbox, _job(owner, started["id"]))


def test_a_provider_not_synced_into_the_account_is_reported_not_guessed(owner, sandbox, app):
    started = _start(owner)
    drain(app)

    missing = sandbox.provider(PROVIDERS - 1)
    reports = _job(owner, started["id"])["reports"]
    assert [(r["type"], r["sp_mchid"]) for r in reports] == [("provider_not_synced", missing.sp_mchid)]
    assert not any(record.sp_mchid == missing.sp_mchid for record in _records(owner.account_id).values())


def test_a_second_start_while_one_runs_answers_the_running_job(owner, app):
    first = _start(owner)

    again = owner.call("POST", "/v1/sub-merchant-sync-jobs")

    assert again.status == 200 and again.json["id"] == first["id"] and again.json["already_running"] is True
    drain(app)
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202


def test_a_rerun_updates_what_changed_and_never_duplicates(owner, sandbox, app):
    _start(owner)
    drain(app)
    changed = sandbox.sub_merchant(0, 3)
    sandbox.set_maidan_opened(changed.sub_mchid, not changed.opened_maidan)

    rerun = _start(owner)
    drain(app)

    job = _job(owner, rerun["id"])
    total = sum(_expected(sandbox).values())
    assert job["progress"]["merchants"] | {"expected": None} == {
        "expected": None, "created": 0, "updated": 1, "unchanged": total - 1, "failed": 0}
    records = _records(owner.account_id)
    assert len(records) == total
    assert records[changed.sub_mchid].maidan_opened is (not changed.opened_maidan)


def test_a_console_edit_saved_while_the_page_is_written_is_kept_beside_the_maidan_change(
        owner, sandbox, app, monkeypatch):
    _start(owner)
    drain(app)
    changed = sandbox.sub_merchant(0, 3)
    sandbox.set_maidan_opened(changed.sub_mchid, not changed.opened_maidan)
    record = _records(owner.account_id)[changed.sub_mchid]
    write_updates, edits = sub_merchant_sync._write_updates, []

    def edited_in_the_console_first(job_id, updates):
        if updates and not edits:
            edits.append(owner.call("PATCH", f"/v1/sub-merchants/{record.merchant_id}", {
                "version": record.version, "ad_link_url": "https://shop.example.com/promo"}))
        return write_updates(job_id, updates)

    monkeypatch.setattr(sub_merchant_sync, "_write_updates", edited_in_the_console_first)
    rerun = _start(owner)
    drain(app)

    assert edits[0].status == 200, edits[0].json
    saved = SubMerchant.get(owner.account_id, record.merchant_id)
    assert (saved.ad_link_url, saved.maidan_opened) == ("https://shop.example.com/promo", not changed.opened_maidan)
    assert saved.version == record.version + 2
    assert _job(owner, rerun["id"])["progress"]["merchants"]["updated"] == 1


@A_FEW_THOUSAND
def test_duplicate_deliveries_upstream_failures_and_a_killed_worker_give_the_same_records_and_counts(
        owner, sandbox, app, monkeypatch):
    send = queues.send
    monkeypatch.setattr(queues, "send", lambda url, bodies: send(url, bodies + bodies))
    sandbox.faults.arm("maidan", "SYSTEM_ERROR", times=6)
    put_all, kills = batch_writes.put_all, {"left": 3}

    def put_all_then_die(model, items):
        calls = put_all(model, items[:30])
        if kills["left"] and model is SubMerchant and len(items) > 30:
            kills["left"] -= 1
            raise WorkerKilled()
        return calls + put_all(model, items[30:])

    monkeypatch.setattr(batch_writes, "put_all", put_all_then_die)
    started = _start(owner)

    stats = drain(app)

    assert stats["killed"] == 3 and stats["failed"] >= 1
    _assert_exact(owner, sandbox, _job(owner, started["id"]))


def test_the_same_page_handled_by_two_workers_at_once_is_counted_once(owner, sandbox, app):
    started = _start(owner)
    sp_mchid = sandbox.provider(0).sp_mchid
    body = {"account_id": owner.account_id, "job_id": started["id"], "sp_mchid": sp_mchid, "page": 0}
    outcomes = []
    workers = [threading.Thread(target=lambda: outcomes.append(sub_merchant_sync.handle_page(body, 0)))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(outcomes) in (["applied", "duplicate"], ["applied", "applied"]) or "applied" in outcomes
    step = JobStep.get(started["id"], sp_mchid)
    assert step.pages_done == 1 and step.created == min(100, sandbox.sub_merchant_count(0))
    drain(app)
    _assert_exact(owner, sandbox, _job(owner, started["id"]))


def test_a_poison_page_ends_in_the_dead_letter_queue_shows_in_the_job_and_can_be_retried(owner, sandbox, app):
    broken = sandbox.provider(1)
    sandbox.broken_maidan_pages.add((broken.sp_mchid, 100))
    started = _start(owner)

    drain(app)

    job = _job(owner, started["id"])
    assert job["status"] == "COMPLETED_WITH_FAILURES" and job["retryable"] is True
    assert job["progress"]["providers"]["failed"] == 1 and job["progress"]["pages"]["failed"] == 1
    [failed] = [step for step in job["providers"] if step["status"] == "FAILED"]
    assert failed["sp_mchid"] == broken.sp_mchid and failed["next_page"] == 1
    assert "SYSTEM_ERROR" in failed["last_error"] or "HTTP 500" in failed["last_error"]
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202  # the lock was released
    drain(app)

    sandbox.broken_maidan_pages.clear()
    retried = owner.call("POST", f"/v1/jobs/{started['id']}/retry")
    assert retried.status == 202 and retried.json["status"] == "RUNNING"
    drain(app)
    job = _job(owner, started["id"])
    assert job["status"] == "COMPLETED" and job["progress"]["providers"]["failed"] == 0
    assert job["progress"]["merchants"]["created"] + job["progress"]["merchants"]["unchanged"] \
        == sum(_expected(sandbox).values())
    assert owner.call("POST", f"/v1/jobs/{started['id']}/retry").error_code == "nothing_to_retry"


def test_a_merchant_held_by_another_account_fails_alone_with_its_reason(owner, sandbox, app, console):
    from chalicelib import providers
    taken = sandbox.sub_merchant(0, 5)
    stranger = console.sign_up_and_in("stranger@example.com")
    stranger_id = stranger.call("GET", "/v1/me").json["id"]
    providers.create(stranger_id, stranger_id, {"sp_mchid": "1900000109", "name": "别家服务商"})
    UniqueClaim(claim=f"sub_mchid#{taken.sub_mchid}", owner_id="m_elsewhere", created_at=0).save()
    started = _start(owner)

    drain(app)

    job = _job(owner, started["id"])
    assert job["status"] == "COMPLETED_WITH_FAILURES" and job["progress"]["merchants"]["failed"] == 1
    [step] = [step for step in job["providers"] if step["failures"]]
    assert step["failures"] == [{"sub_mchid": taken.sub_mchid, "code": "sub_mchid_taken",
                                 "reason": "its sub_mchid belongs to a sub-merchant of another Cloud Pay account"}]


def test_a_merchant_cloud_pay_cannot_take_as_maidan_describes_it_fails_with_a_code_the_console_words(
        owner, sandbox, app, monkeypatch):
    from chalicelib import sub_merchant_sync
    too_long, insecure_logo = sandbox.sub_merchant(0, 3), sandbox.sub_merchant(0, 4)
    values = sub_merchant_sync._maidan_values

    def as_maidan_describes_them(merchant):
        described = values(merchant)
        if merchant.sub_mchid == too_long.sub_mchid:
            described["short_name"] = "长" * 33
        if merchant.sub_mchid == insecure_logo.sub_mchid:
            described["logo_url"] = "http://logo.example.com/a.png"
        return described

    monkeypatch.setattr(sub_merchant_sync, "_maidan_values", as_maidan_describes_them)
    started = _start(owner)

    drain(app)

    job = _job(owner, started["id"])
    assert job["status"] == "COMPLETED_WITH_FAILURES" and job["progress"]["merchants"]["failed"] == 2
    failures = {failure["sub_mchid"]: failure for step in job["providers"] for failure in step["failures"]}
    assert {key: failures[too_long.sub_mchid][key] for key in ("code", "field")} == \
        {"code": "too_long", "field": "short_name"}
    assert {key: failures[insecure_logo.sub_mchid][key] for key in ("code", "field")} == \
        {"code": "logo_not_https", "field": "logo_url"}
    assert too_long.sub_mchid not in _records(owner.account_id)


def test_a_provider_created_by_hand_that_no_bound_wechat_administers_is_reported_and_never_fetched(
        owner, app, wire):
    owner.call("POST", "/v1/providers", {"sp_mchid": "1999000001", "name": "手工服务商"})
    started = _start(owner)
    drain(app)

    job = _job(owner, started["id"])
    assert not [step for step in job["providers"] if step["sp_mchid"] == "1999000001"]
    assert [r["type"] for r in job["reports"] if r.get("sp_mchid") == "1999000001"] == ["provider_not_administered"]
    assert job["status"] == "COMPLETED" and _pages_fetched(wire, "1999000001") == 0


def test_jobs_are_listed_newest_first_and_are_not_found_for_another_account(owner, app, console, phone):
    first = _start(owner)
    drain(app)
    second = _start(owner)

    listed = owner.call("GET", "/v1/jobs").json["data"]
    assert [job["id"] for job in listed] == [second["id"], first["id"]]
    assert listed[0]["progress"]["eta_seconds"] is None or listed[0]["progress"]["eta_seconds"] >= 0
    assert owner.call("GET", "/v1/jobs?status=COMPLETED").json["data"][0]["id"] == first["id"]
    assert owner.call("GET", "/v1/jobs?kind=nope").json["error"]["param"] == "kind"

    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-01").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    assert stranger.call("GET", f"/v1/jobs/{first['id']}").status == 404
    assert stranger.call("POST", f"/v1/jobs/{first['id']}/retry").status == 404
    assert stranger.call("GET", "/v1/jobs").json["data"] == []


def test_the_handler_reports_only_the_failed_message_of_a_batch(owner, app):
    from app import sync_sub_merchant_pages
    started = _start(owner)
    sqs = boto3.client("sqs", region_name=environment.REGION)
    url = environment.os.environ["SYNC_QUEUE_URL"]
    sqs.purge_queue(QueueUrl=url)
    for body in ({"account_id": owner.account_id, "job_id": started["id"], "sp_mchid": "1901000000", "page": 0},
                 {"no": "fields"}):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
    from local.dispatcher import lambda_record
    records = [lambda_record(message, "arn:aws:sqs:ap-east-1:123456789012:q", environment.REGION)
               for message in messages["Messages"]]
    bad = [record["messageId"] for record in records if "no" in json.loads(record["body"])]

    answer = sync_sub_merchant_pages({"Records": records}, None)

    assert answer == {"batchItemFailures": [{"itemIdentifier": bad[0]}]}


def test_a_worker_that_dies_between_commit_and_next_message_is_recovered_by_its_page_coming_back(
        owner, sandbox, app, monkeypatch):
    from chalicelib import jobs
    send, deaths = queues.send, {"left": 2}

    def die_instead_of_sending_a_next_page(url, bodies):
        if deaths["left"] and all(body.get("page", 0) > 0 for body in bodies):
            deaths["left"] -= 1
            raise WorkerKilled()
        return send(url, bodies)

    monkeypatch.setattr(queues, "send", die_instead_of_sending_a_next_page)
    monkeypatch.setattr(jobs, "RESEND_AFTER_SECONDS", -1)  # its message returns at once here, not in 6 min
    started = _start(owner)

    assert drain(app)["killed"] == 2
    _assert_exact(owner, sandbox, _job(owner, started["id"]))


A_FEW_HUNDRED = pytest.mark.sub_merchants(350)
"""For the failure-point tests: 239 synced from four providers, one of them two pages long."""




def _last_end(account_id, job_id, lock) -> bool:
    return jobs.load(account_id, job_id).providers_remaining == 0


SYNC_FAILURE_POINTS = {
    "after_the_records": (batch_writes, "put_all", lambda model, items: model is UniqueClaim and bool(items)),
    "after_the_claims": (sub_merchant_sync, "_write_updates", lambda *args: True),
    "after_the_update_transaction": (sub_merchant_sync, "_commit_page", lambda *args: True),
    "after_the_commit": (queues, "send", lambda url, bodies: bodies[0].get("page", 0) > 0),
    "after_the_send": (sub_merchant_sync, "_mark_sent", lambda *args: True),
    "before_the_job_end": (jobs, "end_if_done", _last_end),
}


@A_FEW_HUNDRED
@pytest.mark.parametrize("failure", [Throttled, WorkerKilled], ids=["throttled", "worker_killed"])
@pytest.mark.parametrize("point", list(SYNC_FAILURE_POINTS))
def test_a_failure_at_any_point_between_the_writes_of_a_page_is_finished_by_its_redelivery(
        owner, sandbox, app, monkeypatch, point, failure):
    module, name, when = SYNC_FAILURE_POINTS[point]
    failed = fail_once(monkeypatch, module, name, failure, when)
    started = _start(owner)

    drain(app)

    assert failed == [name]
    _assert_exact(owner, sandbox, _job(owner, started["id"]))
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202


def _lose_next_page_messages(monkeypatch, times: int) -> list:
    """The next pages' messages vanish `times` times (sent into the void, no error)."""
    send, lost = queues.send, []

    def losing(url, bodies):
        if len(lost) < times and bodies[0].get("page", 0) > 0:
            lost.append(bodies)
            return None
        return send(url, bodies)

    monkeypatch.setattr(queues, "send", losing)
    return lost


@A_FEW_HUNDRED
def test_a_next_page_message_lost_for_good_is_resent_by_the_scheduled_check_run_by_the_local_scheduler(
        owner, sandbox, app, monkeypatch):
    from local import scheduler
    lost = _lose_next_page_messages(monkeypatch, times=1)
    started = _start(owner)
    drain(app)
    stuck = _job(owner, started["id"])
    assert len(lost) == 1 and stuck["status"] == "RUNNING"
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").json["already_running"] is True

    monkeypatch.setattr(jobs, "STALLED_AFTER_SECONDS", -60)  # the job has been silent for long enough
    results = scheduler.Scheduler(app, environment.REGION, started_at=0).run_once(300)
    assert results["heal_stalled_jobs"] == {"examined": 1, "resent": 1}
    drain(app)

    _assert_exact(owner, sandbox, _job(owner, started["id"]))
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202


@A_FEW_HUNDRED
def test_a_job_whose_end_was_lost_is_ended_by_the_scheduled_check_which_frees_the_lock(
        owner, sandbox, app, monkeypatch):
    end_if_done = jobs.end_if_done
    monkeypatch.setattr(jobs, "end_if_done", lambda account_id, job_id, lock: None)
    started = _start(owner)
    drain(app)
    assert _job(owner, started["id"])["status"] == "RUNNING"
    monkeypatch.setattr(jobs, "end_if_done", end_if_done)

    result = job_detail.heal_stalled_jobs(at=now() + jobs.STALLED_AFTER_SECONDS + 1)

    assert result == {"examined": 1, "ended": 1}
    _assert_exact(owner, sandbox, _job(owner, started["id"]))
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202


@A_FEW_HUNDRED
def test_a_page_whose_resent_messages_are_lost_too_is_failed_by_the_check_and_the_retry_finishes_it(
        owner, sandbox, app, monkeypatch):
    send = queues.send
    lost = _lose_next_page_messages(monkeypatch, times=1 + jobs.HEALS_BEFORE_FAILING)
    started = _start(owner)
    drain(app)

    outcomes = heal_stalled_jobs_again_and_again(app, jobs.HEALS_BEFORE_FAILING + 1)

    assert len(lost) == 1 + jobs.HEALS_BEFORE_FAILING
    assert outcomes == [{"examined": 1, "resent": 1}] * jobs.HEALS_BEFORE_FAILING + [{"examined": 1, "ended": 1}]
    job = _job(owner, started["id"])
    assert job["status"] == "COMPLETED_WITH_FAILURES" and job["retryable"] is True
    [failed] = [step for step in job["providers"] if step["status"] == "FAILED"]
    assert failed["next_page"] == 1 and "no progress" in failed["last_error"]
    monkeypatch.setattr(queues, "send", send)
    assert owner.call("POST", f"/v1/jobs/{started['id']}/retry").status == 202
    drain(app)
    _assert_exact(owner, sandbox, _job(owner, started["id"]))
    assert owner.call("POST", "/v1/sub-merchant-sync-jobs").status == 202


@A_FEW_HUNDRED
def test_the_scheduled_check_leaves_a_job_that_is_merely_slow_alone(owner, sandbox, app):
    started = _start(owner)
    queued = waiting(app)

    assert job_detail.heal_stalled_jobs() == {"examined": 0}
    assert job_detail.heal_stalled_jobs(at=now() + jobs.STALLED_AFTER_SECONDS + 1) == {"examined": 1, "waiting": 1}
    assert waiting(app) == queued
    drain(app)
    _assert_exact(owner, sandbox, _job(owner, started["id"]))
    assert job_detail.heal_stalled_jobs(at=now() + jobs.STALLED_AFTER_SECONDS + 1) == {"examined": 0}


def _account_bound_to(console, phone, email: str, *admins: str):
    user = console.sign_up_and_in(email)
    for admin in admins:
        code = user.call("POST", "/v1/wechat-binding-codes").json
        assert phone(admin).open(code["url"]).confirm().page_id == "binding-done"
    user.account_id = user.call("GET", "/v1/me").json["id"]
    return user


def _pages_fetched(wire, sp_mchid: str) -> int:
    return wire.count(f"/v1/providers/{sp_mchid}/sub-merchants")


def _sub_mchid_claims(sandbox, index: int) -> dict[str, str]:
    keys = [f"sub_mchid#{sandbox.sub_merchant(index, n).sub_mchid}" for n in range(sandbox.sub_merchant_count(index))]
    return {claim.claim: claim.owner_id for claim in UniqueClaim.batch_get(keys)}


@TWO_ADMINS
def test_an_account_whose_wechats_do_not_administer_a_hand_made_provider_reads_nothing_of_it_from_maidan(
        console, phone, sandbox, wire, app):
    held_by_another_admin = sandbox.provider(4)
    squatter = _account_bound_to(console, phone, "squatter@example.com", "admin-02")
    assert squatter.call("POST", "/v1/providers", {"sp_mchid": held_by_another_admin.sp_mchid,
                                                   "name": "抢先录入"}).status == 201

    started = _start(squatter)
    drain(app)

    assert _pages_fetched(wire, held_by_another_admin.sp_mchid) == 0
    assert list(SubMerchant.query(squatter.account_id)) == []
    assert _sub_mchid_claims(sandbox, 4) == {}
    job = _job(squatter, started["id"])
    assert job["status"] == "COMPLETED" and job["providers"] == []
    [report] = [r for r in job["reports"] if r.get("sp_mchid") == held_by_another_admin.sp_mchid]
    assert report["type"] == "provider_not_administered"


def _squatted_before_the_fix(squatter, sandbox, index: int, count: int) -> list[SubMerchant]:
    """Records as the unchecked sync wrote them: the provider's 买单 merchants with their claims."""
    records = []
    for number in range(count):
        merchant = sandbox.sub_merchant(index, number)
        merchant_id = sub_merchant_sync.synced_merchant_id(squatter.account_id, merchant.sub_mchid)
        record = SubMerchant(account_id=squatter.account_id, merchant_id=merchant_id,
                             sp_mchid=sandbox.provider(index).sp_mchid,
                             provider_key=f"{squatter.account_id}#{sandbox.provider(index).sp_mchid}",
                             order_prefix=f"SQ{number:04d}", sub_mchid=merchant.sub_mchid, name=merchant.name,
                             admin_email=merchant.admin_email, channel="maidan", source="maidan", created_at=0,
                             updated_at=0)
        record.save()
        UniqueClaim(claim=f"sub_mchid#{merchant.sub_mchid}", owner_id=merchant_id, created_at=0).save()
        records.append(record)
    return records


@TWO_ADMINS
def test_the_real_admins_sync_takes_a_squatted_provider_back_and_then_syncs_all_its_merchants(
        bound_console, console, phone, sandbox, wire, app):
    owner, provider = bound_console, sandbox.provider(4)
    owner.account_id = owner.call("GET", "/v1/me").json["id"]
    squatter = _account_bound_to(console, phone, "squatter@example.com", "admin-02")
    squatter.call("POST", "/v1/providers", {"sp_mchid": provider.sp_mchid, "name": "抢先录入"})
    squatted = _squatted_before_the_fix(squatter, sandbox, 4, 3)
    by_hand = squatter.call("POST", "/v1/sub-merchants", {"sp_mchid": provider.sp_mchid, "name": "手工商户",
                                                          "sub_mchid": "1600000001"})
    assert by_hand.status == 201, by_hand.json

    code = owner.call("POST", "/v1/provider-sync-codes").json
    assert phone("admin-01").open(code["url"]).confirm().page_id == "provider-sync-done"
    result = owner.call("GET", f"/v1/provider-sync-codes/{code['id']}").json["result"]
    assert {p["sp_mchid"]: p["outcome"] for p in result["providers"]}[provider.sp_mchid] == "taken_over"

    remaining = {record.merchant_id for record in SubMerchant.query(squatter.account_id)}
    assert remaining == {by_hand.json["id"]}
    assert not remaining & {record.merchant_id for record in squatted}
    started = _start(owner)
    drain(app)

    job = _job(owner, started["id"])
    [step] = [step for step in job["providers"] if step["sp_mchid"] == provider.sp_mchid]
    assert (step["status"], step["created"], step["failed"]) == ("DONE", sandbox.sub_merchant_count(4), 0)
    mine = {record.merchant_id for record in SubMerchant.query(owner.account_id) if record.sp_mchid == provider.sp_mchid}
    assert set(_sub_mchid_claims(sandbox, 4).values()) == mine
    assert _pages_fetched(wire, provider.sp_mchid) >= 1


@TWO_ADMINS
def test_a_binding_removed_after_the_start_stops_its_providers_before_any_page_is_fetched(
        console, phone, sandbox, wire, app):
    from chalicelib import providers
    owner = _account_bound_to(console, phone, "owner@example.com", "admin-01", "admin-02")
    for provider in sandbox.providers_of("admin-01") + sandbox.providers_of("admin-02"):
        providers.upsert_from_maidan(owner.account_id, owner.account_id, provider.sp_mchid, provider.name)
    started = _start(owner)
    assert started["progress"]["providers"]["total"] == 10

    [admin_01] = [b["openid"] for b in owner.call("GET", "/v1/wechat-bindings").json["data"]
                  if b["unionid"] == sandbox.users["admin-01"].unionid]
    assert owner.call("DELETE", f"/v1/wechat-bindings/{admin_01}").status == 200
    drain(app)

    for provider in sandbox.providers_of("admin-01"):
        assert _pages_fetched(wire, provider.sp_mchid) == 0
    assert {record.sp_mchid for record in SubMerchant.query(owner.account_id)} == {
        p.sp_mchid for p in sandbox.providers_of("admin-02") if sandbox.sub_merchant_count(p.index)}
    job = _job(owner, started["id"])
    statuses = {step["sp_mchid"]: step["status"] for step in job["providers"]}
    assert {statuses[p.sp_mchid] for p in sandbox.providers_of("admin-01")} == {"NOT_ADMINISTERED"}
    assert {statuses[p.sp_mchid] for p in sandbox.providers_of("admin-02")} == {"DONE"}
    assert {step["last_error"] for step in job["providers"] if step["status"] == "NOT_ADMINISTERED"} == {
        "provider_not_administered"}
    assert job["status"] == "COMPLETED_WITH_FAILURES" and job["retryable"] is False
