"""The life of a QR code record (SPEC §3): issue, look up, scan, use, replace, expire.

Every state change is a conditional update on the code's current state, so a code is used
at most once however many phones confirm at the same moment.
"""
from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass

from pynamodb.exceptions import DoesNotExist, UpdateError

from chalicelib import settings
from chalicelib.errors import NotFound
from chalicelib.models.base import condition_failed, now
from chalicelib.models.qrcodes import QrCode

PENDING, SCANNED, USED, EXPIRED, REPLACED = "pending", "scanned", "used", "expired", "replaced"
ACTIVE, REVOKED = "active", "revoked"
"""The states of a permanent code (management and collection codes): scanned any number of
times, never expiring, until it is revoked."""
LIVE_STATES = (PENDING, SCANNED)


class CodeUnusable(Exception):
    """The code cannot be acted on; `reason` is unknown, expired, used or revoked."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def url_for(code_id: str) -> str:
    return f"{settings.current().public_base_url}/h5/q/{code_id}"


def _shard(code_id: str) -> str:
    return f"live#{zlib.crc32(code_id.encode()) % settings.current().qr_expiry_shards}"


def new_code(kind: str, account_id: str, ttl_seconds: int | None, target: str | None = None, **where) -> QrCode:
    """A code not yet saved, for a caller that saves it in a transaction with what it acts on.
    With a lifetime it is single use and expires (swept by B2, purged later by TTL); without
    one it is permanent (`ACTIVE`) until revoked. `where`: merchant_id, store_id, member_key."""
    at = now()
    code_id = secrets.token_urlsafe(18)
    if ttl_seconds is None:
        return QrCode(code_id=code_id, kind=kind, state=ACTIVE, account_id=account_id, created_at=at,
                      target=target, **where)
    expires_at = at + ttl_seconds
    return QrCode(code_id=code_id, kind=kind, state=PENDING, account_id=account_id, created_at=at,
                  expires_at=expires_at, expiry_shard=_shard(code_id), target=target,
                  purge_at=expires_at + settings.current().qr_purge_after_seconds, **where)


def issue(kind: str, account_id: str, ttl_seconds: int, target: str | None = None) -> QrCode:
    code = new_code(kind, account_id, ttl_seconds, target)
    code.save(condition=QrCode.code_id.does_not_exist())
    return code


def effective_state(code: QrCode, at: int | None = None) -> str:
    """The state a person sees: a live code past its expiry is expired even before the sweep."""
    if code.state in LIVE_STATES and code.expires_at is not None and code.expires_at <= (at or now()):
        return EXPIRED
    return code.state


def find(code_id: str) -> QrCode | None:
    try:
        return QrCode.get(code_id)
    except DoesNotExist:
        return None


def own(account_id: str, code_id: str, kind: str | None = None) -> QrCode:
    """A code the account issued; a foreign or unknown id answers the same not-found."""
    code = find(code_id)
    if code is None or code.account_id != account_id or (kind is not None and code.kind != kind):
        raise NotFound("no such code", param="code_id")
    return code


def images(code_id: str) -> dict[str, str]:
    """Where the console fetches a code's QR image (any kind; the account must own it)."""
    return {"png": f"/v1/qr-codes/{code_id}/image.png", "svg": f"/v1/qr-codes/{code_id}/image.svg"}


def usable(code_id: str, kind: str | None = None) -> QrCode:
    """The code if it can still be scanned and confirmed, else CodeUnusable with the reason."""
    return check_usable(find(code_id), kind)


def check_usable(code: QrCode | None, kind: str | None = None) -> QrCode:
    """`usable` for a code already read: a scan page that needs the kind of an unusable code
    (to word its error) reads the code once."""
    if code is None or (kind is not None and code.kind != kind):
        raise CodeUnusable("unknown")
    state = effective_state(code)
    if state == EXPIRED:
        raise CodeUnusable("expired")
    if state == USED:
        raise CodeUnusable("used")
    if state not in (*LIVE_STATES, ACTIVE):
        raise CodeUnusable("revoked")
    return code


def _live_condition(at: int):
    return QrCode.state.is_in(*LIVE_STATES) & (QrCode.expires_at > at)


def mark_scanned(code: QrCode, scanner: str) -> None:
    """Record who scanned; harmless if the code was used or expired in the meantime."""
    try:
        code.update(actions=[QrCode.state.set(SCANNED), QrCode.scanned_by.set(scanner),
                             QrCode.scanned_at.set(now())], condition=_live_condition(now()))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def console_view(code: QrCode, object_name: str, used_state: str) -> dict:
    """What the console polls: the code's state in the words of its kind (`used_state` for
    a used code), where it points, its images, and what confirming it did."""
    state = effective_state(code)
    return {"id": code.code_id, "object": object_name, "state": used_state if state == USED else state,
            "url": url_for(code.code_id), "created_at": code.created_at, "expires_at": code.expires_at,
            "scanned_at": code.scanned_at, "used_at": code.used_at, "replaced_by": code.replaced_by,
            "target": code.target, "result": code.result.as_dict() if code.result else None,
            "images": images(code.code_id)}


def consume(code_id: str, kind: str, user: str) -> QrCode:
    """Use a live code, once: the conditional write makes a second confirm fail with the
    reason the code can no longer be used."""
    at = now()
    try:
        QrCode(code_id).update(actions=use_actions(user, at), condition=use_condition(kind, at))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        usable(code_id, kind)
        raise CodeUnusable("used") from None
    return find(code_id)


def record_result(code_id: str, result: dict) -> None:
    QrCode(code_id).update(actions=[QrCode.result.set(result)])


def use_actions(user: str, at: int) -> list:
    """The update that consumes a code, for use inside a caller's transaction."""
    return [QrCode.state.set(USED), QrCode.used_by.set(user), QrCode.used_at.set(at),
            QrCode.expiry_shard.remove()]


def use_condition(kind: str, at: int):
    return _live_condition(at) & (QrCode.kind == kind)


def replace(code: QrCode, new_code_id: str) -> None:
    """Retire a live code that a newer one supersedes, so only one can bind at a time."""
    try:
        code.update(actions=[QrCode.state.set(REPLACED), QrCode.replaced_by.set(new_code_id),
                             QrCode.expiry_shard.remove()], condition=QrCode.state.is_in(*LIVE_STATES))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


@dataclass(frozen=True)
class SweepResult:
    examined: int
    expired: int


def expire_due(at: int | None = None) -> SweepResult:
    """B2: mark every live code whose time has passed as expired, shard by shard, by index."""
    at = at or now()
    examined = expired = 0
    for shard in range(settings.current().qr_expiry_shards):
        for key in QrCode.live_by_expiry.query(f"live#{shard}", QrCode.expires_at <= at):
            examined += 1
            try:
                QrCode(key.code_id).update(
                    actions=[QrCode.state.set(EXPIRED), QrCode.expiry_shard.remove()],
                    condition=QrCode.state.is_in(*LIVE_STATES) & (QrCode.expires_at <= at))
                expired += 1
            except UpdateError as exc:
                if not condition_failed(exc):
                    raise
    return SweepResult(examined, expired)
