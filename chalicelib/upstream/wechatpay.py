"""U3: WeChat Pay API v3 in service-provider (partner) mode, as docs/upstreams/wechatpay.md describes.

https://pay.weixin.qq.com/doc/v3/partner — JSAPI order, query, close, refund, refund query,
payment and refund notifications, and the JSAPI `paySign`.

All of WeChat Pay's signing, verification and decryption is in this module and nowhere else:
requests are signed with the service provider's merchant key (`WECHATPAY2-SHA256-RSA2048`);
every answer, error or not, and every notification is verified against the platform's public
key before a byte of its body is believed. Credentials are passed in (`WechatPayMerchant`),
because each provider has its own.
"""
from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import time
import types
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib import settings
from chalicelib.upstream import http

SYSTEM = "WeChat Pay"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
USER_AGENT = "CloudPay/1.0 (WeChat Pay API v3 partner; python-httpx)"
MAX_CLOCK_SKEW_SECONDS = 300
PROBE_SIGNATURE_PREFIX = "WECHATPAY/SIGNTEST/"
PUBLIC_KEY_ID_PREFIX = "PUB_KEY_ID_"
AEAD_ALGORITHM = "AEAD_AES_256_GCM"
CHINA_STANDARD_TIME = timezone(timedelta(hours=8))

_OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,64}$")
_APPID = re.compile(r"^wx[0-9a-f]{16}$")
_MCHID = re.compile(r"^[0-9]{1,32}$")


# --- Errors ------------------------------------------------------------------------------

class WechatPaySignatureError(Exception):
    """An answer or notification is not provably from WeChat Pay: never trust its body."""


class WechatPayDecryptionError(Exception):
    """A notification's resource could not be decrypted (wrong API v3 key or tampered data)."""


class WechatPayError(Exception):
    """WeChat Pay refused the call: a verified `{"code", "message", "detail"}` answer."""

    def __init__(self, status: int, code: str, message: str, detail: dict | None = None) -> None:
        field_hint = f" ({detail['field']})" if isinstance(detail, dict) and detail.get("field") else ""
        super().__init__(f"WeChat Pay {status} {code}: {message}{field_hint}")
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail or {}


class WechatPayRequestError(WechatPayError):
    """The request broke a rule (PARAM_ERROR, INVALID_REQUEST...): fix the data, do not retry."""


class WechatPayAuthError(WechatPayError):
    """Signature or permission refused (SIGN_ERROR, NO_AUTH, MCH_NOT_EXISTS): the provider's setup is wrong."""


class WechatPayNotFound(WechatPayError):
    """The order or refund does not exist at WeChat Pay."""


class WechatPayOrderClosed(WechatPayError):
    """The order was closed: a new attempt needs a new out_trade_no."""


class WechatPayOrderPaid(WechatPayError):
    """The order is already paid, so it cannot be closed: settle it instead."""


class WechatPayNotEnough(WechatPayError):
    """The sub-merchant's balance cannot cover the refund."""


class WechatPayUserPaying(WechatPayError):
    """The customer is still confirming the payment: query again later."""


class WechatPayTryLater(WechatPayError):
    """A transient refusal (system error, rate limit) that survived http.send's retries."""


_ERRORS_BY_CODE: dict[str, type[WechatPayError]] = {
    **dict.fromkeys(("PARAM_ERROR", "INVALID_REQUEST", "APPID_MCHID_NOT_MATCH", "OUT_TRADE_NO_USED",
                     "RULE_LIMIT", "RULELIMIT", "TRADE_ERROR", "OPENID_MISMATCH"), WechatPayRequestError),
    **dict.fromkeys(("SIGN_ERROR", "NO_AUTH", "MCH_NOT_EXISTS"), WechatPayAuthError),
    **dict.fromkeys(("ORDERNOTEXIST", "ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS"), WechatPayNotFound),
    "ORDER_CLOSED": WechatPayOrderClosed,
    **dict.fromkeys(("ORDERPAID", "ORDER_PAID"), WechatPayOrderPaid),
    **dict.fromkeys(("NOT_ENOUGH", "NOTENOUGH"), WechatPayNotEnough),
    "USERPAYING": WechatPayUserPaying,
    **dict.fromkeys(("SYSTEMERROR", "SYSTEM_ERROR", "FREQUENCY_LIMITED", "BANKERROR", "BANK_ERROR"),
                    WechatPayTryLater),
}


