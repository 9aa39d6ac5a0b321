"""Background jobs (C7): a job record per sync or re-attribution, and the steps of a sync.

A job's counters change only in the same transaction that advances one of its steps, with
that step's position as the condition: a page delivered twice, or redone by a worker that
died after writing, cannot be counted twice.
"""
from __future__ import annotations

import secrets

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.models.base import table_meta

WATCH_SHARDS = 4
"""Partitions of the running-jobs index: every page commit moves a job's `progressed_at`,
so one partition would take every running job's commits."""


def watch_shard() -> str:
    """A shard of the running-jobs index, picked at random when a job starts watched."""
    return f"running#{secrets.randbelow(WATCH_SHARDS)}"


class RunningJobsByProgress(GlobalSecondaryIndex):
    """Sparse index of the jobs not ended (QUEUED or RUNNING), by when they last progressed.

    Only those carry `watch_shard`: a job is written with it, the write that ends the job
    removes it and a retry sets it again. The scheduled check (`heal_stalled_jobs`) reads
    the jobs that have not progressed for a while from here, never from a Scan.
    """

    class Meta:
        index_name = "running-jobs-by-progress"
        projection = KeysOnlyProjection()

    watch_shard = UnicodeAttribute(hash_key=True)
    progressed_at = NumberAttribute(range_key=True)


class JobsByKind(GlobalSecondaryIndex):
    """An account's jobs of one kind, newest first like the table (`job_id` sorts by time).
    A kind never changes, so `kind_key` is set once, when the job is first written."""

    class Meta:
        index_name = "jobs-by-kind"
        projection = AllProjection()

    kind_key = UnicodeAttribute(hash_key=True)  # "<account>#<kind>"
    job_id = UnicodeAttribute(range_key=True)


class Job(Model):
    """One job of one console account; `job_id` sorts by creation time."""

    Meta = table_meta("jobs_table")

    account_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # sub_merchant_sync | reattribution
    status = UnicodeAttribute()  # QUEUED | RUNNING | COMPLETED | COMPLETED_WITH_FAILURES | FAILED
    created_at = NumberAttribute()
    started_at = NumberAttribute(null=True)
    ended_at = NumberAttribute(null=True)
    progressed_at = NumberAttribute(null=True)
    watch_shard = UnicodeAttribute(null=True, default_for_new=watch_shard)
    """Present while the job is not ended: puts it in `running_by_progress`. A new job gets
    it by default, so every way of starting one is watched."""
    heals = NumberAttribute(default=0)
    """Times the scheduled check resent a re-attribution's page since its last progress."""
    attempted_at = NumberAttribute(null=True)
    """When a re-attribution page last failed: a message still being retried is not lost."""
    sent_page = NumberAttribute(null=True)
    """The re-attribution page whose message was last sent (after the commit before it)."""
    reports = JSONAttribute(default=list)
    """What the job noticed but did not act on (a 买单 provider not synced into the account)."""
    # Sub-merchant sync
    providers_total = NumberAttribute(default=0)
    providers_done = NumberAttribute(default=0)
    providers_failed = NumberAttribute(default=0)
    providers_remaining = NumberAttribute(default=0)
    providers_counted = NumberAttribute(default=0)
    """Providers whose first page told how many sub-merchants they have (for the ETA)."""
    merchants_expected = NumberAttribute(default=0)
    pages_done = NumberAttribute(default=0)
    pages_failed = NumberAttribute(default=0)
    created = NumberAttribute(default=0)
    updated = NumberAttribute(default=0)
    unchanged = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    # Re-attribution
    merchant_id = UnicodeAttribute(null=True)
    from_ssp = UnicodeAttribute(null=True)
    to_ssp = UnicodeAttribute(null=True)
    phase = UnicodeAttribute(null=True)  # orders | refunds
    next_page = NumberAttribute(null=True)
    cursor = UnicodeAttribute(null=True)
    """JSON of the index position the next page starts after (null: from the start)."""
    transactions_total = NumberAttribute(null=True)
    moved = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)
    after_job_id = UnicodeAttribute(null=True)
    """A queued re-attribution waits for this job of the same merchant to end."""

    kind_key = UnicodeAttribute(null=True)

    running_by_progress = RunningJobsByProgress()
    by_kind = JobsByKind()

    def serialize(self, null_check: bool = True) -> dict:
        """Every put derives `kind_key`, so each way of starting a job lists it by kind."""
        self.kind_key = f"{self.account_id}#{self.kind}"
        return super().serialize(null_check=null_check)


class JobStep(Model):
    """A sync's progress through one provider's sub-merchants in 买单, page by page."""

    Meta = table_meta("job_steps_table")

    job_id = UnicodeAttribute(hash_key=True)
    step = UnicodeAttribute(range_key=True)  # the provider's sp_mchid
    account_id = UnicodeAttribute()
    status = UnicodeAttribute()  # RUNNING | DONE | FAILED | NOT_IN_MAIDAN
    next_page = NumberAttribute(default=0)
    cursor = UnicodeAttribute(null=True)
    """买单's cursor for `next_page` (null for the first page)."""
    expected = NumberAttribute(null=True)
    pages_done = NumberAttribute(default=0)
    created = NumberAttribute(default=0)
    updated = NumberAttribute(default=0)
    unchanged = NumberAttribute(default=0)
    failed = NumberAttribute(default=0)
    failures = JSONAttribute(default=list)
    """The first few sub-merchants this provider's pages could not take, with the reason."""
    attempts = NumberAttribute(default=0)
    last_error = UnicodeAttribute(null=True)
    sent_page = NumberAttribute(null=True)
    """The page whose message was last sent: a page redelivered after its commit resends the
    next page's message unless this says it went out."""
    heals = NumberAttribute(default=0)
    """Times the scheduled check resent this step's page since its last progress."""
    updated_at = NumberAttribute()
    """Moves on every commit and every failed attempt: a step untouched for long has no
    message left on the queue."""
    expires_at = NumberAttribute()  # DynamoDB TTL
