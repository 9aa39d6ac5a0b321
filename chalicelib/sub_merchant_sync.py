"""C5.3 / B1: bring every provider's sub-merchants over from 买单, one queue message per page.

Start: one job per account at a time (a lock claim). The page messages are sent before the
job record is written: a start that dies in between leaves messages for a job that never
existed, which workers drop, instead of a job that would wait forever for messages.

A page (`handle_page`), for provider P at page n:
  1. P's step must be at page n (behind: a duplicate, dropped; ahead: the previous page is
     still committing, put back for a second).
  2. Fetch page n at the step's stored cursor from 买单.
  3. Classify each merchant against its record (found through its sub_mchid claim):
     created, updated, unchanged or failed. A record this job already wrote says what the
     job did to it (`sync_job`, `sync_outcome`), so a page redone after a worker died
     mid-write is classified as the first attempt classified it.
  4. Write new records and their claims with BatchWriteItem, 25 per call; update changed
     records in one transaction, each only if its version is still the one read, so an
     edit saved in the console meanwhile is never overwritten: the page is planned again
     from what is stored now.
  5. Commit: one transaction advances the step to n+1 only if it is still at n, and adds
     the page's counts to the job. A duplicate, or a page redone, fails that condition and
     counts nothing. Then send the message for page n+1.
  6. Send the message for page n+1 and note it on the step (`sent_page`), or, after the
     last page of the last provider, end the job and free the lock.
Whatever fails between two writes leaves page n's message on the queue (put back, or back
after a dead worker's visibility timeout), and its next delivery finishes the work: before
the commit it redoes the page; after it, it resends page n+1's message unless `sent_page`
says it went out (`jobs.next_message_lost`), and it ends a job whose providers are all
settled. The scheduled check (`heal`) covers what no message is left to finish.
"""
from __future__ import annotations

import hashlib
import time

from pynamodb.exceptions import DoesNotExist, PutError

from chalicelib import batch_writes, jobs, maidan_admins, queues, settings
from chalicelib.errors import Conflict
from chalicelib.log import logger
from chalicelib.models.accounts import UniqueClaim
from chalicelib.models.base import condition_failed, now
from chalicelib.models.jobs import Job, JobStep, watch_shard
from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.sub_merchants import order_prefixes
from chalicelib.upstream import maidan
from chalicelib.upstream.http import UpstreamUnavailable

PAGE_SIZE = maidan.MAX_PAGE_SIZE
"""100 merchants: also DynamoDB's limit of items in one transaction, so a page's updates fit one."""
PLAN_ATTEMPTS = 3
ORPHAN_AFTER_SECONDS = 120
"""A message whose job record is still missing this long after it was sent belongs to a
start that died (or lost the race to another start): dropped."""
FAILURES_KEPT_PER_PROVIDER = 20
NEVER_STARTED_AFTER_SECONDS = 3600
"""A provider with no step this long after the job's last progress lost its first page's
message (a first page dead-lettered before its step was written gets a failed step)."""
RUNNING, DONE, FAILED, NOT_IN_MAIDAN = "RUNNING", "DONE", "FAILED", "NOT_IN_MAIDAN"
NOT_ADMINISTERED = "NOT_ADMINISTERED"
"""A provider none of the account's bound WeChats administers in 买单 any more: not read."""
_MAIDAN_FIELDS = ("name", "short_name", "admin_name", "admin_email", "admin_phone", "logo_url", "maidan_opened",
                  "maidan_updated_at")
_LIMITS = {"name": 64, "short_name": 32, "admin_name": 32}


def _lock(account_id: str) -> str:
    return jobs.lock_name(jobs.SUB_MERCHANT_SYNC, account_id)


def _queue_url() -> str:
    return settings.current().sync_queue_url


