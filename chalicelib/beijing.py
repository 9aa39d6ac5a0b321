"""Beijing time: the day merchants close their books on, and the times every phone page,
console CSV and clerk message shows. One fixed offset (UTC+8), since China keeps no
daylight saving time and a Lambda image then needs no time-zone database.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

ZONE = timezone(timedelta(hours=8), "Asia/Shanghai")


def day_of(epoch: int) -> str:
    """The Beijing date of an instant, "YYYY-MM-DD"."""
    return datetime.fromtimestamp(int(epoch), ZONE).strftime("%Y-%m-%d")


def today() -> date:
    return datetime.now(ZONE).date()


def date_time(epoch: int | None) -> str:
    """"YYYY-MM-DD HH:MM:SS" (orders, refunds, CSV cells, payment messages); "" for no time."""
    return "" if epoch is None else datetime.fromtimestamp(int(epoch), ZONE).strftime("%Y-%m-%d %H:%M:%S")


def clock_time(epoch: int | None, with_date: bool = True) -> str:
    """"MM-DD HH:MM" or "HH:MM" (shifts on the store page and in the shift summary); "" for no time."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(int(epoch), ZONE).strftime("%m-%d %H:%M" if with_date else "%H:%M")
