"""Running the app's queue handlers in a test, through the local dispatcher, until every
job queue is empty: what Lambda and the local stack do, one message at a time."""
from __future__ import annotations

import boto3

from local import dispatcher
from tests.environment import REGION, STACK_NAME


class WorkerKilled(BaseException):
    """Raised inside a handler to play a worker that dies mid-page: not an Exception, so no
    handler code catches it, and its message is neither deleted nor reported."""


def _queues(app, sqs):
    return [(source, *dispatcher.resolve_queue(sqs, source, STACK_NAME)) for source in dispatcher.sqs_sources(app)]


def make_messages_return_at_once(app) -> None:
    """Visibility timeout 0 on every job queue: a message a dead worker held comes back at
    the next receive instead of in 6 minutes."""
    sqs = boto3.client("sqs", region_name=REGION)
    for _, url, _ in _queues(app, sqs):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "0"})


def waiting(app) -> int:
    sqs = boto3.client("sqs", region_name=REGION)
    total = 0
    for _, url, _ in _queues(app, sqs):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        total += int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    return total


def drain(app, max_batches: int = 20_000) -> dict:
    """Dispatch until no queue has anything; returns counts of batches, kills and failures."""
    sqs = boto3.client("sqs", region_name=REGION)
    queues = _queues(app, sqs)
    stats = {"batches": 0, "killed": 0, "failed": 0}
    while stats["batches"] < max_batches:
        handled_any = False
        for source, url, arn in queues:
            try:
                handled, _, failed = dispatcher.dispatch_once(app, sqs, source, url, arn)
            except WorkerKilled:
                stats["killed"] += 1
                handled_any = True
                continue
            stats["batches"] += bool(handled)
            stats["failed"] += failed
            handled_any |= bool(handled)
        if not handled_any and not waiting(app):
            return stats
    raise AssertionError(f"queues did not drain after {max_batches} batches")


class Throttled(Exception):
    """A write or a send refused once (DynamoDB or SQS throttling, a network error): the
    handler puts the page's message back and, with make_messages_return_at_once, it returns
    at once."""


def fail_once(monkeypatch, module, name: str, failure: type, when=lambda *args, **kwargs: True) -> list:
    """`module.name` raises `failure` the first time `when(*its arguments)` holds; the list
    returned names it once it has."""
    original, failed = getattr(module, name), []

    def failing_once(*args, **kwargs):
        if not failed and when(*args, **kwargs):
            failed.append(name)
            raise failure(f"{name} failed")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing_once)
    return failed


def heal_stalled_jobs_again_and_again(app, times: int) -> list[dict]:
    """Run the scheduled check `times` times, each once a stall later than the one before,
    handing what it sends to the app's handlers in between; its outcomes in order."""
    from chalicelib import job_detail, jobs
    from chalicelib.models.base import now
    at, outcomes = now(), []
    for _ in range(times):
        at += jobs.STALLED_AFTER_SECONDS + 1
        outcomes.append(job_detail.heal_stalled_jobs(at=at))
        drain(app)
    return outcomes
