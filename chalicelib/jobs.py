"""C7: background jobs — their ids, progress, lists, the lock that keeps one running, and the
queue handler every job page goes through.

A job's pages arrive as SQS messages. Whatever a page's handler cannot finish is put back
on the queue with a backoff and reported in `batchItemFailures`, so only that message comes
back; after the queue's maxReceiveCount it lands in the dead-letter queue, whose handler
marks the page failed in its job.

What fails between two writes is finished by the next delivery of the same message (it
resends the next page's message when nothing says it went out, and ends a job whose steps
are all done), and what no message is left to finish is found by the scheduled check
(`stalled`, see docs/jobs.md): no job, and no lock, outlives its work.
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Callable, Iterator

from pynamodb.exceptions import DeleteError, DoesNotExist, PutError, TransactWriteError, UpdateError

from chalicelib import pagination, queues
from chalicelib.errors import InvalidField, NotFound
from chalicelib.log import logger
from chalicelib.models.accounts import UniqueClaim
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.jobs import WATCH_SHARDS, Job

SUB_MERCHANT_SYNC = "sub_merchant_sync"
REATTRIBUTION = "reattribution"
KINDS = (SUB_MERCHANT_SYNC, REATTRIBUTION)
QUEUED, RUNNING = "QUEUED", "RUNNING"
COMPLETED, COMPLETED_WITH_FAILURES = "COMPLETED", "COMPLETED_WITH_FAILURES"
FAILED = "FAILED"
"""A re-attribution stopped by a page that kept failing: retryable, and the merchant's next
change waits for it."""
LIST = "jobs"
_TRANSACTION_ATTEMPTS = 5


def new_job_id() -> str:
    """"job_" + milliseconds in hex + randomness: ids sort by creation time."""
    return f"job_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(4)}"


def load(account_id: str, job_id: str) -> Job | None:
    try:
        return Job.get(account_id, job_id, consistent_read=True)
    except DoesNotExist:
        return None


def get(account_id: str, job_id: str) -> Job:
    """The caller's job; another account's job is not found, as if it did not exist."""
    job = load(account_id, job_id) if isinstance(job_id, str) and job_id.startswith("job_") else None
    if job is None:
        raise NotFound("no such job", param="job_id")
    return job


def list_jobs(account_id: str, query: dict, limit: int, cursor: str | None) -> pagination.Page:
    """Newest first. `kind` is the key of its own index; `status` changes as a job runs (in
    many writes), so it is a filter on top, read in a bounded slice: its pages may be partial."""
    values = {}
    for name, allowed in (("kind", KINDS), ("status", (QUEUED, RUNNING, COMPLETED, COMPLETED_WITH_FAILURES, FAILED))):
        value = query.get(name)
        if value:
            if value not in allowed:
                raise InvalidField(name, f"{name} must be one of {', '.join(allowed)}")
            values[name] = value
    source, key = (Job.by_kind, f"{account_id}#{values['kind']}") if "kind" in values else (Job, account_id)
    status = (Job.status == values["status"]) if "status" in values else None
    return pagination.query_page(source, key, LIST, limit, cursor, filter_condition=status, newest_first=True)


# --- the one-running-job lock ---------------------------------------------------------------------


def lock_name(kind: str, subject: str) -> str:
    return f"job#{kind}#{subject}"


def running_holder(lock: str, account_id: str) -> Job | None:
    """The running job holding `lock`, or None. A lock left by a job that ended (its worker
    died between ending the job and releasing it) is released here."""
    try:
        claim = UniqueClaim.get(lock, consistent_read=True)
    except DoesNotExist:
        return None
    job = load(account_id, claim.owner_id)
    if job is not None and job.status in (QUEUED, RUNNING):
        return job
    release(lock, claim.owner_id)
    return None


def lock_claim(lock: str, job_id: str) -> UniqueClaim:
    return UniqueClaim(claim=lock, owner_id=job_id, created_at=now())


def take_lock(lock: str, job_id: str) -> bool:
    """Hold `lock` for `job_id` (again, if it already does); False when another job holds it."""
    try:
        lock_claim(lock, job_id).save(condition=UniqueClaim.claim.does_not_exist() | (UniqueClaim.owner_id == job_id))
        return True
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise


def release(lock: str, job_id: str) -> None:
    try:
        UniqueClaim(claim=lock).delete(condition=UniqueClaim.owner_id == job_id)
    except DeleteError as exc:
        if not condition_failed(exc):
            raise


def commit(build: Callable[[object], None]) -> bool:
    """Run the transaction `build(tx)` describes; False when one of its conditions failed
    (the page was already committed by someone else). Conflicts with concurrent
    transactions on the same job record are retried."""
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            with transaction() as tx:
                build(tx)
            return True
        except TransactWriteError as exc:
            reasons = [reason.code if reason else None for reason in (exc.cancellation_reasons or [])]
            if "ConditionalCheckFailed" in reasons:
                return False
            if "TransactionConflict" not in reasons or attempt == _TRANSACTION_ATTEMPTS - 1:
                raise
            time.sleep(0.02 * 2 ** attempt + secrets.randbelow(20) / 1000)
    return False


def end_if_done(account_id: str, job_id: str, lock: str) -> Job | None:
    """End a running job whose last provider is done; release its lock. Idempotent."""
    job = load(account_id, job_id)
    if job is None or job.status != RUNNING or job.providers_remaining != 0:
        return job
    status = COMPLETED_WITH_FAILURES if (job.providers_failed or job.failed or job.pages_failed) else COMPLETED
    ended = Job(account_id, job_id)
    try:
        ended.update(actions=[Job.status.set(status), Job.ended_at.set(now()), Job.watch_shard.remove()],
                     condition=(Job.status == RUNNING) & (Job.providers_remaining == 0)
                     & (Job.providers_failed == job.providers_failed))
    except Exception as exc:
        if not condition_failed(exc):
            raise
        return job
    release(lock, job_id)
    logger.info("job ended", extra={"job_id": job_id, "status": status})
    return load(account_id, job_id)


# --- progress ----------------------------------------------------------------------------------


def _rate(done: int, job: Job, at: int) -> float:
    elapsed = max(1, (job.ended_at or at) - (job.started_at or job.created_at))
    return done / elapsed


def progress(job: Job, at: int | None = None) -> dict:
    """Percent, rates and ETA from the job's counters alone (a list shows them for free)."""
    at = at or now()
    if job.kind == SUB_MERCHANT_SYNC:
        processed = job.created + job.updated + job.unchanged + job.failed
        providers_settled = job.providers_done + job.providers_failed
        expected_known = job.providers_counted + job.providers_failed >= job.providers_total
        if expected_known and job.merchants_expected:
            percent = 100.0 * processed / job.merchants_expected
        else:
            percent = 100.0 * providers_settled / job.providers_total if job.providers_total else 100.0
        rate = _rate(processed, job, at)
        remaining = job.merchants_expected - processed
        eta = round(remaining / rate) if (job.status == RUNNING and expected_known and rate > 0) else None
        return {"percent": round(min(percent, 100.0), 1), "merchants_per_second": round(rate, 1),
                "pages_per_minute": round(60 * _rate(job.pages_done, job, at), 1), "eta_seconds": eta,
                "providers": {"total": job.providers_total, "done": job.providers_done,
                              "failed": job.providers_failed},
                "pages": {"done": job.pages_done, "failed": job.pages_failed},
                "merchants": {"expected": job.merchants_expected if expected_known else None,
                              "created": job.created, "updated": job.updated, "unchanged": job.unchanged,
                              "failed": job.failed}}
    total = job.transactions_total
    rate = _rate(job.moved, job, at)
    percent = 100.0 if job.status in (COMPLETED,) else (100.0 * job.moved / total if total else 0.0)
    eta = round((total - job.moved) / rate) if (job.status == RUNNING and total is not None and rate > 0) else None
    return {"percent": round(min(percent, 100.0), 1), "transactions_per_second": round(rate, 1),
            "eta_seconds": eta, "phase": job.phase, "pages": {"done": job.next_page or 0},
            "transactions": {"to_move": total, "moved": job.moved}}


