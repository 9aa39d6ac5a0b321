"""C5.8 / B3: moving a sub-merchant's history to its new sub-service-provider.

Saving a new sub-service-provider changes the merchant record at once (new orders count
for the new one) and starts a job that pages through the merchant's orders, then its
refunds, by the `*-by-merchant` indexes, 99 per page. One transaction per page rewrites the
page's items (each guarded by its version, so a payment updating an order at the same
moment makes the page retry instead of losing the payment's write) and advances the job's
position, only if the job is still at that page: a duplicate message or a page redone
after a crash moves nothing twice and counts nothing twice. The job keeps the index
position, so it resumes where it stopped. The next page's message is sent after the commit
and noted on the job (`sent_page`); one lost to a failure or a crash in between is sent
again when the page's own message comes back (`jobs.next_message_lost`), and the scheduled
check (`heal`) resends what no message is left to resend, or fails the job (retryable).

Each order is one item with one `ssp_account_id`, so while the job runs a query sees every
order exactly once, under its old or its new sub-service-provider.

Changes of the same merchant run one after another: the merchant record lists its jobs
not yet ended (`reattribution_jobs`), the first runs, the others wait QUEUED; the job that
ends hands over to the next.
"""
from __future__ import annotations

import json
import time

from pynamodb.exceptions import UpdateError

from chalicelib import audit, jobs, queues, settings
from chalicelib.errors import Conflict
from chalicelib.log import logger
from chalicelib.models.base import condition_failed, now
from chalicelib.models.jobs import Job, watch_shard
from chalicelib.models.orders import Order, Refund
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.models.sub_service_providers import SubServiceProvider

PAGE_SIZE = 99
"""A transaction holds at most 100 items: 99 transactions and the job's position."""
PHASES = (("orders", Order), ("refunds", Refund))
ORPHAN_AFTER_SECONDS = 120


def _queue_url() -> str:
    return settings.current().reattribution_queue_url


def _message(job: Job) -> dict:
    return {"account_id": job.account_id, "job_id": job.job_id, "page": job.next_page or 0}


def start(merchant: SubMerchant, actor: str, old: SubServiceProvider | None, new: SubServiceProvider | None) -> Job:
    """Point the merchant at `new` (None: no sub-service-provider) and start, or queue, the
    job that moves its history. The merchant, both sub-service-providers' merchant counts
    and the job are written in one transaction guarded by their versions."""
    at = now()
    waiting_for = merchant.reattribution_jobs[-1] if merchant.reattribution_jobs else None
    job = Job(account_id=merchant.account_id, job_id=jobs.new_job_id(), kind=jobs.REATTRIBUTION,
              status=jobs.QUEUED if waiting_for else jobs.RUNNING, created_at=at,
              started_at=None if waiting_for else at, progressed_at=at, merchant_id=merchant.merchant_id,
              from_ssp=merchant.ssp_account_id, to_ssp=new.member_account_id if new else None, phase=PHASES[0][0],
              next_page=0, moved=0, after_job_id=waiting_for)
    if not waiting_for:
        queues.send(_queue_url(), [_message(job)])

    def write(tx) -> None:
        tx.update(merchant, actions=[*merchant.attribution_actions(job.to_ssp),
                                     SubMerchant.reattribution_jobs.set((merchant.reattribution_jobs or []) + [job.job_id]),
                                     SubMerchant.updated_at.set(at)])
        if old is not None:
            tx.update(old, actions=[SubServiceProvider.merchant_count.add(-1)])
        if new is not None:
            tx.update(new, actions=[SubServiceProvider.merchant_count.add(1)])
        tx.save(job, condition=Job.job_id.does_not_exist())

    if not jobs.commit(write):
        raise Conflict("the sub-merchant or a sub-service-provider changed while saving; reload and save again",
                       param="version", code="version_conflict")
    audit.record(merchant.account_id, actor, f"sub_merchant#{merchant.merchant_id}", "sub_merchant.reattributed",
                 {"sub_service_provider": {"from": job.from_ssp, "to": job.to_ssp}, "job_id": {"from": None,
                                                                                                "to": job.job_id}})
    logger.info("re-attribution started" if not waiting_for else "re-attribution queued",
                extra={"job_id": job.job_id, "merchant_id": merchant.merchant_id})
    return job


def _ours(model, job: Job):
    """Items of the merchant not yet counting for the job's target."""
    if job.to_ssp is None:
        return model.ssp_account_id.exists()
    return (model.ssp_account_id != job.to_ssp) | model.ssp_account_id.does_not_exist()


def _count_to_move(job: Job) -> int:
    return sum(model.by_merchant.count(job.merchant_id, filter_condition=_ours(model, job)) for _, model in PHASES)


def handle_messages(event: dict, context) -> dict:
    return jobs.handle_records(event, context, _queue_url(), handle_page)


def handle_dead_letters(event: dict, context) -> dict:
    return jobs.handle_records(event, context, settings.current().reattribution_dead_letter_queue_url,
                               handle_dead_letter)