def _providers_to_fetch(account_id: str) -> tuple[list[Provider], list[dict]]:
    """(the account's providers that one of its bound WeChats administers in 买单 now, the
    reports on the rest). 买单 is asked with the platform's credentials, so a provider the
    account only typed in (C3.5) is never fetched: its sub-merchants are another admin's.
    Providers the bound admins hold but the account has not synced are reported so the
    user syncs them first (C3.2), never created here. When a bound WeChat could not be
    asked, the providers not known to be administered are queued all the same: the check
    before each page decides, and retries a lookup that fails ("could not ask" is not "no")."""
    admins = maidan_admins.account_admins(account_id)
    reports = [{"type": "provider_check_failed",
                "message": f"could not ask 买单 which providers a bound WeChat administers: {failure}"}
               for failure in admins.failures]
    fetch = []
    for provider in Provider.query(account_id):
        if provider.claim_lost_at is not None:
            reports.append({"type": "provider_claim_lost", "sp_mchid": provider.sp_mchid, "name": provider.name,
                            "message": "this provider was taken over by the account of its 买单 admin, so its "
                                       "sub-merchants were not synced"})
        elif provider.sp_mchid in admins.providers or admins.failures:
            fetch.append(provider)
        else:
            reports.append(_not_administered_report(provider.sp_mchid, provider.name))
    held = {provider.sp_mchid for provider in Provider.query(account_id, attributes_to_get=["sp_mchid"])}
    for sp_mchid, provider in admins.providers.items():
        if sp_mchid not in held:
            reports.append({"type": "provider_not_synced", "sp_mchid": sp_mchid, "name": provider.name,
                            "message": "this 买单 provider is not in the account yet, so its sub-merchants "
                                       "were not synced: sync providers first (POST /v1/provider-sync-codes)"})
    return fetch, reports


def _not_administered_report(sp_mchid: str, name: str | None) -> dict:
    return {"type": "provider_not_administered", "sp_mchid": sp_mchid, "name": name,
            "message": "none of the account's bound WeChats administers this provider in 买单, so nothing of it "
                       "was read from 买单: bind its admin's WeChat (POST /v1/wechat-binding-codes) and sync again"}


def _still_administered(job: Job, step: JobStep, page_no: int) -> bool:
    """Asked again before each page: a binding removed (or an admin replaced in 买单) since
    the start stops the provider before its next page is read. A failed lookup fails the
    page like a failed fetch, so the queue retries it."""
    try:
        if maidan_admins.account_administers(job.account_id, step.step):
            return True
    except maidan_admins.LOOKUP_ERRORS as exc:
        _record_attempt(step, page_no, f"could not ask 买单 whether the provider is still administered: {exc}")
        raise jobs.PageFailed(str(exc)) from exc
    return False


def _commit_not_administered(job: Job, step: JobStep, page_no: int) -> bool:
    """The provider's step ends NOT_ADMINISTERED with `provider_not_administered` as its
    error, counted as a failed provider (the job ends COMPLETED_WITH_FAILURES, not
    retryable: a retry would be refused the same way)."""
    at = now()
    job_actions = [Job.providers_failed.add(1), Job.providers_remaining.add(-1), Job.progressed_at.set(at)]
    if page_no == 0:
        job_actions.append(Job.providers_counted.add(1))

    def write(tx) -> None:
        tx.update(step, actions=[JobStep.status.set(NOT_ADMINISTERED), JobStep.updated_at.set(at),
                                 JobStep.last_error.set("provider_not_administered")],
                  condition=(JobStep.next_page == page_no) & (JobStep.status == RUNNING))
        tx.update(Job(job.account_id, job.job_id), actions=job_actions, condition=Job.status == jobs.RUNNING)

    committed = jobs.commit(write)
    if committed:
        logger.info("sync stopped: provider not administered", extra={"job_id": job.job_id, "sp_mchid": step.step})
        jobs.end_if_done(job.account_id, job.job_id, _lock(job.account_id))
    return committed


def start(account_id: str) -> tuple[Job, bool]:
    """(job, started): a new job, or the one already running for the account."""
    running = jobs.running_holder(_lock(account_id), account_id)
    if running is not None:
        return running, False
    providers, reports = _providers_to_fetch(account_id)
    at = now()
    job = Job(account_id=account_id, job_id=jobs.new_job_id(), kind=jobs.SUB_MERCHANT_SYNC, status=jobs.RUNNING,
              created_at=at, started_at=at, progressed_at=at, providers_total=len(providers),
              providers_remaining=len(providers), reports=reports)
    if not providers:
        job.status, job.ended_at = jobs.COMPLETED, at
        job.reports = [{"type": "no_providers", "message": "the account has no provider that a bound WeChat "
                                                           "administers in 买单: sync providers from 买单 first "
                                                           "(POST /v1/provider-sync-codes)"}] + job.reports
        job.save(condition=Job.job_id.does_not_exist())
        return job, True
    queues.send(_queue_url(), [{"account_id": account_id, "job_id": job.job_id, "sp_mchid": provider.sp_mchid,
                                "page": 0} for provider in providers])

    def write(tx) -> None:
        tx.save(job, condition=Job.job_id.does_not_exist())
        tx.save(jobs.lock_claim(_lock(account_id), job.job_id), condition=UniqueClaim.claim.does_not_exist())

    if not jobs.commit(write):
        running = jobs.running_holder(_lock(account_id), account_id)
        if running is None:
            raise Conflict("another sync started at the same moment; ask again", code="sync_starting")
        return running, False
    logger.info("sub-merchant sync started", extra={"job_id": job.job_id, "providers": len(providers)})
    return job, True


