"""WeChat Pay API v3, service-provider (partner) mode, as the sandbox plays it.

Written from the public documentation, not from our client (it imports nothing of
chalicelib), so a mistake in the client's signing or verification shows up as a refusal here
instead of hiding. It keeps service providers' credentials, orders and refunds in the world;
checks every request's `WECHATPAY2-SHA256-RSA2048` signature (merchant, serial, signature,
5-minute window, replayed nonce); validates bodies like the real API; signs every answer and
every notification with one platform key; encrypts notifications with the provider's API v3
key and delivers them on WeChat Pay's retry schedule. docs/upstreams/wechatpay.md lists its
sandbox-only endpoints, faults and trigger values.
"""
from __future__ import annotations

import base64
import functools
import json
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from flask import Blueprint, Response, current_app, g, jsonify, request, send_from_directory

from sandbox import maidan
from sandbox.notifier import WECHATPAY_RETRY_SCHEDULE, Notification

blueprint = Blueprint("wechatpay", __name__)

SYSTEM = "wechatpay"
SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW_SECONDS = 300
PREPAY_VALID_SECONDS = 2 * 3600
REFUND_SETTLES_AFTER_SECONDS = 5
ABNORMAL_REFUND_FEN = 99
"""A refund whose amount ends in 99 fen settles ABNORMAL (REFUND.ABNORMAL) instead of SUCCESS."""
UNKNOWN_SUB_MCHID = "1999999999"
"""A sub_mchid WeChat Pay does not know: 400 MCH_NOT_EXISTS (any other numeric id exists)."""
UNAUTHORIZED_SUB_MCHID = "1888888888"
"""A sub_mchid that is not the calling provider's sub-merchant: 403 NO_AUTH."""
STATIC = Path(__file__).parent / "static"
CST = timezone(timedelta(hours=8))

_AUTH = re.compile(r"^WECHATPAY2-SHA256-RSA2048 (.+)$")
_PARAM = re.compile(r'(\w+)="([^"]*)"')
_APPID = re.compile(r"^wx[0-9a-f]{16}$")
_MCHID = re.compile(r"^[0-9]{1,32}$")
_OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_\-|*]{6,32}$")
_OUT_REFUND_NO = re.compile(r"^[A-Za-z0-9_\-|*@]{1,64}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:\d{2}|Z)$")
_NOTIFY_URL = re.compile(r"^https?://[^?#\s]+$")

FAULT_ANSWERS = {"SYSTEM_ERROR": (500, "SYSTEM_ERROR", "系统错误"),
                 "RATE_LIMITED": (429, "FREQUENCY_LIMITED", "频率超限"),
                 "SIGN_ERROR": (401, "SIGN_ERROR", "签名错误")}
"""Faults answered before anything else; USER_PAYING, PAYER_ERROR and NOT_ENOUGH act in the views."""
TRADE_STATE_DESC = {"SUCCESS": "支付成功", "REFUND": "转入退款", "NOTPAY": "订单未支付", "CLOSED": "订单已关闭",
                    "REVOKED": "已撤销（付款码支付）", "USERPAYING": "用户支付中（付款码支付）",
                    "PAYERROR": "支付失败(其他原因，如银行返回失败)"}


class Refusal(Exception):
    """An answer WeChat Pay gives instead of doing the call: `{"code", "message", "detail"}`."""

    def __init__(self, status: int, code: str, message: str, detail: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def param_error(pointer: str, issue: str, value=None) -> Refusal:
    """PARAM_ERROR naming the field: a JSON pointer for the body, a bare name for the query."""
    return Refusal(400, "PARAM_ERROR", f"参数错误：{pointer} {issue}",
                   {"field": pointer, "value": value, "issue": issue,
                    "location": "body" if pointer.startswith("/") else "query"})


# --- State --------------------------------------------------------------------------------

@dataclass
class Merchant:
    sp_mchid: str
    serial_no: str
    private_key_pem: str
    public_key: rsa.RSAPublicKey
    api_v3_key: str
    platform_key_mode: str  # public_key | certificate: which id signs answers by default


@dataclass
class Order:
    sp_mchid: str
    sub_mchid: str
    out_trade_no: str
    request: dict
    prepay_id: str
    prepaid_at: float
    expires_at: float | None
    state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: float | None = None

    @property
    def payer_appid(self) -> str:
        """The appid a paySign must name: sub_appid for a sub_openid payer, else sp_appid."""
        return self.request["sub_appid"] if "sub_openid" in self.request["payer"] else self.request["sp_appid"]

    @property
    def total(self) -> int:
        return self.request["amount"]["total"]


@dataclass
class RefundRecord:
    order: Order
    request: dict
    refund_id: str
    created_at: float
    settles_at: float
    outcome: str  # SUCCESS | ABNORMAL, reached at settles_at (ABNORMAL may later turn SUCCESS)

    def status(self, now: float) -> str:
        return self.outcome if now >= self.settles_at else "PROCESSING"

    @property
    def amount(self) -> int:
        return self.request["amount"]["refund"]


@dataclass
class WechatPayState:
    """One platform key pair per world (as one WeChat Pay), with its public key id and certificate."""

    world: object
    platform_key: rsa.RSAPrivateKey = field(init=False)
    platform_public_key_id: str = field(init=False)
    platform_certificate_serial_no: str = field(init=False)
    platform_certificate_pem: str = field(init=False)
    platform_certificate_valid: tuple[float, float] = field(init=False)
    """(effective, expires) of the platform certificate, as GET /v3/certificates lists them."""
    merchants: dict = field(default_factory=dict)
    orders: dict = field(default_factory=dict)  # (sp_mchid, sub_mchid, out_trade_no) -> Order
    refunds: dict = field(default_factory=dict)  # (sp_mchid, sub_mchid, out_refund_no) -> RefundRecord

    def __post_init__(self) -> None:
        self.platform_key = self.world.new_rsa_key()
        self.platform_public_key_id = "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(30))
        now = datetime.now(timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com sandbox platform certificate")])
        serial = x509.random_serial_number()
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(self.platform_key.public_key()).serial_number(serial)
                       .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=5 * 365))
                       .sign(self.platform_key, hashes.SHA256()))
        self.platform_certificate_serial_no = format(serial, "040X")
        self.platform_certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        self.platform_certificate_valid = (certificate.not_valid_before_utc.timestamp(),
                                           certificate.not_valid_after_utc.timestamp())

    @property
    def platform_public_key_pem(self) -> str:
        return self.platform_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def platform_serial(self, mode: str) -> str:
        return self.platform_certificate_serial_no if mode == "certificate" else self.platform_public_key_id

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.platform_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def state_of(world) -> WechatPayState:
    return world.component(SYSTEM, WechatPayState)


