"""The Alipay open platform in ISV mode, as the real gateway and openauth pages answer.

Written from the public documentation (opendocs.alipay.com: 通用接口规范, 签名, 验签,
异步通知, alipay.trade.*, alipay.open.auth.token.app, alipay.system.oauth.token), not from
Cloud Pay's client: it verifies every request's RSA2 signature with the app's public key,
signs every answer and every notification with one Alipay key pair per world, keeps apps,
merchants, buyers, authorizations, trades and refunds, and moves them by the world clock.

Sandbox-only endpoints live under /alipay/sandbox/ (see docs/upstreams/alipay.md).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import Blueprint, Response, current_app, jsonify, redirect, render_template, request, send_from_directory

from sandbox.notifier import ALIPAY_RETRY_SCHEDULE, Notification

blueprint = Blueprint("alipay", __name__)
STATIC_DIR = Path(__file__).parent / "static"
USER_COOKIE = "sandbox_alipay_user"
CHINA = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY = 86400
MESSAGES = {"10000": "Success", "20000": "Service Currently Unavailable", "20001": "Insufficient Token Permissions",
            "40001": "Missing Required Arguments", "40002": "Invalid Arguments", "40004": "Business Failed",
            "40006": "Insufficient Permissions"}
_OUT_NO = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_YUAN = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$")
_TIMEOUT_EXPRESS = re.compile(r"^([1-9][0-9]*)([mhd])$")
_TIMEOUT_UNITS = {"m": 60, "h": 3600, "d": DAY}
PRODUCT_CODES = {"FACE_TO_FACE_PAYMENT", "JSAPI_PAY"}


def world():
    return current_app.config["WORLD"]


def state_of(world_) -> "AlipayState":
    """The world's Alipay (created on first use): for tests that drive it from Python."""
    return world_.component("alipay", AlipayState)


def state() -> "AlipayState":
    return state_of(world())


# --- RSA2, reimplemented from the documentation -------------------------------------------


def _new_key(world_) -> rsa.RSAPrivateKey:
    return world_.new_rsa_key()


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _load_public(text: str) -> rsa.RSAPublicKey:
    text = text.strip()
    if text.startswith("-----"):
        return serialization.load_pem_public_key(text.encode())
    return serialization.load_der_public_key(base64.b64decode("".join(text.split())))


