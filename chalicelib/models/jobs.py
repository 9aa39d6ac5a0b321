"""Background jobs (C7): a job record per sync or re-attribution, and the steps of a sync.

A job's counters change only in the same transaction that advances one of its steps, with
that step's position as the condition: a page delivered twice, or redone by a worker that
died after writing, cannot be counted twice.
"""
from __future__ import annotations

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class Job(Model):
    """One job of one console account; `job_id` sorts by creation time."""

    Meta = table_meta("jobs_table")

    account_id = UnicodeAttribute(hash_key=True)
    job_id = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()  # sub_merchant_sync | reattribution
    status = UnicodeAttribute()  # QUEUED | RUNNING | COMPLETED | COMPLETED_WITH_FAILURES
    created_at = NumberAttribute()
    started_at = NumberAttribute(null=True)
    ended_at = NumberAttribute(null=True)
    progressed_at = NumberAttribute(null=True)
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
    updated_at = NumberAttribute()
    expires_at = NumberAttribute()  # DynamoDB TTL