def handle_page(body: dict, sent_at: float, receive_count: int = 1) -> str:
    account_id, job_id, page_no = jobs.message_fields(body, "account_id", "job_id", "page")
    job = jobs.wait_for(lambda: jobs.load(account_id, job_id), lambda found: found is not None)
    if job is None:
        if time.time() - sent_at > ORPHAN_AFTER_SECONDS:
            return "orphan"
        raise queues.RetryLater("the job record is not written yet")
    if job.status == jobs.COMPLETED:
        _hand_over(job)
        return "duplicate"
    if job.status != jobs.RUNNING:
        raise queues.RetryLater(f"the job is {job.status}")
    if page_no < job.next_page:
        if jobs.next_message_lost(page_no, job.next_page, job.sent_page, job.progressed_at, receive_count):
            _send_page(job, job.next_page)
            return "duplicate_resent_next"
        return "duplicate"
    if page_no > job.next_page:
        raise queues.RetryLater("the previous page is still being committed", seconds=1)
    try:
        return _move_page(job, page_no)
    except jobs.PageFailed:
        raise
    except Exception as exc:
        jobs.note_failed_attempt(lambda error: _record_error(job, page_no, error), exc, job_id=job.job_id)
        raise


def _move_page(job: Job, page_no: int) -> str:
    account_id, job_id = job.account_id, job.job_id
    total = _count_to_move(job) if job.transactions_total is None else job.transactions_total
    model = dict(PHASES)[job.phase]
    results = model.by_merchant.query(job.merchant_id, filter_condition=_ours(model, job), limit=PAGE_SIZE,
                                      last_evaluated_key=json.loads(job.cursor) if job.cursor else None)
    items = list(results)
    position = results.last_evaluated_key
    phase, cursor, finished = job.phase, position, False
    if position is None:
        later = [name for name, _ in PHASES][[name for name, _ in PHASES].index(job.phase) + 1:]
        phase, cursor, finished = (later[0], None, False) if later else (job.phase, None, True)
    if not _commit(job, page_no, model, items, total, phase, cursor, finished):
        latest = jobs.load(account_id, job_id)
        if latest is not None and latest.next_page == page_no and latest.status == jobs.RUNNING:
            _record_error(job, page_no, "an order or refund changed while being moved")
            raise jobs.PageFailed("an item of the page changed while it was being moved")
        return "duplicate"
    if finished:
        _hand_over(jobs.load(account_id, job_id))
    else:
        _send_page(job, page_no + 1)
    return "applied"


def _send_page(job: Job, page_no: int) -> None:
    """Send page `page_no`'s message, then note on the job that it went out. Failing in
    between only makes the previous page's redelivery send it once more: harmless."""
    queues.send(_queue_url(), [{"account_id": job.account_id, "job_id": job.job_id, "page": page_no}])
    _mark_sent(job, page_no)


def _mark_sent(job: Job, page_no: int) -> None:
    try:
        Job(job.account_id, job.job_id).update(actions=[Job.sent_page.set(page_no)],
                                               condition=(Job.next_page == page_no) & (Job.status == jobs.RUNNING))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def _commit(job: Job, page_no: int, model, items: list, total: int, phase: str, cursor, finished: bool) -> bool:
    at = now()
    job_actions = [Job.next_page.set(page_no + 1), Job.moved.add(len(items)), Job.progressed_at.set(at),
                   Job.phase.set(phase), Job.transactions_total.set(total), Job.error.remove()]
    if job.heals:
        job_actions.append(Job.heals.set(0))
    job_actions.append(Job.cursor.set(json.dumps(cursor)) if cursor else Job.cursor.remove())
    if finished:
        job_actions += [Job.status.set(jobs.COMPLETED), Job.ended_at.set(at), Job.watch_shard.remove()]

    def write(tx) -> None:
        for item in items:
            target = model.ssp_account_id.set(job.to_ssp) if job.to_ssp else model.ssp_account_id.remove()
            tx.update(item, actions=[target, model.attributed_by.set(job.job_id)],
                      condition=model.merchant_id == job.merchant_id)
        tx.update(Job(job.account_id, job.job_id), actions=job_actions,
                  condition=(Job.next_page == page_no) & (Job.status == jobs.RUNNING))

    return jobs.commit(write)


def _record_error(job: Job, page_no: int, error: str) -> None:
    try:
        Job(job.account_id, job.job_id).update(actions=[Job.error.set(error[:500]), Job.attempted_at.set(now())],
                                               condition=(Job.next_page == page_no) & (Job.status == jobs.RUNNING))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def _hand_over(job: Job) -> None:
    """The ended job leaves the merchant's list; the next one, if any, starts. Idempotent."""
    merchant = SubMerchant(job.account_id, job.merchant_id)
    try:
        merchant.update(actions=[SubMerchant.reattribution_jobs[0].remove()],
                        condition=SubMerchant.reattribution_jobs[0] == job.job_id, add_version_condition=False)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    current = SubMerchant.get(job.account_id, job.merchant_id, consistent_read=True)
    if not current.reattribution_jobs:
        return
    following = jobs.load(job.account_id, current.reattribution_jobs[0])
    if following is None or following.status != jobs.QUEUED:
        return
    _start_queued(following)
    logger.info("re-attribution started after the previous one", extra={"job_id": following.job_id})