def rsa2_sign(key: rsa.RSAPrivateKey, content: str) -> str:
    return base64.b64encode(key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa2_verify(key: rsa.RSAPublicKey, content: str, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), content.encode("utf-8"), padding.PKCS1v15(),
                   hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def signing_string(params: dict, excluded: tuple[str, ...]) -> str:
    """Sorted by key, empty values and `excluded` dropped, raw `k=v` joined by `&`.
    Requests exclude `sign`; notifications exclude `sign` and `sign_type`."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in excluded and params[k] not in (None, ""))


# --- amounts and times --------------------------------------------------------------------


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def parse_yuan(text) -> int | None:
    match = _YUAN.match(text) if isinstance(text, str) else None
    if not match:
        return None
    return int(match.group(1)) * 100 + int((match.group(2) or ".")[1:].ljust(2, "0"))


def china_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime(TIME_FORMAT)


def parse_china_time(text) -> float | None:
    try:
        return datetime.strptime(str(text), TIME_FORMAT).replace(tzinfo=CHINA).timestamp()
    except ValueError:
        return None


def _digits(seed: str, count: int) -> str:
    return str(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))[-count:].rjust(count, "0")


# --- the world's Alipay -------------------------------------------------------------------


@dataclass
class IsvApp:
    app_id: str
    public_key: rsa.RSAPublicKey


@dataclass(frozen=True)
class IsvAppCredentials:
    """What the open platform gives an ISV developer: the app id, the Alipay public key for
    it, and (when the sandbox made the key pair) the app private key."""

    app_id: str
    app_private_key_pem: str | None
    app_public_key_pem: str
    alipay_public_key_pem: str


@dataclass
class Merchant:
    """An Alipay merchant account that can authorize ISV apps (its PID and its own app id)."""

    user_id: str
    name: str
    auth_app_id: str


@dataclass
class Buyer:
    user_id: str
    nickname: str
    logon_id: str

    def open_id(self, app_id: str) -> str:
        """OpenIDs are per app, unlike the global 2088 user id."""
        digest = hashlib.sha256(f"{app_id}|{self.user_id}".encode()).digest()
        return "0" + base64.urlsafe_b64encode(digest).decode().rstrip("=").replace("-", "x").replace("_", "y")


@dataclass
class AuthCode:
    app_id: str
    subject_id: str  # the merchant's or the buyer's user id
    issued_at: float
    used: bool = False


@dataclass
class Authorization:
    """A merchant's app_auth_token for one ISV app."""

    app_auth_token: str
    app_refresh_token: str
    isv_app_id: str
    merchant: Merchant
    issued_at: float
    expires_at: float
    refresh_expires_at: float
    replaced: bool = False


@dataclass
class UserToken:
    access_token: str
    refresh_token: str
    app_id: str
    buyer: Buyer
    refresh_expires_at: float
    replaced: bool = False


@dataclass
class Trade:
    trade_no: str
    out_trade_no: str
    isv_app_id: str
    merchant: Merchant
    buyer: Buyer
    buyer_open_id: str | None
    total_fen: int
    subject: str
    product_code: str
    op_app_id: str | None
    notify_url: str | None
    created_at: float
    expires_at: float | None
    status: str = "WAIT_BUYER_PAY"
    paid_at: float | None = None
    closed_at: float | None = None
    refunded_fen: int = 0
    refunds: dict = field(default_factory=dict)  # out_request_no -> (fen, at)

    @property
    def details(self) -> tuple:
        """What a repeated alipay.trade.create must match to be "the same" trade."""
        return (self.total_fen, self.subject, self.buyer.user_id, self.buyer_open_id)


class AlipayState:
    """Everything the world's Alipay knows. Lifetimes are attributes so a test can shorten them."""

    app_auth_token_lifetime = 365 * DAY
    app_refresh_token_lifetime = 372 * DAY
    app_auth_code_lifetime = DAY
    user_auth_code_lifetime = 300
    user_access_token_lifetime = 15 * DAY
    user_refresh_token_lifetime = 30 * DAY
    refund_period = 90 * DAY
    """After this a paid trade becomes TRADE_FINISHED and can no longer be refunded."""

    def __init__(self, world_) -> None:
        self.world = world_
        self.alipay_key = _new_key(world_)
        self.alipay_public_key_pem = _public_pem(self.alipay_key.public_key())
        self.apps: dict[str, IsvApp] = {}
        self.merchants: dict[str, Merchant] = {}
        self.buyers: dict[str, Buyer] = {}
        self.app_auth_codes: dict[str, AuthCode] = {}
        self.user_auth_codes: dict[str, AuthCode] = {}
        self.authorizations: dict[str, Authorization] = {}
        self.authorizations_by_refresh: dict[str, Authorization] = {}
        self.user_tokens: dict[str, UserToken] = {}
        self.trades: dict[str, Trade] = {}
        self.trades_by_out_no: dict[tuple[str, str], Trade] = {}
        for name in ("演示商户甲（支付宝）", "演示商户乙（支付宝）"):
            self.create_merchant(name)
        for nickname in ("支付宝用户小张", "支付宝用户小李", "支付宝用户小陈"):
            self.create_buyer(nickname)

    @property
    def lock(self):
        return self.world.lock

    def now(self) -> float:
        return self.world.clock.now()

    def _number(self, prefix: str, kind: str, index: int) -> str:
        return f"{prefix}{_digits(f'{self.world.config.seed}|{kind}|{index}', 12)}"

    # --- registries --------------------------------------------------------------------

    def create_app(self, app_public_key_pem: str | None = None) -> IsvAppCredentials:
        """Register an ISV app: with the developer's public key, or with a key pair made here."""
        private_key = None if app_public_key_pem else _new_key(self.world)
        public_key = _load_public(app_public_key_pem) if app_public_key_pem else private_key.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ValueError("the app public key must be an RSA key")
        with self.lock:
            app_id = self._number("2021", "app", len(self.apps))
            self.apps[app_id] = IsvApp(app_id, public_key)
        return IsvAppCredentials(app_id, _private_pem(private_key) if private_key else None, _public_pem(public_key),
                                 self.alipay_public_key_pem)

    def create_merchant(self, name: str) -> Merchant:
        with self.lock:
            index = len(self.merchants)
            merchant = Merchant(self._number("2088", "merchant", index), name,
                                self._number("2019", "merchant-app", index))
            self.merchants[merchant.user_id] = merchant
            return merchant

    def create_buyer(self, nickname: str) -> Buyer:
        with self.lock:
            user_id = self._number("2088", "buyer", len(self.buyers))
            buyer = Buyer(user_id, nickname, f"{user_id[4:7]}******{user_id[-2:]}")
            self.buyers[user_id] = buyer
            return buyer

    # --- authorization -----------------------------------------------------------------

    def issue_app_auth_code(self, app_id: str, merchant_id: str) -> str:
        """The merchant approved the ISV app on the appToAppAuth page."""
        code = secrets.token_hex(16)
        with self.lock:
            self.app_auth_codes[code] = AuthCode(app_id, merchant_id, self.now())
        return code

    def issue_user_auth_code(self, app_id: str, user_id: str) -> str:
        """The buyer passed the (silent, auth_base) publicAppAuthorize page."""
        code = secrets.token_hex(16)
        with self.lock:
            self.user_auth_codes[code] = AuthCode(app_id, user_id, self.now())
        return code

    def take_code(self, codes: dict[str, AuthCode], code: str, app_id: str, lifetime: float) -> AuthCode | None:
        """A code is good once, for the app it was issued to, within its lifetime."""
        with self.lock:
            found = codes.get(code)
            if found is None or found.used or found.app_id != app_id or self.now() - found.issued_at > lifetime:
                return None
            found.used = True
            return found

    def authorize(self, app_id: str, merchant: Merchant) -> Authorization:
        now = self.now()
        authorization = Authorization(
            app_auth_token=f"{china_time(now)[:7].replace('-', '')}BB{secrets.token_hex(16)}",
            app_refresh_token=f"{china_time(now)[:7].replace('-', '')}BB{secrets.token_hex(16)}",
            isv_app_id=app_id, merchant=merchant, issued_at=now, expires_at=now + self.app_auth_token_lifetime,
            refresh_expires_at=now + self.app_refresh_token_lifetime)
        with self.lock:
            self.authorizations[authorization.app_auth_token] = authorization
            self.authorizations_by_refresh[authorization.app_refresh_token] = authorization
        return authorization

    def issue_user_token(self, app_id: str, buyer: Buyer) -> UserToken:
        token = UserToken(f"authbseB{secrets.token_hex(16)}", f"authbseB{secrets.token_hex(16)}", app_id, buyer,
                          self.now() + self.user_refresh_token_lifetime)
        with self.lock:
            self.user_tokens[token.refresh_token] = token
        return token

    # --- trades ------------------------------------------------------------------------

    def settle_time(self, trade: Trade) -> Trade:
        """Apply what the clock did: unpaid trades close at their expiry, paid ones finish
        when the refund period is over."""
        now = self.now()
        if trade.status == "WAIT_BUYER_PAY" and trade.expires_at is not None and now >= trade.expires_at:
            trade.status, trade.closed_at = "TRADE_CLOSED", trade.expires_at
        elif trade.status == "TRADE_SUCCESS" and now - trade.paid_at >= self.refund_period:
            trade.status = "TRADE_FINISHED"
        return trade

    def trade(self, trade_no: str) -> Trade | None:
        with self.lock:
            found = self.trades.get(trade_no)
            return self.settle_time(found) if found else None

    def pay(self, trade_no: str, fault: str | None = None) -> tuple[Trade, Notification | None]:
        """The buyer pays in the wallet: TRADE_SUCCESS and a notification, once. The
        PAYER_ERROR fault plays a payment refused by risk control: the trade is closed.
        Returns the trade and the notification enqueued (None when nothing changed)."""
        with self.lock:
            trade = self.trades.get(trade_no)
            if trade is None:
                raise KeyError(trade_no)
            self.settle_time(trade)
            if trade.status != "WAIT_BUYER_PAY":
                return trade, None
            if fault == "PAYER_ERROR":
                trade.status, trade.closed_at = "TRADE_CLOSED", self.now()
                return trade, None
            trade.status, trade.paid_at = "TRADE_SUCCESS", self.now()
        return trade, self.notify(trade)

    # --- notifications -----------------------------------------------------------------

    def notification_params(self, trade: Trade, refund: tuple[str, float] | None = None) -> dict:
        """The documented trade_status_sync fields, as of now (without notify_time/sign)."""
        params = {
            "notify_type": "trade_status_sync", "notify_id": secrets.token_hex(17)[:34],
            "app_id": trade.isv_app_id, "auth_app_id": trade.merchant.auth_app_id, "charset": "utf-8",
            "version": "1.0", "sign_type": "RSA2", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "buyer_id": trade.buyer.user_id, "buyer_open_id": trade.buyer_open_id or "",
            "buyer_logon_id": trade.buyer.logon_id, "seller_id": trade.merchant.user_id,
            "trade_status": trade.status, "total_amount": yuan(trade.total_fen),
            "receipt_amount": yuan(trade.total_fen), "invoice_amount": yuan(trade.total_fen),
            "buyer_pay_amount": yuan(trade.total_fen), "point_amount": "0.00", "subject": trade.subject,
            "gmt_create": china_time(trade.created_at),
            "gmt_payment": china_time(trade.paid_at) if trade.paid_at else "",
            "fund_bill_list": json.dumps([{"amount": yuan(trade.total_fen), "fundChannel": "ALIPAYACCOUNT"}],
                                         separators=(",", ":")),
        }
        if refund:
            out_request_no, at = refund
            params.update({"out_biz_no": out_request_no, "refund_fee": yuan(trade.refunded_fen),
                           "gmt_refund": china_time(at) + ".000"})
        if trade.closed_at is not None:
            params["gmt_close"] = china_time(trade.closed_at)
        return params

    def signed_form(self, params: dict, key: rsa.RSAPrivateKey | None = None) -> tuple[dict, bytes]:
        """A notification POST as Alipay sends it: form-encoded, UTF-8, signed over the raw
        sorted values minus sign and sign_type, with a fresh notify_time."""
        params = {k: v for k, v in {**params, "notify_time": china_time(self.now())}.items() if v != ""}
        params["sign"] = rsa2_sign(key or self.alipay_key, signing_string(params, ("sign", "sign_type")))
        return {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, urlencode(params).encode()

    def notify(self, trade: Trade, refund: tuple[str, float] | None = None) -> Notification | None:
        """Enqueue the notification; every retry keeps its notify_id and is signed afresh."""
        if not trade.notify_url:
            return None
        params = self.notification_params(trade, refund)
        return self.world.notifier.enqueue("alipay", trade.notify_url, lambda: self.signed_form(params),
                                           lambda status, text: status == 200 and text == "success",
                                           ALIPAY_RETRY_SCHEDULE)


# --- the gateway --------------------------------------------------------------------------


class Refusal(Exception):
    """An error answer: code/msg/sub_code/sub_msg in the response node (or error_response)."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, node: str | None = None) -> None:
        super().__init__(sub_code)
        self.code, self.sub_code, self.sub_msg, self.node = code, sub_code, sub_msg, node

    def payload(self) -> dict:
        return {"code": self.code, "msg": MESSAGES[self.code], "sub_code": self.sub_code, "sub_msg": self.sub_msg}


def business(sub_code: str, sub_msg: str) -> Refusal:
    return Refusal("40004", sub_code, sub_msg)


def invalid_parameter(name: str) -> Refusal:
    return business("ACQ.INVALID_PARAMETER", f"参数无效: {name}")


@dataclass
class Call:
    state: AlipayState
    app: IsvApp
    params: dict
    biz: dict
    authorization: Authorization | None
    fault: str | None

    @property
    def merchant(self) -> Merchant:
        """Trade methods act for the authorizing merchant; the sandbox's ISV apps have no
        trading products of their own."""
        if self.authorization is None:
            raise Refusal("40006", "isv.insufficient-isv-permissions", "第三方应用权限不足（未传 app_auth_token）")
        return self.authorization.merchant

    def trade(self) -> Trade:
        trade_no, out_trade_no = self.biz.get("trade_no"), self.biz.get("out_trade_no")
        if not trade_no and not out_trade_no:
            raise invalid_parameter("trade_no 与 out_trade_no 不能同时为空")
        with self.state.lock:
            trade = (self.state.trades.get(str(trade_no)) if trade_no
                     else self.state.trades_by_out_no.get((self.merchant.user_id, str(out_trade_no))))
            if trade is None or trade.merchant is not self.merchant:
                raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
            return self.state.settle_time(trade)


def _trade_create(call: Call) -> dict:
    biz, merchant, app_id = call.biz, call.merchant, call.app.app_id
    out_trade_no = biz.get("out_trade_no")
    if not isinstance(out_trade_no, str) or not _OUT_NO.match(out_trade_no):
        raise invalid_parameter("out_trade_no")
    total = parse_yuan(biz.get("total_amount"))
    if total is None or not 1 <= total <= 100_000_000_00:
        raise invalid_parameter("total_amount")
    subject = biz.get("subject")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise invalid_parameter("subject")
    product_code = biz.get("product_code") or "FACE_TO_FACE_PAYMENT"
    if product_code not in PRODUCT_CODES:
        raise invalid_parameter("product_code")
    seller_id = biz.get("seller_id")
    if seller_id and str(seller_id) != merchant.user_id:
        raise business("ACQ.INVALID_RECEIVE_ACCOUNT", "卖家不在设置的收款账户列表之中")
    buyer, buyer_open_id = _buyer(call)
    now = call.state.now()
    expires_at = None
    if biz.get("time_expire"):
        expires_at = parse_china_time(biz["time_expire"])
        if expires_at is None:
            raise invalid_parameter("time_expire")
    elif biz.get("timeout_express"):
        match = _TIMEOUT_EXPRESS.match(str(biz["timeout_express"]))
        if not match or int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)] > 15 * DAY:
            raise invalid_parameter("timeout_express")
        expires_at = now + int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]
    with call.state.lock:
        existing = call.state.trades_by_out_no.get((merchant.user_id, out_trade_no))
        if existing is not None:
            call.state.settle_time(existing)
            if existing.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
            if existing.status == "TRADE_CLOSED":
                raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if existing.details != (total, subject, buyer.user_id, buyer_open_id):
                raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            return {"out_trade_no": out_trade_no, "trade_no": existing.trade_no}
        trade_no = f"{china_time(now)[:10].replace('-', '')}22001{_digits(secrets.token_hex(8), 15)}"
        trade = Trade(trade_no, out_trade_no, app_id, merchant, buyer, buyer_open_id, total, subject, product_code,
                      biz.get("op_app_id"), call.params.get("notify_url") or None, now, expires_at)
        call.state.trades[trade_no] = trade
        call.state.trades_by_out_no[(merchant.user_id, out_trade_no)] = trade
    return {"out_trade_no": out_trade_no, "trade_no": trade_no}


def _buyer(call: Call) -> tuple[Buyer, str | None]:
    """buyer_id is the global 2088 id, the same in every app; buyer_open_id is an OpenID, which
    names a buyer only within the app it was issued for (the calling app, its op_app_id, or the
    authorizing merchant's own app). Anything else — an OpenID of another app, or an OpenID
    sent as buyer_id — finds no buyer: ACQ.BUYER_NOT_EXIST, as Alipay answers."""
    buyer_id, open_id = call.biz.get("buyer_id"), call.biz.get("buyer_open_id")
    if buyer_id:
        buyer = call.state.buyers.get(str(buyer_id))
        if buyer is None:
            raise business("ACQ.BUYER_NOT_EXIST", "买家不存在")
        return buyer, None
    if open_id:
        apps = {call.app.app_id, call.biz.get("op_app_id"), call.merchant.auth_app_id} - {None}
        for buyer in call.state.buyers.values():
            if any(buyer.open_id(app_id) == open_id for app_id in apps):
                return buyer, str(open_id)
        raise business("ACQ.BUYER_NOT_EXIST", "买家不存在")
    raise invalid_parameter("buyer_id 与 buyer_open_id 不能同时为空")


def _trade_query(call: Call) -> dict:
    trade = call.trade()
    status = "WAIT_BUYER_PAY" if call.fault == "USER_PAYING" else trade.status
    answer = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": status,
              "total_amount": yuan(trade.total_fen)}
    if status != "WAIT_BUYER_PAY":
        answer.update({"buyer_logon_id": trade.buyer.logon_id, "buyer_user_id": trade.buyer.user_id})
        if trade.buyer_open_id:
            answer["buyer_open_id"] = trade.buyer_open_id
    if trade.paid_at and status != "WAIT_BUYER_PAY":
        answer.update({"buyer_pay_amount": yuan(trade.total_fen), "receipt_amount": yuan(trade.total_fen),
                       "send_pay_date": china_time(trade.paid_at)})
    return answer


def _trade_close(call: Call) -> dict:
    with call.state.lock:
        trade = call.trade()
        if trade.status != "WAIT_BUYER_PAY":
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status, trade.closed_at = "TRADE_CLOSED", call.state.now()
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def _trade_refund(call: Call) -> dict:
    amount = parse_yuan(call.biz.get("refund_amount"))
    if amount is None or amount < 1:
        raise invalid_parameter("refund_amount")
    with call.state.lock:
        trade = call.trade()
        out_request_no = str(call.biz.get("out_request_no") or trade.out_trade_no)
        repeated = trade.refunds.get(out_request_no)
        if repeated is not None:
            if repeated[0] != amount:
                raise business("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
            return _refund_answer(trade, fund_change=False, at=repeated[1], amount=amount)
        if trade.status == "WAIT_BUYER_PAY":
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.status == "TRADE_CLOSED":
            raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if trade.status == "TRADE_FINISHED":
            raise business("ACQ.TRADE_NOT_ALLOW_REFUND", "当前交易不允许退款")
        if amount > trade.total_fen - trade.refunded_fen:
            raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        if call.fault == "NOT_ENOUGH":
            raise business("ACQ.SELLER_BALANCE_NOT_ENOUGH", "卖家余额不足")
        at = call.state.now()
        trade.refunds[out_request_no] = (amount, at)
        trade.refunded_fen += amount
        if trade.refunded_fen == trade.total_fen:
            trade.status, trade.closed_at = "TRADE_CLOSED", at
    call.state.notify(trade, refund=(out_request_no, at))
    return _refund_answer(trade, fund_change=True, at=at, amount=amount)


def _refund_answer(trade: Trade, *, fund_change: bool, at: float, amount: int) -> dict:
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": trade.buyer.logon_id,
            "buyer_user_id": trade.buyer.user_id, "fund_change": "Y" if fund_change else "N",
            "refund_fee": yuan(trade.refunded_fen), "send_back_fee": yuan(amount), "gmt_refund_pay": china_time(at)}


def _auth_token_app(call: Call) -> dict:
    grant_type, st, app_id = call.biz.get("grant_type"), call.state, call.app.app_id
    if grant_type == "authorization_code":
        code = st.take_code(st.app_auth_codes, str(call.biz.get("code") or ""), app_id, st.app_auth_code_lifetime)
        if code is None:
            raise Refusal("40002", "isv.code-invalid", "授权码code无效")
        return {"tokens": [_token_fields(st.authorize(app_id, st.merchants[code.subject_id]))]}
    if grant_type == "refresh_token":
        with st.lock:
            old = st.authorizations_by_refresh.get(str(call.biz.get("refresh_token") or ""))
            if old is None or old.replaced or old.isv_app_id != app_id:
                raise Refusal("40002", "isv.refresh-token-invalid", "刷新令牌refresh_token无效")
            if st.now() >= old.refresh_expires_at:
                raise Refusal("40002", "isv.refresh-token-time-out", "刷新令牌refresh_token过期")
            old.replaced = True
        # Refresh answers in the older, flat form; authorization_code in the `tokens` form.
        return _token_fields(st.authorize(app_id, old.merchant))
    raise Refusal("40002", "isv.grant-type-invalid", "grant_type 只能是 authorization_code 或 refresh_token")


def _token_fields(authorization: Authorization) -> dict:
    return {"app_auth_token": authorization.app_auth_token, "app_refresh_token": authorization.app_refresh_token,
            "auth_app_id": authorization.merchant.auth_app_id, "user_id": authorization.merchant.user_id,
            "expires_in": int(authorization.expires_at - authorization.issued_at),
            "re_expires_in": int(authorization.refresh_expires_at - authorization.issued_at)}


def _system_oauth_token(call: Call) -> dict:
    """Parameters are top-level (grant_type, code, refresh_token); errors go in error_response."""
    st, app_id, grant_type = call.state, call.app.app_id, call.params.get("grant_type")
    if grant_type == "authorization_code":
        code = st.take_code(st.user_auth_codes, call.params.get("code", ""), app_id, st.user_auth_code_lifetime)
        if code is None:
            raise Refusal("40002", "isv.code-invalid", "授权码code无效", node="error_response")
        token = st.issue_user_token(app_id, st.buyers[code.subject_id])
    elif grant_type == "refresh_token":
        with st.lock:
            old = st.user_tokens.get(call.params.get("refresh_token", ""))
            if old is None or old.replaced or old.app_id != app_id:
                raise Refusal("40002", "isv.refresh-token-invalid", "刷新令牌refresh_token无效", node="error_response")
            if st.now() >= old.refresh_expires_at:
                raise Refusal("40002", "isv.refresh-token-time-out", "刷新令牌refresh_token过期", node="error_response")
            old.replaced = True
        token = st.issue_user_token(app_id, old.buyer)
    else:
        raise Refusal("40002", "isv.grant-type-invalid", "grant_type 无效", node="error_response")
    return {"user_id": token.buyer.user_id, "open_id": token.buyer.open_id(app_id),
            "access_token": token.access_token, "expires_in": st.user_access_token_lifetime,
            "refresh_token": token.refresh_token, "re_expires_in": st.user_refresh_token_lifetime,
            "auth_start": china_time(st.now())}


METHODS = {
    "alipay.trade.create": _trade_create,
    "alipay.trade.query": _trade_query,
    "alipay.trade.close": _trade_close,
    "alipay.trade.refund": _trade_refund,
    "alipay.open.auth.token.app": _auth_token_app,
    "alipay.system.oauth.token": _system_oauth_token,
}
BIZ_CONTENT_METHODS = set(METHODS) - {"alipay.system.oauth.token"}
_REQUIRED_COMMON = (("app_id", "isv.missing-app-id"), ("sign_type", "isv.missing-signature-type"),
                    ("sign", "isv.missing-signature"), ("timestamp", "isv.missing-timestamp"),
                    ("version", "isv.missing-version"))


def _authenticate(st: AlipayState, params: dict) -> IsvApp:
    """The checks of 通用接口规范, in the gateway's order, ending with the RSA2 signature."""
    if not params.get("method"):
        raise Refusal("40001", "isv.missing-method", "缺少方法名参数", node="error_response")
    if params["method"] not in METHODS:
        raise Refusal("40002", "isv.invalid-method", "不存在的方法名", node="error_response")
    for name, sub_code in _REQUIRED_COMMON:
        if not params.get(name):
            raise Refusal("40001", sub_code, f"缺少 {name} 参数")
    app = st.apps.get(params["app_id"])
    if app is None:
        raise Refusal("40002", "isv.invalid-app-id", "无效的AppID参数", node="error_response")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise Refusal("40002", "isv.invalid-charset", "字符集错误（沙箱只支持 utf-8）")
    if params.get("format", "JSON").upper() != "JSON":
        raise Refusal("40002", "isv.invalid-format", "无效的数据格式")
    if params["sign_type"] != "RSA2":
        raise Refusal("40002", "isv.invalid-signature-type", "无效的签名类型（沙箱只支持 RSA2）")
    if parse_china_time(params["timestamp"]) is None:
        raise Refusal("40002", "isv.invalid-timestamp", "非法的时间戳参数")
    content = signing_string(params, ("sign",))
    if not rsa2_verify(app.public_key, content, params["sign"]):
        raise Refusal("40002", "isv.invalid-signature",
                      f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}")
    return app


def _authorization(st: AlipayState, app: IsvApp, token: str | None) -> Authorization | None:
    if not token:
        return None
    with st.lock:
        found = st.authorizations.get(token)
    if found is None or found.replaced or found.isv_app_id != app.app_id:
        raise Refusal("20001", "aop.invalid-app-auth-token", "无效的应用授权令牌")
    if st.now() >= found.expires_at:
        raise Refusal("20001", "aop.app-auth-token-time-out", "应用授权令牌已过期")
    return found


def _biz_content(method: str, params: dict) -> dict:
    if method not in BIZ_CONTENT_METHODS:
        return {}
    try:
        biz = json.loads(params.get("biz_content") or "")
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise Refusal("40002", "isv.invalid-parameter", "biz_content 不是 JSON 对象")
    return biz


def signed_answer(node: str, payload: dict, corrupt_signature: bool = False) -> Response:
    """{"<node>":{...},"sign":"..."}: the signature covers the node's exact JSON text.
    `corrupt_signature` (the SIGN_ERROR fault) signs other bytes, as a forger would."""
    node_json = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    signature = rsa2_sign(state().alipay_key, node_json + (" " if corrupt_signature else ""))
    body = f'{{"{node}":{node_json},"sign":"{signature}"}}'
    return Response(body, content_type="application/json;charset=utf-8")


def _never_answer() -> Response:
    """Time out while the client reads the body: raised in the view, Flask would turn the
    timeout into a 500; raised from the body, it reaches the client's transport."""
    faults = world().faults

    def body():
        faults.time_out()
        yield b""

    return Response(body(), status=504)


@blueprint.route("/gateway.do", methods=["GET", "POST"])
def gateway():
    """One endpoint for every method: common parameters in the query string or the form
    (the SDKs put them in the query), business parameters in the form. The real gateway
    also takes GET, with every parameter in the query string (some SDKs send every call so);
    both go through the same checks."""
    params = {**request.args.to_dict(), **request.form.to_dict()}
    method = params.get("method", "")
    node = f"{method.replace('.', '_')}_response" if method in METHODS else "error_response"
    st = state()
    fault = world().faults.take("alipay", request.headers)
    if fault == "TIMEOUT":
        return _never_answer()
    try:
        app = _authenticate(st, params)
        authorization = _authorization(st, app, params.get("app_auth_token"))
        if fault == "SYSTEM_ERROR":
            raise Refusal("20000", "aop.ACQ.SYSTEM_ERROR" if method.startswith("alipay.trade.") else "isp.unknow-error",
                          "系统繁忙")
        if fault == "RATE_LIMITED":
            raise Refusal("40002", "isv.app-call-limited", "应用调用频率超限")
        call = Call(st, app, params, _biz_content(method, params), authorization, fault)
        payload = {"code": "10000", "msg": "Success", **METHODS[method](call)}
    except Refusal as refusal:
        return signed_answer(refusal.node or node, refusal.payload(), fault == "SIGN_ERROR")
    return signed_answer(node, payload, fault == "SIGN_ERROR")


# --- openauth pages -----------------------------------------------------------------------


def _valid_redirect(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _back_to(redirect_uri: str, params: dict) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return redirect(f"{redirect_uri}{separator}{urlencode(params)}")


@blueprint.get("/openauth/oauth2/appToAppAuth.htm")
def app_to_app_auth():
    """The merchant signs in and approves the ISV app; the sandbox's stand-in for signing in
    is picking a merchant (`merchant=<PID>`). Back to redirect_uri with app_auth_code."""
    st, args = state(), request.args
    app_id, redirect_uri = args.get("app_id", ""), args.get("redirect_uri", "")
    if app_id not in st.apps:
        return render_template("alipay_error.html", message="应用不存在：app_id 无效"), 400
    if not _valid_redirect(redirect_uri):
        return render_template("alipay_error.html", message="redirect_uri 无效"), 400
    merchant = st.merchants.get(args.get("merchant", ""))
    if merchant is None:
        return render_template("alipay_app_auth.html", app_id=app_id, merchants=st.merchants.values(), query=args)
    back = {"app_id": app_id, "app_auth_code": st.issue_app_auth_code(app_id, merchant.user_id)}
    if args.get("state"):
        back["state"] = args["state"]
    return _back_to(redirect_uri, back)


@blueprint.get("/openauth/oauth2/publicAppAuthorize.htm")
def public_app_authorize():
    """auth_base is silent: the signed-in wallet user (cookie, or `as_user`) goes straight
    back with an auth_code; with nobody signed in the sandbox asks who is holding the phone."""
    st, args = state(), request.args
    app_id, redirect_uri = args.get("app_id", ""), args.get("redirect_uri", "")
    if app_id not in st.apps:
        return render_template("alipay_error.html", message="应用不存在：app_id 无效"), 400
    if args.get("scope") not in ("auth_base", "auth_user"):
        return render_template("alipay_error.html", message="scope 无效：只能是 auth_base 或 auth_user"), 400
    if not _valid_redirect(redirect_uri):
        return render_template("alipay_error.html", message="redirect_uri 无效"), 400
    buyer = st.buyers.get(args.get("as_user") or request.cookies.get(USER_COOKIE) or "")
    if buyer is None:
        return render_template("alipay_pick_user.html", users=st.buyers.values(), query=args)
    response = _back_to(redirect_uri, {"app_id": app_id, "source": "alipay_wallet", "scope": args["scope"],
                                       "auth_code": st.issue_user_auth_code(app_id, buyer.user_id),
                                       "state": args.get("state", "")})
    response.set_cookie(USER_COOKIE, buyer.user_id, samesite="Lax")
    return response


# --- sandbox-only: registries ---------------------------------------------------------------


def _body() -> dict:
    return request.get_json(silent=True) or request.form.to_dict()


@blueprint.post("/sandbox/apps")
def create_app():
    """Register an ISV app. Send {"app_public_key_pem"} to keep your own key pair; otherwise
    the answer carries a new app private key (shown once, like Alipay's key tool)."""
    try:
        credentials = state().create_app(_body().get("app_public_key_pem") or None)
    except ValueError as exc:
        return jsonify({"error": f"app_public_key_pem: {exc}"}), 400
    return jsonify(asdict(credentials)), 201


@blueprint.get("/sandbox/merchants")
def list_merchants():
    return jsonify([asdict(m) for m in state().merchants.values()])


@blueprint.post("/sandbox/merchants")
def create_merchant():
    merchant = state().create_merchant((_body().get("name") or "新商户").strip()[:64])
    if request.form.get("back", "").startswith("/"):  # the page's own form: back to it
        return redirect(request.form["back"])
    return jsonify(asdict(merchant)), 201


@blueprint.get("/sandbox/users")
def list_buyers():
    return jsonify([asdict(b) for b in state().buyers.values()])


@blueprint.post("/sandbox/users")
def create_buyer():
    buyer = state().create_buyer((_body().get("nickname") or "支付宝新用户").strip()[:32])
    if request.form.get("back", "").startswith("/"):  # the page's own form: back to it
        return redirect(request.form["back"])
    return jsonify(asdict(buyer)), 201


# --- sandbox-only: trades, the wallet, notifications -------------------------------------


def _cross_origin(response: Response) -> Response:
    """The wallet script runs on our H5 page's origin and calls the sandbox's."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _trade_view(trade: Trade) -> dict:
    return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
            "total_amount": yuan(trade.total_fen), "subject": trade.subject, "merchant": trade.merchant.name,
            "buyer_id": trade.buyer.user_id, "refunded_amount": yuan(trade.refunded_fen),
            "product_code": trade.product_code, "op_app_id": trade.op_app_id}


@blueprint.get("/sandbox/trades/<trade_no>")
def show_trade(trade_no: str):
    trade = state().trade(trade_no)
    if trade is None:
        return _cross_origin(jsonify({"error": "trade not found"})), 404
    return _cross_origin(jsonify(_trade_view(trade)))


@blueprint.post("/sandbox/trades/<trade_no>/pay")
def pay_trade(trade_no: str):
    """Tests' shortcut for "the buyer paid": TRADE_SUCCESS and the notification enqueued."""
    try:
        trade, notification = state().pay(trade_no, world().faults.take("alipay", request.headers))
    except KeyError:
        return jsonify({"error": "trade not found"}), 404
    return jsonify({**_trade_view(trade), "notification_id": notification.notification_id if notification else None})


@blueprint.post("/sandbox/wallet/pay")
def wallet_pay():
    """The cashier's 支付 button: answers tradePay's resultCode (9000 paid, 4000 failed)."""
    try:
        trade, _ = state().pay(str(_body().get("trade_no", "")), world().faults.take("alipay", request.headers))
    except KeyError:
        return _cross_origin(jsonify({"resultCode": "4000", "memo": "订单不存在"}))
    if trade.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
        return _cross_origin(jsonify({"resultCode": "9000", "memo": "支付成功"}))
    return _cross_origin(jsonify({"resultCode": "4000", "memo": "订单支付失败"}))


@blueprint.get("/sandbox/jsbridge.js")
def jsbridge():
    return send_from_directory(STATIC_DIR, "alipay-jsbridge.js", mimetype="application/javascript")


@blueprint.post("/sandbox/notifications/forged")
def forged_notification():
    """POST {"url", "trade_no"}: the trade's notification signed with a key that is not
    Alipay's, delivered once to `url`. The receiver must refuse it and change nothing."""
    body = _body()
    trade = state().trade(str(body.get("trade_no", "")))
    if trade is None or not body.get("url"):
        return jsonify({"error": "url and an existing trade_no are required"}), 400
    headers, payload = state().signed_form(state().notification_params(trade), key=_new_key(world()))
    status, text = world().notifier.deliver(body["url"], headers, payload)
    return jsonify({"status": status, "text": text})


@blueprint.post("/sandbox/notifications/<notification_id>/duplicate")
def duplicate_notification(notification_id: str):
    """Deliver a sent notification once more (same notify_id), as Alipay sometimes does."""
    if notification_id not in world().notifier.notifications:
        return jsonify({"error": "notification not found"}), 404
    attempt = world().notifier.send_duplicate(notification_id)
    return jsonify({"status": attempt.status, "text": attempt.text})
