"""U4: the Alipay open platform in ISV (third-party application) mode.

Each provider has its own ISV app (`AlipayApp`); it acts for a merchant by adding the
merchant's `app_auth_token` to a call. All of Alipay's signing and verification is in this
module, following opendocs.alipay.com (通用接口规范, 签名, 验签, 异步通知):

* requests: RSA2 (SHA256withRSA, PKCS#1 v1.5) over the sorted, non-empty, unencoded
  parameters minus `sign`;
* responses: the same signature over the exact text of the `<method>_response` (or
  `error_response`) node, checked with the Alipay public key before anything is read;
* notifications: the same over the URL-decoded form minus `sign` and `sign_type`.

Amounts cross this boundary as integer fen; Alipay's yuan strings are converted exactly.
"""
from __future__ import annotations

import base64
import functools
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chalicelib import settings
from chalicelib.upstream import http

SYSTEM = "Alipay"
NOTIFICATION_ACK = "success"
"""The exact body a notification receiver answers; anything else makes Alipay retry
(after 4m, 10m, 10m, 1h, 2h, 6h, 15h)."""

CHINA_TIME = timezone(timedelta(hours=8))
"""Asia/Shanghai as a fixed offset: China has no daylight saving time, and a fixed offset
needs no tz database in the Lambda image."""
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
TRADE_CLOSED = "TRADE_CLOSED"
TRADE_SUCCESS = "TRADE_SUCCESS"
TRADE_FINISHED = "TRADE_FINISHED"
PAID_STATUSES = frozenset({TRADE_SUCCESS, TRADE_FINISHED})

MAX_AMOUNT_FEN = 100_000_000_00  # alipay.trade.create: total_amount within [0.01, 100000000]
_OUT_NO = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_YUAN = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
_SUBJECT_FORBIDDEN = set("/=&")


# --- errors ---------------------------------------------------------------------------------


class AlipaySignatureError(Exception):
    """A response or notification that cannot be trusted: unsigned where a signature is
    required, signed wrongly, malformed, or addressed to another app. Never read its body."""


class AlipayError(Exception):
    """Alipay answered with a code other than 10000 (see 公共错误码 and each API's 业务错误码).

    `verified` is False for an unsigned gateway error (see `open_response`): anyone on the
    path could have written it, so it only makes the call fail. Such an answer is raised as
    this base class (or the diagnostic `AlipayRequestSignatureRejected`), never as a subclass
    that tells the caller to change state, e.g. to discard a merchant's authorization."""

    def __init__(self, code: str, msg: str, sub_code: str = "", sub_msg: str = "", *, verified: bool = True) -> None:
        super().__init__(f"Alipay {code} {msg}: {sub_code} {sub_msg}".rstrip(": "))
        self.code = code
        self.msg = msg
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.verified = verified

    @property
    def transient(self) -> bool:
        """20000 (服务不可用) and ACQ.SYSTEM_ERROR (also as aop.ACQ.SYSTEM_ERROR) say "try
        again"; so does call-rate throttling. Everything else will answer the same again."""
        return (self.code == "20000" or self.sub_code.endswith("ACQ.SYSTEM_ERROR")
                or self.sub_code == "isv.app-call-limited")


class AlipayRequestSignatureRejected(AlipayError):
    """isv.invalid-signature: our app private key does not match the public key uploaded for
    the app on the open platform (a configuration error, not a transient one). Raised for an
    unsigned answer too (`verified` False), since Alipay cannot sign for a request it could not
    authenticate; it is only a diagnosis and leads to no change of state."""


class AlipayPermissionDenied(AlipayError):
    """40006: the ISV app (or the authorizing merchant) lacks the product or API permission."""


class AppAuthTokenError(AlipayError):
    """The merchant's app_auth_token cannot be used: the merchant must authorize again
    (or, for an expired one, the ISV refreshes it with the app_refresh_token)."""


class AppAuthTokenInvalid(AppAuthTokenError):
    """aop.invalid-app-auth-token: unknown, cancelled by the merchant, or replaced on refresh."""


