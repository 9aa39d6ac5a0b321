"""Deliver the (moto) SQS queues' messages to the app's queue handlers, as Lambda would.

`chalice local` serves HTTP only, so nothing would ever consume the queues locally. This
plays Lambda's SQS event source mapping: receive a batch, hand the handler the event
Lambda builds, and delete only the messages the handler did not report in
`batchItemFailures` (ReportBatchItemFailures, which infra/ switches on in AWS). Messages
left undeleted come back after the visibility timeout, and SQS's redrive policy moves them
to the dead-letter queue after maxReceiveCount receives: retries are the queue's, not ours.
"""
from __future__ import annotations

import base64
import logging
import threading

from botocore.exceptions import ClientError
from chalice.app import SQSEventConfig

from local.lambda_context import lambda_context

log = logging.getLogger("local")

IDLE_SECONDS = 0.5
"""Pause after an empty receive. Short polls, not long ones: the local moto serves one
request at a time (local/moto_atomic.py), so a long poll would hold up every other call."""
RECEIVE_LIMIT = 10
"""SQS returns at most 10 messages per receive; Lambda may gather more, locally we do not."""
RETRY_DELAY_SECONDS = 1.0
PAGE_HANDLER_WORKERS = 8
JOB_PAGE_HANDLERS = ("sync_sub_merchant_pages", "reattribute_transaction_pages")


def job_page_concurrency(workers: int = PAGE_HANDLER_WORKERS) -> dict[str, int]:
    """Several workers for the handlers that page through a job; one for the rest."""
    return {name: workers for name in JOB_PAGE_HANDLERS}


def sqs_sources(app) -> list[SQSEventConfig]:
    return [source for source in app.event_sources if isinstance(source, SQSEventConfig)]


def resolve_queue(sqs_client, source: SQSEventConfig, stack_name: str = "") -> tuple[str, str]:
    """The queue's URL and ARN, whether the decorator named the queue or gave its ARN.

    A name holding `${AWS::StackName}` gets `stack_name` there, as CloudFormation's Fn::Sub
    does for the deployed event source."""
    if source.queue_arn:
        _, _, _, _, account, name = source.queue_arn.split(":", 5)
        url = sqs_client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return url, source.queue_arn
    name = source.queue.replace("${AWS::StackName}", stack_name)
    url = sqs_client.get_queue_url(QueueName=name)["QueueUrl"]
    arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _lambda_message_attribute(attribute: dict) -> dict:
    binary = attribute.get("BinaryValue")
    return {
        "stringValue": attribute.get("StringValue"),
        "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
        "stringListValues": attribute.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(value).decode() for value in attribute.get("BinaryListValues", [])],
        "dataType": attribute["DataType"],
    }


def lambda_record(message: dict, queue_arn: str, region: str) -> dict:
    """One SQS message as a record of the event Lambda passes to the handler."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {name: _lambda_message_attribute(attribute)
                              for name, attribute in message.get("MessageAttributes", {}).items()},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def reported_failures(response, message_ids: list[str]) -> set[str]:
    """The ids the handler reported as failed.

    As Lambda does, a report naming no id or an id not in the batch fails the whole batch.
    """
    if not isinstance(response, dict) or not response.get("batchItemFailures"):
        return set()
    failed = {item.get("itemIdentifier") if isinstance(item, dict) else None
              for item in response["batchItemFailures"]}
    if not failed <= set(message_ids):
        return set(message_ids)
    return failed


def dispatch_once(app, sqs_client, source_config: SQSEventConfig, queue_url: str,
                  queue_arn: str) -> tuple[int, int, int]:
    """Receive one batch, run the handler on it, delete what succeeded.

    Returns (handled, deleted, failed) message counts. A handler that raises fails the whole
    batch, so nothing is deleted.
    """
    messages = sqs_client.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=min(source_config.batch_size, RECEIVE_LIMIT),
        WaitTimeSeconds=0, MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"]).get("Messages", [])
    if not messages:
        return 0, 0, 0
    region = sqs_client.meta.region_name
    event = {"Records": [lambda_record(message, queue_arn, region) for message in messages]}
    message_ids = [message["MessageId"] for message in messages]
    handler = app.handler_map[source_config.name]
    try:
        response = handler(event, lambda_context(app, source_config.name))
    except Exception:
        log.exception("queue handler %s raised; its %d message(s) stay on the queue",
                      source_config.name, len(messages))
        return len(messages), 0, len(messages)
    failed = reported_failures(response, message_ids)
    succeeded = [message for message in messages if message["MessageId"] not in failed]
    if succeeded:
        sqs_client.delete_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(succeeded)])
    if failed:
        log.info("queue handler %s failed %d of %d message(s); they return after the visibility timeout",
                 source_config.name, len(failed), len(messages))
    return len(messages), len(succeeded), len(failed)


def _poll_forever(app, sqs_client, source: SQSEventConfig, queue_url: str, queue_arn: str,
                  stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            handled, _, _ = dispatch_once(app, sqs_client, source, queue_url, queue_arn)
        except Exception:
            if stop.is_set():
                return
            log.exception("receiving from %s failed; retrying", queue_url)
            stop.wait(RETRY_DELAY_SECONDS)
            continue
        if not handled:
            stop.wait(IDLE_SECONDS)


def start(app, sqs_client, stop: threading.Event, stack_name: str = "",
          concurrency: dict[str, int] | None = None) -> list[threading.Thread]:
    """Polling threads for every queue handler of the app, until `stop` is set: as many as
    `concurrency` names for the handler (default 1). Lambda runs several invocations of a
    handler at once; the job page handlers need that to page through providers in parallel."""
    sources = sqs_sources(app)
    if not sources:
        log.info("dispatcher: the app has no queue handlers; nothing to poll")
    threads = []
    for source in sources:
        try:
            queue_url, queue_arn = resolve_queue(sqs_client, source, stack_name)
        except ClientError as exc:
            log.error("dispatcher: %s will get no messages: queue %s not found (%s)",
                      source.name, source.queue or source.queue_arn, exc)
            continue
        workers = (concurrency or {}).get(source.name, 1)
        for worker in range(workers):
            thread = threading.Thread(target=_poll_forever,
                                      args=(app, sqs_client, source, queue_url, queue_arn, stop),
                                      name=f"dispatch-{source.name}-{worker}", daemon=True)
            thread.start()
            threads.append(thread)
        log.info("dispatcher: %s <- %s (%d workers)", source.name, queue_url, workers)
    return threads