# --- a page -----------------------------------------------------------------------------------------


def _step(job_id: str, sp_mchid: str) -> JobStep | None:
    try:
        return JobStep.get(job_id, sp_mchid, consistent_read=True)
    except DoesNotExist:
        return None


def _first_step(job: Job, sp_mchid: str) -> JobStep:
    at = now()
    step = JobStep(job_id=job.job_id, step=sp_mchid, account_id=job.account_id, status=RUNNING, next_page=0,
                   updated_at=at, expires_at=at + settings.current().job_step_ttl_seconds)
    try:
        step.save(condition=JobStep.step.does_not_exist())
        return step
    except PutError as exc:
        if not condition_failed(exc):
            raise
    return _step(job.job_id, sp_mchid)


def synced_merchant_id(account_id: str, sub_mchid: str) -> str:
    """The id a sync gives the merchant it creates: the same on every attempt, so a page
    redone after a crash finds the record it wrote instead of creating a second one."""
    return "m_" + hashlib.sha256(f"{account_id}:{sub_mchid}".encode()).hexdigest()[:16]


def _maidan_values(merchant: maidan.MaidanSubMerchant) -> dict:
    return {"name": merchant.name.strip(), "short_name": merchant.short_name.strip() or None,
            "admin_name": merchant.admin_name.strip() or None,
            "admin_email": merchant.admin_email.strip().lower() or None,
            "admin_phone": merchant.admin_phone.strip() or None, "logo_url": merchant.logo_url or None,
            "maidan_opened": merchant.opened_maidan, "maidan_updated_at": merchant.updated_at}


def _problem(values: dict) -> dict | None:
    """Why Cloud Pay cannot take this merchant as 买单 describes it, or None: a stable `code`
    (with `field` where one is at fault) that the console words, and the reason in English."""
    if not values["name"]:
        return {"code": "missing_name", "reason": "买单 gives it no name"}
    for name, limit in _LIMITS.items():
        if values[name] and len(values[name]) > limit:
            return {"code": "too_long", "field": name, "reason": f"its {name} is longer than {limit} characters"}
    if values["logo_url"] and not values["logo_url"].startswith("https://"):
        return {"code": "logo_not_https", "field": "logo_url", "reason": "its logo_url is not https"}
    return None