class AppAuthTokenExpired(AppAuthTokenError):
    """aop.app-auth-token-time-out."""


class AuthCodeInvalid(AlipayError):
    """isv.code-invalid: an authorization code that is unknown, used, or too old."""


class RefreshTokenInvalid(AlipayError):
    """isv.refresh-token-invalid / isv.refresh-token-time-out: authorization must start over."""


class TradeNotExist(AlipayError):
    """ACQ.TRADE_NOT_EXIST: Alipay has no such trade for this merchant."""


class TradeStatusError(AlipayError):
    """ACQ.TRADE_STATUS_ERROR: e.g. closing a paid trade, refunding an unpaid one."""


class TradeHasClosed(AlipayError):
    """ACQ.TRADE_HAS_CLOSE: the trade is closed (timed out, closed, or fully refunded)."""


class TradeHasSuccess(AlipayError):
    """ACQ.TRADE_HAS_SUCCESS: create was repeated for an out_trade_no already paid."""


class ContextInconsistent(AlipayError):
    """ACQ.CONTEXT_INCONSISTENT: an out_trade_no reused with different order details."""


class SellerBalanceNotEnough(AlipayError):
    """ACQ.SELLER_BALANCE_NOT_ENOUGH: the merchant's balance cannot cover the refund now."""


class RefundAmountExceeded(AlipayError):
    """ACQ.REFUND_AMT_NOT_EQUAL_TOTAL (退款金额超限): more than paid − already refunded."""


class RefundNotAllowed(AlipayError):
    """ACQ.TRADE_NOT_ALLOW_REFUND: the trade is past its refund period (TRADE_FINISHED)."""


class DiscordantRepeatRequest(AlipayError):
    """ACQ.DISCORDANT_REPEAT_REQUEST: an out_request_no reused with a different amount."""


_ERRORS_BY_SUB_CODE: dict[str, type[AlipayError]] = {
    "isv.invalid-signature": AlipayRequestSignatureRejected,
    "aop.invalid-app-auth-token": AppAuthTokenInvalid,
    "aop.app-auth-token-time-out": AppAuthTokenExpired,
    "isv.code-invalid": AuthCodeInvalid,
    "isv.refresh-token-invalid": RefreshTokenInvalid,
    "isv.refresh-token-time-out": RefreshTokenInvalid,
    "ACQ.TRADE_NOT_EXIST": TradeNotExist,
    "ACQ.TRADE_STATUS_ERROR": TradeStatusError,
    "ACQ.TRADE_HAS_CLOSE": TradeHasClosed,
    "ACQ.TRADE_HAS_SUCCESS": TradeHasSuccess,
    "ACQ.CONTEXT_INCONSISTENT": ContextInconsistent,
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": SellerBalanceNotEnough,
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": RefundAmountExceeded,
    "ACQ.TRADE_NOT_ALLOW_REFUND": RefundNotAllowed,
    "ACQ.DISCORDANT_REPEAT_REQUEST": DiscordantRepeatRequest,
}
_ERRORS_BY_CODE: dict[str, type[AlipayError]] = {"40006": AlipayPermissionDenied}


_CREDENTIALS_IN_TEXT = re.compile(r'(app_auth_token=|"(?:code|refresh_token|app_auth_token)"\s*:\s*")[^&"]*')


def redact(text: str) -> str:
    """Alipay echoes the string it verified in `isv.invalid-signature`'s sub_msg, tokens and
    codes included: keep them out of messages that may be logged."""
    return _CREDENTIALS_IN_TEXT.sub(r"\1***", text)


_UNVERIFIED_ERRORS_BY_SUB_CODE: dict[str, type[AlipayError]] = {
    "isv.invalid-signature": AlipayRequestSignatureRejected,
}
"""The only specific exception an unsigned answer may raise: a diagnosis, never an order to
change state (an unsigned "token invalid" must not make us forget a merchant's token)."""


