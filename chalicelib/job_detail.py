"""C7: a job's detail and its retry, whatever its kind."""
from __future__ import annotations

from chalicelib import jobs, reattribution, sub_merchant_sync
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
