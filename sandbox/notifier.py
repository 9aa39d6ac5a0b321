"""Asynchronous notifications as the real services send them: to the notify URL, again and
again on the service's own retry schedule, until the receiver acknowledges.

Time is the world's clock, so a test advances it and calls `deliver_due()` instead of
waiting hours; the server runs `deliver_due()` every second in a thread. Each attempt is
rebuilt by the sender's `build()` (fresh timestamp and signature, as the services do).
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Callable

import httpx

# Seconds between attempts after the first (which is immediate).
WECHATPAY_RETRY_SCHEDULE = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
ALIPAY_RETRY_SCHEDULE = (240, 600, 600, 3600, 7200, 21600, 54000)

Deliver = Callable[[str, dict, bytes], tuple[int, str]]
"""(url, headers, body) -> (HTTP status, response text)."""


@dataclass
class Attempt:
    at: float
    status: int | None
    text: str


@dataclass
class Notification:
    notification_id: str
    system: str
    url: str
    build: Callable[[], tuple[dict, bytes]]
    is_ack: Callable[[int, str], bool]
    schedule: tuple[int, ...]
    next_at: float
    attempts: list[Attempt] = field(default_factory=list)
    scheduled_attempts: int = 0
    """Attempts made on the schedule; duplicates sent on demand do not move the schedule."""
    acknowledged: bool = False
    gave_up: bool = False

    @property
    def pending(self) -> bool:
        return not (self.acknowledged or self.gave_up)


def deliver_over_http(url: str, headers: dict, body: bytes) -> tuple[int, str]:
    response = httpx.post(url, headers=headers, content=body, timeout=5.0)
    return response.status_code, response.text


class Notifier:
    def __init__(self, clock, deliver: Deliver = deliver_over_http) -> None:
        self.clock = clock
        self.deliver = deliver
        self.notifications: dict[str, Notification] = {}
        self.lock = threading.RLock()
        self.held = False

    def enqueue(self, system: str, url: str, build: Callable[[], tuple[dict, bytes]],
                is_ack: Callable[[int, str], bool], schedule: tuple[int, ...]) -> Notification:
        notification = Notification(secrets.token_hex(8), system, url, build, is_ack, schedule,
                                    next_at=self.clock.now())
        with self.lock:
            self.notifications[notification.notification_id] = notification
        return notification

    def _attempt(self, notification: Notification) -> Attempt:
        headers, body = notification.build()
        try:
            status, text = self.deliver(notification.url, headers, body)
        except Exception as exc:  # the receiver being down is one more failed attempt
            status, text = None, f"{type(exc).__name__}: {exc}"
        attempt = Attempt(self.clock.now(), status, text)
        notification.attempts.append(attempt)
        return attempt

    def hold(self) -> None:
        """Keep every due notification back until `release`, to deliver them out of order."""
        self.held = True

    def release(self, reverse: bool = False) -> list[Notification]:
        """Deliver what was held: in the order it fell due, or newest first."""
        self.held = False
        return self.deliver_due(reverse=reverse)

    def deliver_due(self, reverse: bool = False) -> list[Notification]:
        """Make every attempt that is due now, oldest due first (or newest first with
        `reverse`); returns the notifications attempted. Nothing is sent while held."""
        if self.held:
            return []
        now = self.clock.now()
        with self.lock:
            due = sorted((n for n in self.notifications.values() if n.pending and n.next_at <= now),
                         key=lambda n: n.next_at, reverse=reverse)
        for notification in due:
            attempt = self._attempt(notification)
            notification.scheduled_attempts += 1
            if attempt.status is not None and notification.is_ack(attempt.status, attempt.text):
                notification.acknowledged = True
                continue
            retries_made = notification.scheduled_attempts - 1
            if retries_made >= len(notification.schedule):
                notification.gave_up = True
            else:
                notification.next_at = now + notification.schedule[retries_made]
        return due

    def send_duplicate(self, notification_id: str) -> Attempt:
        """Deliver an already-sent notification once more, as the services sometimes do."""
        return self._attempt(self.notifications[notification_id])

    def of_system(self, system: str) -> list[Notification]:
        return [n for n in self.notifications.values() if n.system == system]