def world():
    return current_app.config["WORLD"]


def state() -> WechatPayState:
    return state_of(world())


def _digits(count: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(count))


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, CST).isoformat(timespec="seconds")


# --- Merchant registry (what a provider downloads from its merchant platform) -------------

def credentials(wechatpay: WechatPayState, merchant: Merchant) -> dict:
    world_ = wechatpay.world
    return {"sp_mchid": merchant.sp_mchid, "serial_no": merchant.serial_no,
            "sub_mchids": sorted(world_.wechatpay_sub_merchants.get(merchant.sp_mchid, ())),
            "appids": sorted(world_.wechatpay_appids.get(merchant.sp_mchid, ())),
            "private_key_pem": merchant.private_key_pem, "api_v3_key": merchant.api_v3_key,
            "platform_key_mode": merchant.platform_key_mode,
            "platform_public_key_id": wechatpay.platform_public_key_id,
            "platform_public_key_pem": wechatpay.platform_public_key_pem,
            "platform_certificate_serial_no": wechatpay.platform_certificate_serial_no,
            "platform_certificate_pem": wechatpay.platform_certificate_pem}


def register_merchant(world, sp_mchid: str, platform_key_mode: str = "public_key", *,
                      sub_mchids: tuple[str, ...] | list[str] = (), appids: tuple[str, ...] | list[str] = ()) -> dict:
    """Create (or read back) a service provider's API credentials; in-process twin of
    POST /wechatpay/sandbox/merchants. `sub_mchids` become its sub-merchants (受理关系) and
    `appids` are bound to it, in addition to any it already has: JSAPI orders are refused
    for any other sub_mchid or sp_appid, as WeChat Pay refuses them."""
    if not _MCHID.match(sp_mchid):
        raise ValueError("sp_mchid must be digits")
    if platform_key_mode not in ("public_key", "certificate"):
        raise ValueError("platform_key_mode must be public_key or certificate")
    if isinstance(sub_mchids, str) or not all(isinstance(m, str) and _MCHID.match(m) for m in sub_mchids):
        raise ValueError("sub_mchids must be a list of digit strings")
    if isinstance(appids, str) or not all(isinstance(a, str) and _APPID.match(a) for a in appids):
        raise ValueError("appids must be a list of wx + 16 hex appids")
    wechatpay = state_of(world)
    for sub_mchid in sub_mchids:
        world.add_wechatpay_sub_merchant(sp_mchid, sub_mchid)
    for app_id in appids:
        world.bind_wechatpay_appid(sp_mchid, app_id)
    with world.lock:
        merchant = wechatpay.merchants.get(sp_mchid)
        if merchant is None:
            key = world.new_rsa_key()
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            api_v3_key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
            merchant = Merchant(sp_mchid, secrets.token_hex(20).upper(), pem, key.public_key(), api_v3_key,
                                platform_key_mode)
            wechatpay.merchants[sp_mchid] = merchant
        return credentials(wechatpay, merchant)


# --- Signed answers and notifications -----------------------------------------------------

def _signature_headers(wechatpay: WechatPayState, serial: str, timestamp: float, body: bytes) -> dict:
    ts, nonce = str(int(timestamp)), secrets.token_hex(16).upper()
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": wechatpay.sign(f"{ts}\n{nonce}\n".encode() + body + b"\n"),
            "Wechatpay-Signature-Type": SCHEME}


