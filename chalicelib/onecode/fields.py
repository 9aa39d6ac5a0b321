"""What the one-code forms accept. Every refusal names the field and says why in Chinese:
the people who see these messages are on a phone in a shop, not reading an API reference."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from chalicelib.errors import InvalidField

_PHONE = re.compile(r"\+?[0-9][0-9\- ]{4,19}")
_DEVICE_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_CONTROL = re.compile("[\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
"""Control characters, and the invisible ones (zero-width, bidirectional overrides) that make
a name read differently from what it is."""

COLLECTION_TYPES = {"wechat_alipay": "微信和支付宝", "wechat": "仅微信支付", "alipay": "仅支付宝"}
DEVICE_TYPES = {"mobile_terminal": "移动收款机具", "cashier_desk": "收银台", "smart_pos": "智能 POS", "other": "其他"}
CURRENCIES = {"CNY": "人民币（CNY）"}


def text(form: dict, name: str, label: str, max_length: int, required: bool = False) -> str | None:
    """A one-line text: trimmed; empty is None (or refused when `required`)."""
    value = form.get(name)
    if value is None or not isinstance(value, str):
        value = ""
    value = value.strip()
    if not value:
        if required:
            raise InvalidField(name, f"请填写{label}")
        return None
    if _CONTROL.search(value):
        raise InvalidField(name, f"{label}不能包含控制字符或不可见字符")
    if len(value) > max_length:
        raise InvalidField(name, f"{label}最多 {max_length} 个字")
    return value


def phone(form: dict, name: str = "phone", label: str = "电话") -> str | None:
    value = text(form, name, label, 20)
    if value is not None and not _PHONE.fullmatch(value):
        raise InvalidField(name, f"{label}只能包含数字、空格、“-”和开头的“+”")
    return value


def coordinate(form: dict, name: str, label: str, limit: int) -> str | None:
    """Decimal degrees as typed, at most 6 decimals, within ±`limit`; kept as text."""
    value = text(form, name, label, 12)
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InvalidField(name, f"{label}必须是数字，例如 {'116.397128' if limit == 180 else '39.916527'}") from None
    if not number.is_finite() or abs(number) > limit or -number.as_tuple().exponent > 6:
        raise InvalidField(name, f"{label}必须在 -{limit} 到 {limit} 之间，最多 6 位小数")
    return value


def choice(form: dict, name: str, label: str, choices: dict, default: str) -> str:
    value = form.get(name) or default
    if value not in choices:
        raise InvalidField(name, f"请选择有效的{label}")
    return value


def checkbox(form: dict, name: str) -> bool:
    """An HTML checkbox: present ("on", "1", "true") when ticked, absent when not."""
    return str(form.get(name, "")).lower() in ("on", "1", "true", "yes")


def device_id(form: dict) -> str:
    value = text(form, "device_id", "设备编号", 64, required=True)
    if not _DEVICE_ID.fullmatch(value):
        raise InvalidField("device_id", "设备编号只能包含字母、数字、“_”和“-”，最多 64 位")
    return value


def https_url(form: dict, name: str, label: str) -> str | None:
    value = text(form, name, label, 500)
    if value is not None and not re.fullmatch(r"https://[^\s<>\"']+", value):
        raise InvalidField(name, f"{label}必须是以 https:// 开头的图片地址")
    return value
