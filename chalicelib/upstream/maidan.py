"""U5: the WeChat 买单 service-provider assistant, as defined in docs/upstreams/maidan.md.

No public contract exists, so Cloud Pay defines one modelled on WeChat Pay API v3: JSON
over HTTPS, every request and response signed with HMAC-SHA256 under the partner's API key.
All of its signing and verification is in this module.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import httpx

from chalicelib import settings
from chalicelib.upstream import http

SYSTEM = "WeChat 买单"
SCHEME = "MAIDAN-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 300


class MaidanError(Exception):
    """买单 refused the call (`code` as in the contract, e.g. SIGN_ERROR, PARAM_ERROR)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"买单 {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class MaidanSignatureError(Exception):
    """A response or notification did not carry a valid signature: never trust its body."""


def _mac(key: bytes, message: str) -> str:
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def request_signature(key: bytes, method: str, path_and_query: str, timestamp: str, nonce: str,
                      body: str) -> str:
    return _mac(key, f"{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")


def message_signature(key: bytes, timestamp: str, nonce: str, body: str) -> str:
    """Signature of a response or notification body."""
    return _mac(key, f"{timestamp}\n{nonce}\n{body}\n")


def verify_message(key: bytes, headers: httpx.Headers | dict, body: str, now: float | None = None) -> None:
    timestamp = headers.get("Maidan-Timestamp", "")
    nonce = headers.get("Maidan-Nonce", "")
    signature = headers.get("Maidan-Signature", "")
    if not (timestamp.isdigit() and nonce and signature):
        raise MaidanSignatureError("signature headers are missing")
    if abs((now or time.time()) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise MaidanSignatureError("timestamp is more than 5 minutes off")
    if not hmac.compare_digest(signature, message_signature(key, timestamp, nonce, body)):
        raise MaidanSignatureError("signature does not match")


def _call(method: str, path: str, payload: dict | None = None) -> dict:
    config = settings.current()
    url = httpx.URL(f"{config.maidan_base_url}{path}")
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) if payload is not None else ""

    def build() -> httpx.Request:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        path_and_query = url.raw_path.decode()
        signature = request_signature(config.maidan_api_key, method, path_and_query, timestamp, nonce, body)
        authorization = (f'{SCHEME} partner_id="{config.maidan_partner_id}",nonce_str="{nonce}",'
                         f'timestamp="{timestamp}",signature="{signature}"')
        return httpx.Request(method, url, content=body.encode(), headers={
            "Authorization": authorization, "Content-Type": "application/json", "Accept": "application/json"})

    response = http.send(SYSTEM, build)
    text = response.text
    verify_message(config.maidan_api_key, response.headers, text)
    data = json.loads(text) if text else {}
    if response.status_code >= 400:
        raise MaidanError(response.status_code, data.get("code", "UNKNOWN"), data.get("message", ""))
    return data


@dataclass(frozen=True)
class MaidanProvider:
    sp_mchid: str
    name: str


@dataclass(frozen=True)
class AdminLookup:
    """Who a WeChat user is to the 买单 assistant."""

    status: str  # ADMIN | NOT_ADMIN | NOT_OPENED
    providers: tuple[MaidanProvider, ...]

    @property
    def is_admin(self) -> bool:
        return self.status == "ADMIN"


def lookup_admin(unionid: str) -> AdminLookup:
    data = _call("POST", "/v1/assistant/admin-lookups", {"unionid": unionid})
    providers = tuple(MaidanProvider(p["sp_mchid"], p["name"]) for p in data.get("providers", []))
    return AdminLookup(status=data["status"], providers=providers)