def _plan(job: Job, sp_mchid: str, page: maidan.SubMerchantPage) -> tuple[dict, list, list, list, list]:
    """Classify the page: (counts, new records to put, claims to put, changed records as
    (record as read, 买单's values, outcome), failures)."""
    account_id = job.account_id
    claims = {claim.claim: claim.owner_id for claim in UniqueClaim.batch_get(
        [f"sub_mchid#{m.sub_mchid}" for m in page.sub_merchants])}
    ids = {m.sub_mchid: claims.get(f"sub_mchid#{m.sub_mchid}") or synced_merchant_id(account_id, m.sub_mchid)
           for m in page.sub_merchants}
    records = {record.merchant_id: record for record in SubMerchant.batch_get(
        [(account_id, merchant_id) for merchant_id in set(ids.values())], consistent_read=True)}
    counts = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0}
    puts, claim_puts, updates, failures, creating = [], [], [], [], []
    at = now()
    for merchant in page.sub_merchants:
        values = _maidan_values(merchant)
        record = records.get(ids[merchant.sub_mchid])
        claimed = f"sub_mchid#{merchant.sub_mchid}" in claims
        problem = _problem(values)
        if problem is None and claimed and record is None:
            problem = {"code": "sub_mchid_taken",
                       "reason": "its sub_mchid belongs to a sub-merchant of another Cloud Pay account"}
        if problem is None and record is not None and record.sp_mchid != sp_mchid:
            problem = {"code": "under_another_provider", "held_under": record.sp_mchid,
                       "reason": f"it is a sub-merchant of provider {record.sp_mchid} here, "
                                 f"but 买单 lists it under {sp_mchid}"}
        if problem:
            counts["failed"] += 1
            failures.append({"sub_mchid": merchant.sub_mchid, **problem})
            continue
        if record is None:
            counts["created"] += 1
            creating.append((merchant, values))
            continue
        outcome = record.sync_outcome if record.sync_job == job.job_id else None
        if outcome == "created":
            claim_puts.append(UniqueClaim(claim=f"sub_mchid#{merchant.sub_mchid}", owner_id=record.merchant_id,
                                          created_at=at))
        changed = any(getattr(record, name) != value for name, value in values.items())
        if outcome is None:
            outcome = "updated" if changed else "unchanged"
        counts[outcome] += 1
        if changed:
            updates.append((record, values, outcome))
    prefixes = order_prefixes(len(creating))
    for (merchant, values), prefix in zip(creating, prefixes):
        merchant_id = synced_merchant_id(account_id, merchant.sub_mchid)
        puts.append(SubMerchant(account_id=account_id, merchant_id=merchant_id, sp_mchid=sp_mchid,
                                provider_key=f"{account_id}#{sp_mchid}", order_prefix=prefix,
                                sub_mchid=merchant.sub_mchid, channel="maidan", source="maidan", created_at=at,
                                updated_at=at, version=1, sync_job=job.job_id, sync_outcome="created", **values))
        claim_puts.append(UniqueClaim(claim=f"sub_mchid#{merchant.sub_mchid}", owner_id=merchant_id, created_at=at))
    return counts, puts, claim_puts, updates, failures


def _write_updates(job_id: str, updates: list) -> bool:
    """Update the changed records in one transaction, each guarded by the version it was
    read at (PynamoDB's VersionAttribute adds the condition and the increment). False when
    one was edited since: nothing is written and the caller plans the page again."""
    if not updates:
        return True
    at = now()

    def write(tx) -> None:
        for record, values, outcome in updates:
            actions = [getattr(SubMerchant, name).set(value) if value is not None
                       else getattr(SubMerchant, name).remove() for name, value in values.items()]
            actions.append(SubMerchant.updated_at.set(at))
            if record.sync_job != job_id:
                actions += [SubMerchant.sync_job.set(job_id), SubMerchant.sync_outcome.set(outcome)]
            tx.update(record, actions=actions)

    return jobs.commit(write)


def _record_attempt(step: JobStep, page_no: int, error: str) -> None:
    """Note why the page failed, for the job detail; the retry itself is the queue's."""
    try:
        step.update(actions=[JobStep.attempts.add(1), JobStep.last_error.set(error[:500]),
                             JobStep.updated_at.set(now())],
                    condition=(JobStep.next_page == page_no) & (JobStep.status == RUNNING))
    except Exception as exc:
        if not condition_failed(exc):
            raise


def handle_messages(event: dict, context) -> dict:
    """The sync queue's handler: each message is one page (see the module docstring)."""
    return jobs.handle_records(event, context, _queue_url(), handle_page)


def handle_dead_letters(event: dict, context) -> dict:
    return jobs.handle_records(event, context, settings.current().sync_dead_letter_queue_url, handle_dead_letter)


