"""U5: the WeChat 买单 service-provider assistant, as defined in docs/upstreams/maidan.md.

No public contract exists, so Cloud Pay defines one modelled on WeChat Pay API v3: JSON
over HTTPS, every request, response and notification signed with HMAC-SHA256 under the
partner's API key. All of its signing and verification is in this module.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

import httpx

from chalicelib import settings
from chalicelib.upstream import http

SYSTEM = "WeChat 买单"
SCHEME = "MAIDAN-HMAC-SHA256"
MAX_CLOCK_SKEW_SECONDS = 300
MAX_PAGE_SIZE = 100
# Ids that go into a URL path: characters that need no percent-encoding, so the path we
# sign is the path 买单 sees.
_PATH_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


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
    headers = {name.lower(): value for name, value in headers.items()}
    timestamp = headers.get("maidan-timestamp", "")
    nonce = headers.get("maidan-nonce", "")
    signature = headers.get("maidan-signature", "")
    if not (timestamp.isdigit() and nonce and signature):
        raise MaidanSignatureError("signature headers are missing")
    if abs((now or time.time()) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise MaidanSignatureError("timestamp is more than 5 minutes off")
    if not hmac.compare_digest(signature, message_signature(key, timestamp, nonce, body)):
        raise MaidanSignatureError("signature does not match")


_TRADE_NUMBER = re.compile(r"^[0-9A-Za-z_-]{6,32}$")


def _path_id(name: str, value: str) -> str:
    if not isinstance(value, str) or not _PATH_ID.match(value):
        raise ValueError(f"{name} must be 1-64 characters of 0-9 A-Z a-z _ -, got {value!r}")
    return value


def _trade_number(name: str, value: str) -> str:
    """out_trade_no / out_refund_no: 6-32 characters, as the contract (and WeChat Pay) say."""
    if not isinstance(value, str) or not _TRADE_NUMBER.match(value):
        raise ValueError(f"{name} must be 6-32 characters of 0-9 A-Z a-z _ -, got {value!r}")
    return value


def _fen(name: str, value) -> int:
    """Money is a positive whole number of fen, sent and read as such: never a float."""
    if type(value) is not int or value <= 0:
        raise ValueError(f"{name} must be a positive whole number of fen, got {value!r}")
    return value


def _answered_fen(value) -> int:
    if type(value) is not int:
        raise MaidanError(200, "INVALID_ANSWER", f"an amount in the answer is not whole fen: {value!r}")
    return value


def _call(method: str, path: str, payload: dict | None = None, params: dict | None = None) -> dict:
    config = settings.current()
    query = {name: value for name, value in (params or {}).items() if value is not None}
    url = httpx.URL(f"{config.maidan_base_url}{path}", params=query)
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
    try:
        verify_message(config.maidan_api_key, response.headers, text)
    except MaidanSignatureError as exc:
        if response.status_code == 401:
            # 买单 refused our signature, and its answer does not verify under our key
            # either: the key is wrong. Only the status is used, never the unverified body.
            raise MaidanError(401, "SIGN_ERROR", f"refused our signature and its answer does not verify ({exc}): "
                                                 "is the key in the SSM parameter named by MAIDAN_API_KEY_PARAMETER "
                                                 "right?") from exc
        raise
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


# --- Sub-merchants (B1 sync) -------------------------------------------------------------


@dataclass(frozen=True)
class MaidanSubMerchant:
    sub_mchid: str
    name: str
    short_name: str
    admin_name: str
    admin_email: str
    admin_phone: str
    logo_url: str | None
    opened_maidan: bool
    updated_at: str


@dataclass(frozen=True)
class SubMerchantPage:
    sub_merchants: tuple[MaidanSubMerchant, ...]
    next_cursor: str | None
    """Pass it back for the next page; None on the last page."""
    total: int | None
    """How many sub-merchants the provider has in all (progress and ETA only)."""


def list_sub_merchants(sp_mchid: str, cursor: str | None = None, limit: int = 50) -> SubMerchantPage:
    """One page of a provider's sub-merchants, in 买单's stable order.

    The cursor is 买单's opaque position: a sync stores it with the page it fetched, so a
    worker that dies mid-page asks for the same page again.
    """
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be 1..{MAX_PAGE_SIZE}, got {limit}")
    data = _call("GET", f"/v1/providers/{_path_id('sp_mchid', sp_mchid)}/sub-merchants",
                 params={"limit": limit, "cursor": cursor})
    merchants = tuple(MaidanSubMerchant(
        sub_mchid=m["sub_mchid"], name=m["name"], short_name=m.get("short_name", ""),
        admin_name=m.get("admin_name", ""), admin_email=m.get("admin_email", ""),
        admin_phone=m.get("admin_phone", ""), logo_url=m.get("logo_url"),
        opened_maidan=bool(m["opened_maidan"]), updated_at=m["updated_at"]) for m in data["data"])
    total = data.get("total")
    return SubMerchantPage(merchants, data.get("next_cursor"), total if type(total) is int else None)


@dataclass(frozen=True)
class MaidanStatus:
    opened: bool
    opened_at: str | None


def maidan_status(mchid: str) -> MaidanStatus:
    """Whether a WeChat mch id has opened 买单 (C5.6 asks before switching a merchant to it)."""
    data = _call("GET", f"/v1/merchants/{_path_id('mchid', mchid)}/maidan-status")
    return MaidanStatus(opened=bool(data["opened"]), opened_at=data.get("opened_at"))


# --- Orders and refunds (P1, P4-P6) -------------------------------------------------------


@dataclass(frozen=True)
class CreatedOrder:
    order_id: str
    pay_params: dict
    """Handed untouched to WeixinJSBridge getBrandWCPayRequest: 买单 signed them."""


@dataclass(frozen=True)
class MaidanOrder:
    order_id: str
    sp_mchid: str
    sub_mchid: str
    out_trade_no: str
    trade_state: str  # NOTPAY | SUCCESS | CLOSED | PAYERROR
    total: int
    currency: str
    payer_openid: str
    success_time: str | None

    @classmethod
    def from_json(cls, data: dict) -> "MaidanOrder":
        """An order as 买单 answers it, in a query or in a notification's `order`."""
        return cls(order_id=data["order_id"], sp_mchid=data["sp_mchid"], sub_mchid=data["sub_mchid"],
                   out_trade_no=data["out_trade_no"], trade_state=data["trade_state"],
                   total=_answered_fen(data["amount"]["total"]), currency=data["amount"]["currency"],
                   payer_openid=data["payer"]["openid"], success_time=data.get("success_time"))


