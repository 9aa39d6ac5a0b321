"""Every setting of the app, read from the environment in this one module.

`chalice.test.Client` swaps a stage's environment in only for the duration of a call, and
the local stack and Lambda set it before import, so settings are read on each `current()`
call rather than frozen at import. Reading ~30 variables costs microseconds.

The platform's own secrets (signing key, WeChat AppSecret, 买单 API key) are not in the
environment: a function that needs one gets the NAME of its SSM SecureString parameter
(`*_PARAMETER`) and IAM leave to read just that parameter. The value is fetched on first
use, not in `current()`, so a function without the secret never asks for it, and kept in
the container for `SECRET_CACHE_SECONDS` (a rotated secret is picked up within that).
"""
from __future__ import annotations

import os
from dataclasses import dataclass


REAL_WECHATPAY_BASE_URL = "https://api.mch.weixin.qq.com"
REAL_ALIPAY_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"


class SettingsError(RuntimeError):
    """A required variable is missing or malformed: a deployment mistake, not user input."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    public_base_url: str
    # DynamoDB tables
    accounts_table: str
    unique_claims_table: str
    sessions_table: str
    login_attempts_table: str
    wechat_bindings_table: str
    qr_codes_table: str
    idempotency_table: str
    providers_table: str
    audit_log_table: str
    sub_service_providers_table: str
    sub_merchants_table: str
    jobs_table: str
    job_steps_table: str
    orders_table: str
    refunds_table: str
    merchant_admins_table: str
    stores_table: str
    staff_table: str
    devices_table: str
    shifts_table: str
    outbox_table: str
    daily_totals_table: str
    deliveries_table: str
    # Queues and keys
    sync_queue_url: str
    reattribution_queue_url: str
    sync_dead_letter_queue_url: str
    reattribution_dead_letter_queue_url: str
    payment_follow_up_queue_url: str
    kms_key_id: str
    job_retry_base_seconds: int
    """A failed job page is retried after base, 2x base, 4x base... (SQS visibility)."""
    job_step_ttl_seconds: int
    # Console accounts
    session_ttl_seconds: int
    login_max_failures: int
    login_lockout_seconds: int
    sign_up_max_per_ip: int
    sign_up_max_per_email: int
    sign_up_window_seconds: int
    password_scrypt_n: int
    """scrypt's work factor for new hashes (OWASP: 2**17 with r=8, p=1); tests lower it for speed."""
    # QR codes
    binding_code_ttl_seconds: int
    activation_code_ttl_seconds: int
    qr_expiry_shards: int
    qr_purge_after_seconds: int
    idempotency_ttl_seconds: int
    h5_identity_ttl_seconds: int
    # Payments
    order_expire_seconds: int
    """An unpaid order's `time_expire`, from its creation."""
    order_catch_up_after_seconds: int
    """P5: an order still unpaid this long after creation (and again every as long) is queried."""
    order_sweep_shards: int
    outbox_hand_over_grace_seconds: int
    """The outbox sweep leaves younger items alone: their own request is handing them over."""
    pay_limit_fen: int
    """H7: the most one payment may be when neither the provider nor the merchant set a limit."""
    # Upstreams
    wechat_open_base_url: str
    wechat_api_base_url: str
    wechat_app_id: str
    wechat_payment_template_id: str
    """B4: the 收款到账通知 template of the platform's official account."""
    wechat_shift_summary_template_id: str
    """H6: the 交班汇总通知 template a clerk gets at clock-out."""
    wechatpay_base_url: str
    alipay_gateway_url: str
    alipay_openauth_base_url: str
    maidan_base_url: str
    maidan_partner_id: str
    upstream_timeout_seconds: float
    upstream_retries: int
    log_level: str
    frame_ancestors: str
    """Origins that may frame the pages: empty (none) except on the local stack, whose sandbox
    phone shows the H5 pages in a phone-sized frame."""

    def wallet_script_url(self, wallet: str) -> str | None:
        """The wallet bridge a pay page loads: none in production (WeChat and Alipay inject
        WeixinJSBridge / AlipayJSBridge into their own browsers); the sandbox's stand-in when
        the upstream URLs point at the sandbox."""
        if wallet == "wechat":
            base = self.wechatpay_base_url
            return None if base == REAL_WECHATPAY_BASE_URL else f"{base}/sandbox/jsbridge.js"
        if wallet == "alipay":
            gateway = self.alipay_gateway_url
            return None if gateway == REAL_ALIPAY_GATEWAY_URL else \
                f"{gateway.removesuffix('/gateway.do')}/sandbox/jsbridge.js"
        return None

    @property
    def cookies_secure(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def platform_signing_key(self) -> bytes:
        """Our own HMAC key (cookies, cursors, OAuth state), 32+ bytes."""
        return _key_secret("PLATFORM_SIGNING_KEY_PARAMETER")

    @property
    def wechat_app_secret(self) -> str:
        return _secret("WECHAT_APP_SECRET_PARAMETER")

    @property
    def maidan_api_key(self) -> bytes:
        return _key_secret("MAIDAN_API_KEY_PARAMETER")


def _text(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def _power_of_two(name: str, default: int) -> int:
    value = _int(name, default)
    if value < 2 or value & (value - 1):
        raise SettingsError(f"environment variable {name} must be a power of two above 1, got {value}")
    return value


SECRET_CACHE_SECONDS_DEFAULT = 300


def _secret(name: str) -> str:
    """The value of the SSM SecureString parameter whose name the variable `name` holds."""
    from aws_lambda_powertools.utilities import parameters

    parameter = _text(name)
    try:
        value = parameters.get_parameter(parameter, decrypt=True,
                                         max_age=_int("SECRET_CACHE_SECONDS", SECRET_CACHE_SECONDS_DEFAULT))
    except parameters.exceptions.GetParameterError as exc:
        raise SettingsError(f"SSM parameter {parameter} (from {name}) cannot be read: {exc}") from exc
    if not value:
        raise SettingsError(f"SSM parameter {parameter} (from {name}) is empty")
    return value


def _key_secret(name: str) -> bytes:
    key = _secret(name).encode()
    if len(key) < 32:
        raise SettingsError(f"the SSM parameter named by {name} must hold at least 32 bytes")
    return key


def current() -> Settings:
    """The settings in force now (see the module docstring for why this is not cached)."""
    return Settings(
        stage=_text("CLOUDPAY_STAGE", "local"),
        region=_text("AWS_DEFAULT_REGION", "ap-east-1"),
        public_base_url=_text("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        accounts_table=_text("ACCOUNTS_TABLE"),
        unique_claims_table=_text("UNIQUE_CLAIMS_TABLE"),
        sessions_table=_text("SESSIONS_TABLE"),
        login_attempts_table=_text("LOGIN_ATTEMPTS_TABLE"),
        wechat_bindings_table=_text("WECHAT_BINDINGS_TABLE"),
        qr_codes_table=_text("QR_CODES_TABLE"),
        idempotency_table=_text("IDEMPOTENCY_TABLE"),
        providers_table=_text("PROVIDERS_TABLE"),
        audit_log_table=_text("AUDIT_LOG_TABLE"),
        sub_service_providers_table=_text("SUB_SERVICE_PROVIDERS_TABLE"),
        sub_merchants_table=_text("SUB_MERCHANTS_TABLE"),
        jobs_table=_text("JOBS_TABLE"),
        job_steps_table=_text("JOB_STEPS_TABLE"),
        orders_table=_text("ORDERS_TABLE"),
        refunds_table=_text("REFUNDS_TABLE"),
        merchant_admins_table=_text("MERCHANT_ADMINS_TABLE"),
        stores_table=_text("STORES_TABLE"),
        staff_table=_text("STAFF_TABLE"),
        devices_table=_text("DEVICES_TABLE"),
        shifts_table=_text("SHIFTS_TABLE"),
        outbox_table=_text("OUTBOX_TABLE"),
        daily_totals_table=_text("DAILY_TOTALS_TABLE"),
        deliveries_table=_text("DELIVERIES_TABLE"),
        sync_queue_url=_text("SYNC_QUEUE_URL", "unset"),
        reattribution_queue_url=_text("REATTRIBUTION_QUEUE_URL", "unset"),
        sync_dead_letter_queue_url=_text("SYNC_DEAD_LETTER_QUEUE_URL", "unset"),
        reattribution_dead_letter_queue_url=_text("REATTRIBUTION_DEAD_LETTER_QUEUE_URL", "unset"),
        payment_follow_up_queue_url=_text("PAYMENT_FOLLOW_UP_QUEUE_URL", "unset"),
        job_retry_base_seconds=_int("JOB_RETRY_BASE_SECONDS", 10),
        job_step_ttl_seconds=_int("JOB_STEP_TTL_SECONDS", 30 * 86400),
        kms_key_id=_text("KMS_KEY_ID", "unset"),
        session_ttl_seconds=_int("SESSION_TTL_SECONDS", 12 * 3600),
        login_max_failures=_int("LOGIN_MAX_FAILURES", 5),
        login_lockout_seconds=_int("LOGIN_LOCKOUT_SECONDS", 15 * 60),
        sign_up_max_per_ip=_int("SIGN_UP_MAX_PER_IP", 20),
        sign_up_max_per_email=_int("SIGN_UP_MAX_PER_EMAIL", 5),
        sign_up_window_seconds=_int("SIGN_UP_WINDOW_SECONDS", 3600),
        password_scrypt_n=_power_of_two("PASSWORD_SCRYPT_N", 2**17),
        binding_code_ttl_seconds=_int("BINDING_CODE_TTL_SECONDS", 5 * 60),
        activation_code_ttl_seconds=_int("ACTIVATION_CODE_TTL_SECONDS", 7 * 86400),
        qr_expiry_shards=_int("QR_EXPIRY_SHARDS", 4),
        qr_purge_after_seconds=_int("QR_PURGE_AFTER_SECONDS", 30 * 86400),
        idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL_SECONDS", 24 * 3600),
        h5_identity_ttl_seconds=_int("H5_IDENTITY_TTL_SECONDS", 2 * 3600),
        order_expire_seconds=_int("ORDER_EXPIRE_SECONDS", 10 * 60),
        order_catch_up_after_seconds=_int("ORDER_CATCH_UP_AFTER_SECONDS", 3 * 60),
        order_sweep_shards=_power_of_two("ORDER_SWEEP_SHARDS", 4),
        outbox_hand_over_grace_seconds=_int("OUTBOX_HAND_OVER_GRACE_SECONDS", 30),
        pay_limit_fen=_int("PAY_LIMIT_FEN", 5_000_000),
        wechat_open_base_url=_text("WECHAT_OPEN_BASE_URL", "https://open.weixin.qq.com").rstrip("/"),
        wechat_api_base_url=_text("WECHAT_API_BASE_URL", "https://api.weixin.qq.com").rstrip("/"),
        wechat_app_id=_text("WECHAT_APP_ID"),
        wechat_payment_template_id=_text("WECHAT_PAYMENT_TEMPLATE_ID"),
        wechat_shift_summary_template_id=_text("WECHAT_SHIFT_SUMMARY_TEMPLATE_ID"),
        wechatpay_base_url=_text("WECHATPAY_BASE_URL", REAL_WECHATPAY_BASE_URL).rstrip("/"),
        alipay_gateway_url=_text("ALIPAY_GATEWAY_URL", REAL_ALIPAY_GATEWAY_URL),
        alipay_openauth_base_url=_text("ALIPAY_OPENAUTH_BASE_URL", "https://openauth.alipay.com").rstrip("/"),
        maidan_base_url=_text("MAIDAN_BASE_URL").rstrip("/"),
        maidan_partner_id=_text("MAIDAN_PARTNER_ID"),
        upstream_timeout_seconds=float(_int("UPSTREAM_TIMEOUT_MS", 5000)) / 1000.0,
        upstream_retries=_int("UPSTREAM_RETRIES", 2),
        log_level=_text("LOG_LEVEL", "INFO"),
        frame_ancestors=os.environ.get("FRAME_ANCESTORS", ""),
    )
