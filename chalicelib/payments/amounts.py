"""The amount a customer types on the pay page, in yuan, to integer fen.

Read as text with one strict pattern (ASCII digits, at most two decimals), never through
float or Decimal's wider grammar, so `1e3`, `１２` (full-width), ` 1`, `+1` and `0x10` are
refused rather than read as something the customer did not mean. Reasons are Chinese: the
page shows them as they are.
"""
from __future__ import annotations

import re

from chalicelib.errors import InvalidField

_YUAN = re.compile(r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", re.ASCII)


def format_yuan(fen: int) -> str:
    """Fen as yuan with two decimals, "-" in front of a negative amount (a net after refunds)."""
    return ("-" if fen < 0 else "") + f"{abs(fen) // 100}.{abs(fen) % 100:02d}"


def parse_yuan(text, limit_fen: int, param: str = "amount") -> int:
    """Fen for `text` in yuan: more than 0, at most two decimals, at most `limit_fen`."""
    if not isinstance(text, str) or not text:
        raise InvalidField(param, "请输入金额")
    match = _YUAN.match(text)
    if match is None:
        if re.match(r"^[0-9]+\.[0-9]{3,}$", text, re.ASCII):
            raise InvalidField(param, "金额最多两位小数")
        raise InvalidField(param, "金额只能是数字，例如 12.50")
    whole, decimals = match.group(1), (match.group(2) or ".")[1:]
    fen = int(whole) * 100 + int(decimals.ljust(2, "0"))
    if fen <= 0:
        raise InvalidField(param, "金额必须大于 0")
    if fen > limit_fen:
        raise InvalidField(param, f"金额不能超过 {format_yuan(limit_fen)} 元")
    return fen