def error_from_answer(status: int, body: dict) -> WechatPayError:
    """The exception for a verified error answer; codes WeChat spells two ways map alike."""
    code = str(body.get("code") or "UNKNOWN")
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else None
    return _ERRORS_BY_CODE.get(code, WechatPayError)(status, code, str(body.get("message") or ""), detail)


# --- Credentials and keys -----------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant API private key must be an RSA key")
    return key


@functools.lru_cache(maxsize=1024)
def _platform_public_key(key_id: str, pem: str) -> rsa.RSAPublicKey:
    """A platform public key, given as such (PUB_KEY_ID_ mode) or inside a platform certificate."""
    if "BEGIN CERTIFICATE" in pem:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        serial = format(certificate.serial_number, "X")
        if serial.lstrip("0") != key_id.upper().lstrip("0"):
            raise ValueError(f"platform certificate {key_id} has serial number {serial}")
        key = certificate.public_key()
    else:
        key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"platform key {key_id} must be an RSA key")
    return key


@dataclass(frozen=True)
class WechatPayMerchant:
    """A service provider's WeChat Pay credentials, as downloaded from its merchant platform.

    `platform_keys` maps what WeChat Pay puts in `Wechatpay-Serial` to the key that verifies
    it: a platform public key id (`PUB_KEY_ID_...`) to its public key PEM, or a platform
    certificate's serial number to the certificate PEM. Both may be present while a provider
    moves from certificates to the public key.
    """

    sp_mchid: str
    serial_no: str
    private_key_pem: str = field(repr=False)
    api_v3_key: str = field(repr=False)
    platform_keys: Mapping[str, str] = field(repr=False)

    def __post_init__(self) -> None:
        if not _MCHID.match(self.sp_mchid):
            raise ValueError("sp_mchid must be the service provider's numeric merchant id")
        if len(self.api_v3_key.encode()) != 32:
            raise ValueError("api_v3_key must be 32 bytes")
        if not self.platform_keys:
            raise ValueError("platform_keys needs the platform public key or certificate")
        object.__setattr__(self, "platform_keys", types.MappingProxyType(dict(self.platform_keys)))
        _private_key(self.private_key_pem)
        for key_id, pem in self.platform_keys.items():
            _platform_public_key(key_id, pem)

    @property
    def platform_public_key_id(self) -> str | None:
        """The PUB_KEY_ID we send as `Wechatpay-Serial`, so WeChat Pay signs with that key."""
        return next((key_id for key_id in self.platform_keys if key_id.startswith(PUBLIC_KEY_ID_PREFIX)), None)

    def platform_key(self, serial: str) -> rsa.RSAPublicKey:
        pem = self.platform_keys.get(serial)
        if pem is None:
            raise WechatPaySignatureError(
                f"Wechatpay-Serial {serial!r} is not a platform key of merchant {self.sp_mchid}; "
                "download the current platform public key or certificate")
        return _platform_public_key(serial, pem)


# --- Signing and verification -------------------------------------------------------------