@dataclass(frozen=True)
class MaidanRefund:
    refund_id: str
    sp_mchid: str
    out_trade_no: str
    out_refund_no: str
    status: str  # PROCESSING | SUCCESS
    refund: int
    total: int
    currency: str
    success_time: str | None

    @classmethod
    def from_json(cls, data: dict) -> "MaidanRefund":
        """A refund as 买单 answers it, in a query or in a notification's `refund`."""
        return cls(refund_id=data["refund_id"], sp_mchid=data["sp_mchid"], out_trade_no=data["out_trade_no"],
                   out_refund_no=data["out_refund_no"], status=data["status"],
                   refund=_answered_fen(data["amount"]["refund"]), total=_answered_fen(data["amount"]["total"]),
                   currency=data["amount"]["currency"], success_time=data.get("success_time"))


def create_order(*, sp_mchid: str, sub_mchid: str, appid: str, out_trade_no: str, description: str,
                 total: int, payer_openid: str, notify_url: str, time_expire: datetime,
                 currency: str = "CNY") -> CreatedOrder:
    """Open a 买单 order for the payer to pay in WeChat.

    `appid` is the official account the pay page runs under (`payer_openid` belongs to it);
    `total` is in fen. Sending the same request again answers the same order, so a retry
    after a lost answer is safe.
    """
    if time_expire.tzinfo is None:
        raise ValueError("time_expire must carry a time zone")
    data = _call("POST", "/v1/orders", {
        "sp_mchid": sp_mchid, "sub_mchid": sub_mchid, "appid": appid,
        "out_trade_no": _trade_number("out_trade_no", out_trade_no), "description": description,
        "amount": {"total": _fen("total", total), "currency": currency}, "payer": {"openid": payer_openid},
        "notify_url": notify_url, "time_expire": time_expire.isoformat(timespec="seconds")})
    return CreatedOrder(order_id=data["order_id"], pay_params=data["pay_params"])


def query_order(sp_mchid: str, out_trade_no: str) -> MaidanOrder:
    data = _call("GET", f"/v1/orders/out-trade-no/{_trade_number('out_trade_no', out_trade_no)}",
                 params={"sp_mchid": sp_mchid})
    return MaidanOrder.from_json(data)


def close_order(sp_mchid: str, out_trade_no: str) -> None:
    """Close an unpaid order; closing a closed order again is a success."""
    _call("POST", f"/v1/orders/out-trade-no/{_trade_number('out_trade_no', out_trade_no)}/close",
          {"sp_mchid": sp_mchid})


def create_refund(*, sp_mchid: str, out_trade_no: str, out_refund_no: str, refund: int, total: int,
                  notify_url: str, currency: str = "CNY") -> MaidanRefund:
    """Ask for a refund (fen); it settles later (PROCESSING, then a REFUND.SUCCESS notification).

    The same request again answers the same refund.
    """
    data = _call("POST", "/v1/refunds", {
        "sp_mchid": sp_mchid, "out_trade_no": out_trade_no,
        "out_refund_no": _trade_number("out_refund_no", out_refund_no),
        "amount": {"refund": _fen("refund", refund), "total": _fen("total", total), "currency": currency},
        "notify_url": notify_url})
    return MaidanRefund.from_json(data)


def query_refund(sp_mchid: str, out_refund_no: str) -> MaidanRefund:
    data = _call("GET", f"/v1/refunds/{_trade_number('out_refund_no', out_refund_no)}", params={"sp_mchid": sp_mchid})
    return MaidanRefund.from_json(data)


# --- Notifications (P2) -------------------------------------------------------------------


def verify_notification(headers: httpx.Headers | dict, body: bytes | str, now: float | None = None) -> dict:
    """The event of a 买单 notification, once its signature and timestamp check out.

    Raises MaidanSignatureError for anything forged, altered or older than 5 minutes; the
    caller answers non-2xx and 买单 sends it again later.
    """
    text = body.decode() if isinstance(body, bytes) else body
    verify_message(settings.current().maidan_api_key, headers, text, now)
    return json.loads(text)
