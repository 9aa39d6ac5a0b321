"""Call the app's scheduled handlers on their rate, as EventBridge would.

`chalice local` does not run `@app.schedule` handlers, so the sweeps (expiring QR codes,
closing unpaid orders, healing stalled jobs) would never run locally. Rates are kept exactly; cron expressions
run every minute instead, which suits the idempotent sweeps they schedule (a real cron
parser would be more code than the local stack is worth).
"""
from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from chalice.app import ScheduledEventConfig, ScheduleExpression

from local.lambda_context import STAGE, lambda_context

log = logging.getLogger("local")

ACCOUNT_ID = "123456789012"
"""The account moto reports; the event's `account` and rule ARN use it too."""
CRON_PERIOD_SECONDS = 60
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^rate\((\d+) (minute|hour|day)s?\)$")


def expression_text(expression: str | ScheduleExpression) -> str:
    return expression.to_string() if isinstance(expression, ScheduleExpression) else expression


def period_seconds(expression: str | ScheduleExpression) -> int:
    """Seconds between runs: a rate's own period; every minute for a cron expression."""
    text = expression_text(expression).strip()
    rate = _RATE.match(text)
    if rate:
        return int(rate.group(1)) * _UNIT_SECONDS[rate.group(2)]
    if text.startswith("cron("):
        return CRON_PERIOD_SECONDS
    raise ValueError(f"not a schedule expression: {text!r}")


@dataclass(frozen=True)
class Schedule:
    name: str
    expression: str
    period_seconds: int


def schedules(app) -> list[Schedule]:
    return [Schedule(source.name, expression_text(source.schedule_expression),
                     period_seconds(source.schedule_expression))
            for source in app.event_sources if isinstance(source, ScheduledEventConfig)]


def scheduled_event(app, schedule: Schedule, region: str, at: datetime) -> dict:
    """The event EventBridge sends for a scheduled rule, with the rule Chalice would create."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{app.app_name}-{STAGE}-{schedule.name}"],
        "detail": {},
    }


class Scheduler:
    """When each schedule runs next, on a monotonic clock.

    As on AWS, a schedule first runs one period after it starts. After a run, the next one is
    a full period later (not "catching up" missed runs after the machine slept).
    """

    def __init__(self, app, region: str, started_at: float) -> None:
        self.app = app
        self.region = region
        self.schedules = schedules(app)
        self._next_run = {schedule.name: started_at + schedule.period_seconds for schedule in self.schedules}

    def due(self, now: float) -> list[Schedule]:
        return [schedule for schedule in self.schedules if self._next_run[schedule.name] <= now]

    def seconds_until_next(self, now: float) -> float:
        return max(0.0, min(self._next_run.values()) - now)

    def run_once(self, now: float) -> dict[str, object]:
        """Call every due handler; return what each returned. One failing never stops the rest."""
        results = {}
        for schedule in self.due(now):
            self._next_run[schedule.name] = now + schedule.period_seconds
            event = scheduled_event(self.app, schedule, self.region, datetime.now(timezone.utc))
            try:
                results[schedule.name] = self.app.handler_map[schedule.name](
                    event, lambda_context(self.app, schedule.name))
            except Exception:
                log.exception("scheduled handler %s raised; it runs again in %d s",
                              schedule.name, schedule.period_seconds)
        return results


def _run_forever(scheduler: Scheduler, stop: threading.Event) -> None:
    while not stop.wait(scheduler.seconds_until_next(time.monotonic())):
        scheduler.run_once(time.monotonic())


def start(app, region: str, stop: threading.Event) -> list[threading.Thread]:
    """A thread calling the app's scheduled handlers until `stop` is set (none if it has none)."""
    scheduler = Scheduler(app, region, time.monotonic())
    if not scheduler.schedules:
        log.info("scheduler: the app has no scheduled handlers")
        return []
    for schedule in scheduler.schedules:
        approximated = " (cron approximated: runs every minute)" if schedule.expression.startswith("cron(") else ""
        log.info("scheduler: %s every %d s, from %s%s", schedule.name, schedule.period_seconds,
                 schedule.expression, approximated)
    thread = threading.Thread(target=_run_forever, args=(scheduler, stop), name="scheduler", daemon=True)
    thread.start()
    return [thread]