def rsa_sign(private_key_pem: str, message: bytes) -> str:
    """base64 RSASSA-PKCS1-v1_5 SHA-256, the one signature WeChat Pay v3 uses everywhere."""
    signature = _private_key(private_key_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def request_message(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{method}\n{path_and_query}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(merchant: WechatPayMerchant, method: str, path_and_query: str, body: bytes,
                  timestamp: str, nonce: str) -> str:
    """The `Authorization` header for one request; `path_and_query` exactly as sent on the wire."""
    signature = rsa_sign(merchant.private_key_pem, request_message(method, path_and_query, timestamp, nonce, body))
    return (f'{SCHEME} mchid="{merchant.sp_mchid}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{merchant.serial_no}"')


def verify_signed_message(merchant: WechatPayMerchant, headers: httpx.Headers | Mapping[str, str],
                          body: bytes, now: float | None = None) -> None:
    """Check that an answer or notification was signed by WeChat Pay within the last 5 minutes.

    The signed message is `TIMESTAMP\\nNONCE\\nBODY\\n` over the exact body bytes. WeChat Pay
    sends probe signatures starting with `WECHATPAY/SIGNTEST/` to check that receivers do
    verify: they must fail, and do so here before any cryptography.
    """
    headers = httpx.Headers(headers)
    timestamp = headers.get("Wechatpay-Timestamp", "")
    nonce = headers.get("Wechatpay-Nonce", "")
    signature = headers.get("Wechatpay-Signature", "")
    serial = headers.get("Wechatpay-Serial", "")
    if not (timestamp.isdigit() and nonce and signature and serial):
        raise WechatPaySignatureError("Wechatpay-Timestamp/-Nonce/-Signature/-Serial headers are missing")
    if signature.startswith(PROBE_SIGNATURE_PREFIX):
        raise WechatPaySignatureError("a WECHATPAY/SIGNTEST/ probe signature is never valid")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise WechatPaySignatureError("Wechatpay-Timestamp is more than 5 minutes off")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        merchant.platform_key(serial).verify(raw_signature, f"{timestamp}\n{nonce}\n".encode() + body + b"\n",
                                             padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise WechatPaySignatureError("Wechatpay-Signature does not match the body") from exc


def decrypt_aead(api_v3_key: str, nonce: str, associated_data: str, ciphertext_b64: str) -> bytes:
    """AEAD_AES_256_GCM as WeChat Pay uses it: key = the API v3 key's 32 bytes, 16-byte tag
    appended to the ciphertext, nonce and associated data taken as UTF-8 text."""
    try:
        return AESGCM(api_v3_key.encode()).decrypt(nonce.encode(), base64.b64decode(ciphertext_b64, validate=True),
                                                    associated_data.encode())
    except (InvalidTag, ValueError) as exc:
        raise WechatPayDecryptionError("resource does not decrypt with the API v3 key "
                                       "(wrong key, or ciphertext/nonce/associated_data altered)") from exc


# --- Calls --------------------------------------------------------------------------------

def _json(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _call(merchant: WechatPayMerchant, method: str, path: str, query: dict | None = None,
          payload: dict | None = None) -> dict | None:
    """One signed call; the verified JSON answer (None for 204), or the mapped WechatPayError."""
    url = httpx.URL(f"{settings.current().wechatpay_base_url}{path}", params=query)
    path_and_query = url.raw_path.decode()
    body = _json(payload) if payload is not None else b""

    def build() -> httpx.Request:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
        headers = {"Authorization": authorization(merchant, method, path_and_query, body, timestamp, nonce),
                   "Accept": "application/json", "User-Agent": USER_AGENT}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if merchant.platform_public_key_id:
            headers["Wechatpay-Serial"] = merchant.platform_public_key_id
        return httpx.Request(method, url, content=body, headers=headers)

    response = http.send(SYSTEM, build)
    if response.status_code >= 400 and "Wechatpay-Signature" not in response.headers:
        # WeChat Pay's gateway may refuse a request (bad signature, unknown mchid) without
        # signing its answer: report the status only and believe nothing in the body.
        unverified = WechatPayAuthError if response.status_code == 401 else WechatPayError
        raise unverified(response.status_code, "UNVERIFIED",
                         "unsigned error answer; check the merchant settings (mch id, serial, private key)")
    verify_signed_message(merchant, response.headers, response.content)
    data = response.json() if response.content else None
    if response.status_code >= 400 or (isinstance(data, dict) and response.status_code == 202 and "code" in data):
        raise error_from_answer(response.status_code, data if isinstance(data, dict) else {})
    return data


def _segment(value: str) -> str:
    return quote(value, safe="")


def _require(condition: bool, name: str, rule: str) -> None:
    if not condition:
        raise ValueError(f"{name}: {rule}")


def _positive_fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def rfc3339(moment: datetime) -> str:
    """`yyyy-MM-DDTHH:mm:ss+08:00`, the form WeChat Pay's examples use for time fields."""
    if moment.tzinfo is None:
        raise ValueError("time_expire: must be timezone-aware")
    return moment.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Transaction:
    """A partner transaction, from a query answer or a TRANSACTION.* notification."""

    sp_mchid: str
    sub_mchid: str
    sp_appid: str
    sub_appid: str | None
    out_trade_no: str
    transaction_id: str | None
    trade_type: str | None
    trade_state: str  # SUCCESS | REFUND | NOTPAY | CLOSED | REVOKED | USERPAYING | PAYERROR
    trade_state_desc: str
    bank_type: str | None
    attach: str | None
    success_time: datetime | None
    amount_total: int | None
    payer_total: int | None
    currency: str
    sp_openid: str | None
    sub_openid: str | None

    @property
    def paid(self) -> bool:
        """SUCCESS or REFUND: the money was taken (REFUND means a refund followed)."""
        return self.trade_state in ("SUCCESS", "REFUND")

    @classmethod
    def from_json(cls, data: dict) -> Transaction:
        amount, payer = data.get("amount") or {}, data.get("payer") or {}
        return cls(sp_mchid=data.get("sp_mchid", ""), sub_mchid=data.get("sub_mchid", ""),
                   sp_appid=data.get("sp_appid", ""), sub_appid=data.get("sub_appid"),
                   out_trade_no=data["out_trade_no"], transaction_id=data.get("transaction_id"),
                   trade_type=data.get("trade_type"), trade_state=data["trade_state"],
                   trade_state_desc=data.get("trade_state_desc", ""), bank_type=data.get("bank_type"),
                   attach=data.get("attach"), success_time=_time(data.get("success_time")),
                   amount_total=amount.get("total"), payer_total=amount.get("payer_total"),
                   currency=amount.get("currency", "CNY"), sp_openid=payer.get("sp_openid"),
                   sub_openid=payer.get("sub_openid"))


@dataclass(frozen=True)
class Refund:
    """A refund, from the refund API's answers or a REFUND.* notification."""

    refund_id: str
    out_refund_no: str
    transaction_id: str
    out_trade_no: str
    status: str  # SUCCESS | CLOSED | PROCESSING | ABNORMAL
    user_received_account: str | None
    success_time: datetime | None
    create_time: datetime | None
    refund: int
    total: int
    payer_refund: int | None
    payer_total: int | None
    currency: str

    @classmethod
    def from_json(cls, data: dict) -> Refund:
        """Reads both shapes: the API's `status`, and a notification's `refund_status`."""
        amount = data.get("amount") or {}
        return cls(refund_id=data["refund_id"], out_refund_no=data["out_refund_no"],
                   transaction_id=data.get("transaction_id", ""), out_trade_no=data.get("out_trade_no", ""),
                   status=data.get("status") or data["refund_status"],
                   user_received_account=data.get("user_received_account"),
                   success_time=_time(data.get("success_time")), create_time=_time(data.get("create_time")),
                   refund=amount["refund"], total=amount["total"], payer_refund=amount.get("payer_refund"),
                   payer_total=amount.get("payer_total"), currency=amount.get("currency", "CNY"))


def create_jsapi_order(merchant: WechatPayMerchant, *, sp_appid: str, sub_mchid: str, description: str,
                       out_trade_no: str, amount_total: int, notify_url: str, time_expire: datetime | None = None,
                       sp_openid: str | None = None, sub_appid: str | None = None, sub_openid: str | None = None,
                       attach: str | None = None) -> str:
    """Place a JSAPI order for a sub-merchant; returns the prepay_id (valid for 2 hours).

    Placing the same out_trade_no again with the same fields returns the same prepay_id, so a
    retry after a timeout is safe; different fields are refused (INVALID_REQUEST).
    """
    _require(bool(_APPID.match(sp_appid)), "sp_appid", "must look like wx followed by 16 hex digits")
    _require(bool(_MCHID.match(sub_mchid)), "sub_mchid", "must be a numeric merchant id")
    _require(0 < len(description.encode()) <= 127, "description", "must be 1 to 127 bytes of UTF-8")
    _require(bool(_OUT_TRADE_NO.match(out_trade_no)), "out_trade_no", "must be 6-32 of A-Z a-z 0-9 _ - | *")
    _require(_positive_fen(amount_total), "amount.total", "must be a positive integer number of fen")
    _require(bool(re.match(r"^https?://[^?#\s]+$", notify_url)) and len(notify_url) <= 256, "notify_url",
             "must be an absolute http(s) URL of at most 256 characters, without a query string")
    _require((sp_openid is None) != (sub_openid is None), "payer", "give exactly one of sp_openid and sub_openid")
    _require(sub_openid is None or sub_appid is not None, "sub_appid", "is required with payer.sub_openid")
    _require(attach is None or 0 < len(attach) <= 128, "attach", "must be 1 to 128 characters")
    payload = {"sp_appid": sp_appid, "sp_mchid": merchant.sp_mchid, "sub_mchid": sub_mchid,
               "description": description, "out_trade_no": out_trade_no, "notify_url": notify_url,
               "amount": {"total": amount_total, "currency": "CNY"},
               "payer": {"sp_openid": sp_openid} if sp_openid is not None else {"sub_openid": sub_openid}}
    if sub_appid is not None:
        payload["sub_appid"] = sub_appid
    if time_expire is not None:
        payload["time_expire"] = rfc3339(time_expire)
    if attach is not None:
        payload["attach"] = attach
    return _call(merchant, "POST", "/v3/pay/partner/transactions/jsapi", payload=payload)["prepay_id"]


def query_order_by_out_trade_no(merchant: WechatPayMerchant, sub_mchid: str, out_trade_no: str) -> Transaction:
    data = _call(merchant, "GET", f"/v3/pay/partner/transactions/out-trade-no/{_segment(out_trade_no)}",
                 query={"sp_mchid": merchant.sp_mchid, "sub_mchid": sub_mchid})
    return Transaction.from_json(data)


def query_order_by_transaction_id(merchant: WechatPayMerchant, sub_mchid: str, transaction_id: str) -> Transaction:
    data = _call(merchant, "GET", f"/v3/pay/partner/transactions/id/{_segment(transaction_id)}",
                 query={"sp_mchid": merchant.sp_mchid, "sub_mchid": sub_mchid})
    return Transaction.from_json(data)


def close_order(merchant: WechatPayMerchant, sub_mchid: str, out_trade_no: str) -> None:
    """Close an unpaid order (WeChat Pay answers 204). A paid order raises WechatPayOrderPaid."""
    _call(merchant, "POST", f"/v3/pay/partner/transactions/out-trade-no/{_segment(out_trade_no)}/close",
          payload={"sp_mchid": merchant.sp_mchid, "sub_mchid": sub_mchid})


def create_refund(merchant: WechatPayMerchant, *, sub_mchid: str, out_refund_no: str, refund: int, total: int,
                  out_trade_no: str | None = None, transaction_id: str | None = None, reason: str | None = None,
                  notify_url: str | None = None) -> Refund:
    """Ask for a refund (usually PROCESSING at first; the REFUND.* notification or a query
    tells the outcome). The same out_refund_no again refunds once, so retries are safe."""
    _require(bool(_MCHID.match(sub_mchid)), "sub_mchid", "must be a numeric merchant id")
    _require(bool(_OUT_REFUND_NO.match(out_refund_no)), "out_refund_no", "must be 1-64 of A-Z a-z 0-9 _ - | * @")
    _require((out_trade_no is None) != (transaction_id is None), "out_trade_no",
             "give exactly one of out_trade_no and transaction_id")
    _require(_positive_fen(total), "amount.total", "must be a positive integer number of fen")
    _require(_positive_fen(refund) and refund <= total, "amount.refund",
             "must be a positive integer number of fen, at most amount.total")
    _require(reason is None or 0 < len(reason) <= 80, "reason", "must be 1 to 80 characters")
    _require(notify_url is None or bool(re.match(r"^https?://[^?#\s]+$", notify_url)), "notify_url",
             "must be an absolute http(s) URL without a query string")
    payload: dict = {"sub_mchid": sub_mchid, "out_refund_no": out_refund_no,
                     "amount": {"refund": refund, "total": total, "currency": "CNY"}}
    if out_trade_no is not None:
        payload["out_trade_no"] = out_trade_no
    else:
        payload["transaction_id"] = transaction_id
    if reason is not None:
        payload["reason"] = reason
    if notify_url is not None:
        payload["notify_url"] = notify_url
    return Refund.from_json(_call(merchant, "POST", "/v3/refund/domestic/refunds", payload=payload))


def query_refund(merchant: WechatPayMerchant, sub_mchid: str, out_refund_no: str) -> Refund:
    data = _call(merchant, "GET", f"/v3/refund/domestic/refunds/{_segment(out_refund_no)}",
                 query={"sub_mchid": sub_mchid})
    return Refund.from_json(data)


# --- Notifications ------------------------------------------------------------------------

@dataclass(frozen=True)
class Notification:
    """A verified, decrypted payment or refund notification.

    WeChat Pay delivers a notification again until it is acknowledged, and sometimes twice
    anyway: `notification_id` is the same on every delivery, so the caller can spot a
    replay, and the caller's processing must be idempotent regardless.
    """

    notification_id: str
    event_type: str  # TRANSACTION.SUCCESS | REFUND.SUCCESS | REFUND.ABNORMAL | REFUND.CLOSED
    create_time: datetime | None
    summary: str
    original_type: str
    resource: dict

    def transaction(self) -> Transaction:
        return Transaction.from_json(self.resource)

    def refund(self) -> Refund:
        return Refund.from_json(self.resource)


def parse_notification(merchant: WechatPayMerchant, headers: Mapping[str, str], body: bytes | str,
                       now: float | None = None) -> Notification:
    """Verify (signature, 5-minute window, no probe) and then decrypt a notification.

    Raises WechatPaySignatureError or WechatPayDecryptionError; either way the notification
    must change nothing (answer it with a 4xx/5xx so that a genuine one is sent again).
    """
    raw = body.encode() if isinstance(body, str) else body
    verify_signed_message(merchant, headers, raw, now=now)
    envelope = json.loads(raw)
    resource = envelope.get("resource") or {}
    if envelope.get("resource_type") != "encrypt-resource" or resource.get("algorithm") != AEAD_ALGORITHM:
        raise WechatPayDecryptionError(f"resource is not {AEAD_ALGORITHM} encrypt-resource")
    plaintext = decrypt_aead(merchant.api_v3_key, resource.get("nonce", ""), resource.get("associated_data", ""),
                             resource.get("ciphertext", ""))
    return Notification(notification_id=envelope["id"], event_type=envelope["event_type"],
                        create_time=_time(envelope.get("create_time")), summary=envelope.get("summary", ""),
                        original_type=resource.get("original_type", ""), resource=json.loads(plaintext))


# --- JSAPI payment in the page ------------------------------------------------------------

def jsapi_pay_params(merchant: WechatPayMerchant, app_id: str, prepay_id: str) -> dict[str, str]:
    """What the page passes to `WeixinJSBridge.invoke('getBrandWCPayRequest', ...)`.

    `app_id` is the appid the order was placed with for its payer: `sp_appid` for an
    `sp_openid` payer, `sub_appid` for a `sub_openid` payer. Signed with the service
    provider's merchant key over `appId\\ntimeStamp\\nnonceStr\\npackage\\n`.
    """
    timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
    package = f"prepay_id={prepay_id}"
    pay_sign = rsa_sign(merchant.private_key_pem, f"{app_id}\n{timestamp}\n{nonce}\n{package}\n".encode())
    return {"appId": app_id, "timeStamp": timestamp, "nonceStr": nonce, "package": package,
            "signType": "RSA", "paySign": pay_sign}
