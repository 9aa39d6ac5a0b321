"""P7 for the console: `GET /v1/orders/{out_trade_no}` and `GET /v1/sub-merchants/{id}/orders`.
The owner reads every order of its merchants; a sub-service-provider only the orders
attributed to it; anyone else gets the same 404 as an order that does not exist."""
from __future__ import annotations

import pytest

from chalicelib.models.orders import Order

SP_MCHID = "1900000109"
AT = 1_780_000_000


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    bound_console.account_id = bound_console.call("GET", "/v1/me").json["id"]
    return bound_console


@pytest.fixture
def reseller(owner, console, phone):
    """Another console account, attached to the owner's provider as a sub-service-provider."""
    user = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    user.account_id = user.call("GET", "/v1/me").json["id"]
    attached = owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", {
        "account_id": user.account_id, "name": "杭州渠道商", "admin_name": "王经理", "phone": "13800138000"})
    assert attached.status == 201, attached.json
    return user


@pytest.fixture
def stranger(console, phone):
    user = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    return user


def create_merchant(owner, name: str, **fields) -> dict:
    created = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": name, **fields})
    assert created.status == 201, created.json
    return created.json


def save_order(owner, merchant: dict, number: int, ssp_account_id: str | None) -> str:
    out_trade_no = f"{merchant['order_prefix']}ORDER{number:04d}"
    at = AT + number
    Order(out_trade_no=out_trade_no, account_id=owner.account_id, sp_mchid=SP_MCHID, merchant_id=merchant["id"],
          ssp_account_id=ssp_account_id, store_id="st_1", channel="official_direct", wallet="wechat",
          state="SUCCESS", total=100 * number, created_at=at, created_key=f"{at:010d}#{out_trade_no}").save()
    return out_trade_no


@pytest.fixture
def shops(owner, reseller):
    """The reseller's merchant with two orders attributed to it and one from before it took
    the merchant over (attributed to nobody); and the owner's own merchant with one order."""
    theirs = create_merchant(owner, "渠道面馆", sub_service_provider=reseller.account_id)
    mine = create_merchant(owner, "直营面馆")
    return {"theirs": theirs, "mine": mine,
            "theirs_orders": [save_order(owner, theirs, 1, reseller.account_id),
                              save_order(owner, theirs, 2, reseller.account_id)],
            "before_takeover": save_order(owner, theirs, 3, None),
            "mine_order": save_order(owner, mine, 4, None)}


def numbers(answer) -> list[str]:
    assert answer.status == 200, answer.json
    return [order["out_trade_no"] for order in answer.json["data"]]


def test_the_owner_reads_any_order_of_its_merchants_by_number(owner, shops):
    answer = owner.call("GET", f"/v1/orders/{shops['theirs_orders'][1]}")

    assert answer.status == 200
    assert (answer.json["object"], answer.json["out_trade_no"], answer.json["total"], answer.json["state"],
            answer.json["merchant_id"]) == ("order", shops["theirs_orders"][1], 200, "SUCCESS", shops["theirs"]["id"])
    assert owner.call("GET", f"/v1/orders/{shops['mine_order']}").status == 200


def test_the_owner_lists_every_order_of_a_merchant_newest_first_in_pages(owner, shops):
    path = f"/v1/sub-merchants/{shops['theirs']['id']}/orders"

    assert numbers(owner.call("GET", path)) == [shops["before_takeover"], *reversed(shops["theirs_orders"])]
    first = owner.call("GET", f"{path}?limit=2")
    second = owner.call("GET", f"{path}?limit=2&cursor={first.json['next_cursor']}")
    assert first.json["has_more"] is True and numbers(second) == [shops["theirs_orders"][0]]


def test_a_sub_service_provider_reads_only_the_orders_attributed_to_it(reseller, shops):
    listed = reseller.call("GET", f"/v1/sub-merchants/{shops['theirs']['id']}/orders")
    own = reseller.call("GET", f"/v1/orders/{shops['theirs_orders'][0]}")

    assert numbers(listed) == list(reversed(shops["theirs_orders"]))
    assert own.status == 200 and own.json["sub_service_provider"] == reseller.account_id
    for foreign in (shops["before_takeover"], shops["mine_order"]):
        answer = reseller.call("GET", f"/v1/orders/{foreign}")
        assert (answer.status, answer.error_code, answer.json["error"]["param"]) == (404, "not_found", "out_trade_no")
    assert reseller.call("GET", f"/v1/sub-merchants/{shops['mine']['id']}/orders").status == 404


def test_a_foreign_account_gets_404_for_orders_and_merchants_like_for_unknown_ones(stranger, shops):
    for path in (f"/v1/orders/{shops['mine_order']}", f"/v1/orders/{shops['theirs_orders'][0]}",
                 f"/v1/sub-merchants/{shops['mine']['id']}/orders", f"/v1/sub-merchants/{shops['theirs']['id']}/orders"):
        assert stranger.call("GET", path).status == 404, path
    unknown = stranger.call("GET", "/v1/orders/M99999NOSUCHORDER")
    foreign = stranger.call("GET", f"/v1/orders/{shops['mine_order']}")
    assert unknown.json["error"] == foreign.json["error"]  # nothing tells a foreign order from none