def _start_queued(job: Job) -> None:
    """Send a queued job's first message, then mark it RUNNING (if it still is QUEUED)."""
    queues.send(_queue_url(), [_message(job)])
    try:
        at = now()
        job.update(actions=[Job.status.set(jobs.RUNNING), Job.started_at.set(at), Job.progressed_at.set(at)],
                   condition=Job.status == jobs.QUEUED)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def handle_dead_letter(body: dict, sent_at: float, receive_count: int = 1) -> str:
    """A page that kept failing stops its job (jobs.FAILED, with the reason); the merchant's queued
    changes wait for it, since running them now would interleave two moves. A job that had
    completed (its hand-over kept failing) hands over here."""
    account_id, job_id, page_no = jobs.message_fields(body, "account_id", "job_id", "page")
    job = jobs.load(account_id, job_id)
    if job is not None and job.status == jobs.COMPLETED:
        _hand_over(job)
        return "ignored"
    if job is None or job.status != jobs.RUNNING or job.next_page != page_no:
        return "ignored"
    reason = f"page {page_no} kept failing" + (f": {job.error}" if job.error else "")
    if not _fail(job, page_no, reason):
        return "ignored"
    logger.warning("re-attribution page dead-lettered", extra={"job_id": job_id, "page": page_no})
    return "job_failed"


def _fail(job: Job, page_no: int, error: str) -> bool:
    try:
        job.update(actions=[Job.status.set(jobs.FAILED), Job.ended_at.set(now()), Job.error.set(error[:500]),
                            Job.watch_shard.remove()],
                   condition=(Job.next_page == page_no) & (Job.status == jobs.RUNNING))
        return True
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise


# --- the scheduled check ---------------------------------------------------------------------------


def heal(job: Job, at: int) -> str:
    """The scheduled check's remedy for a re-attribution with no progress for a while (C7).

    RUNNING with no commit and no failed attempt for `jobs.STALLED_AFTER_SECONDS`: its
    message was lost, so the page is resent, and after `jobs.HEALS_BEFORE_FAILING` resends
    without progress the job is FAILED (retryable). QUEUED: it starts once it heads the
    merchant's list, and a completed job still heading the list (its hand-over was lost)
    hands over."""
    if job.status == jobs.QUEUED:
        return _start_if_due(job)
    stalled_before = at - jobs.STALLED_AFTER_SECONDS
    if max(job.progressed_at or 0, job.attempted_at or 0) > stalled_before:
        return "waiting"
    if job.heals >= jobs.HEALS_BEFORE_FAILING:
        failed = _fail(job, job.next_page, f"no progress for {jobs.STALLED_AFTER_SECONDS // 60} minutes after "
                                           f"{job.heals} resends of page {job.next_page}")
        return "failed" if failed else "waiting"
    try:
        Job(job.account_id, job.job_id).update(
            actions=[Job.heals.add(1), Job.attempted_at.set(at), Job.sent_page.set(job.next_page)],
            condition=(Job.status == jobs.RUNNING) & (Job.next_page == job.next_page)
            & jobs.unchanged(Job.attempted_at, job.attempted_at))
    except UpdateError as exc:
        if condition_failed(exc):
            return "waiting"
        raise
    queues.send(_queue_url(), [_message(job)])
    logger.warning("re-attribution page resent by the check", extra={"job_id": job.job_id, "page": job.next_page})
    return "resent"


def _start_if_due(job: Job) -> str:
    merchant = SubMerchant.get(job.account_id, job.merchant_id, consistent_read=True)
    head = (merchant.reattribution_jobs or [None])[0]
    if head == job.job_id:
        _start_queued(job)
        return "started"
    previous = jobs.load(job.account_id, head) if head else None
    if previous is not None and previous.status == jobs.COMPLETED:
        _hand_over(previous)
        return "handed_over"
    return "waiting"


def retryable(job: Job) -> bool:
    return job.status == jobs.FAILED


def retry(job: Job) -> Job:
    """Resume a failed job from the page it stopped at."""
    if job.status != jobs.FAILED:
        raise Conflict("only a failed re-attribution can be retried", param="job_id", code="nothing_to_retry")
    queues.send(_queue_url(), [_message(job)])
    try:
        job.update(actions=[Job.status.set(jobs.RUNNING), Job.ended_at.remove(), Job.error.remove(),
                            Job.heals.set(0), Job.progressed_at.set(now()), Job.watch_shard.set(watch_shard())],
                   condition=Job.status == jobs.FAILED)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    return jobs.load(job.account_id, job.job_id)