def error_from(node: Mapping, *, verified: bool = True) -> AlipayError:
    code, sub_code = str(node.get("code", "")), str(node.get("sub_code", ""))
    if verified:
        cls = _ERRORS_BY_SUB_CODE.get(sub_code) or _ERRORS_BY_CODE.get(code, AlipayError)
    else:
        cls = _UNVERIFIED_ERRORS_BY_SUB_CODE.get(sub_code, AlipayError)
    return cls(code, str(node.get("msg", "")), sub_code, redact(str(node.get("sub_msg", ""))), verified=verified)


# --- credentials and keys -------------------------------------------------------------------


@dataclass(frozen=True)
class AlipayApp:
    """One provider's ISV app: its id, its RSA private key, and the Alipay public key the open
    platform shows for it. Keys are PEM (PKCS#1 or PKCS#8) or the bare base64 form that
    Alipay's key tool produces."""

    app_id: str
    private_key_pem: str = field(repr=False)
    alipay_public_key_pem: str = field(repr=False)


def _key_der(text: str) -> bytes:
    return base64.b64decode("".join(text.split()), validate=True)


@functools.lru_cache(maxsize=128)
def _private_key(text: str) -> rsa.RSAPrivateKey:
    """Parsing a PEM costs ~1 ms; a provider's key is parsed once per process."""
    text = text.strip()
    key = (serialization.load_pem_private_key(text.encode(), password=None) if text.startswith("-----")
           else serialization.load_der_private_key(_key_der(text), password=None))
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the app private key must be an RSA key (RSA2 is SHA256withRSA)")
    return key


@functools.lru_cache(maxsize=128)
def _public_key(text: str) -> rsa.RSAPublicKey:
    text = text.strip()
    key = (serialization.load_pem_public_key(text.encode()) if text.startswith("-----")
           else serialization.load_der_public_key(_key_der(text)))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key must be an RSA key")
    return key


def sign(private_key_pem: str, content: str) -> str:
    """RSA2: base64(SHA256withRSA(PKCS#1 v1.5) over the UTF-8 bytes of `content`)."""
    signature = _private_key(private_key_pem).sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(public_key_pem: str, content: str, signature: str) -> bool:
    """False for a wrong or malformed signature; a malformed key raises (configuration error)."""
    key = _public_key(public_key_pem)
    try:
        key.verify(base64.b64decode(signature, validate=True), content.encode("utf-8"), padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


# --- sign strings ---------------------------------------------------------------------------


def request_sign_content(params: Mapping[str, str]) -> str:
    """待签名字符串 of a request: every non-empty parameter except `sign` (so `sign_type` is
    in), sorted by key in ASCII order, `key=value` joined by `&`, values NOT URL-encoded."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "sign" and params[k] not in (None, ""))


def notification_sign_content(params: Mapping[str, str]) -> str:
    """待验签字符串 of a notification: like a request's, but `sign_type` is left out too, and
    the values are the URL-decoded ones."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)
                    if k not in ("sign", "sign_type") and params[k] not in (None, ""))


# --- amounts and times ----------------------------------------------------------------------


def fen_to_yuan(fen: int) -> str:
    """1 → "0.01", 999999999 → "9999999.99": integer arithmetic, never a float."""
    if not isinstance(fen, int) or isinstance(fen, bool) or fen < 0:
        raise ValueError(f"an amount in fen must be a non-negative integer, got {fen!r}")
    return f"{fen // 100}.{fen % 100:02d}"


def yuan_to_fen(yuan: str) -> int:
    """Alipay's yuan string ("0.01", "88.8", "100") to integer fen, exactly."""
    match = _YUAN.match(str(yuan))
    if not match:
        raise ValueError(f"not a yuan amount: {yuan!r}")
    decimals = (match.group(2) or ".")[1:].ljust(2, "0")
    return int(match.group(1)) * 100 + int(decimals)


def _optional_fen(yuan: str | None) -> int | None:
    return None if yuan in (None, "") else yuan_to_fen(yuan)


