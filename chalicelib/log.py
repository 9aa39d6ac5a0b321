"""Structured JSON logs (Powertools Logger) under the app's service name.

The Chalice app is created with configure_logs=False, so this is the only handler on the
"cloudpay" logger and no line prints twice. Never pass secrets, tokens or bodies here.
"""
from __future__ import annotations

from aws_lambda_powertools import Logger

from chalicelib import settings

logger = Logger(service="cloudpay", level=settings.current().log_level)
