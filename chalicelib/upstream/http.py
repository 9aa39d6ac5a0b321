"""The HTTP plumbing every upstream client shares: timeouts, retries, one pooled client.

The transport can be replaced (`use_transport`) so that tests and benchmarks run the real
client code against the sandbox in-process; nothing else about a request changes.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

import httpx

from chalicelib import settings

_transport: httpx.BaseTransport | None = None
_clients: dict[tuple, httpx.Client] = {}
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class UpstreamUnavailable(Exception):
    """The upstream did not answer usefully after every retry (timeouts, 5xx, resets)."""

    def __init__(self, system: str, detail: str) -> None:
        super().__init__(f"{system} is unavailable: {detail}")
        self.system = system
        self.detail = detail


class RetryableAnswer(Exception):
    """Raised by an answer's interpreter when the upstream said "try again" in its own words
    (Alipay's 20000 and ACQ.SYSTEM_ERROR arrive as HTTP 200): retried like a 5xx."""


Answer = TypeVar("Answer")


def use_transport(transport: httpx.BaseTransport | None) -> None:
    """Route every upstream call through `transport` (None: the network)."""
    global _transport
    _transport = transport
    for client in _clients.values():
        client.close()
    _clients.clear()


def client() -> httpx.Client:
    timeout = settings.current().upstream_timeout_seconds
    key = (id(_transport), timeout)
    if key not in _clients:
        _clients[key] = httpx.Client(timeout=timeout, transport=_transport, follow_redirects=False)
    return _clients[key]


def send(system: str, build: Callable[[], httpx.Request],
         interpret: Callable[[httpx.Response], Answer] | None = None,
         idempotent: bool = True) -> httpx.Response | Answer:
    """Send the request `build()` makes, rebuilding it for each retry (fresh nonce, timestamp).

    Retries timeouts, connection errors, 429 and 5xx with a short exponential backoff, and
    answers that `interpret` refuses with RetryableAnswer; every other answer goes back to
    the caller (interpreted, when `interpret` is given). One retry budget for all causes.

    A call that is not `idempotent` (it spends a one-time code or refresh token) is retried
    only when it cannot have reached the upstream (connect errors) or was refused unread
    (429): after a lost answer, a second attempt would find the code already spent.
    """
    attempts = settings.current().upstream_retries + 1
    last = ""
    for attempt in range(attempts):
        if attempt:
            time.sleep(min(0.1 * 2 ** (attempt - 1), 1.0))
        try:
            response = client().send(build())
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            last = f"connection failed ({type(exc).__name__})"
            continue
        except httpx.TimeoutException:
            last = "timed out"
            if not idempotent:
                break
            continue
        except httpx.TransportError as exc:
            last = f"connection failed ({type(exc).__name__})"
            if not idempotent:
                break
            continue
        if response.status_code == 429 or (idempotent and response.status_code in _RETRYABLE_STATUS):
            last = f"HTTP {response.status_code}"
            continue
        if interpret is None:
            return response
        try:
            return interpret(response)
        except RetryableAnswer as exc:
            last = str(exc)
            if not idempotent:
                break
    raise UpstreamUnavailable(system, f"{last} after {attempt + 1} attempts")