def handle_page(body: dict, sent_at: float, receive_count: int = 1) -> str:
    account_id, job_id, sp_mchid, page_no = jobs.message_fields(body, "account_id", "job_id", "sp_mchid", "page")
    job = jobs.wait_for(lambda: jobs.load(account_id, job_id), lambda found: found is not None)
    if job is None:
        if time.time() - sent_at > ORPHAN_AFTER_SECONDS:
            return "orphan"
        raise queues.RetryLater("the job record is not written yet")
    if job.status != jobs.RUNNING:
        return "job_ended"
    if job.providers_remaining == 0:
        jobs.end_if_done(account_id, job_id, _lock(account_id))
        return "ended_the_job"
    step = _step(job_id, sp_mchid) or (_first_step(job, sp_mchid) if page_no == 0 else None)
    if step is None or step.status in (DONE, NOT_IN_MAIDAN):
        return "duplicate"
    if page_no < step.next_page:
        if step.status == RUNNING and jobs.next_message_lost(page_no, step.next_page, step.sent_page,
                                                             step.updated_at, receive_count):
            _send_page(step, step.next_page)
            return "duplicate_resent_next"
        return "duplicate"
    if step.status == FAILED:
        raise queues.RetryLater("the page is marked failed; a retry may be reopening it")
    if page_no > step.next_page:
        step = jobs.wait_for(lambda: _step(job_id, sp_mchid), lambda found: found.next_page >= page_no)
    if step.status != RUNNING or page_no < step.next_page:
        return "duplicate"
    if page_no > step.next_page:
        raise queues.RetryLater("the previous page is still being committed", seconds=1)
    if not _still_administered(job, step, page_no):
        return "not_administered" if _commit_not_administered(job, step, page_no) else "duplicate"
    try:
        page = maidan.list_sub_merchants(sp_mchid, step.cursor, PAGE_SIZE)
    except maidan.MaidanError as exc:
        if exc.status == 404 and page_no == 0:
            return "not_in_maidan" if _commit_not_in_maidan(job, step) else "duplicate"
        _record_attempt(step, page_no, f"买单 refused the page: {exc}")
        raise jobs.PageFailed(str(exc)) from exc
    except (UpstreamUnavailable, maidan.MaidanSignatureError) as exc:
        _record_attempt(step, page_no, str(exc))
        raise jobs.PageFailed(str(exc)) from exc
    try:
        for _ in range(PLAN_ATTEMPTS):
            counts, puts, claims, updates, failures = _plan(job, sp_mchid, page)
            batch_writes.put_all(SubMerchant, puts)
            batch_writes.put_all(UniqueClaim, claims)
            if _write_updates(job_id, updates):
                break
        else:
            raise queues.RetryLater("its sub-merchants kept being edited while the page was written", seconds=1)
        committed = _commit_page(job, step, page_no, page, counts, failures)
    except queues.RetryLater:
        raise
    except Exception as exc:
        jobs.note_failed_attempt(lambda error: _record_attempt(step, page_no, error), exc,
                                 job_id=step.job_id, sp_mchid=step.step)
        raise
    if not committed:
        return "duplicate"
    if page.next_cursor:
        _send_page(step, page_no + 1)
    else:
        jobs.end_if_done(account_id, job_id, _lock(account_id))
    return "applied"


def _send_page(step: JobStep, page_no: int) -> None:
    """Send page `page_no`'s message, then note on the step that it went out. Failing in
    between only makes the previous page's redelivery send it once more: harmless."""
    queues.send(_queue_url(), [{"account_id": step.account_id, "job_id": step.job_id, "sp_mchid": step.step,
                                "page": page_no}])
    _mark_sent(step, page_no)


def _mark_sent(step: JobStep, page_no: int) -> None:
    try:
        step.update(actions=[JobStep.sent_page.set(page_no)], condition=JobStep.next_page == page_no)
    except Exception as exc:
        if not condition_failed(exc):
            raise



def _commit_page(job: Job, step: JobStep, page_no: int, page: maidan.SubMerchantPage, counts: dict,
                 failures: list) -> bool:
    last = page.next_cursor is None
    at = now()
    step_actions = [JobStep.next_page.set(page_no + 1), JobStep.pages_done.add(1), JobStep.updated_at.set(at),
                    JobStep.attempts.set(0)]
    if step.heals:
        step_actions.append(JobStep.heals.set(0))
    step_actions.append(JobStep.cursor.remove() if last else JobStep.cursor.set(page.next_cursor))
    job_actions = [Job.pages_done.add(1), Job.progressed_at.set(at)]
    for name, count in counts.items():
        if count:
            step_actions.append(getattr(JobStep, name).add(count))
            job_actions.append(getattr(Job, name).add(count))
    if failures and len(step.failures or []) < FAILURES_KEPT_PER_PROVIDER:
        kept = (step.failures or []) + failures
        step_actions.append(JobStep.failures.set(kept[:FAILURES_KEPT_PER_PROVIDER]))
    if page_no == 0:
        step_actions.append(JobStep.expected.set(page.total or 0))
        job_actions += [Job.providers_counted.add(1), Job.merchants_expected.add(page.total or 0)]
    if last:
        step_actions.append(JobStep.status.set(DONE))
        job_actions += [Job.providers_done.add(1), Job.providers_remaining.add(-1)]

    def write(tx) -> None:
        tx.update(step, actions=step_actions,
                  condition=(JobStep.next_page == page_no) & (JobStep.status == RUNNING))
        tx.update(Job(job.account_id, job.job_id), actions=job_actions, condition=Job.status == jobs.RUNNING)

    return jobs.commit(write)


