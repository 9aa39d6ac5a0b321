"""Alipay open platform gateway, ISV mode."""
from __future__ import annotations

from flask import Blueprint

blueprint = Blueprint("alipay", __name__)
