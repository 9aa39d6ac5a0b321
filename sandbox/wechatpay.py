"""WeChat Pay API v3, service-provider (partner) mode."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("wechatpay", __name__)