def _commit_not_in_maidan(job: Job, step: JobStep) -> bool:
    """A provider 买单 does not know (created by hand): nothing to sync, reported in the job."""
    def write(tx) -> None:
        tx.update(step, actions=[JobStep.status.set(NOT_IN_MAIDAN), JobStep.updated_at.set(now()),
                                 JobStep.expected.set(0)],
                  condition=(JobStep.next_page == 0) & (JobStep.status == RUNNING))
        tx.update(Job(job.account_id, job.job_id),
                  actions=[Job.providers_done.add(1), Job.providers_remaining.add(-1), Job.providers_counted.add(1),
                           Job.progressed_at.set(now())], condition=Job.status == jobs.RUNNING)

    committed = jobs.commit(write)
    if committed:
        jobs.end_if_done(job.account_id, job.job_id, _lock(job.account_id))
    return committed


# --- dead letters and retry ---------------------------------------------------------------------------


def handle_dead_letter(body: dict, sent_at: float, receive_count: int = 1) -> str:
    """A page that kept failing: mark it failed in its job (once), so the job can end and the
    console can offer a retry. A first page whose step was never written (DynamoDB refused
    it every time) gets a failed step, so the job still ends and the retry knows the page."""
    account_id, job_id, sp_mchid, page_no = jobs.message_fields(body, "account_id", "job_id", "sp_mchid", "page")
    job = jobs.load(account_id, job_id)
    if job is None or job.status != jobs.RUNNING:
        return "ignored"
    step = _step(job_id, sp_mchid)
    if step is None and page_no == 0:
        at = now()
        step = JobStep(job_id=job_id, step=sp_mchid, account_id=account_id, status=RUNNING, next_page=0,
                       updated_at=at, expires_at=at + settings.current().job_step_ttl_seconds)
        failed = _fail_step(job, step, 0, "the first page kept failing before it could start", new=True)
    elif step is not None and step.status == RUNNING and step.next_page == page_no:
        failed = _fail_step(job, step, page_no, step.last_error)
    else:
        failed = False
    if failed:
        logger.warning("sync page dead-lettered", extra={"job_id": job_id, "sp_mchid": sp_mchid, "page": page_no,
                                                         "error": step.last_error})
    jobs.end_if_done(account_id, job_id, _lock(account_id))
    return "page_failed" if failed else "ignored"


def _fail_step(job: Job, step: JobStep, page_no: int, error: str | None, new: bool = False) -> bool:
    """Mark the provider's page failed (retryable) and count it in the job, once."""
    at = now()
    step_actions = [JobStep.status.set(FAILED), JobStep.updated_at.set(at)]
    if error:
        step_actions.append(JobStep.last_error.set(error[:500]))

    def write(tx) -> None:
        if new:
            step.status, step.last_error = FAILED, error
            tx.save(step, condition=JobStep.step.does_not_exist())
        else:
            tx.update(step, actions=step_actions, condition=(JobStep.next_page == page_no) & (JobStep.status == RUNNING))
        tx.update(Job(job.account_id, job.job_id), actions=[
            Job.providers_failed.add(1), Job.providers_remaining.add(-1), Job.pages_failed.add(1),
            Job.progressed_at.set(at)], condition=Job.status == jobs.RUNNING)

    return jobs.commit(write)


# --- the scheduled check ---------------------------------------------------------------------------


