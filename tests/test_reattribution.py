"""C5.8 / B3: a new sub-service-provider moves the merchant's whole history, page by page."""
from __future__ import annotations

import pytest

from chalicelib import batch_writes, job_detail, jobs, queues, reattribution
from chalicelib.models.base import now
from chalicelib.models.jobs import Job
from chalicelib.models.orders import Order, Refund
from chalicelib.models.sub_service_providers import SubServiceProvider
from tests.queues import Throttled, WorkerKilled, drain, fail_once, heal_stalled_jobs_again_and_again, make_messages_return_at_once

SP_MCHID = "1900000109"
PAGE_SIZE = 20
"""Pages of 20 instead of 99 keep the shape of a real move (five order pages, two refund
pages, a partly filled last one of each) at a fifth of the writes; `make bench` moves
10,000 at the real size."""
ORDERS = 90
REFUNDS = 25


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(reattribution, "PAGE_SIZE", PAGE_SIZE)


@pytest.fixture
def app(client):
    from app import app as chalice_app
    make_messages_return_at_once(chalice_app)
    return chalice_app


def _reseller(owner, console, phone, email, admin):
    reseller = console.sign_up_and_in(email)
    phone(admin).open(reseller.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    reseller_id = reseller.call("GET", "/v1/me").json["id"]
    attached = owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers",
                          {"account_id": reseller_id, "name": email, "admin_name": "王", "phone": "13800138000"})
    assert attached.status == 201
    return reseller_id


@pytest.fixture
def world(bound_console, console, phone, app):
    """A merchant attributed to reseller A with generated history, and reseller B."""
    owner = bound_console
    owner.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"})
    first = _reseller(owner, console, phone, "a@example.com", "admin-02")
    second = _reseller(owner, console, phone, "b@example.com", "admin-03")
    merchant = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "一号面馆",
                                                        "sub_mchid": "1600000001",
                                                        "sub_service_provider": first}).json
    account_id = owner.call("GET", "/v1/me").json["id"]
    generate_history(account_id, merchant, first, ORDERS, REFUNDS)
    return owner, merchant, first, second


def generate_history(account_id: str, merchant: dict, ssp: str | None, orders: int, refunds: int) -> None:
    """`orders` paid orders of the merchant (one a minute, 1,000 to 99,900 fen) and a refund
    of each of the first `refunds`, all counting for `ssp`."""
    start = 1_700_000_000
    made = []
    for number in range(orders):
        out_trade_no = f"{merchant['order_prefix']}{number:010d}"
        created = start + 60 * number
        made.append(Order(out_trade_no=out_trade_no, account_id=account_id, sp_mchid=merchant["sp_mchid"],
                          merchant_id=merchant["id"], ssp_account_id=ssp, channel="official_direct", state="SUCCESS",
                          total=1000 + 100 * (number % 990), refunded=0, created_at=created, paid_at=created + 5,
                          created_key=f"{created:010d}#{out_trade_no}", version=1))
    batch_writes.put_all(Order, made)
    batch_writes.put_all(Refund, [
        Refund(out_refund_no=f"{order.out_trade_no}R1", out_trade_no=order.out_trade_no, account_id=account_id,
               sp_mchid=order.sp_mchid, merchant_id=order.merchant_id, ssp_account_id=ssp, amount=500,
               state="SUCCESS", created_at=order.created_at + 600,
               created_key=f"{order.created_at + 600:010d}#{order.out_trade_no}R1", version=1)
        for order in made[:refunds]])


def _attribution(merchant_id: str) -> dict:
    counts = {}
    for model in (Order, Refund):
        for item in model.by_merchant.query(merchant_id):
            counts[item.ssp_account_id] = counts.get(item.ssp_account_id, 0) + 1
    return counts


def _change(owner, merchant_id, ssp):
    version = owner.call("GET", f"/v1/sub-merchants/{merchant_id}").json["version"]
    answer = owner.call("PATCH", f"/v1/sub-merchants/{merchant_id}", {"version": version, "sub_service_provider": ssp})
    assert answer.status == 200, answer.json
    return answer.json


