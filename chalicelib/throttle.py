"""C1, U1: limits on attempts per key and time window (sign-in per email, sign-up per source IP
and per email) and marks that let a thing happen only once (an OAuth state).

An attempt is counted before the work it guards, by one conditional write: "add one if fewer
than the limit were taken in this window". Reading a lock first and writing the failure after
the password check let 20 concurrent guesses all reach the check; counted first, a burst gets
at most `limit` through, however it is timed. Records live in the login-attempts table and
expire by DynamoDB TTL (`purge_at`); moto does not expire them, so every check reads the
window's start rather than trusting the record to be gone.
"""
from __future__ import annotations

from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, PutError, UpdateError

from chalicelib.models.accounts import AttemptCounter
from chalicelib.models.base import condition_failed

_RACES = 5
"""A take that loses this many races in a row (windows starting under it) gives up with a 429."""


class LimitReached(Exception):
    """The key has used its attempts for now; `retry_after` is in seconds (at least 1)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"limit reached; retry after {retry_after} s")
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class Taken:
    """One attempt counted under `key`: the `number`-th of the window that started at `window_started_at`."""

    key: str
    number: int
    window_started_at: int
    window_seconds: int


def take(key: str, limit: int, window_seconds: int, at: int) -> Taken:
    """Count one attempt, or raise LimitReached if `limit` were already taken in this window or
    the key is locked."""
    purge_at = at + 2 * window_seconds
    for _ in range(_RACES):
        counter = AttemptCounter(key)
        try:
            counter.update(actions=[AttemptCounter.attempts.add(1), AttemptCounter.purge_at.set(purge_at)],
                           condition=(AttemptCounter.window_started_at > at - window_seconds)
                           & (AttemptCounter.attempts < limit) & (AttemptCounter.locked_until <= at))
            return Taken(key, counter.attempts, counter.window_started_at, window_seconds)
        except UpdateError as exc:
            if not condition_failed(exc):
                raise
        fresh = AttemptCounter(key, attempts=1, window_started_at=at, locked_until=0, purge_at=purge_at)
        try:
            fresh.save(condition=AttemptCounter.key.does_not_exist()
                       | ((AttemptCounter.window_started_at <= at - window_seconds)
                          & (AttemptCounter.locked_until <= at)))
            return Taken(key, 1, at, window_seconds)
        except PutError as exc:
            if not condition_failed(exc):
                raise
        retry_after = _refused_for(key, limit, window_seconds, at)
        if retry_after:
            raise LimitReached(retry_after)
    raise LimitReached(1)


def _refused_for(key: str, limit: int, window_seconds: int, at: int) -> int:
    """Seconds until the key may try again, or 0 if both writes lost a race and it may try now."""
    try:
        counter = AttemptCounter.get(key, consistent_read=True)
    except DoesNotExist:
        return 0
    if counter.locked_until > at:
        return counter.locked_until - at
    window_ends_at = counter.window_started_at + window_seconds
    if window_ends_at > at and counter.attempts >= limit:
        return window_ends_at - at
    return 0


def give_back(taken: Taken) -> None:
    """The attempt turned out not to count (a sign-in that succeeded). Only its own: giving back
    earlier ones would reopen slots to guesses running beside it."""
    try:
        AttemptCounter(taken.key).update(
            actions=[AttemptCounter.attempts.add(-1)],
            condition=(AttemptCounter.window_started_at == taken.window_started_at) & (AttemptCounter.attempts > 0))
    except UpdateError as exc:
        if not condition_failed(exc):  # a new window started: nothing of ours is left to give back
            raise


def lock(taken: Taken, at: int) -> None:
    """Refuse every attempt under the key for a whole window from `at`, whenever its window ends."""
    try:
        AttemptCounter(taken.key).update(
            actions=[AttemptCounter.locked_until.set(at + taken.window_seconds),
                     AttemptCounter.purge_at.set(at + 2 * taken.window_seconds)],
            condition=AttemptCounter.window_started_at == taken.window_started_at)
    except UpdateError as exc:
        if not condition_failed(exc):  # a new window started after ours ended: ours no longer matters
            raise


def use_once(key: str, at: int, keep_seconds: int) -> bool:
    """Mark `key` used; False if it was used before. Keep the mark at least as long as the
    thing it guards can still be presented."""
    mark = AttemptCounter(key, attempts=1, window_started_at=at, locked_until=0, purge_at=at + keep_seconds)
    try:
        mark.save(condition=AttemptCounter.key.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        return False
    return True
