"""C6: daily totals per scope (placeholder until the transactions work lands)."""
from __future__ import annotations


def record_once(item, order, refund) -> None:
    """Add the item's amounts to the daily totals once."""