def test_a_new_sub_service_provider_moves_every_order_and_refund_with_progress(world, app):
    owner, merchant, first, second = world

    changed = _change(owner, merchant["id"], second)

    job = changed["reattribution_job"]
    assert changed["sub_service_provider"] == second and job["status"] == "RUNNING"
    assert (job["from_sub_service_provider"], job["to_sub_service_provider"]) == (first, second)
    drain(app)
    done = owner.call("GET", f"/v1/jobs/{job['id']}").json
    assert done["status"] == "COMPLETED" and done["progress"]["transactions"] == {"to_move": ORDERS + REFUNDS,
                                                                                 "moved": ORDERS + REFUNDS}
    assert done["progress"]["percent"] == 100.0
    assert _attribution(merchant["id"]) == {second: ORDERS + REFUNDS}
    assert SubServiceProvider.get(first, SP_MCHID).merchant_count == 0
    assert SubServiceProvider.get(second, SP_MCHID).merchant_count == 1
    assert owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["reattribution_jobs"] == []


def test_while_it_moves_every_order_is_seen_exactly_once(world, app):
    owner, merchant, first, second = world
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    body = {"account_id": job_account(owner), "job_id": job["id"], "page": 0}
    seen_totals = []
    for page in range(3):
        assert reattribution.handle_page(body | {"page": page}, 0) == "applied"
        orders = list(Order.by_merchant.query(merchant["id"]))
        seen_totals.append((len(orders), len({order.out_trade_no for order in orders})))
        by_ssp = _attribution(merchant["id"])
        assert sum(by_ssp.values()) == ORDERS + REFUNDS and set(by_ssp) <= {first, second}
    assert seen_totals == [(ORDERS, ORDERS)] * 3
    drain(app)
    assert _attribution(merchant["id"]) == {second: ORDERS + REFUNDS}


def job_account(owner) -> str:
    return owner.call("GET", "/v1/me").json["id"]


def test_duplicates_and_a_killed_worker_move_each_transaction_once_and_count_it_once(world, app, monkeypatch):
    owner, merchant, first, second = world
    send = queues.send
    monkeypatch.setattr(queues, "send", lambda url, bodies: send(url, bodies + bodies))
    commit, kills = reattribution._commit, {"left": 2}

    def die_before_some_commits(*args, **kwargs):
        if kills["left"]:
            kills["left"] -= 1
            raise WorkerKilled()
        return commit(*args, **kwargs)

    monkeypatch.setattr(reattribution, "_commit", die_before_some_commits)
    job = _change(owner, merchant["id"], second)["reattribution_job"]

    stats = drain(app)

    assert stats["killed"] == 2
    done = owner.call("GET", f"/v1/jobs/{job['id']}").json
    assert done["status"] == "COMPLETED" and done["progress"]["transactions"]["moved"] == ORDERS + REFUNDS
    assert _attribution(merchant["id"]) == {second: ORDERS + REFUNDS}


def test_a_second_change_while_one_runs_is_queued_after_it_not_interleaved(world, app):
    owner, merchant, first, second = world
    running = _change(owner, merchant["id"], second)["reattribution_job"]
    queued = _change(owner, merchant["id"], None)["reattribution_job"]

    assert queued["status"] == "QUEUED" and queued["after_job_id"] == running["id"]
    assert owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["reattribution_jobs"] == [
        running["id"], queued["id"]]
    drain(app)

    first_job = owner.call("GET", f"/v1/jobs/{running['id']}").json
    second_job = owner.call("GET", f"/v1/jobs/{queued['id']}").json
    assert first_job["status"] == second_job["status"] == "COMPLETED"
    assert second_job["started_at"] >= first_job["ended_at"]
    assert first_job["progress"]["transactions"]["moved"] == ORDERS + REFUNDS
    assert second_job["progress"]["transactions"]["moved"] == ORDERS + REFUNDS
    assert _attribution(merchant["id"]) == {None: ORDERS + REFUNDS}
    assert SubServiceProvider.get(second, SP_MCHID).merchant_count == 0