def heal(job: Job, at: int) -> str:
    """The scheduled check's remedy for a running sync with no progress for a while (C7):
    resend the page of each provider whose step has been untouched (no commit, no failed
    attempt) for `jobs.STALLED_AFTER_SECONDS` (its message was lost), mark it failed after
    `jobs.HEALS_BEFORE_FAILING` resends without progress, and end the job once every
    provider is settled, which frees the account's lock."""
    stalled_before = at - jobs.STALLED_AFTER_SECONDS
    job_steps = list(JobStep.query(job.job_id, consistent_read=True))
    outcome = "waiting"
    for step in job_steps:
        if step.status != RUNNING or step.updated_at > stalled_before:
            continue
        if step.heals < jobs.HEALS_BEFORE_FAILING:
            if _claim_resend(step, at):
                queues.send(_queue_url(), [{"account_id": job.account_id, "job_id": job.job_id,
                                            "sp_mchid": step.step, "page": step.next_page}])
                logger.warning("sync page resent by the check", extra={"job_id": job.job_id, "sp_mchid": step.step,
                                                                        "page": step.next_page})
                outcome = "resent"
        elif _fail_step(job, step, step.next_page, f"no progress for {jobs.STALLED_AFTER_SECONDS // 60} minutes "
                                                   f"after {step.heals} resends of page {step.next_page}"):
            outcome = "failed"
    never_started = job.providers_total - len(job_steps)
    if never_started > 0 and job.progressed_at <= at - NEVER_STARTED_AFTER_SECONDS \
            and all(step.status != RUNNING for step in job_steps) and _fail_never_started(job, never_started):
        outcome = "failed"
    ended = jobs.end_if_done(job.account_id, job.job_id, _lock(job.account_id))
    return "ended" if ended is not None and ended.status != jobs.RUNNING else outcome


def _claim_resend(step: JobStep, at: int) -> bool:
    """One check resends a page once: the step, still as read, notes the resend."""
    try:
        step.update(actions=[JobStep.heals.add(1), JobStep.updated_at.set(at), JobStep.sent_page.set(step.next_page)],
                    condition=(JobStep.status == RUNNING) & (JobStep.next_page == step.next_page)
                    & (JobStep.updated_at == step.updated_at))
        return True
    except Exception as exc:
        if not condition_failed(exc):
            raise
        return False


def _fail_never_started(job: Job, count: int) -> bool:
    """Providers whose first page left no step behind and no message (none is known by
    name): counted failed with a report, so the job ends; a new sync picks them up."""
    report = {"type": "providers_not_started", "count": count,
              "message": f"{count} provider(s) never started and were not synced: start the sync again"}
    try:
        Job(job.account_id, job.job_id).update(
            actions=[Job.providers_failed.add(count), Job.providers_remaining.add(-count),
                     Job.reports.set((job.reports or []) + [report])],
            condition=(Job.status == jobs.RUNNING) & (Job.providers_remaining == job.providers_remaining))
        return True
    except Exception as exc:
        if not condition_failed(exc):
            raise
        return False


def failed_steps(job_id: str) -> list[JobStep]:
    return [step for step in JobStep.query(job_id, filter_condition=JobStep.status == FAILED)]


def retry(job: Job) -> Job:
    """C7: send the failed pages again. The job runs again (and holds the account's sync lock)
    until they are done or fail again."""
    failed = failed_steps(job.job_id)
    if not failed:
        raise Conflict("this job has no failed pages to retry", param="job_id", code="nothing_to_retry")
    lock = _lock(job.account_id)
    if not jobs.take_lock(lock, job.job_id):
        raise Conflict("another sub-merchant sync is running for this account; retry when it ends",
                       code="sync_running")
    for step in failed:
        queues.send(_queue_url(), [{"account_id": job.account_id, "job_id": job.job_id, "sp_mchid": step.step,
                                    "page": step.next_page}])

        def write(tx, step=step) -> None:
            tx.update(step, actions=[JobStep.status.set(RUNNING), JobStep.attempts.set(0), JobStep.heals.set(0),
                                     JobStep.updated_at.set(now())], condition=JobStep.status == FAILED)
            tx.update(Job(job.account_id, job.job_id),
                      actions=[Job.providers_failed.add(-1), Job.providers_remaining.add(1), Job.pages_failed.add(-1),
                               Job.status.set(jobs.RUNNING), Job.ended_at.remove(), Job.progressed_at.set(now()),
                               Job.watch_shard.set(watch_shard())])

        jobs.commit(write)
    return jobs.load(job.account_id, job.job_id)


def step_view(step: JobStep) -> dict:
    return {"sp_mchid": step.step, "status": step.status, "pages_done": step.pages_done, "next_page": step.next_page,
            "expected": step.expected, "created": step.created, "updated": step.updated,
            "unchanged": step.unchanged, "failed": step.failed, "failures": step.failures or [],
            "attempts": step.attempts, "last_error": step.last_error}


def steps(job_id: str) -> list[JobStep]:
    return list(JobStep.query(job_id, attributes_to_get=[
        "step", "status", "pages_done", "next_page", "expected", "created", "updated", "unchanged", "failed",
        "failures", "attempts", "last_error", "job_id", "account_id", "updated_at", "expires_at"]))
