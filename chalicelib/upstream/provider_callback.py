"""B5: the POST of an event to a provider's callback URL, signed in this one place.

`Cloudpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
timestamp is inside what is signed, so a receiver that refuses old timestamps refuses
replays (docs/callbacks.md shows how to verify it). One try per call, with a short timeout:
the delivery's schedule is the retry, so a receiver that is down is not hammered.
"""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import httpx

from chalicelib.upstream import http

SIGNATURE_HEADER = "Cloudpay-Signature"
EVENT_ID_HEADER = "Cloudpay-Event-Id"
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
"""Seconds: a receiver should answer at once and do its work later."""
ANSWER_CHARS = 200


@dataclass(frozen=True)
class CallbackAnswer:
    status: int | None
    """The HTTP status, or None when no answer came (refused, timed out, reset)."""
    latency_ms: int
    answer: str | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, secret: str, event_id: str, body: bytes, timestamp: int) -> CallbackAnswer:
    """One signed POST; its outcome, never an exception for what the receiver did."""
    request = httpx.Request("POST", url, content=body, headers={
        "Content-Type": "application/json; charset=utf-8", "User-Agent": "Cloudpay-Callback/1",
        EVENT_ID_HEADER: event_id, SIGNATURE_HEADER: signature(secret, timestamp, body)},
        extensions={"timeout": TIMEOUT.as_dict()})
    started = time.monotonic()
    try:
        response = http.client().send(request, stream=True)
        try:
            head = _first_bytes(response)
        finally:
            response.close()
    except httpx.TimeoutException:
        return CallbackAnswer(None, _since(started), None, "timed out")
    except httpx.HTTPError as exc:
        return CallbackAnswer(None, _since(started), None, f"connection failed ({type(exc).__name__})")
    text = head.decode("utf-8", errors="replace")[:ANSWER_CHARS]
    error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
    return CallbackAnswer(response.status_code, _since(started), text, error)


def _first_bytes(response: httpx.Response) -> bytes:
    """Enough of the answer for the log; a huge answer is not read to its end."""
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= ANSWER_CHARS * 4:
            break
    return head


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
