"""C6: the console's transactions: orders and refunds filtered, their summary, and the CSV.

Lists: one bounded index query per page (`pagination.query_page`), on the most selective
index the filters allow (store → orders-by-store, merchant → orders-by-merchant,
sub-service-provider → orders-by-sub-service-provider, else the caller's account, or for an
account that owns no provider the orders attributed to it); the time range is the index's
`created_key` range; every other filter, and who may read, is a filter condition. Who may
read is one rule for every index: the owning account, or the sub-service-provider the item
is attributed to now (`account_id = caller OR ssp_account_id = caller`), so a foreign id in
a filter reads the same empty list as an unknown one and no filter needs a lookup first.

Summary: the daily totals (`payments.totals`) of one scope, or for a sub-service-provider
the sum over the merchants attributed to it now.

CSV: rows written as pages are read (`csv_pieces` takes any iterable of orders and never
holds more than one batch of rows), cut into chunks of at most CSV_CHUNK_ROWS rows per
request, since a Lambda answer is at most 6 MB; `X-Next-Cursor` continues the export.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from pynamodb.exceptions import DoesNotExist

from chalicelib import beijing, pagination, sub_merchants
from chalicelib.errors import InvalidField, NotFound
from chalicelib.models.orders import Order, Refund
from chalicelib.models.providers import Provider
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.models.sub_service_providers import SubServiceProvider
from chalicelib.onecode import lookup
from chalicelib.onecode.models import Store
from chalicelib.payments import amounts, names, totals

ORDERS_LIST = "transactions-orders"
REFUNDS_LIST = "transactions-refunds"
CHANNELS = ("official_direct", "maidan", "alipay")
ORDER_STATES = ("NOTPAY", "SUCCESS", "CLOSED", "PAYERROR")
REFUND_STATES = ("PROCESSING", "ABNORMAL", "SUCCESS", "FAILED")
ID_FILTERS = ("sp_mchid", "sub_service_provider", "merchant_id", "store_id", "clerk_id", "device_id", "code_id")
LIST_PARAMS = (*ID_FILTERS, "channel", "state", "from", "to", "limit", "cursor")
SUMMARY_PARAMS = (*ID_FILTERS, "channel", "from_day", "to_day")
SUMMARY_DEFAULT_DAYS = 30
CSV_CHUNK_ROWS = 5000
"""Rows per CSV request: about 1.5 MB of CSV, well under Lambda's 6 MB answer."""
CSV_CHUNK_READ_BUDGET = 4 * CSV_CHUNK_ROWS
"""Items one CSV request may read when filters drop most of them; the cursor goes on from there."""
CSV_PAGE = 1000
"""Orders per Query of the export (a console list page is at most 100; an export reads on)."""
CSV_BOM = "\ufeff"
"""Excel reads a CSV without a byte order mark as the system code page, which garbles Chinese."""

_ID = re.compile(r"^[A-Za-z0-9_.#:-]{1,64}$", re.ASCII)
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)
_ATTRIBUTE = {"sp_mchid": "sp_mchid", "sub_service_provider": "ssp_account_id", "merchant_id": "merchant_id",
              "store_id": "store_id", "clerk_id": "clerk_id", "device_id": "device_id", "code_id": "code_id",
              "channel": "channel", "state": "state"}


@dataclass
class ListFilters:
    ids: dict
    channel: str | None
    state: str | None
    created_from: int | None
    created_to: int | None


def _refuse_unknown(query: dict, known: tuple) -> None:
    for name in query:
        if name not in known:
            raise InvalidField(name, f"unknown query parameter {name}")


