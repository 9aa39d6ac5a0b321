"""B4/B5: clerk messages and provider callbacks (placeholder until the deliveries work lands)."""
from __future__ import annotations


def fan_out(item, order, refund) -> None:
    """Create and attempt the item's deliveries once each."""


def views_for_order(out_trade_no: str) -> dict:
    """{"callbacks": [...], "messages": [...]} of an order, for its detail."""
    return {"callbacks": [], "messages": []}