def view(job: Job) -> dict:
    body = {"object": "job", "id": job.job_id, "kind": job.kind, "status": job.status,
            "created_at": job.created_at, "started_at": job.started_at, "ended_at": job.ended_at,
            "progressed_at": job.progressed_at, "progress": progress(job), "reports": job.reports or []}
    if job.kind == REATTRIBUTION:
        body.update({"merchant_id": job.merchant_id, "from_sub_service_provider": job.from_ssp,
                     "to_sub_service_provider": job.to_ssp, "after_job_id": job.after_job_id, "error": job.error})
    return body


# --- the queue side ------------------------------------------------------------------------------


class PageFailed(Exception):
    """A page could not be done this time (upstream unavailable, DynamoDB refused): retried
    with a backoff, and dead-lettered after the queue's maxReceiveCount."""


def handle_records(event: dict, context, queue_url: str, handle: Callable[[dict, float, int], str]) -> dict:
    """Run `handle(body, sent_at, receive_count)` on every record; report the ones that failed,
    each put back with its own delay (a backoff for failures, a short wait for RetryLater).
    A receive count above 1 tells the handler that an earlier attempt of this very message
    did not finish, so it finishes what that attempt may have left undone."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def handle_record(record) -> str:
        try:
            body = json.loads(record.body)
        except ValueError:
            raise PageFailed("message body is not JSON") from None
        sent_at = int(record.attributes.sent_timestamp) / 1000.0
        receive_count = int(record.attributes.approximate_receive_count)
        try:
            outcome = handle(body, sent_at, receive_count)
        except queues.RetryLater as exc:
            queues.put_back(queue_url, record.receipt_handle, min(exc.seconds, queues.backoff_seconds(1)))
            logger.info("job page put back", extra={"reason": str(exc), "message_id": record.message_id})
            raise
        except Exception as exc:
            delay = queues.backoff_seconds(receive_count)
            queues.put_back(queue_url, record.receipt_handle, delay)
            logger.warning("job page failed", extra={"error": str(exc)[:300], "retry_in_seconds": delay,
                                                     "message_id": record.message_id})
            raise
        logger.info("job page handled", extra={"outcome": outcome, "message_id": record.message_id})
        return outcome

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=event, record_handler=handle_record, processor=processor, context=context)


def wait_for(fetch: Callable[[], object], ready: Callable[[object], bool], seconds: float = 1.0):
    """Fetch until `ready` (or `seconds` pass) and return the last fetch.

    A page's message is sent just before its predecessor commits, and a job's first messages
    just before the job record is written: the awaited write usually lands within
    milliseconds, so waiting here beats putting the message back for a whole second."""
    deadline = time.monotonic() + seconds
    value = fetch()
    while not ready(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = fetch()
    return value


RESEND_AFTER_SECONDS = 60
"""Shorter than the queues' visibility timeout (360 s): a page message seen again after its
worker died comes back later than this."""


def note_failed_attempt(record: Callable[[str], None], exc: Exception, **where) -> None:
    """Note a page's failed attempt with `record` (best effort: the page's own failure is what
    is raised), so the scheduled check sees that its message is still being retried."""
    try:
        record(f"{type(exc).__name__}: {exc}")
    except Exception as noting:
        logger.warning("could not note a failed page attempt", extra={**where, "error": str(noting)[:300]})


def next_message_lost(page_no: int, next_page: int, sent_page: int | None, moved_at: int | None,
                      receive_count: int) -> bool:
    """Whether the message of the page just committed, seen again, must send the next page's
    message: the position is one past it, nothing records that the next message went out
    (`sent_page` is written after the send), and either this very message was received
    before (its first attempt failed or died between the commit and the send: SQS throttled,
    a network error, a killed worker) or the position has not moved for longer than a plain
    duplicate takes to arrive. A duplicate copy arriving while the worker that committed is
    about to send sends nothing; were it to, the next page would only be delivered twice,
    which its commit condition makes harmless."""
    if page_no != next_page - 1 or (sent_page is not None and sent_page >= next_page):
        return False
    return receive_count > 1 or now() - (moved_at or 0) > RESEND_AFTER_SECONDS


# --- the scheduled check of stalled jobs ---------------------------------------------------------

STALLED_AFTER_SECONDS = 900
"""A job with no progress, and a page with no commit and no failed attempt, for this long has
no message left on its queue: a message being retried comes back at least every 380 s (a
Lambda run of at most 300 s then a backoff of at most 80 s, or the 360 s visibility timeout
of a worker that died), and every failed attempt is noted on the page's record. So the check
never resends the page of a job that is merely slow."""
HEALS_BEFORE_FAILING = 2
"""Resends of one page without progress before the check marks it failed (retryable)."""


def stalled(at: int) -> Iterator[Job]:
    """The jobs not ended whose last progress is older than STALLED_AFTER_SECONDS, from the
    sparse running-jobs index (shard by shard, never a Scan), each read again consistently
    since the index lags the table."""
    for shard in range(WATCH_SHARDS):
        for key in Job.running_by_progress.query(f"running#{shard}",
                                                 Job.progressed_at <= at - STALLED_AFTER_SECONDS):
            job = load(key.account_id, key.job_id)
            if job is not None:
                yield job


def unwatch(job: Job) -> None:
    """Take an ended job out of the running-jobs index (its end already did, unless a job was
    written ended, as a sync with no providers is)."""
    try:
        job.update(actions=[Job.watch_shard.remove()], condition=Job.status.is_in(COMPLETED, COMPLETED_WITH_FAILURES,
                                                                                 FAILED))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def unchanged(attribute, value):
    """The condition that `attribute` still holds `value` as read (or is still absent)."""
    return attribute.does_not_exist() if value is None else attribute == value


def message_fields(body: dict, *names: str) -> list:
    """The named fields of a job message; a malformed message fails (and is dead-lettered)."""
    missing = [name for name in names if name not in body]
    if missing:
        raise PageFailed(f"message lacks {', '.join(missing)}")
    return [body[name] for name in names]