def test_a_page_that_keeps_failing_stops_the_job_which_resumes_on_retry(world, app, monkeypatch):
    owner, merchant, first, second = world
    commit = reattribution._commit
    monkeypatch.setattr(reattribution, "_commit", lambda job, page_no, *rest: (
        (_ for _ in ()).throw(RuntimeError("DynamoDB is down")) if page_no == 2 else commit(job, page_no, *rest)))
    job = _change(owner, merchant["id"], second)["reattribution_job"]

    drain(app)

    failed = owner.call("GET", f"/v1/jobs/{job['id']}").json
    assert failed["status"] == "FAILED" and failed["retryable"] is True and "page 2" in failed["error"]
    assert failed["progress"]["transactions"]["moved"] == 2 * reattribution.PAGE_SIZE
    monkeypatch.setattr(reattribution, "_commit", commit)
    assert owner.call("POST", f"/v1/jobs/{job['id']}/retry").status == 202
    drain(app)
    assert owner.call("GET", f"/v1/jobs/{job['id']}").json["status"] == "COMPLETED"
    assert _attribution(merchant["id"]) == {second: ORDERS + REFUNDS}


def test_an_order_changed_during_the_move_keeps_its_change_and_is_moved(world, app):
    owner, merchant, first, second = world
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    account_id = job_account(owner)
    order = Order.get(f"{merchant['order_prefix']}{0:010d}")
    stale_page = list(Order.by_merchant.query(merchant["id"], limit=reattribution.PAGE_SIZE))
    order.update(actions=[Order.refunded.set(300)])

    moved = reattribution._commit(Job.get(account_id, job["id"]), 0, Order, stale_page, ORDERS + REFUNDS,
                                  "orders", None, False)

    assert moved is False and Order.get(order.out_trade_no).ssp_account_id == first
    drain(app)
    after = Order.get(order.out_trade_no)
    assert (after.ssp_account_id, after.refunded) == (second, 300)


def test_another_account_cannot_see_or_retry_the_job_and_a_non_attached_account_is_refused(world, console, phone):
    owner, merchant, first, second = world
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-04").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    assert stranger.call("GET", f"/v1/jobs/{job['id']}").status == 404
    assert stranger.call("POST", f"/v1/jobs/{job['id']}/retry").status == 404
    version = owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["version"]
    refused = owner.call("PATCH", f"/v1/sub-merchants/{merchant['id']}",
                         {"version": version, "sub_service_provider": "acct_not_attached"})
    assert refused.status == 400 and refused.json["error"]["param"] == "sub_service_provider"


def test_a_worker_that_dies_between_commit_and_next_message_is_recovered(world, app, monkeypatch):
    from chalicelib import jobs
    owner, merchant, first, second = world
    send, deaths = queues.send, {"left": 1}

    def die_instead_of_sending_page_two(url, bodies):
        if deaths["left"] and bodies[0].get("page") == 2:
            deaths["left"] -= 1
            raise WorkerKilled()
        return send(url, bodies)

    monkeypatch.setattr(queues, "send", die_instead_of_sending_page_two)
    monkeypatch.setattr(jobs, "RESEND_AFTER_SECONDS", -1)
    job = _change(owner, merchant["id"], second)["reattribution_job"]

    assert drain(app)["killed"] == 1
    done = owner.call("GET", f"/v1/jobs/{job['id']}").json
    assert done["status"] == "COMPLETED" and done["progress"]["transactions"]["moved"] == ORDERS + REFUNDS
    assert _attribution(merchant["id"]) == {second: ORDERS + REFUNDS}




REATTRIBUTION_FAILURE_POINTS = {
    "before_the_commit": (reattribution, "_commit", lambda *args: True),
    "after_the_commit": (queues, "send", lambda url, bodies: bodies[0].get("page", 0) == 2),
    "after_the_send": (reattribution, "_mark_sent", lambda *args: True),
    "before_the_hand_over": (reattribution, "_hand_over", lambda *args: True),
}


def _assert_moved_and_free(owner, merchant, job_id, ssp):
    done = owner.call("GET", f"/v1/jobs/{job_id}").json
    assert done["status"] == "COMPLETED" and done["progress"]["transactions"] == {"to_move": ORDERS + REFUNDS,
                                                                                 "moved": ORDERS + REFUNDS}
    assert _attribution(merchant["id"]) == {ssp: ORDERS + REFUNDS}
    assert owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["reattribution_jobs"] == []


