"""B5: the POST of an event to a provider's callback URL, signed in this one place.

`Cloudpay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: the
timestamp is inside what is signed, so a receiver that refuses old timestamps refuses
replays (docs/callbacks.md shows how to verify it). One try per call: the delivery's
schedule is the retry, so a receiver that is down is not hammered.

The URL is the provider's, so the platform must not become a way to reach what only it can
reach: outside the local and test stages every address the host resolves to, and the one
actually connected to, must be global (not loopback, private, link-local, shared or
multicast). And a try has one deadline for all of it (connect, send, answer): httpx's
timeouts are per read, so a receiver trickling a byte every few seconds would otherwise hold
the sweep for as long as it liked. A watchdog cuts the socket at the deadline.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Self

import httpx

from chalicelib.upstream import http

SIGNATURE_HEADER = "Cloudpay-Signature"
EVENT_ID_HEADER = "Cloudpay-Event-Id"
ATTEMPT_DEADLINE_SECONDS = 10.0
"""The whole try, from connecting to the last byte read; a receiver should answer at once and
do its work later. With the sweep's 40 s budget, its 55 s Lambda is never overrun."""
CONNECT_SECONDS = 3.0
READ_SECONDS = 5.0
ANSWER_CHARS = 200
ANSWER_BYTES = ANSWER_CHARS * 4
"""Enough of the answer for the log's 200 characters; a longer answer is not read on."""


@dataclass(frozen=True)
class CallbackAnswer:
    status: int | None
    """The HTTP status, or None when no answer came (refused, timed out, reset)."""
    latency_ms: int
    answer: str | None
    error: str | None
    """In Chinese: the console shows it to the provider's owner as it is."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class RefusedPeer(Exception):
    """The connection reached an address a callback may not go to (raised inside httpx)."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address `host` spells, in any form a resolver accepts ("127.1", "2130706433",
    "0x7f.0.0.1" are 127.0.0.1), or None for a name."""
    bare = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except (OSError, ValueError):
        return None


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Global unicast only; an IPv4-mapped IPv6 address is judged by its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (a seam for tests, which have no DNS)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def refused_destination(host: str, port: int) -> str | None:
    """Why a callback may not go to `host` (in Chinese), or None when every address it
    resolves to is public."""
    literal = literal_address(host)
    try:
        addresses = [literal] if literal is not None else [ipaddress.ip_address(a.split("%")[0])
                                                           for a in resolve(host, port)]
    except (OSError, UnicodeError, ValueError):
        return "无法解析回调地址的域名"
    if not addresses or not all(is_public(address) for address in addresses):
        return "回调地址指向内网或保留地址，未发送"
    return None


class _Watchdog:
    """Cuts the attempt's socket at the deadline (a blocked read then fails at once), and
    refuses a connection made to an address that is not public (a DNS answer that changed
    between the check and the connect)."""

    def __init__(self, seconds: float, check_peer: bool) -> None:
        self.check_peer = check_peer
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def trace(self, event: str, info: dict) -> None:
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket")
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            cut = self.fired
        if cut:
            _shut(sock)
        if self.check_peer and not is_public(ipaddress.ip_address(sock.getpeername()[0].split("%")[0])):
            _shut(sock)
            raise RefusedPeer(sock.getpeername()[0])

    def __enter__(self) -> Self:
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def _cut(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def post(url: str, secret: str, event_id: str, body: bytes, timestamp: int, *, check_addresses: bool,
         deadline_seconds: float | None = None) -> CallbackAnswer:
    """One signed POST; its outcome, never an exception for what the receiver (or its URL) did.

    `check_addresses`: refuse destinations that are not public (off on the local and test
    stages, whose receiver is the sandbox on this machine). The status decides: a 2xx within
    the deadline is a delivery even if the rest of its answer is still trickling in."""
    seconds = ATTEMPT_DEADLINE_SECONDS if deadline_seconds is None else deadline_seconds
    started = time.monotonic()
    deadline = started + seconds
    try:
        target = httpx.URL(url)
        if target.scheme not in ("http", "https") or not target.host:
            raise httpx.InvalidURL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return CallbackAnswer(None, 0, None, "回调地址无效")
    if check_addresses and (reason := refused_destination(target.host, target.port or _default_port(target))):
        return CallbackAnswer(None, _since(started), None, reason)
    timed_out = f"超时（{seconds:g} 秒内未应答）"
    with _Watchdog(seconds, check_addresses) as watchdog:
        request = httpx.Request("POST", target, content=body, headers={
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "Cloudpay-Callback/1",
            "Connection": "close", EVENT_ID_HEADER: event_id, SIGNATURE_HEADER: signature(secret, timestamp, body)},
            extensions={"timeout": httpx.Timeout(min(READ_SECONDS, seconds),
                                                 connect=min(CONNECT_SECONDS, seconds)).as_dict(),
                        "trace": watchdog.trace})
        try:
            response = http.client().send(request, stream=True)
        except RefusedPeer:
            return CallbackAnswer(None, _since(started), None, "回调地址指向内网或保留地址，未发送")
        except httpx.TimeoutException:
            return CallbackAnswer(None, _since(started), None, timed_out)
        except httpx.HTTPError as exc:
            if watchdog.fired:
                return CallbackAnswer(None, _since(started), None, timed_out)
            return CallbackAnswer(None, _since(started), None, f"连接失败（{type(exc).__name__}）")
        try:
            head = _first_bytes(response, deadline)
        finally:
            response.close()
    text = head.decode("utf-8", errors="replace")[:ANSWER_CHARS]
    error = None if 200 <= response.status_code < 300 else f"对方返回 HTTP {response.status_code}"
    return CallbackAnswer(response.status_code, _since(started), text, error)


def _default_port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


def _first_bytes(response: httpx.Response, deadline: float) -> bytes:
    """What of the answer arrives before the deadline, up to ANSWER_BYTES; a broken or cut
    answer keeps what came (the status has already decided the outcome)."""
    head = b""
    try:
        for chunk in response.iter_bytes():
            head += chunk
            if len(head) >= ANSWER_BYTES or time.monotonic() >= deadline:
                break
    except httpx.HTTPError:
        pass
    return head


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