def _epoch(query: dict, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    if not re.fullmatch(r"[0-9]{1,10}", raw, re.ASCII):
        raise InvalidField(name, f"{name} must be epoch seconds (a whole number)")
    return int(raw)


def _ids(query: dict) -> dict:
    found = {}
    for name in ID_FILTERS:
        value = query.get(name)
        if value in (None, ""):
            continue
        if not _ID.match(value):
            raise InvalidField(name, f"{name} is not an id")
        found[name] = value
    return found


def _choice(query: dict, name: str, allowed: tuple) -> str | None:
    value = query.get(name)
    if value in (None, ""):
        return None
    if value not in allowed:
        raise InvalidField(name, f"{name} must be one of {', '.join(allowed)}")
    return value


def parse_list_filters(query: dict, states: tuple) -> ListFilters:
    """The filters of an order or refund list; `from` inclusive, `to` exclusive (epoch seconds
    of creation)."""
    query = dict(query or {})
    _refuse_unknown(query, LIST_PARAMS)
    filters = ListFilters(_ids(query), _choice(query, "channel", CHANNELS), _choice(query, "state", states),
                          _epoch(query, "from"), _epoch(query, "to"))
    if None not in (filters.created_from, filters.created_to) and filters.created_to <= filters.created_from:
        raise InvalidField("to", "to must be after from")
    return filters


def _owns_a_provider(account_id: str, sp_mchid: str | None) -> bool:
    if sp_mchid:
        try:
            Provider.get(account_id, sp_mchid)
            return True
        except DoesNotExist:
            return False
    return next(iter(Provider.query(account_id, limit=1)), None) is not None


def _time_range(model, filters: ListFilters):
    low = None if filters.created_from is None else f"{filters.created_from:010d}"
    high = None if filters.created_to is None else f"{filters.created_to:010d}"
    if low and high:
        return model.created_key.between(low, high)  # "<to>#…" sorts after "<to>": `to` is excluded
    if low:
        return model.created_key >= low
    if high:
        return model.created_key < high
    return None


def _query(model, account_id: str, filters: ListFilters):
    """(index, hash key, range condition, filter condition) for the filters, as said above."""
    ids = filters.ids
    if "store_id" in ids and hasattr(model, "by_store"):
        index, used = model.by_store, "store_id"
    elif "merchant_id" in ids:
        index, used = model.by_merchant, "merchant_id"
    elif "sub_service_provider" in ids:
        index, used = model.by_sub_service_provider, "sub_service_provider"
    elif _owns_a_provider(account_id, ids.get("sp_mchid")):
        index, used = model.by_account, None
    else:
        index, used = model.by_sub_service_provider, None
    hash_key = ids[used] if used else account_id
    condition = (model.account_id == account_id) | (model.ssp_account_id == account_id)
    wanted = {**ids, "channel": filters.channel, "state": filters.state}
    for name, value in wanted.items():
        if value is not None and name != used:
            condition = condition & (getattr(model, _ATTRIBUTE[name]) == value)
    return index, hash_key, _time_range(model, filters), condition


def list_orders(account_id: str, query: dict) -> pagination.Page:
    filters = parse_list_filters(query, ORDER_STATES)
    limit = pagination.parse_limit((query or {}).get("limit"))
    index, hash_key, time_range, condition = _query(Order, account_id, filters)
    return pagination.query_page(index, hash_key, ORDERS_LIST, limit, (query or {}).get("cursor"),
                                 range_key_condition=time_range, filter_condition=condition, newest_first=True)


def list_refunds(account_id: str, query: dict) -> pagination.Page:
    """Refunds have no by-store index: a store filter is a filter condition on the store's
    merchant (one read of the store), or on the account's refunds when the store is unknown."""
    filters = parse_list_filters(query, REFUND_STATES)
    if "device_id" in filters.ids:
        raise InvalidField("device_id", "refunds are not recorded per device: filter the orders by device")
    limit = pagination.parse_limit((query or {}).get("limit"))
    store_id = filters.ids.get("store_id")
    if store_id and "merchant_id" not in filters.ids:
        try:
            filters.ids["merchant_id"] = Store.get(store_id).merchant_id
        except DoesNotExist:
            pass
    index, hash_key, time_range, condition = _query(Refund, account_id, filters)
    return pagination.query_page(index, hash_key, REFUNDS_LIST, limit, (query or {}).get("cursor"),
                                 range_key_condition=time_range, filter_condition=condition, newest_first=True)


NAMES_PER_BATCH_GET = 100
"""DynamoDB's limit of keys per BatchGetItem: a page of at most 50 items always fits in one."""


def with_names(items: list, view: Callable[[Order | Refund], dict]) -> Callable[[Order | Refund], dict]:
    """`view` plus `merchant_name` and `store_name` (None for one removed since), for a list
    page's `items`: the page's distinct merchants and stores read in one BatchGetItem, so
    the 交易 list shows names, not ids, for one read more than the page's Query."""
    wanted = list(dict.fromkeys([(SubMerchant, item.account_id, item.merchant_id) for item in items] +
                                [(Store, item.store_id, None) for item in items if item.store_id]))
    found = {}
    for start in range(0, len(wanted), NAMES_PER_BATCH_GET):
        batch = wanted[start:start + NAMES_PER_BATCH_GET]
        found.update(zip(batch, lookup.get_many(batch)))

    def named(item: Order | Refund) -> dict:
        merchant = found.get((SubMerchant, item.account_id, item.merchant_id))
        store = found.get((Store, item.store_id, None)) if item.store_id else None
        return view(item) | {"merchant_name": merchant.name if merchant else None,
                             "store_name": store.name if store else None}
    return named


# --- summary ----------------------------------------------------------------------------------

def _day(query: dict, name: str, default: date) -> date:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        if not _DAY.match(raw):
            raise ValueError(raw)
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidField(name, f"{name} must be a date YYYY-MM-DD") from None


def parse_days(query: dict, today: date) -> tuple[str, str]:
    """from_day..to_day inclusive, Beijing dates, at most totals.MAX_DAYS days; by default
    the SUMMARY_DEFAULT_DAYS days up to today."""
    to_day = _day(query, "to_day", today)
    from_day = _day(query, "from_day", to_day - timedelta(days=SUMMARY_DEFAULT_DAYS - 1))
    if to_day < from_day:
        raise InvalidField("to_day", "to_day must not be before from_day")
    if (to_day - from_day).days + 1 > totals.MAX_DAYS:
        raise InvalidField("to_day", f"a summary covers at most {totals.MAX_DAYS} days")
    return from_day.isoformat(), to_day.isoformat()


def _readable_merchant(account_id: str, merchant_id: str, param: str) -> SubMerchant:
    try:
        return sub_merchants.readable(account_id, merchant_id)[0]
    except NotFound:
        raise NotFound(f"no such {param.removesuffix('_id')}", param=param) from None


def _attributed_merchant_scopes(member: str, owner_account_id: str | None = None,
                                sp_mchid: str | None = None) -> list[str]:
    """The merchant scopes of the merchants attributed to `member` now (of one owner, of one
    provider): a sub-service-provider's totals are theirs added up."""
    condition = None
    if owner_account_id is not None:
        condition = SubMerchant.account_id == owner_account_id
    if sp_mchid is not None:
        by_provider = SubMerchant.sp_mchid == sp_mchid
        condition = by_provider if condition is None else condition & by_provider
    return [totals.merchant_scope(merchant.merchant_id)
            for merchant in SubMerchant.by_sub_service_provider.query(member, filter_condition=condition)]


def _has_sub_service_provider(account_id: str, member: str, sp_mchid: str | None) -> bool:
    """Whether `member` is a sub-service-provider of one of the caller's providers (of
    `sp_mchid` when given): one Query of the member's few memberships."""
    memberships = SubServiceProvider.query(
        member, range_key_condition=None if sp_mchid is None else SubServiceProvider.sp_mchid == sp_mchid,
        filter_condition=SubServiceProvider.owner_account_id == account_id)
    return next(iter(memberships), None) is not None


def summary_scopes(account_id: str, ids: dict) -> list[str]:
    """The counters the caller's summary adds up: the narrowest scope filter decides (store,
    with clerk or device inside it; code; merchant; sub-service-provider; provider; account),
    and who may read it is checked on that one. Unknown and foreign ids answer the same 404."""
    for inside in ("clerk_id", "device_id"):
        if inside in ids and "store_id" not in ids:
            raise InvalidField("store_id", f"a summary by {inside} needs the store_id it belongs to")
    if "store_id" in ids:
        store_id = ids["store_id"]
        try:
            store = Store.get(store_id)
        except DoesNotExist:
            raise NotFound("no such store", param="store_id") from None
        _readable_merchant(account_id, store.merchant_id, "store_id")
        if "clerk_id" in ids:
            return [totals.clerk_scope(store_id, ids["clerk_id"])]
        if "device_id" in ids:
            return [totals.device_scope(store_id, ids["device_id"])]
        return [totals.store_scope(store_id)]
    if "code_id" in ids:
        try:
            merchant_id = QrCode.get(ids["code_id"]).merchant_id
        except DoesNotExist:
            merchant_id = None
        if not merchant_id:
            raise NotFound("no such code", param="code_id")
        _readable_merchant(account_id, merchant_id, "code_id")
        return [totals.code_scope(ids["code_id"])]
    if "merchant_id" in ids:
        return [totals.merchant_scope(_readable_merchant(account_id, ids["merchant_id"], "merchant_id").merchant_id)]
    if "sub_service_provider" in ids:
        member = ids["sub_service_provider"]
        if member == account_id:
            return _attributed_merchant_scopes(member, sp_mchid=ids.get("sp_mchid"))
        if not _has_sub_service_provider(account_id, member, ids.get("sp_mchid")):
            raise NotFound("no such sub_service_provider", param="sub_service_provider")
        return _attributed_merchant_scopes(member, account_id, ids.get("sp_mchid"))
    sp_mchid = ids.get("sp_mchid")
    if _owns_a_provider(account_id, sp_mchid):
        return [totals.provider_scope(account_id, sp_mchid) if sp_mchid else totals.account_scope(account_id)]
    if sp_mchid:
        try:
            SubServiceProvider.get(account_id, sp_mchid)
        except DoesNotExist:
            raise NotFound("no such provider", param="sp_mchid") from None
    return _attributed_merchant_scopes(account_id, sp_mchid=sp_mchid)


def summary(account_id: str, query: dict, today: date | None = None) -> dict:
    query = dict(query or {})
    _refuse_unknown(query, SUMMARY_PARAMS)
    today = today or beijing.today()
    from_day, to_day = parse_days(query, today)
    channel = _choice(query, "channel", CHANNELS)
    scopes = [totals.with_channel(scope, channel) for scope in summary_scopes(account_id, _ids(query))]
    return totals.summarize(scopes, from_day, to_day).body()


# --- CSV --------------------------------------------------------------------------------------

CSV_HEADER = ("商户订单号", "创建时间", "支付时间", "状态", "渠道", "钱包", "金额(元)", "金额(分)", "已退款(元)",
              "已退款(分)", "子商户", "子商户号", "服务商商户号", "子服务商", "门店", "店员", "设备", "收款码",
              "渠道订单号", "备注")
CHANNEL_NAMES = {"official_direct": "微信支付", "maidan": "买单", "alipay": "支付宝"}
_FORMULA_STARTS = frozenset("=+-@\t\r")
CSV_BATCH_ROWS = 500
"""Rows formatted together before a piece is handed on: few, large writes; bounded memory."""


def safe_cell(value) -> str:
    """A cell Excel or Sheets will not run as a formula (OWASP's CSV injection advice): text
    starting with = + - @ (or a tab / carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def csv_row(order: Order) -> list:
    """One order's cells. Read from the item's values at once (PynamoDB's attribute access
    was most of a row's cost); every stored text goes through `safe_cell`, while what this
    function formats itself (times, amounts, Chinese names) cannot start a formula."""
    values = order.attribute_values
    total, refunded = int(values["total"]), int(values.get("refunded") or 0)
    state, channel, wallet = values.get("state"), values.get("channel"), values.get("wallet")
    return [safe_cell(values["out_trade_no"]), beijing.date_time(values.get("created_at")), beijing.date_time(values.get("paid_at")),
            safe_cell(names.ORDER_STATES.get(state, state)), safe_cell(CHANNEL_NAMES.get(channel, channel)),
            safe_cell(names.WALLETS.get(wallet or "", wallet)), amounts.format_yuan(total), total,
            amounts.format_yuan(refunded), refunded,
            *[safe_cell(values.get(name)) for name in _STORED_TEXT]]


_STORED_TEXT = ("merchant_id", "sub_mchid", "sp_mchid", "ssp_account_id", "store_id", "clerk_id", "device_id", "code_id",
                "upstream_trade_no", "remark")


def csv_pieces(orders: Iterable[Order], with_header: bool) -> Iterator[str]:
    """The CSV text of `orders`, a piece per CSV_BATCH_ROWS rows, written as the orders come:
    nothing holds more than one batch, however many orders the iterable yields."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if with_header:
        buffer.write(CSV_BOM)
        writer.writerow(CSV_HEADER)
    rows = 0
    for order in orders:
        writer.writerow(csv_row(order))
        rows += 1
        if rows % CSV_BATCH_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


@dataclass
class CsvChunk:
    text: str
    rows: int
    next_cursor: str | None


def export_chunk(account_id: str, query: dict) -> CsvChunk:
    """One request's share of the CSV export: the filtered orders, newest first, page after
    page, until CSV_CHUNK_ROWS rows or CSV_CHUNK_READ_BUDGET items read; the first chunk (no
    cursor) opens with the byte order mark and the header row, the others continue it."""
    query = dict(query or {})
    _refuse_unknown(query, LIST_PARAMS)
    filters = parse_list_filters({k: v for k, v in query.items() if k != "limit"}, ORDER_STATES)
    index, hash_key, time_range, condition = _query(Order, account_id, filters)
    cursor = query.get("cursor") or None
    counted = {"rows": 0, "read": 0}

    def orders() -> Iterator[Order]:
        nonlocal cursor
        while counted["rows"] < CSV_CHUNK_ROWS and counted["read"] < CSV_CHUNK_READ_BUDGET:
            page = pagination.query_page(index, hash_key, ORDERS_LIST, min(CSV_PAGE, CSV_CHUNK_ROWS - counted["rows"]),
                                         cursor, range_key_condition=time_range, filter_condition=condition,
                                         newest_first=True)
            counted["rows"] += len(page.data)
            counted["read"] += page.items_read
            cursor = page.next_cursor
            yield from page.data
            if cursor is None:
                return

    first = not query.get("cursor")
    text = "".join(csv_pieces(orders(), with_header=first))
    return CsvChunk(text, counted["rows"], cursor)