def signed(status: int, payload: dict | None = None) -> Response:
    """Every answer of the API, errors included, signed with the platform key."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() if payload is not None else b""
    serial = g.get("response_serial") or state().platform_public_key_id
    headers = _signature_headers(state(), serial, world().clock.now(), body)
    headers["Request-ID"] = uuid.uuid4().hex
    return Response(body, status=status, headers=headers,
                    content_type="application/json; charset=utf-8" if payload is not None else None)


def refused(refusal: Refusal) -> Response:
    payload = {"code": refusal.code, "message": refusal.message}
    if refusal.detail:
        payload["detail"] = refusal.detail
    return signed(refusal.status, payload)


def notification_builder(world, merchant: Merchant, event_type: str, summary: str, original_type: str,
                         resource: dict, at: float) -> Callable[[], tuple[dict, bytes]]:
    """A v3 notification: the resource AES-256-GCM-encrypted once with the merchant's API v3
    key, the envelope re-signed at every attempt (fresh timestamp and nonce)."""
    wechatpay = state_of(world)
    nonce = secrets.token_urlsafe(9)[:12]
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
    ciphertext = AESGCM(merchant.api_v3_key.encode()).encrypt(nonce.encode(), plaintext, original_type.encode())
    envelope = {"id": str(uuid.uuid4()), "create_time": _rfc3339(at), "resource_type": "encrypt-resource",
                "event_type": event_type, "summary": summary,
                "resource": {"original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
                             "ciphertext": base64.b64encode(ciphertext).decode(),
                             "associated_data": original_type, "nonce": nonce}}
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    serial = wechatpay.platform_serial(merchant.platform_key_mode)

    def build() -> tuple[dict, bytes]:
        headers = _signature_headers(wechatpay, serial, world.clock.now(), body)
        headers["Content-Type"] = "application/json"
        return headers, body

    return build


def enqueue_notification(world, url: str, build: Callable[[], tuple[dict, bytes]], at: float) -> Notification:
    """Deliver on WeChat Pay's retry schedule from `at` on, until answered 200 or 204."""
    with world.notifier.lock:
        notification = world.notifier.enqueue(SYSTEM, url, build, lambda status, text: status in (200, 204),
                                              WECHATPAY_RETRY_SCHEDULE)
        notification.next_at = at
    return notification


# --- Orders, refunds and their JSON -------------------------------------------------------

def transaction_json(order: Order, trade_state: str | None = None) -> dict:
    trade_state = trade_state or order.state
    req = order.request
    data = {"sp_appid": req["sp_appid"], "sp_mchid": order.sp_mchid, "sub_mchid": order.sub_mchid,
            "out_trade_no": order.out_trade_no, "trade_state": trade_state,
            "trade_state_desc": TRADE_STATE_DESC[trade_state], "payer": dict(req["payer"]),
            "amount": {"total": order.total, "currency": "CNY"}}
    if "sub_appid" in req:
        data["sub_appid"] = req["sub_appid"]
    if "attach" in req:
        data["attach"] = req["attach"]
    if order.transaction_id:
        data.update({"transaction_id": order.transaction_id, "trade_type": "JSAPI", "bank_type": "OTHERS",
                     "success_time": _rfc3339(order.success_time)})
        data["amount"].update({"payer_total": order.total, "payer_currency": "CNY"})
    return data


def refund_json(record: RefundRecord, now: float, notification: bool = False) -> dict:
    order, status = record.order, record.status(now)
    data = {"refund_id": record.refund_id, "out_refund_no": record.request["out_refund_no"],
            "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no,
            "user_received_account": "支付用户零钱",
            "amount": {"total": order.total, "refund": record.amount, "payer_total": order.total,
                       "payer_refund": record.amount}}
    if status == "SUCCESS":
        data["success_time"] = _rfc3339(record.settles_at)
    if notification:
        data.update({"sp_mchid": order.sp_mchid, "sub_mchid": order.sub_mchid, "refund_status": status})
    else:
        data.update({"channel": "ORIGINAL", "create_time": _rfc3339(record.created_at), "status": status,
                     "funds_account": "AVAILABLE", "promotion_detail": []})
        data["amount"].update({"settlement_refund": record.amount, "settlement_total": order.total,
                               "discount_refund": 0, "currency": "CNY", "from": []})
    return data


def refunded_amount(wechatpay: WechatPayState, order: Order) -> int:
    return sum(r.amount for r in wechatpay.refunds.values() if r.order is order)


def refuse_unless_payable(order: Order, now: float) -> None:
    if order.state != "NOTPAY":
        raise Refusal(400, "INVALID_REQUEST", "该订单已支付" if order.state in ("SUCCESS", "REFUND")
                      else f"订单状态为{order.state}，不能支付")
    if now > order.prepaid_at + PREPAY_VALID_SECONDS or (order.expires_at and now > order.expires_at):
        raise Refusal(400, "INVALID_REQUEST", "订单已过期")


def pay_order(world, order: Order) -> Notification:
    """The customer paid: SUCCESS, a transaction id, and TRANSACTION.SUCCESS on its way."""
    with world.lock:
        now = world.clock.now()
        refuse_unless_payable(order, now)
        order.state, order.success_time = "SUCCESS", now
        order.transaction_id = "42000" + _digits(23)
    merchant = state_of(world).merchants[order.sp_mchid]
    build = notification_builder(world, merchant, "TRANSACTION.SUCCESS", "支付成功", "transaction",
                                 transaction_json(order), at=now)
    return enqueue_notification(world, order.request["notify_url"], build, at=now)