def china_time(moment: datetime) -> str:
    """A datetime as Alipay writes times: "yyyy-MM-dd HH:mm:ss" in Beijing time."""
    if moment.tzinfo is None:
        raise ValueError("Alipay times need a timezone-aware datetime")
    return moment.astimezone(CHINA_TIME).strftime(TIME_FORMAT)


# --- the gateway call -----------------------------------------------------------------------


def _top_level_members(text: str) -> dict[str, tuple[int, int]]:
    """Where each top-level member's value lies in the raw response text.

    The response signature covers the response node exactly as Alipay wrote it, so the node
    is cut out of the raw text rather than re-serialized (key order, spacing and escapes
    would differ)."""
    decoder = json.JSONDecoder()
    members: dict[str, tuple[int, int]] = {}
    position = _skip_space(text, 0)
    if text[position:position + 1] != "{":
        raise ValueError("the response is not a JSON object")
    position = _skip_space(text, position + 1)
    while text[position:position + 1] != "}":
        key, position = decoder.raw_decode(text, position)
        position = _skip_space(text, position)
        if not isinstance(key, str) or text[position:position + 1] != ":":
            raise ValueError("malformed JSON object")
        start = _skip_space(text, position + 1)
        _, end = decoder.raw_decode(text, start)
        members[key] = (start, end)
        position = _skip_space(text, end)
        if text[position:position + 1] == ",":
            position = _skip_space(text, position + 1)
        elif text[position:position + 1] != "}":
            raise ValueError("malformed JSON object")
    return members


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _is_gateway_error(node: Mapping) -> bool:
    """Errors raised by the gateway itself (isv.*, aop.*, isp.*) may come unsigned, e.g. when
    it could not authenticate our request; business (ACQ.*) answers are always signed."""
    return str(node.get("code")) != "10000" and str(node.get("sub_code", "")).startswith(("isv.", "aop.", "isp."))


def open_response(app: AlipayApp, method: str, text: str) -> dict:
    """The verified response node of `method`'s answer; raises on a business error.

    Policy of Alipay's own SDKs: a success must be signed; an error is verified when signed.
    A signed node is verified before it is parsed; an unsigned one is read only to tell a
    gateway error from anything else.
    We accept an unsigned error only from the gateway itself (see `_is_gateway_error`), and
    raise it unverified (`AlipayError.verified` False, no state-changing subclass): it can
    only make a call fail, never make us believe something happened or drop a token."""
    try:
        members = _top_level_members(text)
    except ValueError as exc:
        raise AlipaySignatureError(f"the response is not JSON: {exc}") from None
    name = method.replace(".", "_") + "_response"
    if name not in members:
        name = "error_response"
    if name not in members:
        raise AlipaySignatureError(f"the response has neither {method.replace('.', '_')}_response nor error_response")
    raw_node = text[slice(*members[name])]
    signature = json.loads(text[slice(*members["sign"])]) if "sign" in members else ""
    if not isinstance(signature, str):
        raise AlipaySignatureError("sign has the wrong JSON type")
    verified = bool(signature)
    if verified:
        # Alipay signs the node before any JSON escaping of "/"; its SDKs retry without it.
        if not (verify(app.alipay_public_key_pem, raw_node, signature)
                or ("\\/" in raw_node and verify(app.alipay_public_key_pem, raw_node.replace("\\/", "/"), signature))):
            raise AlipaySignatureError(f"the signature of {name} does not verify with the Alipay public key")
    node = json.loads(raw_node)
    if not isinstance(node, dict):
        raise AlipaySignatureError(f"{name} has the wrong JSON type")
    if not verified and not _is_gateway_error(node):
        raise AlipaySignatureError(f"{name} is not signed")
    if str(node.get("code")) != "10000":
        raise error_from(node, verified=verified)
    return node


