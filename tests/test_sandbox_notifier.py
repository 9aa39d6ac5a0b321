"""The sandbox's shared machinery: notification retry schedules on its clock, and faults."""
from __future__ import annotations

import httpx
import pytest

from sandbox.faults import Faults
from sandbox.notifier import ALIPAY_RETRY_SCHEDULE, WECHATPAY_RETRY_SCHEDULE, Notifier
from sandbox.world import Clock


# The published schedules, copied from the services' documentation (seconds between tries).
PUBLISHED_WECHATPAY_SCHEDULE = (15, 15, 30, 3 * 60, 10 * 60, 20 * 60, 30 * 60, 30 * 60, 30 * 60, 60 * 60,
                                3 * 3600, 3 * 3600, 3 * 3600, 6 * 3600, 6 * 3600)
PUBLISHED_ALIPAY_SCHEDULE = (4 * 60, 10 * 60, 10 * 60, 3600, 2 * 3600, 6 * 3600, 15 * 3600)


class Receiver:
    """A notify URL that answers what it is told, and remembers when it was called."""

    def __init__(self, clock: Clock, answers: list[tuple[int, str]]) -> None:
        self.clock = clock
        self.answers = answers
        self.calls: list[float] = []

    def __call__(self, url: str, headers: dict, body: bytes) -> tuple[int, str]:
        self.calls.append(self.clock.now())
        return self.answers.pop(0) if self.answers else (500, "down")


def _run_for(notifier: Notifier, clock: Clock, seconds: int, step: int = 5) -> None:
    for _ in range(seconds // step):
        notifier.deliver_due()
        clock.advance(step)


def test_wechatpay_notifications_follow_the_published_schedule_until_given_up():
    clock = Clock()
    receiver = Receiver(clock, [])
    notifier = Notifier(clock, receiver)
    started = clock.now()
    notification = notifier.enqueue("wechatpay", "https://h5.test/notify", lambda: ({}, b"{}"),
                                    lambda status, text: status in (200, 204), WECHATPAY_RETRY_SCHEDULE)

    _run_for(notifier, clock, sum(WECHATPAY_RETRY_SCHEDULE) + 600)

    gaps = [round(b - a) for a, b in zip(receiver.calls, receiver.calls[1:])]
    assert receiver.calls[0] == pytest.approx(started, abs=1)
    assert WECHATPAY_RETRY_SCHEDULE == PUBLISHED_WECHATPAY_SCHEDULE
    assert all(abs(gap - expected) <= 5 for gap, expected in zip(gaps, PUBLISHED_WECHATPAY_SCHEDULE))
    assert len(receiver.calls) == 1 + len(WECHATPAY_RETRY_SCHEDULE) == 16
    assert notification.gave_up and not notification.acknowledged


def test_an_acknowledged_notification_is_not_sent_again():
    clock = Clock()
    receiver = Receiver(clock, [(500, "busy"), (200, "success")])
    notifier = Notifier(clock, receiver)
    notification = notifier.enqueue("alipay", "https://h5.test/notify", lambda: ({}, b"a=1"),
                                    lambda status, text: text == "success", ALIPAY_RETRY_SCHEDULE)

    _run_for(notifier, clock, 24 * 3600, step=60)

    assert len(receiver.calls) == 2
    assert ALIPAY_RETRY_SCHEDULE == PUBLISHED_ALIPAY_SCHEDULE
    assert receiver.calls[1] - receiver.calls[0] == pytest.approx(PUBLISHED_ALIPAY_SCHEDULE[0], abs=60)
    assert notification.acknowledged


def test_a_duplicate_sent_on_demand_does_not_move_the_schedule():
    clock = Clock()
    receiver = Receiver(clock, [])
    notifier = Notifier(clock, receiver)
    notification = notifier.enqueue("wechatpay", "u", lambda: ({}, b""), lambda s, t: False, WECHATPAY_RETRY_SCHEDULE)
    notifier.deliver_due()
    notifier.send_duplicate(notification.notification_id)
    clock.advance(15)

    notifier.deliver_due()

    assert notification.scheduled_attempts == 2
    assert notification.next_at == pytest.approx(clock.now() + 15, abs=1)


def test_each_attempt_is_built_afresh_and_a_duplicate_can_be_sent():
    clock = Clock()
    bodies = []
    notifier = Notifier(clock, lambda url, headers, body: (bodies.append(headers["ts"]) or (204, "")))
    notification = notifier.enqueue("wechatpay", "u", lambda: ({"ts": str(clock.now())}, b""),
                                    lambda status, text: status == 204, WECHATPAY_RETRY_SCHEDULE)
    notifier.deliver_due()
    clock.advance(100)

    notifier.send_duplicate(notification.notification_id)

    assert len(bodies) == 2 and bodies[0] != bodies[1]


def test_an_unreachable_receiver_counts_as_a_failed_attempt():
    clock = Clock()

    def refuse(url, headers, body):
        raise httpx.ConnectError("connection refused")

    notifier = Notifier(clock, refuse)
    notification = notifier.enqueue("wechatpay", "u", lambda: ({}, b""), lambda s, t: True, WECHATPAY_RETRY_SCHEDULE)

    notifier.deliver_due()

    assert notification.pending and notification.attempts[0].status is None
    assert notification.next_at == pytest.approx(clock.now() + 15, abs=1)


def test_held_notifications_can_be_released_newest_first():
    clock = Clock()
    received = []
    notifier = Notifier(clock, lambda url, headers, body: (received.append(body) or (204, "")))
    notifier.hold()
    for event in (b"TRANSACTION.SUCCESS", b"REFUND.SUCCESS"):
        notifier.enqueue("wechatpay", "u", lambda event=event: ({}, event), lambda s, t: s == 204,
                         WECHATPAY_RETRY_SCHEDULE)
        clock.advance(1)
    assert notifier.deliver_due() == [] and received == []

    notifier.release(reverse=True)

    assert received == [b"REFUND.SUCCESS", b"TRANSACTION.SUCCESS"]


def test_a_fault_in_the_header_wins_over_armed_faults_and_armed_ones_are_used_once():
    faults = Faults(in_process=True)
    faults.arm("maidan", "SYSTEM_ERROR", times=2)

    assert faults.take("maidan", {"X-Sandbox-Fault": "RATE_LIMITED"}) == "RATE_LIMITED"
    assert [faults.take("maidan", {}) for _ in range(3)] == ["SYSTEM_ERROR", "SYSTEM_ERROR", None]
    assert faults.take("alipay", {}) is None
    with pytest.raises(ValueError):
        faults.arm("maidan", "NOT_A_FAULT")


def test_an_in_process_timeout_is_an_httpx_timeout_without_waiting():
    with pytest.raises(httpx.ReadTimeout):
        Faults(in_process=True).time_out()
