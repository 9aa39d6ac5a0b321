"""Our own signed, expiring tokens: H5 identity cookies, OAuth state, pagination cursors.

Format: base64url(JSON payload) "." base64url(HMAC-SHA256(key, purpose "." payload)).
The purpose is inside the MAC, so a cursor can never be replayed as a cookie.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from chalicelib import settings


class BadToken(Exception):
    """The token is malformed, forged, for another purpose, or expired."""


class TokenExpired(BadToken):
    """The token is genuine but past its time: a page can say "expired" rather than "forged"."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(purpose: str, payload: str) -> str:
    key = settings.current().platform_signing_key
    return _b64(hmac.new(key, f"{purpose}.{payload}".encode(), hashlib.sha256).digest())


def sign(purpose: str, data: dict, ttl_seconds: int | None = None) -> str:
    body = dict(data)
    if ttl_seconds is not None:
        body["exp"] = int(time.time()) + ttl_seconds
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_mac(purpose, payload)}"


def verify(purpose: str, token: str) -> dict:
    payload, _, mac = (token or "").partition(".")
    if not payload or not mac or not hmac.compare_digest(mac, _mac(purpose, payload)):
        raise BadToken("signature does not match")
    try:
        data = json.loads(_unb64(payload))
    except ValueError as exc:
        raise BadToken("payload is not JSON") from exc
    if "exp" in data and data["exp"] < time.time():
        raise TokenExpired("expired")
    return data