@pytest.mark.parametrize("failure", [Throttled, WorkerKilled], ids=["throttled", "worker_killed"])
@pytest.mark.parametrize("point", list(REATTRIBUTION_FAILURE_POINTS))
def test_a_failure_at_any_point_between_the_writes_of_a_page_is_finished_by_its_redelivery(
        world, app, monkeypatch, point, failure):
    owner, merchant, first, second = world
    module, name, when = REATTRIBUTION_FAILURE_POINTS[point]
    failed = fail_once(monkeypatch, module, name, failure, when)
    job = _change(owner, merchant["id"], second)["reattribution_job"]

    drain(app)

    assert failed == [name]
    _assert_moved_and_free(owner, merchant, job["id"], second)
    assert _change(owner, merchant["id"], first)["reattribution_job"]["status"] == "RUNNING"


def _lose_page_two(monkeypatch, times: int) -> list:
    send, lost = queues.send, []

    def losing(url, bodies):
        if len(lost) < times and bodies[0].get("page") == 2:
            lost.append(bodies)
            return None
        return send(url, bodies)

    monkeypatch.setattr(queues, "send", losing)
    return lost


def test_a_page_message_lost_for_good_is_resent_by_the_scheduled_check_and_the_queued_change_follows(
        world, app, monkeypatch):
    owner, merchant, first, second = world
    lost = _lose_page_two(monkeypatch, times=1)
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    drain(app)
    queued = _change(owner, merchant["id"], first)["reattribution_job"]
    assert len(lost) == 1 and queued["status"] == "QUEUED"
    assert owner.call("GET", f"/v1/jobs/{job['id']}").json["status"] == "RUNNING"

    result = job_detail.heal_stalled_jobs(at=now() + jobs.STALLED_AFTER_SECONDS + 1)

    assert result == {"examined": 2, "resent": 1, "waiting": 1}
    drain(app)
    assert owner.call("GET", f"/v1/jobs/{job['id']}").json["status"] == "COMPLETED"
    _assert_moved_and_free(owner, merchant, queued["id"], first)


def test_a_lost_hand_over_is_done_by_the_scheduled_check(world, app, monkeypatch):
    owner, merchant, first, second = world
    hand_over = reattribution._hand_over
    monkeypatch.setattr(reattribution, "_hand_over", lambda job: None)
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    queued = _change(owner, merchant["id"], first)["reattribution_job"]
    drain(app)
    assert owner.call("GET", f"/v1/jobs/{queued['id']}").json["status"] == "QUEUED"
    monkeypatch.setattr(reattribution, "_hand_over", hand_over)

    result = job_detail.heal_stalled_jobs(at=now() + jobs.STALLED_AFTER_SECONDS + 1)

    assert result == {"examined": 1, "handed_over": 1}
    drain(app)
    assert owner.call("GET", f"/v1/jobs/{job['id']}").json["status"] == "COMPLETED"
    _assert_moved_and_free(owner, merchant, queued["id"], first)


def test_a_page_whose_resent_messages_are_lost_too_fails_the_job_which_resumes_on_retry(world, app, monkeypatch):
    owner, merchant, first, second = world
    send = queues.send
    lost = _lose_page_two(monkeypatch, times=1 + jobs.HEALS_BEFORE_FAILING)
    job = _change(owner, merchant["id"], second)["reattribution_job"]
    drain(app)

    outcomes = heal_stalled_jobs_again_and_again(app, jobs.HEALS_BEFORE_FAILING + 1)

    assert len(lost) == 1 + jobs.HEALS_BEFORE_FAILING
    assert outcomes == [{"examined": 1, "resent": 1}] * jobs.HEALS_BEFORE_FAILING + [{"examined": 1, "failed": 1}]
    failed = owner.call("GET", f"/v1/jobs/{job['id']}").json
    assert failed["status"] == "FAILED" and failed["retryable"] is True and "no progress" in failed["error"]
    monkeypatch.setattr(queues, "send", send)
    assert owner.call("POST", f"/v1/jobs/{job['id']}/retry").status == 202
    drain(app)
    _assert_moved_and_free(owner, merchant, job["id"], second)
