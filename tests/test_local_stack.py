"""The local stack runner: the queue dispatcher, the scheduler, the port check, and (marked
`stack`) the whole stack started as `python -m local` and stopped with Ctrl-C.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from chalice import Chalice, Cron, Rate

from local import dispatcher, scheduler, stack
from tests.environment import REGION
from tests.local_stack import free_port

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_RECORD_KEYS = {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                      "eventSource", "eventSourceARN", "awsRegion"}


@pytest.fixture
def jobs_queue(aws):
    """A queue whose messages go to its dead-letter queue on their second failed receive."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="jobs", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"sqs": sqs, "url": url, "arn": arn, "dlq_url": dlq_url}


def _powertools_app() -> tuple[Chalice, list[str]]:
    """An app whose queue handler fails the messages whose body is "fail", through Powertools."""
    app = Chalice(app_name="queue-test")
    processor = BatchProcessor(event_type=EventType.SQS)
    bodies_seen: list[str] = []

    def handle_record(record):
        bodies_seen.append(record.body)
        if record.body == "fail":
            raise ValueError("this message asked to fail")

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def handle_jobs(event):
        return process_partial_response(event=event.to_dict(), record_handler=handle_record, processor=processor,
                                        context=event.context)

    return app, bodies_seen


def _dispatch(app, jobs_queue) -> tuple[int, int, int]:
    [source] = dispatcher.sqs_sources(app)
    return dispatcher.dispatch_once(app, jobs_queue["sqs"], source, jobs_queue["url"], jobs_queue["arn"])


def _bodies(sqs, url: str) -> list[str]:
    return [message["Body"] for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                               VisibilityTimeout=30).get("Messages", [])]


def test_dispatcher_deletes_what_succeeded_and_the_queue_moves_the_failure_to_its_dead_letter_queue(jobs_queue):
    # Given two good messages and one that fails every time
    app, bodies_seen = _powertools_app()
    sqs = jobs_queue["sqs"]
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=jobs_queue["url"], MessageBody=body)

    # When the dispatcher delivers the batch, then the failed message again, then polls once more
    first = _dispatch(app, jobs_queue)
    second = _dispatch(app, jobs_queue)
    third = _dispatch(app, jobs_queue)

    # Then only the good ones were deleted, the failure was retried once, and then dead-lettered
    assert first == (3, 2, 1)
    assert second == (1, 0, 1)
    assert third == (0, 0, 0)
    assert sorted(bodies_seen) == ["fail", "fail", "ok-1", "ok-2"]
    assert _bodies(sqs, jobs_queue["url"]) == []
    assert _bodies(sqs, jobs_queue["dlq_url"]) == ["fail"]


