"""H7: the most one payment may be, per provider and per merchant.

The provider's limit (`provider.pay_limit_fen`) caps every merchant under it; a merchant's
own limit (`merchant.pay_limit_fen`) may only lower that. Either may be absent (the
attributes are optional, set from the console); with neither, the platform's default
(settings `pay_limit_fen`, 50,000 yuan) applies.
"""
from __future__ import annotations

from chalicelib import settings


def _set_limit(record) -> int | None:
    value = getattr(record, "pay_limit_fen", None)
    return int(value) if value else None


def pay_limit_fen(provider, merchant) -> int:
    """The lowest of the limits that are set, else the platform default."""
    limits = [limit for limit in (_set_limit(provider), _set_limit(merchant)) if limit]
    return min(limits) if limits else settings.current().pay_limit_fen