def find_order(world, out_trade_no: str, sub_mchid: str | None = None) -> Order:
    matches = [o for (_, sub, out), o in state_of(world).orders.items()
               if out == out_trade_no and (sub_mchid is None or sub == sub_mchid)]
    if not matches:
        raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
    if len(matches) > 1:
        raise Refusal(409, "INVALID_REQUEST", "多个子商户有此订单号：请给出 sub_mchid")
    return matches[0]


# --- Request verification -----------------------------------------------------------------

def _request_target() -> str:
    """The path and query exactly as sent: the raw URI from a server, else rebuilt the way a
    client percent-encodes path segments (in-process WSGI has no raw URI)."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw
    path = quote(environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), safe="/-_.~")
    query = environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def _choose_response_serial(wechatpay: WechatPayState, merchant: Merchant | None) -> str:
    """Wechatpay-Serial on a request names the platform key the merchant verifies with."""
    asked = request.headers.get("Wechatpay-Serial")
    known = (wechatpay.platform_public_key_id, wechatpay.platform_certificate_serial_no)
    if asked in known:
        return asked
    return wechatpay.platform_serial(merchant.platform_key_mode if merchant else "public_key")


def _verify_request(wechatpay: WechatPayState) -> Merchant:
    match = _AUTH.match(request.headers.get("Authorization", ""))
    if not match:
        raise Refusal(401, "SIGN_ERROR", "Authorization 缺失或不是 WECHATPAY2-SHA256-RSA2048")
    params = dict(_PARAM.findall(match.group(1)))
    merchant = wechatpay.merchants.get(params.get("mchid", ""))
    if merchant is None:
        raise Refusal(401, "SIGN_ERROR", "商户号不存在或未开通 API v3")
    if params.get("serial_no", "").upper() != merchant.serial_no:
        raise Refusal(401, "SIGN_ERROR", "商户证书序列号 serial_no 有误")
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce_str", "")
    now = world().clock.now()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise Refusal(401, "SIGN_ERROR", "timestamp 与当前时间相差超过5分钟")
    message = f"{request.method}\n{_request_target()}\n{timestamp}\n{nonce}\n".encode() + request.get_data() + b"\n"
    try:
        merchant.public_key.verify(base64.b64decode(params.get("signature", ""), validate=True), message,
                                   padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Refusal(401, "SIGN_ERROR", "签名错误，请检查签名串与私钥") from None
    if not nonce or not world().accept_nonce(f"wechatpay:{merchant.sp_mchid}:{nonce}", now):
        raise Refusal(401, "SIGN_ERROR", "nonce_str 重复使用（重放的请求）")
    asked = request.headers.get("Wechatpay-Serial")
    if asked and asked not in (wechatpay.platform_public_key_id, wechatpay.platform_certificate_serial_no):
        raise Refusal(400, "PARAM_ERROR", "Wechatpay-Serial 不是有效的微信支付公钥ID或平台证书序列号",
                      {"field": "Wechatpay-Serial", "value": asked, "issue": "unknown", "location": "header"})
    return merchant


def v3_api(view):
    """Faults, then the request signature, then the view; a Refusal becomes a signed error."""

    @functools.wraps(view)
    def wrapper(**kwargs):
        wechatpay = state()
        params = dict(_PARAM.findall(request.headers.get("Authorization", "")))
        g.response_serial = _choose_response_serial(wechatpay, wechatpay.merchants.get(params.get("mchid", "")))
        fault = world().faults.take(SYSTEM, request.headers)
        if fault == "TIMEOUT":
            world().faults.time_out()
        try:
            if fault in FAULT_ANSWERS:
                raise Refusal(*FAULT_ANSWERS[fault])
            merchant = _verify_request(wechatpay)
            g.fault = fault
            with world().lock:
                return view(merchant, **kwargs)
        except Refusal as refusal:
            return refused(refusal)

    return wrapper


# --- Body validation ----------------------------------------------------------------------

def _body() -> dict:
    try:
        body = json.loads(request.get_data() or b"null")
    except ValueError:
        raise Refusal(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
    if not isinstance(body, dict):
        raise Refusal(400, "PARAM_ERROR", "请求体必须是JSON对象")
    return body


def _text(body: dict, name: str, pattern: re.Pattern | None = None, max_bytes: int | None = None,
          max_chars: int | None = None, required: bool = True, pointer: str | None = None) -> str | None:
    pointer = pointer or f"/{name}"
    value = body.get(name)
    if value is None:
        if required:
            raise param_error(pointer, "为必填项")
        return None
    if not isinstance(value, str) or not value:
        raise param_error(pointer, "必须是非空字符串", value)
    if pattern is not None and not pattern.match(value):
        raise param_error(pointer, "格式不正确", value)
    if max_bytes is not None and len(value.encode()) > max_bytes:
        raise param_error(pointer, f"长度不能超过{max_bytes}字节", value)
    if max_chars is not None and len(value) > max_chars:
        raise param_error(pointer, f"长度不能超过{max_chars}个字符", value)
    return value


def _fen(amount: dict, name: str) -> int:
    value = amount.get(name)
    if value is None:
        raise param_error(f"/amount/{name}", "为必填项")
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise param_error(f"/amount/{name}", "必须是大于0的整数（单位：分）", value)
    return value


def _amount(body: dict) -> dict:
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise param_error("/amount", "为必填项")
    if amount.get("currency", "CNY") != "CNY":
        raise param_error("/amount/currency", "境内商户仅支持人民币 CNY", amount.get("currency"))
    return amount


def _sub_merchant(body: dict, sp_mchid: str) -> str:
    sub_mchid = _text(body, "sub_mchid", _MCHID)
    if sub_mchid == UNKNOWN_SUB_MCHID:
        raise Refusal(400, "MCH_NOT_EXISTS", "子商户号不存在")
    if sub_mchid == UNAUTHORIZED_SUB_MCHID:
        raise Refusal(403, "NO_AUTH", f"服务商 {sp_mchid} 与子商户 {sub_mchid} 不存在受理关系")
    return sub_mchid


def _expiry(text: str | None, now: float) -> float | None:
    if text is None:
        return None
    expires_at = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    if expires_at <= now:
        raise param_error("/time_expire", "不能早于当前时间", text)
    return expires_at


def _validate_jsapi(body: dict, merchant: Merchant) -> None:
    _text(body, "sp_appid", _APPID)
    if _text(body, "sp_mchid", _MCHID) != merchant.sp_mchid:
        raise param_error("/sp_mchid", "与发起请求的商户号不一致", body["sp_mchid"])
    _text(body, "sub_appid", _APPID, required=False)
    _sub_merchant(body, merchant.sp_mchid)
    _text(body, "description", max_bytes=127)
    _text(body, "out_trade_no", _OUT_TRADE_NO)
    _text(body, "time_expire", _RFC3339, required=False)
    _text(body, "attach", max_chars=128, required=False)
    _text(body, "notify_url", _NOTIFY_URL, max_chars=256)
    _fen(_amount(body), "total")
    payer = body.get("payer")
    if not isinstance(payer, dict):
        raise param_error("/payer", "为必填项")
    openids = [name for name in ("sp_openid", "sub_openid") if payer.get(name) is not None]
    if len(openids) != 1:
        raise param_error("/payer", "sp_openid 与 sub_openid 必须二选一", payer)
    _text(payer, openids[0], max_chars=128, pointer=f"/payer/{openids[0]}")
    if openids[0] == "sub_openid" and "sub_appid" not in body:
        raise param_error("/sub_appid", "使用 sub_openid 时必填")
    _refuse_mixed_up_parties(body, merchant)


def _refuse_mixed_up_parties(body: dict, merchant: Merchant) -> None:
    """What WeChat Pay checks after the formats: the sub-merchant is the provider's, the
    sp_appid is bound to the provider, and the payer's openid was issued for the appid that
    names it (an openid is per appid: one from another official account is a stranger)."""
    the_world, sub_mchid = world(), body["sub_mchid"]
    if not the_world.is_wechatpay_sub_merchant(merchant.sp_mchid, sub_mchid):
        raise Refusal(403, "NO_AUTH", f"服务商 {merchant.sp_mchid} 与子商户 {sub_mchid} 不存在受理关系")
    if not the_world.is_wechatpay_appid_bound(merchant.sp_mchid, body["sp_appid"]):
        raise Refusal(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配，请检查后再试")
    payer = body["payer"]
    if payer.get("sp_openid") is not None and the_world.user_by_openid(body["sp_appid"], payer["sp_openid"]) is None:
        raise Refusal(400, "PARAM_ERROR", "appid和openid不匹配",
                      {"field": "/payer/sp_openid", "value": payer["sp_openid"], "issue": "appid和openid不匹配",
                       "location": "body"})
    if payer.get("sub_openid") is not None and the_world.user_by_openid(body["sub_appid"], payer["sub_openid"]) is None:
        raise Refusal(400, "PARAM_ERROR", "sub_appid和sub_openid不匹配",
                      {"field": "/payer/sub_openid", "value": payer["sub_openid"],
                       "issue": "sub_appid和sub_openid不匹配", "location": "body"})


# --- The API ------------------------------------------------------------------------------

@blueprint.post("/v3/pay/partner/transactions/jsapi")
@v3_api
def create_jsapi_order(merchant: Merchant):
    body = _body()
    _validate_jsapi(body, merchant)
    wechatpay, now = state(), world().clock.now()
    request_fields = {**body, "amount": {"total": body["amount"]["total"], "currency": "CNY"}}
    key = (merchant.sp_mchid, body["sub_mchid"], body["out_trade_no"])
    order = wechatpay.orders.get(key)
    if order is not None:
        if order.state == "CLOSED":
            raise Refusal(400, "ORDER_CLOSED", "订单已关闭，请使用新的商户订单号下单")
        if order.state in ("SUCCESS", "REFUND"):
            raise Refusal(400, "ORDERPAID", "该订单已支付")
        if order.request != request_fields:
            raise Refusal(400, "INVALID_REQUEST", "201 商户订单号重复")
        if now > order.prepaid_at + PREPAY_VALID_SECONDS:
            order.prepay_id, order.prepaid_at = _prepay_id(now), now
        return signed(200, {"prepay_id": order.prepay_id})
    order = Order(merchant.sp_mchid, body["sub_mchid"], body["out_trade_no"], request_fields,
                  _prepay_id(now), now, _expiry(body.get("time_expire"), now))
    wechatpay.orders[key] = order
    return signed(200, {"prepay_id": order.prepay_id})


def _prepay_id(now: float) -> str:
    return "wx" + datetime.fromtimestamp(now, CST).strftime("%Y%m%d%H%M%S") + secrets.token_hex(11)[:22]


def _order_query(merchant: Merchant) -> tuple[str, str]:
    query = request.args
    sp_mchid = _text(query, "sp_mchid", _MCHID, pointer="sp_mchid")
    if sp_mchid != merchant.sp_mchid:
        raise param_error("sp_mchid", "与发起请求的商户号不一致", sp_mchid)
    return sp_mchid, _sub_merchant(query, sp_mchid)


def _answer_query(order: Order | None) -> Response:
    if order is None:
        raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
    if order.state == "NOTPAY" and g.fault == "PAYER_ERROR":
        order.state = "PAYERROR"
    if order.state == "NOTPAY" and g.fault == "USER_PAYING":
        return signed(200, transaction_json(order, "USERPAYING"))
    return signed(200, transaction_json(order))


@blueprint.get("/v3/pay/partner/transactions/out-trade-no/<out_trade_no>")
@v3_api
def query_by_out_trade_no(merchant: Merchant, out_trade_no: str):
    sp_mchid, sub_mchid = _order_query(merchant)
    return _answer_query(state().orders.get((sp_mchid, sub_mchid, out_trade_no)))


@blueprint.get("/v3/pay/partner/transactions/id/<transaction_id>")
@v3_api
def query_by_transaction_id(merchant: Merchant, transaction_id: str):
    sp_mchid, sub_mchid = _order_query(merchant)
    order = next((o for o in state().orders.values() if o.transaction_id == transaction_id
                  and o.sp_mchid == sp_mchid and o.sub_mchid == sub_mchid), None)
    return _answer_query(order)


@blueprint.post("/v3/pay/partner/transactions/out-trade-no/<out_trade_no>/close")
@v3_api
def close_order(merchant: Merchant, out_trade_no: str):
    body = _body()
    if _text(body, "sp_mchid", _MCHID) != merchant.sp_mchid:
        raise param_error("/sp_mchid", "与发起请求的商户号不一致", body["sp_mchid"])
    order = state().orders.get((merchant.sp_mchid, _sub_merchant(body, merchant.sp_mchid), out_trade_no))
    if order is None:
        raise Refusal(404, "ORDER_NOT_EXIST", "订单不存在")
    if order.state in ("SUCCESS", "REFUND"):
        raise Refusal(400, "ORDERPAID", "订单已支付，不能关闭")
    order.state = "CLOSED"
    return signed(204)


@blueprint.post("/v3/refund/domestic/refunds")
@v3_api
def create_refund(merchant: Merchant):
    body = _body()
    wechatpay, now = state(), world().clock.now()
    sub_mchid = _sub_merchant(body, merchant.sp_mchid)
    out_refund_no = _text(body, "out_refund_no", _OUT_REFUND_NO)
    _text(body, "reason", max_chars=80, required=False)
    notify_url = _text(body, "notify_url", _NOTIFY_URL, max_chars=256, required=False)
    amount = _amount(body)
    refund, total = _fen(amount, "refund"), _fen(amount, "total")
    if refund > total:
        raise param_error("/amount/refund", "退款金额不能大于订单金额", refund)
    transaction_id = _text(body, "transaction_id", required=False)
    out_trade_no = _text(body, "out_trade_no", _OUT_TRADE_NO, required=False)
    if (transaction_id is None) == (out_trade_no is None):
        raise param_error("/out_trade_no", "transaction_id 与 out_trade_no 必须二选一")
    order = next((o for o in wechatpay.orders.values() if o.sp_mchid == merchant.sp_mchid and o.sub_mchid == sub_mchid
                  and (o.out_trade_no == out_trade_no if out_trade_no else o.transaction_id == transaction_id)), None)
    if order is None:
        raise Refusal(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if order.state not in ("SUCCESS", "REFUND"):
        raise Refusal(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if total != order.total:
        raise Refusal(400, "INVALID_REQUEST", "订单金额 amount.total 与原订单金额不一致")
    key = (merchant.sp_mchid, sub_mchid, out_refund_no)
    existing = wechatpay.refunds.get(key)
    if existing is not None:
        if existing.order is not order or existing.amount != refund:
            raise Refusal(400, "INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")
        return signed(200, refund_json(existing, now))
    if g.fault == "NOT_ENOUGH":
        raise Refusal(403, "NOT_ENOUGH", "基本账户余额不足，请充值后重新发起")
    if refund > order.total - refunded_amount(wechatpay, order):
        raise Refusal(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
    record = RefundRecord(order, body, "50" + _digits(27), now, now + REFUND_SETTLES_AFTER_SECONDS,
                          "ABNORMAL" if refund % 100 == ABNORMAL_REFUND_FEN else "SUCCESS")
    wechatpay.refunds[key] = record
    order.state = "REFUND"
    if notify_url:
        event, summary = (("REFUND.SUCCESS", "退款成功") if record.outcome == "SUCCESS"
                          else ("REFUND.ABNORMAL", "退款异常"))
        build = notification_builder(world(), merchant, event, summary, "refund",
                                     refund_json(record, record.settles_at, notification=True), at=record.settles_at)
        enqueue_notification(world(), notify_url, build, at=record.settles_at)
    return signed(200, refund_json(record, now))


def complete_abnormal_refund(world, out_refund_no: str) -> RefundRecord:
    """The merchant handled an ABNORMAL refund in the merchant platform (e.g. 退款到银行卡)
    and WeChat Pay paid it out: from now on it is SUCCESS, and REFUND.SUCCESS goes to the
    refund's notify_url as for any refund that succeeds. Raises Refusal unless it is ABNORMAL."""
    wechatpay, now = state_of(world), world.clock.now()
    with world.lock:
        record = next((r for key, r in wechatpay.refunds.items() if key[2] == out_refund_no), None)
        if record is None:
            raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        if record.status(now) != "ABNORMAL":
            raise Refusal(400, "INVALID_REQUEST", f"退款状态为{record.status(now)}，不是 ABNORMAL")
        record.outcome, record.settles_at = "SUCCESS", now
    notify_url = record.request.get("notify_url")
    if notify_url:
        merchant = wechatpay.merchants[record.order.sp_mchid]
        build = notification_builder(world, merchant, "REFUND.SUCCESS", "退款成功", "refund",
                                     refund_json(record, now, notification=True), at=now)
        enqueue_notification(world, notify_url, build, at=now)
    return record