def test_dispatcher_builds_the_event_lambda_sends_and_honours_a_hand_written_failure_report(jobs_queue):
    app = Chalice(app_name="queue-test")
    events = []

    @app.on_sqs_message(queue_arn=jobs_queue["arn"], batch_size=5)
    def handle_jobs(event):
        events.append(event.to_dict())
        return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}
                                      for record in event.to_dict()["Records"] if record["body"] == "fail"]}

    sqs = jobs_queue["sqs"]
    sqs.send_message(QueueUrl=jobs_queue["url"], MessageBody="ok",
                     MessageAttributes={"kind": {"DataType": "String", "StringValue": "sync"},
                                        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    sqs.send_message(QueueUrl=jobs_queue["url"], MessageBody="fail")
    [source] = dispatcher.sqs_sources(app)
    url, arn = dispatcher.resolve_queue(sqs, source)

    assert (url, arn) == (jobs_queue["url"], jobs_queue["arn"])
    assert dispatcher.dispatch_once(app, sqs, source, url, arn) == (2, 1, 1)
    records = {record["body"]: record for record in events[0]["Records"]}
    ok = records["ok"]
    assert set(ok) == LAMBDA_RECORD_KEYS
    assert (ok["eventSource"], ok["eventSourceARN"], ok["awsRegion"]) == ("aws:sqs", arn, REGION)
    assert ok["md5OfBody"] == hashlib.md5(b"ok").hexdigest()
    assert ok["attributes"]["ApproximateReceiveCount"] == "1"
    assert ok["messageAttributes"]["kind"] == {"stringValue": "sync", "binaryValue": None, "stringListValues": [],
                                               "binaryListValues": [], "dataType": "String"}
    assert ok["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert records["ok"]["messageId"] != records["fail"]["messageId"]
    assert _bodies(sqs, url) == ["fail"]


def test_a_handler_that_raises_keeps_the_whole_batch_on_the_queue(jobs_queue):
    app = Chalice(app_name="queue-test")

    @app.on_sqs_message(queue="jobs", batch_size=10)
    def handle_jobs(event):
        raise RuntimeError("upstream down")

    for body in ("a", "b"):
        jobs_queue["sqs"].send_message(QueueUrl=jobs_queue["url"], MessageBody=body)

    assert _dispatch(app, jobs_queue) == (2, 0, 2)
    assert sorted(_bodies(jobs_queue["sqs"], jobs_queue["url"])) == ["a", "b"]


@pytest.mark.parametrize("response, failed", [
    (None, set()),
    ({"batchItemFailures": []}, set()),
    ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
    ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, {"m1", "m2"}),
    ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
])
def test_a_malformed_failure_report_fails_the_whole_batch_as_lambda_does(response, failed):
    assert dispatcher.reported_failures(response, ["m1", "m2"]) == failed


def test_dispatcher_idles_for_an_app_without_queue_handlers():
    assert dispatcher.start(Chalice(app_name="no-queues"), sqs_client=None, stop=threading.Event()) == []


@pytest.mark.parametrize("expression, seconds", [
    (Rate(1, unit=Rate.MINUTES), 60),
    (Rate(2, unit=Rate.HOURS), 7200),
    (Rate(1, unit=Rate.DAYS), 86400),
    ("rate(5 minutes)", 300),
    ("rate(1 hour)", 3600),
    (Cron(0, 3, "*", "*", "?", "*"), scheduler.CRON_PERIOD_SECONDS),
    ("cron(0/5 * * * ? *)", scheduler.CRON_PERIOD_SECONDS),
])
def test_schedule_period_follows_the_rate_and_approximates_cron_as_every_minute(expression, seconds):
    assert scheduler.period_seconds(expression) == seconds


def test_a_schedule_that_is_no_expression_is_refused():
    with pytest.raises(ValueError):
        scheduler.period_seconds("every day")


def test_a_schedule_is_first_due_one_period_after_start_and_then_a_period_after_each_run():
    app = Chalice(app_name="schedules")
    runs = []

    @app.schedule("rate(2 minutes)")
    def every_two_minutes(event):
        runs.append(event.to_dict())

    clock = scheduler.Scheduler(app, REGION, started_at=1000)

    assert clock.due(1119) == []
    assert [schedule.name for schedule in clock.due(1120)] == ["every_two_minutes"]
    clock.run_once(1125)
    assert clock.due(1244) == [] and clock.seconds_until_next(1244) == 1
    [event] = runs
    assert (event["detail-type"], event["source"], event["region"], event["detail"]) == (
        "Scheduled Event", "aws.events", REGION, {})
    assert event["resources"] == [f"arn:aws:events:{REGION}:123456789012:rule/schedules-local-every_two_minutes"]


def test_a_failing_scheduled_handler_is_logged_and_does_not_stop_the_others(caplog):
    app = Chalice(app_name="schedules")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def broken(event):
        raise RuntimeError("boom")

    @app.schedule(Rate(1, unit=Rate.MINUTES))
    def working(event):
        return "done"

    results = scheduler.Scheduler(app, REGION, started_at=0).run_once(60)

    assert results == {"working": "done"}
    assert "scheduled handler broken raised" in caplog.text


def test_run_once_calls_the_apps_qr_expiry_sweep(aws):
    from app import app
    from chalicelib import qrcodes
    qrcodes.issue("wechat_binding", "acct_demo", -1)

    results = scheduler.Scheduler(app, REGION, started_at=0).run_once(60)

    assert results["expire_qr_codes"] == {"examined": 1, "expired": 1}


@pytest.fixture
def busy_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_ports_come_from_the_flags_else_the_environment_else_the_defaults():
    assert stack.parse_ports([], {}) == stack.Ports(api=8000, sandbox=8790, moto=5055)
    assert stack.parse_ports([], {"CLOUDPAY_API_PORT": "9000"}).api == 9000
    assert stack.parse_ports(["--api-port", "9001"], {"CLOUDPAY_API_PORT": "9000"}).api == 9001


def test_a_busy_port_is_named_with_the_flag_and_variable_that_change_it(busy_port):
    ports = stack.Ports(api=busy_port, sandbox=free_port(), moto=free_port())

    assert stack.port_problem(ports) == (f"port {busy_port} (API) is busy: stop what uses it or pass --api-port "
                                         "/ set CLOUDPAY_API_PORT")


def test_the_runner_exits_2_on_a_busy_port_before_starting_anything(busy_port, caplog):
    code = stack.main(["--api-port", str(free_port()), "--sandbox-port", str(busy_port),
                       "--moto-port", str(free_port())])

    assert code == 2
    assert f"port {busy_port} (sandbox) is busy" in caplog.text
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_one_port_given_twice_is_refused():
    port = free_port()

    problem = stack.port_problem(stack.Ports(api=port, sandbox=port, moto=free_port()))

    assert problem == (f"port {port} is given to both API and sandbox: pass --sandbox-port / set "
                       "CLOUDPAY_SANDBOX_PORT to another port")


def _lines_of(process: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue, needle: str, seen: list[str], timeout: float) -> None:
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line with {needle!r} within {timeout} s:\n" + "".join(seen))
        if line is None:
            pytest.fail(f"the stack exited before printing {needle!r}:\n" + "".join(seen))
        seen.append(line)
        if needle in line:
            return


@pytest.mark.stack
def test_the_whole_stack_serves_the_console_and_the_phone_and_stops_cleanly_on_ctrl_c():
    api, sandbox, moto = free_port(), free_port(), free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--api-port", str(api), "--sandbox-port", str(sandbox),
         "--moto-port", str(moto)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={name: value for name, value in os.environ.items() if not name.startswith("AWS_")})
    seen: list[str] = []
    try:
        _wait_for_line(_lines_of(process), f"http://127.0.0.1:{api}/console", seen, timeout=90)

        assert httpx.get(f"http://127.0.0.1:{api}/console", timeout=10).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{sandbox}/phone", timeout=10).status_code == 200
        signed_in = httpx.post(f"http://127.0.0.1:{api}/v1/sessions", timeout=10,
                               json={"email": "demo@cloudpay.local", "password": "cloudpay-demo-2026"})
        assert signed_in.status_code == 201, signed_in.text

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, "".join(seen)
        assert all(stack.port_is_free(port) for port in (api, sandbox, moto))
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
