"""Generated orders for the transactions tests and bench: spread over days, stores, clerks,
channels and states, deterministic for a seed."""
from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from chalicelib.models.orders import Order, Refund
from chalicelib.payments import outbox, totals

SP_MCHID = "1900000109"
CHANNELS = ("official_direct", "maidan", "alipay")
DAY = 86_400
START = 1_780_000_000  # 2026-05-29 04:26:40 Beijing


@dataclass
class Shop:
    """One merchant and its stores, clerks and codes, as the generator attributes orders."""
    account_id: str
    merchant_id: str
    prefix: str
    ssp_account_id: str | None = None
    stores: dict = field(default_factory=dict)
    """store_id -> [clerk_id, ...]"""


def order(shop: Shop, number: int, rng: random.Random, *, start: int = START, days: int = 30,
          states=("SUCCESS",) * 8 + ("CLOSED", "NOTPAY")) -> Order:
    out_trade_no = f"{shop.prefix}{number:08d}"
    created_at = start + rng.randrange(days * DAY)
    store_id = rng.choice(sorted(shop.stores))
    clerk_id = rng.choice(shop.stores[store_id] + [None])
    state = rng.choice(states)
    channel = rng.choice(CHANNELS)
    return Order(out_trade_no=out_trade_no, account_id=shop.account_id, sp_mchid=SP_MCHID,
                 merchant_id=shop.merchant_id, ssp_account_id=shop.ssp_account_id, store_id=store_id,
                 clerk_id=clerk_id, code_id=f"code_{clerk_id or store_id}", channel=channel,
                 wallet="alipay" if channel == "alipay" else "wechat", state=state,
                 total=rng.randrange(1, 500_000), refunded=0, created_at=created_at,
                 paid_at=created_at + rng.randrange(1, 600) if state == "SUCCESS" else None,
                 created_key=f"{created_at:010d}#{out_trade_no}", remark=rng.choice([None, "=1+1", "加辣"]))


def orders(shop: Shop, count: int, seed: int = 1, **options) -> Iterator[Order]:
    rng = random.Random(seed)
    return (order(shop, number, rng, **options) for number in range(count))


def refund_of(paid: Order, amount: int, number: int = 1) -> Refund:
    at = int(paid.paid_at) + 3 * 3600
    out_refund_no = f"{paid.out_trade_no}R{number}"
    return Refund(out_refund_no=out_refund_no, out_trade_no=paid.out_trade_no, account_id=paid.account_id,
                  sp_mchid=paid.sp_mchid, merchant_id=paid.merchant_id, ssp_account_id=paid.ssp_account_id,
                  amount=amount, state="SUCCESS", created_at=at, succeeded_at=at,
                  created_key=f"{at:010d}#{out_refund_no}", store_id=paid.store_id, clerk_id=paid.clerk_id,
                  code_id=paid.code_id, channel=paid.channel)


def save_all(items) -> None:
    """Write model items in batches (the tests' and bench's fixtures, not the app's path)."""
    by_model: dict = {}
    for item in items:
        by_model.setdefault(type(item), []).append(item)
    for model, group in by_model.items():
        with model.batch_write() as batch:
            for item in group:
                batch.save(item)


def count_paid(paid: Order) -> None:
    """Count a paid order as the follow-up does: its outbox item, then `record_once`."""
    item = outbox.order_paid_item(paid, int(paid.paid_at))
    item.save()
    totals.record_once(item, paid, None)


def count_refund(paid: Order, refund: Refund) -> None:
    item = outbox.refund_succeeded_item(refund, int(refund.succeeded_at))
    item.save()
    totals.record_once(item, paid, refund)