@blueprint.get("/v3/refund/domestic/refunds/<out_refund_no>")
@v3_api
def query_refund(merchant: Merchant, out_refund_no: str):
    sub_mchid = _sub_merchant(request.args, merchant.sp_mchid)
    record = state().refunds.get((merchant.sp_mchid, sub_mchid, out_refund_no))
    if record is None:
        raise Refusal(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return signed(200, refund_json(record, world().clock.now()))


@blueprint.get("/v3/certificates")
@v3_api
def list_certificates(merchant: Merchant):
    """平台证书 mode: the certificates, each AEAD_AES_256_GCM-encrypted with the caller's API
    v3 key (associated_data "certificate"), so only the merchant can read them; the answer is
    signed like every other."""
    wechatpay = state()
    effective, expires = wechatpay.platform_certificate_valid
    nonce = secrets.token_hex(6)
    ciphertext = AESGCM(merchant.api_v3_key.encode()).encrypt(
        nonce.encode(), wechatpay.platform_certificate_pem.encode(), b"certificate")
    return signed(200, {"data": [{
        "serial_no": wechatpay.platform_certificate_serial_no,
        "effective_time": _rfc3339(effective), "expire_time": _rfc3339(expires),
        "encrypt_certificate": {"algorithm": "AEAD_AES_256_GCM", "nonce": nonce, "associated_data": "certificate",
                                "ciphertext": base64.b64encode(ciphertext).decode()}}]})


# --- Sandbox-only endpoints (not part of WeChat Pay) ---------------------------------------

def _sandbox_error(refusal: Refusal) -> Response:
    return jsonify({"code": refusal.code, "message": refusal.message}), refusal.status


@blueprint.post("/sandbox/merchants")
def create_merchant():
    body = request.get_json(silent=True) or {}
    try:
        return jsonify(register_merchant(world(), str(body.get("sp_mchid", "")),
                                         str(body.get("platform_key_mode", "public_key")),
                                         sub_mchids=body.get("sub_mchids") or (), appids=body.get("appids") or ()))
    except ValueError as exc:
        return jsonify({"code": "PARAM_ERROR", "message": str(exc)}), 400


@blueprint.get("/sandbox/merchants/<sp_mchid>")
def read_merchant(sp_mchid: str):
    merchant = state().merchants.get(sp_mchid)
    if merchant is None:
        return jsonify({"code": "MCH_NOT_EXISTS", "message": f"no credentials for {sp_mchid}"}), 404
    return jsonify(credentials(state(), merchant))


@blueprint.post("/sandbox/orders/<out_trade_no>/pay")
def pay(out_trade_no: str):
    """The customer pays, without the wallet page (for tests and scripted demos)."""
    body = request.get_json(silent=True) or {}
    try:
        order = find_order(world(), out_trade_no, body.get("sub_mchid"))
        notification = pay_order(world(), order)
    except Refusal as refusal:
        return _sandbox_error(refusal)
    return jsonify({"transaction": transaction_json(order), "notification": notification.notification_id})


@blueprint.post("/sandbox/refunds/<out_refund_no>/complete")
def complete_refund(out_refund_no: str):
    """Play the merchant handling an ABNORMAL refund at WeChat Pay: it becomes SUCCESS."""
    try:
        record = complete_abnormal_refund(world(), out_refund_no)
    except Refusal as refusal:
        return _sandbox_error(refusal)
    return jsonify(refund_json(record, world().clock.now()))


@blueprint.post("/sandbox/notifications/forge")
def forge_notification():
    """Send one TRANSACTION.SUCCESS for an order to `url`, signed with a key that is not the
    platform's (or with the platform's and a wrong `amount_total`): it must change nothing."""
    body = request.get_json(silent=True) or {}
    wechatpay = state()
    try:
        order = find_order(world(), str(body.get("out_trade_no", "")), body.get("sub_mchid"))
    except Refusal as refusal:
        return _sandbox_error(refusal)
    merchant = wechatpay.merchants[order.sp_mchid]
    resource = {**transaction_json(order), "trade_state": "SUCCESS", "trade_state_desc": TRADE_STATE_DESC["SUCCESS"],
                "transaction_id": order.transaction_id or "42000" + _digits(23), "trade_type": "JSAPI",
                "success_time": _rfc3339(world().clock.now())}
    resource["amount"] = {"total": int(body.get("amount_total", order.total)), "currency": "CNY",
                          "payer_total": int(body.get("amount_total", order.total)), "payer_currency": "CNY"}
    headers, payload = notification_builder(world(), merchant, "TRANSACTION.SUCCESS", "支付成功", "transaction",
                                            resource, at=world().clock.now())()
    if body.get("signature", "forged") == "forged":
        forger = world().new_rsa_key()
        message = f"{headers['Wechatpay-Timestamp']}\n{headers['Wechatpay-Nonce']}\n".encode() + payload + b"\n"
        headers["Wechatpay-Signature"] = base64.b64encode(
            forger.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    status, text = world().notifier.deliver(str(body.get("url") or order.request["notify_url"]), headers, payload)
    return jsonify({"status": status, "text": text})


@blueprint.post("/sandbox/notifications/<notification_id>/duplicate")
def duplicate_notification(notification_id: str):
    if notification_id not in world().notifier.notifications:
        return jsonify({"code": "NOT_FOUND", "message": "no such notification"}), 404
    attempt = world().notifier.send_duplicate(notification_id)
    return jsonify({"status": attempt.status, "text": attempt.text})


# --- The wallet: WeixinJSBridge for pages opened on the sandbox phone ----------------------

@blueprint.get("/sandbox/jsbridge.js")
def jsbridge():
    return send_from_directory(STATIC, "wechatpay-jsbridge.js", mimetype="application/javascript")


def _wallet_reply(payload: dict, status: int = 200) -> Response:
    """Pages of our app call the wallet cross-origin with text/plain bodies (no preflight)."""
    response = jsonify(payload)
    response.status_code = status
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _order_for_pay_request(params: dict) -> Order:
    """What WeChat checks before showing the cashier: the prepay_id and the paySign."""
    package = str(params.get("package", ""))
    if not package.startswith("prepay_id=") or params.get("signType") != "RSA":
        raise Refusal(400, "PARAM_ERROR", "package 必须为 prepay_id=...，signType 必须为 RSA")
    prepay_id = package.removeprefix("prepay_id=")
    order = next((o for o in state().orders.values() if o.prepay_id == prepay_id), None)
    if order is None:
        raise Refusal(400, "PARAM_ERROR", "prepay_id 不存在或已过期")
    refuse_unless_payable(order, world().clock.now())
    if params.get("appId") != order.payer_appid:
        raise Refusal(400, "PARAM_ERROR", "appId 与下单时的 appid 不一致")
    timestamp, nonce = str(params.get("timeStamp", "")), str(params.get("nonceStr", ""))
    if not timestamp.isdigit() or not nonce:
        raise Refusal(400, "PARAM_ERROR", "timeStamp 必须为秒级时间戳字符串，nonceStr 不能为空")
    message = f"{params['appId']}\n{timestamp}\n{nonce}\n{package}\n".encode()
    try:
        state().merchants[order.sp_mchid].public_key.verify(
            base64.b64decode(str(params.get("paySign", "")), validate=True), message, padding.PKCS1v15(),
            hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise Refusal(400, "SIGN_ERROR", "支付验证签名失败") from None
    return order


def _pay_params() -> dict:
    params = request.get_json(force=True, silent=True)
    return params if isinstance(params, dict) else {}


def _wallet_refusal(refusal: Exception) -> Response:
    return _wallet_reply({"err_msg": "get_brand_wcpay_request:fail", "err_desc": str(refusal)}, 400)


@blueprint.post("/sandbox/wallet/checkout")
def wallet_checkout():
    """The cashier sheet's contents, after the same checks WeChat makes before showing it.

    The wallet pays for every channel (SPEC §8): a 买单 order's params go to the 买单 ledger,
    which checks its own paySign."""
    params = _pay_params()
    try:
        if maidan.owns_pay_request(params):
            return _wallet_reply(maidan.wallet_checkout(world(), params))
        order = _order_for_pay_request(params)
    except (Refusal, maidan.PaymentRefused) as refusal:
        return _wallet_refusal(refusal)
    return _wallet_reply({"amount_total": order.total, "description": order.request["description"],
                          "sub_mchid": order.sub_mchid, "out_trade_no": order.out_trade_no, "state": order.state})


@blueprint.post("/sandbox/wallet/pay")
def wallet_pay():
    """支付: pays a WeChat Pay order here, or a 买单 one through 买单's own pay path."""
    params = _pay_params()
    try:
        if maidan.owns_pay_request(params):
            maidan.pay_by_wallet(world(), params)
        else:
            with world().lock:
                pay_order(world(), _order_for_pay_request(params))
    except (Refusal, maidan.PaymentRefused) as refusal:
        return _wallet_refusal(refusal)
    return _wallet_reply({"err_msg": "get_brand_wcpay_request:ok"})