def _call(app: AlipayApp, method: str, *, biz_content: dict | None = None, app_auth_token: str | None = None,
          notify_url: str | None = None, params: dict[str, str] | None = None, idempotent: bool = True) -> dict:
    """Sign and POST one gateway call; return the verified response node.

    Common parameters go in the query string and the business ones in the form body, as the
    official SDKs send them; the signature covers both. Timeouts, HTTP failures and Alipay's
    own "try again" answers (`AlipayError.transient`) share `http.send`'s one retry budget,
    each attempt re-signed with a fresh timestamp."""
    gateway = settings.current().alipay_gateway_url
    body_fields = dict(params or {})
    if biz_content is not None:
        body_fields["biz_content"] = json.dumps(biz_content, ensure_ascii=False, separators=(",", ":"))

    def build() -> httpx.Request:
        common = {"app_id": app.app_id, "method": method, "format": "JSON", "charset": "utf-8",
                  "sign_type": "RSA2", "timestamp": datetime.now(CHINA_TIME).strftime(TIME_FORMAT),
                  "version": "1.0"}
        if app_auth_token:
            common["app_auth_token"] = app_auth_token
        if notify_url:
            common["notify_url"] = notify_url
        common["sign"] = sign(app.private_key_pem, request_sign_content({**common, **body_fields}))
        return httpx.Request("POST", httpx.URL(gateway).copy_merge_params(common),
                             content=urlencode(body_fields).encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"})

    def interpret(response: httpx.Response) -> dict:
        if response.status_code != 200:
            raise http.UpstreamUnavailable(SYSTEM, f"{method} answered HTTP {response.status_code}")
        try:
            return open_response(app, method, response.content.decode("utf-8", errors="replace"))
        except AlipayError as exc:
            if exc.transient:
                raise http.RetryableAnswer(f"{method}: {exc.code} {exc.sub_code}") from exc
            raise

    return http.send(SYSTEM, build, interpret, idempotent=idempotent)


# --- trades ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreatedTrade:
    trade_no: str
    out_trade_no: str


@dataclass(frozen=True)
class Trade:
    trade_no: str
    out_trade_no: str
    trade_status: str
    total_fen: int
    buyer_id: str | None
    buyer_open_id: str | None
    buyer_logon_id: str | None
    send_pay_date: str | None
    """When the buyer paid, "yyyy-MM-dd HH:mm:ss" Beijing time; None until paid."""

    @property
    def paid(self) -> bool:
        return self.trade_status in PAID_STATUSES


@dataclass(frozen=True)
class Refund:
    trade_no: str
    out_trade_no: str
    fund_change: bool
    """False when Alipay answers a repeated out_request_no: no money moved this time."""
    refunded_total_fen: int
    """refund_fee: everything refunded on the trade so far, this refund included."""
    gmt_refund_pay: str | None


def _check_out_no(field_name: str, value: str) -> None:
    if not isinstance(value, str) or not _OUT_NO.match(value):
        raise ValueError(f"{field_name} must be 1-64 letters, digits or underscores")


def _check_amount(field_name: str, fen: int) -> None:
    if not isinstance(fen, int) or isinstance(fen, bool) or not 0 < fen <= MAX_AMOUNT_FEN:
        raise ValueError(f"{field_name} must be a whole number of fen from 1 to {MAX_AMOUNT_FEN}")


def _trade_ref(out_trade_no: str | None, trade_no: str | None) -> dict:
    if bool(out_trade_no) == bool(trade_no):
        raise ValueError("give exactly one of out_trade_no and trade_no")
    if out_trade_no:
        _check_out_no("out_trade_no", out_trade_no)
        return {"out_trade_no": out_trade_no}
    return {"trade_no": trade_no}


def create_trade(app: AlipayApp, *, app_auth_token: str, out_trade_no: str, total_fen: int, subject: str,
                 buyer_id: str | None = None, buyer_open_id: str | None = None, op_app_id: str | None = None,
                 time_expire: datetime | None = None, timeout_minutes: int | None = None,
                 notify_url: str | None = None, product_code: str = "FACE_TO_FACE_PAYMENT",
                 seller_id: str | None = None) -> CreatedTrade:
    """alipay.trade.create for the merchant behind `app_auth_token`; the page then calls
    AlipayJSBridge tradePay with the returned trade_no. Repeating it with the same details
    returns the same trade (Alipay is idempotent on out_trade_no). `seller_id` (the
    merchant's 2088 user id) makes Alipay refuse a token of any other merchant
    (ACQ.INVALID_RECEIVE_ACCOUNT) instead of charging it."""
    _check_out_no("out_trade_no", out_trade_no)
    _check_amount("total_fen", total_fen)
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256 or _SUBJECT_FORBIDDEN & set(subject):
        raise ValueError("subject must be 1-256 characters without / = &")
    if bool(buyer_id) == bool(buyer_open_id):
        raise ValueError("give exactly one of buyer_id and buyer_open_id")
    if time_expire is not None and timeout_minutes is not None:
        raise ValueError("give at most one of time_expire and timeout_minutes")
    if timeout_minutes is not None and (not isinstance(timeout_minutes, int) or not 1 <= timeout_minutes <= 15 * 1440):
        raise ValueError("timeout_minutes must be from 1 to 21600 (15 days)")
    if not app_auth_token:
        raise ValueError("app_auth_token is required: the merchant has not authorized the provider's app")
    biz: dict = {"out_trade_no": out_trade_no, "total_amount": fen_to_yuan(total_fen), "subject": subject,
                 "product_code": product_code}
    biz.update({"buyer_id": buyer_id} if buyer_id else {"buyer_open_id": buyer_open_id})
    if op_app_id:
        biz["op_app_id"] = op_app_id
    if seller_id:
        biz["seller_id"] = seller_id
    if time_expire is not None:
        biz["time_expire"] = china_time(time_expire)
    if timeout_minutes is not None:
        biz["timeout_express"] = f"{timeout_minutes}m"
    node = _call(app, "alipay.trade.create", biz_content=biz, app_auth_token=app_auth_token, notify_url=notify_url)
    return CreatedTrade(trade_no=node["trade_no"], out_trade_no=node["out_trade_no"])


def query_trade(app: AlipayApp, *, app_auth_token: str, out_trade_no: str | None = None,
                trade_no: str | None = None) -> Trade:
    """alipay.trade.query: the catch-up for a lost notification. Raises TradeNotExist."""
    node = _call(app, "alipay.trade.query", biz_content=_trade_ref(out_trade_no, trade_no),
                 app_auth_token=app_auth_token)
    return Trade(trade_no=node["trade_no"], out_trade_no=node["out_trade_no"], trade_status=node["trade_status"],
                 total_fen=yuan_to_fen(node["total_amount"]), buyer_id=node.get("buyer_user_id") or None,
                 buyer_open_id=node.get("buyer_open_id") or None, buyer_logon_id=node.get("buyer_logon_id") or None,
                 send_pay_date=node.get("send_pay_date") or None)


def close_trade(app: AlipayApp, *, app_auth_token: str, out_trade_no: str | None = None,
                trade_no: str | None = None) -> str:
    """alipay.trade.close of an unpaid trade; returns its trade_no. A paid trade raises
    TradeStatusError (query it and settle the order instead)."""
    node = _call(app, "alipay.trade.close", biz_content=_trade_ref(out_trade_no, trade_no),
                 app_auth_token=app_auth_token)
    return node["trade_no"]


def refund_trade(app: AlipayApp, *, app_auth_token: str, refund_fen: int, out_request_no: str,
                 out_trade_no: str | None = None, trade_no: str | None = None,
                 refund_reason: str | None = None) -> Refund:
    """alipay.trade.refund, full or partial. `out_request_no` identifies this refund: repeat
    it (same amount) to retry safely; Alipay then answers fund_change "N"."""
    biz = _trade_ref(out_trade_no, trade_no)
    _check_amount("refund_fen", refund_fen)
    _check_out_no("out_request_no", out_request_no)
    biz.update({"refund_amount": fen_to_yuan(refund_fen), "out_request_no": out_request_no})
    if refund_reason:
        biz["refund_reason"] = refund_reason
    node = _call(app, "alipay.trade.refund", biz_content=biz, app_auth_token=app_auth_token)
    return Refund(trade_no=node["trade_no"], out_trade_no=node["out_trade_no"], fund_change=node.get("fund_change") == "Y",
                  refunded_total_fen=yuan_to_fen(node["refund_fee"]), gmt_refund_pay=node.get("gmt_refund_pay") or None)


# --- authorization --------------------------------------------------------------------------


@dataclass(frozen=True)
class AppAuthorization:
    """A merchant's authorization of the ISV app (alipay.open.auth.token.app)."""

    app_auth_token: str = field(repr=False)
    app_refresh_token: str = field(repr=False)
    expires_in: int
    re_expires_in: int
    user_id: str
    """The merchant's Alipay PID (2088...)."""
    auth_app_id: str
    """The merchant's own app id: notifications for its trades carry it."""


@dataclass(frozen=True)
class UserIdentity:
    """A wallet user from alipay.system.oauth.token (auth_base): buyer_id for trade.create is
    `user_id`; apps switched to OpenID get `open_id` instead."""

    user_id: str | None
    open_id: str | None
    access_token: str = field(repr=False)
    expires_in: int


def app_authorization_url(app_id: str, redirect_uri: str, state: str | None = None) -> str:
    """Where a merchant authorizes the provider's app; Alipay comes back to `redirect_uri`
    with app_id, app_auth_code (and state)."""
    query = {"app_id": app_id, "redirect_uri": redirect_uri}
    if state:
        query["state"] = state
    return f"{settings.current().alipay_openauth_base_url}/oauth2/appToAppAuth.htm?{urlencode(query)}"


def user_authorization_url(app_id: str, redirect_uri: str, state: str) -> str:
    """Silent (auth_base) user OAuth inside the Alipay app; comes back with auth_code & state."""
    query = {"app_id": app_id, "scope": "auth_base", "redirect_uri": redirect_uri, "state": state}
    return f"{settings.current().alipay_openauth_base_url}/oauth2/publicAppAuthorize.htm?{urlencode(query)}"


def _app_authorization(node: Mapping) -> AppAuthorization:
    """Newer answers list `tokens` (one per authorized app); older ones are flat."""
    tokens = node.get("tokens")
    token = tokens[0] if tokens else node
    return AppAuthorization(app_auth_token=token["app_auth_token"], app_refresh_token=token["app_refresh_token"],
                            expires_in=int(token.get("expires_in") or 0), re_expires_in=int(token.get("re_expires_in") or 0),
                            user_id=str(token.get("user_id", "")), auth_app_id=str(token.get("auth_app_id", "")))


def exchange_app_auth_code(app: AlipayApp, app_auth_code: str) -> AppAuthorization:
    """alipay.open.auth.token.app, grant_type authorization_code. Codes are single use."""
    if not app_auth_code:
        raise ValueError("app_auth_code is required")
    node = _call(app, "alipay.open.auth.token.app",
                 biz_content={"grant_type": "authorization_code", "code": app_auth_code}, idempotent=False)
    return _app_authorization(node)


def refresh_app_auth_token(app: AlipayApp, app_refresh_token: str) -> AppAuthorization:
    """alipay.open.auth.token.app, grant_type refresh_token: new tokens replace the old ones."""
    if not app_refresh_token:
        raise ValueError("app_refresh_token is required")
    node = _call(app, "alipay.open.auth.token.app",
                 biz_content={"grant_type": "refresh_token", "refresh_token": app_refresh_token}, idempotent=False)
    return _app_authorization(node)


def exchange_user_auth_code(app: AlipayApp, auth_code: str) -> UserIdentity:
    """alipay.system.oauth.token: grant_type and code are top-level parameters, not biz_content."""
    if not auth_code:
        raise ValueError("auth_code is required")
    node = _call(app, "alipay.system.oauth.token", params={"grant_type": "authorization_code", "code": auth_code},
                 idempotent=False)
    return UserIdentity(user_id=node.get("user_id") or None, open_id=node.get("open_id") or None,
                        access_token=node["access_token"], expires_in=int(node.get("expires_in") or 0))


# --- notifications --------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeNotification:
    """A verified trade_status_sync notification. Alipay repeats one notification (same
    notify_id) until it reads NOTIFICATION_ACK, so handling must be idempotent."""

    notify_id: str
    notify_time: str
    notify_type: str
    app_id: str
    auth_app_id: str | None
    seller_id: str | None
    """The merchant paid: the receiver checks it is the order's merchant (P2)."""
    trade_no: str
    out_trade_no: str
    trade_status: str
    total_fen: int
    receipt_fen: int | None
    buyer_id: str | None
    buyer_open_id: str | None
    buyer_logon_id: str | None
    gmt_payment: str | None
    refund_fee_fen: int | None
    """Set on refund notifications: the total refunded so far."""
    out_biz_no: str | None
    """Set on refund notifications: the out_request_no of the refund."""


def _form_params(form: Mapping[str, str] | str | bytes) -> dict[str, str]:
    """Form parameters, URL-decoded. A mapping is taken as already decoded (as web frameworks
    give it); a raw body is decoded with the charset it declares."""
    if isinstance(form, Mapping):
        return {str(k): str(v) for k, v in form.items()}
    raw = form.decode("latin-1") if isinstance(form, bytes) else form
    charset = dict(parse_qsl(raw, keep_blank_values=True)).get("charset") or "utf-8"
    try:
        return dict(parse_qsl(raw, keep_blank_values=True, encoding=charset, errors="strict"))
    except (LookupError, UnicodeDecodeError):
        raise AlipaySignatureError(f"the notification is not valid {charset}") from None


def verify_notification(app: AlipayApp, form: Mapping[str, str] | str | bytes) -> TradeNotification:
    """Verify an asynchronous notification (the form POSTed to notify_url) and read it.

    Raises AlipaySignatureError for a missing or wrong signature and for one addressed to
    another app; the receiver then answers something other than NOTIFICATION_ACK and logs."""
    params = _form_params(form)
    signature = params.get("sign", "")
    if not signature:
        raise AlipaySignatureError("the notification is not signed")
    if params.get("sign_type", "RSA2") != "RSA2":
        raise AlipaySignatureError(f"unsupported sign_type {params.get('sign_type')!r}")
    if not verify(app.alipay_public_key_pem, notification_sign_content(params), signature):
        raise AlipaySignatureError("the notification's signature does not verify with the Alipay public key")
    if params.get("app_id") != app.app_id:
        raise AlipaySignatureError(f"the notification is for app {params.get('app_id')!r}, not {app.app_id}")
    try:
        return TradeNotification(
            notify_id=params["notify_id"], notify_time=params["notify_time"],
            notify_type=params.get("notify_type", ""), app_id=params["app_id"],
            auth_app_id=params.get("auth_app_id") or None, seller_id=params.get("seller_id") or None,
            trade_no=params["trade_no"],
            out_trade_no=params["out_trade_no"], trade_status=params["trade_status"],
            total_fen=yuan_to_fen(params["total_amount"]), receipt_fen=_optional_fen(params.get("receipt_amount")),
            buyer_id=params.get("buyer_id") or None, buyer_open_id=params.get("buyer_open_id") or None,
            buyer_logon_id=params.get("buyer_logon_id") or None, gmt_payment=params.get("gmt_payment") or None,
            refund_fee_fen=_optional_fen(params.get("refund_fee")), out_biz_no=params.get("out_biz_no") or None)
    except (KeyError, ValueError) as exc:
        raise AlipaySignatureError(f"the notification is signed but malformed: {exc}") from None
