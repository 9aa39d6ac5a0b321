"""C7: a job's detail, its retry and the scheduled check of stalled jobs, whatever its kind."""
from __future__ import annotations

from chalicelib import jobs, reattribution, sub_merchant_sync
from chalicelib.log import logger
from chalicelib.models.base import now
from chalicelib.models.jobs import Job


def detail(job: Job) -> dict:
    body = jobs.view(job)
    if job.kind == jobs.SUB_MERCHANT_SYNC:
        body["providers"] = [sub_merchant_sync.step_view(step) for step in sub_merchant_sync.steps(job.job_id)]
        body["retryable"] = any(step["status"] == sub_merchant_sync.FAILED for step in body["providers"])
    else:
        body["retryable"] = reattribution.retryable(job)
    return body


def retry(job: Job) -> Job:
    if job.kind == jobs.SUB_MERCHANT_SYNC:
        return sub_merchant_sync.retry(job)
    return reattribution.retry(job)


def heal_stalled_jobs(at: int | None = None) -> dict[str, int]:
    """Every job not ended that has not progressed for `jobs.STALLED_AFTER_SECONDS`: healed
    (its lost page message resent, a finished job ended and its lock freed, a queued one
    started) or failed and retryable, so no job and no lock outlives its work. Returns how
    many jobs were examined and what happened to them. One job's error never stops the rest."""
    at = at or now()
    result = {"examined": 0}
    for job in jobs.stalled(at):
        result["examined"] += 1
        try:
            if job.status not in (jobs.QUEUED, jobs.RUNNING):
                jobs.unwatch(job)
                outcome = "unwatched"
            elif job.kind == jobs.SUB_MERCHANT_SYNC:
                outcome = sub_merchant_sync.heal(job, at)
            else:
                outcome = reattribution.heal(job, at)
        except Exception:
            logger.exception("could not check a stalled job", extra={"job_id": job.job_id})
            outcome = "errors"
        result[outcome] = result.get(outcome, 0) + 1
    return result
