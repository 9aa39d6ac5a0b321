"""The job queues: sending page messages, and putting a failed one back with a backoff.

Queue names hold `${AWS::StackName}`: Chalice writes the name into an `Fn::Sub`, so the
deployed event source points at the stack's own queue, and the local dispatcher fills in
the local stack's name the same way.
"""
from __future__ import annotations

import json
import time

from chalicelib import settings

SUB_MERCHANT_SYNC = "${AWS::StackName}-sub-merchant-sync"
SUB_MERCHANT_SYNC_DEAD_LETTERS = "${AWS::StackName}-sub-merchant-sync-dlq"
REATTRIBUTION = "${AWS::StackName}-reattribution"
REATTRIBUTION_DEAD_LETTERS = "${AWS::StackName}-reattribution-dlq"
PAYMENT_FOLLOW_UP = "${AWS::StackName}-payment-follow-up"
MAX_BACKOFF_SECONDS = 900
_BATCH = 10  # SendMessageBatch takes at most 10 entries

_clients: dict = {}


class RetryLater(Exception):
    """This message cannot be handled yet (its previous page is still being committed):
    put it back for `seconds` without counting it as a failure of the page."""

    def __init__(self, reason: str, seconds: int = 2) -> None:
        super().__init__(reason)
        self.seconds = seconds


def _client():
    import boto3

    region = settings.current().region
    if region not in _clients:
        _clients[region] = boto3.client("sqs", region_name=region)
    return _clients[region]


def send(queue_url: str, bodies: list[dict]) -> None:
    """Send every body as its own message; entries SQS refuses are sent again (3 tries)."""
    for start in range(0, len(bodies), _BATCH):
        pending = {str(index): json.dumps(body, separators=(",", ":"))
                   for index, body in enumerate(bodies[start:start + _BATCH])}
        for attempt in range(3):
            if attempt:
                time.sleep(0.05 * 2 ** attempt)
            answer = _client().send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": entry_id, "MessageBody": body} for entry_id, body in pending.items()])
            pending = {failure["Id"]: pending[failure["Id"]] for failure in answer.get("Failed", [])}
            if not pending:
                break
        else:
            raise RuntimeError(f"SQS refused {len(pending)} message(s) three times")


def backoff_seconds(receive_count: int) -> int:
    """base, 2x, 4x... seconds before the next receive of a page that failed `receive_count` times."""
    base = settings.current().job_retry_base_seconds
    return min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, receive_count - 1))


def put_back(queue_url: str, receipt_handle: str, seconds: int) -> None:
    """Make a received message visible again after `seconds` (instead of the queue's timeout)."""
    _client().change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt_handle,
                                        VisibilityTimeout=max(0, min(seconds, 43200)))
