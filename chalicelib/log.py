"""Structured JSON logs (Powertools Logger) under the app's service name, and no secrets in them.

The Chalice app is created with configure_logs=False, so this is the only handler on the
"cloudpay" logger and no line prints twice. Never pass secrets, tokens or bodies here.

Two guards keep secrets out of every line, whatever level a runner sets on the root logger
(`chalice local` sets INFO, a debugging session DEBUG):

- The libraries that log whole requests stay at WARNING: httpx logs every request URL at
  INFO (WeChat's OAuth exchange carries the AppSecret in it), botocore and PynamoDB log
  request bodies at DEBUG (KMS Encrypt carries the plaintext).
- `RedactSecrets` rewrites known secret parameters (`secret=…`, `"access_token": "…"`) in
  a record's message, extra fields and traceback, on the app's handler, on the root
  logger's handlers and on those libraries' loggers: a library that starts logging a URL
  at WARNING still prints no secret.
"""
from __future__ import annotations

import logging
import re

from aws_lambda_powertools import Logger

from chalicelib import settings

QUIET_LIBRARIES = ("httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer", "pynamodb")
SECRET_PARAMETERS = ("secret", "appsecret", "app_secret", "access_token", "refresh_token", "app_auth_token",
                     "app_refresh_token", "auth_code", "code", "sign", "signature", "password", "token",
                     "api_v3_key", "private_key", "private_key_pem", "auth_key", "api_key", "plaintext")
REDACTED = "[REDACTED]"
_SECRET_NAME = (r"(?<![A-Za-z0-9])(?:[A-Za-z0-9]+_)*(?:" +
                "|".join(sorted(SECRET_PARAMETERS, key=len, reverse=True)) + r")(?![A-Za-z0-9])")
_SECRET_VALUE = re.compile(
    r"(?i)(?P<name>" + _SECRET_NAME + r")(?P<separator>\\?[\"']?\s*[:=]\s*)"
    r"(?P<value>\\\".*?\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^&\s\"'\\,;}]+)")
"""`name=value`, `"name": "value"` (to its closing quote, escapes and spaces included, also
inside JSON that is itself a string), with any prefix joined by `_` (`wechat_app_secret`)."""
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_IS_SECRET_NAME = re.compile(r"(?i)^(?:[A-Za-z0-9]+_)*(?:" + "|".join(
    sorted(set(SECRET_PARAMETERS) - {"code"}, key=len, reverse=True)) + ")$")
"""A log field or dict key that holds a secret. `code` only counts as `code=…` in a URL (an
OAuth code): as a field it is an error code, kept for the reader."""
_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    text = _SECRET_VALUE.sub(lambda found: f"{found['name']}{found['separator']}{REDACTED}", text)
    return _BEARER.sub(lambda found: f"{found[1]}{REDACTED}", text)


def redact_value(value):
    """A log field of any shape: strings redacted, dict entries under a secret's name replaced,
    lists and dicts walked."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: REDACTED if isinstance(key, str) and _IS_SECRET_NAME.match(key) else redact_value(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value


class RedactSecrets(logging.Filter):
    """Rewrite secret parameters in the message, extra fields and traceback of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if redact(message) != message:
            record.msg, record.args = redact(message), None
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES:
                setattr(record, name, REDACTED if _IS_SECRET_NAME.match(name) else redact_value(value))
        if record.exc_info and record.exc_info[0] is not None:
            trace = logging.Formatter().formatException(record.exc_info)
            if redact(trace) != trace:
                # The formatters would print the exception's own text again: keep only the redacted one.
                record.exc_info, record.exc_text, record.traceback = None, redact(trace), redact(trace)
        return True


def _guard_logging(app_logger: Logger) -> None:
    redacting = RedactSecrets()
    for name in QUIET_LIBRARIES:
        library = logging.getLogger(name)
        library.setLevel(logging.WARNING)
        library.addFilter(redacting)
    for handler in [app_logger.registered_handler, *logging.getLogger().handlers]:
        if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
            handler.addFilter(redacting)


logger = Logger(service="cloudpay", level=settings.current().log_level)
_guard_logging(logger)
