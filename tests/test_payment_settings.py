"""Issue 12 item 8 (C8): the pay limit per provider and per merchant, and the result page's
review and coupon slots per provider — validated field by field, audited, in the views."""
from __future__ import annotations

import pytest

from chalicelib.models.providers import Provider
from chalicelib.models.sub_merchants import SubMerchant

SP_MCHID = "1900000109"
REVIEW = {"title": "给我们评价", "url": "https://isv.example/review"}
COUPON = {"title": "领取优惠券", "url": "https://isv.example/coupon"}


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    return bound_console


def _provider(owner) -> dict:
    return owner.call("GET", f"/v1/providers/{SP_MCHID}").json


def _patch_provider(owner, **fields):
    return owner.call("PATCH", f"/v1/providers/{SP_MCHID}", {"version": _provider(owner)["version"], **fields})


def _merchant(owner, **fields):
    return owner.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "一号面馆", **fields})


def _stored_provider(owner) -> Provider:
    return Provider.get(owner.call("GET", "/v1/me").json["id"], SP_MCHID)


def test_a_new_provider_has_no_pay_limit_and_empty_result_slots(owner):
    view = _provider(owner)

    assert view["pay_limit_fen"] is None
    assert view["result_slots"] == {"review": None, "coupon": None}


def test_a_provider_keeps_its_pay_limit_and_result_slots_and_shows_them(owner):
    answer = _patch_provider(owner, pay_limit_fen=500000, result_slots={"review": REVIEW, "coupon": COUPON})

    assert answer.status == 200
    assert answer.json["pay_limit_fen"] == 500000
    assert answer.json["result_slots"] == {"review": REVIEW, "coupon": COUPON}
    stored = _stored_provider(owner)
    assert stored.pay_limit_fen == 500000 and stored.result_slots.as_dict() == {"review": REVIEW, "coupon": COUPON}


def test_a_provider_created_with_a_pay_limit_and_a_slot_has_them(bound_console):
    created = bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商",
                                                           "pay_limit_fen": 1, "result_slots": {"coupon": COUPON}})

    assert created.status == 201
    assert created.json["pay_limit_fen"] == 1
    assert created.json["result_slots"] == {"review": None, "coupon": COUPON}


def test_a_slot_left_out_keeps_its_value_and_a_null_slot_is_cleared(owner):
    _patch_provider(owner, result_slots={"review": REVIEW, "coupon": COUPON})

    kept = _patch_provider(owner, result_slots={"coupon": None}).json

    assert kept["result_slots"] == {"review": REVIEW, "coupon": None}
    cleared = _patch_provider(owner, result_slots=None, pay_limit_fen=None).json
    assert cleared["result_slots"] == {"review": None, "coupon": None} and cleared["pay_limit_fen"] is None
    assert _stored_provider(owner).result_slots is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "100", 100000001, True, False, {"fen": 1}])
def test_a_provider_pay_limit_that_is_not_whole_fen_in_range_is_refused_by_name(owner, value):
    answer = _patch_provider(owner, pay_limit_fen=value)

    assert answer.status == 400 and answer.json["error"]["param"] == "pay_limit_fen"
    assert _stored_provider(owner).pay_limit_fen is None


@pytest.mark.parametrize("slots, param", [
    ({"review": {"title": "评价", "url": "http://isv.example/review"}}, "result_slots.review.url"),
    ({"review": {"title": "评价", "url": "not a url"}}, "result_slots.review.url"),
    ({"coupon": {"title": "券" * 21, "url": "https://isv.example/c"}}, "result_slots.coupon.title"),
    ({"coupon": {"title": "   ", "url": "https://isv.example/c"}}, "result_slots.coupon.title"),
    ({"coupon": {"url": "https://isv.example/c"}}, "result_slots.coupon.title"),
    ({"coupon": {"title": "领券"}}, "result_slots.coupon.url"),
    ({"coupon": {"title": 7, "url": "https://isv.example/c"}}, "result_slots.coupon.title"),
    ({"coupon": "https://isv.example/c"}, "result_slots.coupon"),
    ({"lottery": COUPON}, "result_slots.lottery"),
    ({"review": {**REVIEW, "image": "https://isv.example/i.png"}}, "result_slots.review.image"),
    (["review"], "result_slots"),
])
def test_a_bad_result_slot_is_refused_naming_the_field_and_nothing_changes(owner, slots, param):
    version = _provider(owner)["version"]

    answer = _patch_provider(owner, result_slots=slots)

    assert answer.status == 400 and answer.json["error"]["param"] == param
    assert _provider(owner)["version"] == version and _stored_provider(owner).result_slots is None


def test_pay_limit_and_slot_changes_are_audited(owner):
    _patch_provider(owner, pay_limit_fen=20000, result_slots={"review": REVIEW})
    _patch_provider(owner, pay_limit_fen=30000, result_slots={"review": None})

    entries = owner.call("GET", f"/v1/audit-log?entity=provider%23{SP_MCHID}").json["data"]

    assert [e["action"] for e in entries] == ["provider.updated", "provider.updated", "provider.created"]
    assert entries[1]["changes"] == {"pay_limit_fen": {"from": None, "to": 20000},
                                     "result_slots.review": {"from": None, "to": REVIEW}}
    assert entries[0]["changes"] == {"pay_limit_fen": {"from": 20000, "to": 30000},
                                     "result_slots.review": {"from": REVIEW, "to": None}}


def test_the_same_settings_again_change_nothing_and_write_no_audit_entry(owner):
    _patch_provider(owner, pay_limit_fen=20000, result_slots={"review": REVIEW})
    version = _provider(owner)["version"]

    _patch_provider(owner, pay_limit_fen=20000, result_slots={"review": REVIEW})

    assert _provider(owner)["version"] == version
    assert len(owner.call("GET", f"/v1/audit-log?entity=provider%23{SP_MCHID}").json["data"]) == 2


def test_a_sub_merchant_keeps_its_own_pay_limit_from_create_and_edit_with_audit(owner):
    created = _merchant(owner, pay_limit_fen=100000)
    merchant_id = created.json["id"]

    edited = owner.call("PATCH", f"/v1/sub-merchants/{merchant_id}",
                        {"version": created.json["version"], "pay_limit_fen": 50000})

    assert created.status == 201 and created.json["pay_limit_fen"] == 100000
    assert edited.status == 200 and edited.json["pay_limit_fen"] == 50000
    assert SubMerchant.get(owner.call("GET", "/v1/me").json["id"], merchant_id).pay_limit_fen == 50000
    entries = owner.call("GET", f"/v1/audit-log?entity=sub_merchant%23{merchant_id}").json["data"]
    assert entries[0]["changes"] == {"pay_limit_fen": {"from": 100000, "to": 50000}}
    assert entries[1]["changes"]["pay_limit_fen"] == {"from": None, "to": 100000}
    cleared = owner.call("PATCH", f"/v1/sub-merchants/{merchant_id}", {"version": edited.json["version"],
                                                                         "pay_limit_fen": None})
    assert cleared.json["pay_limit_fen"] is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "100", 100000001, True])
def test_a_sub_merchant_pay_limit_that_is_not_whole_fen_in_range_is_refused_by_name(owner, value):
    refused_create = _merchant(owner, pay_limit_fen=value)
    merchant = _merchant(owner).json

    refused_edit = owner.call("PATCH", f"/v1/sub-merchants/{merchant['id']}",
                              {"version": merchant["version"], "pay_limit_fen": value})

    assert refused_create.status == 400 and refused_create.json["error"]["param"] == "pay_limit_fen"
    assert refused_edit.status == 400 and refused_edit.json["error"]["param"] == "pay_limit_fen"
    assert [m["id"] for m in owner.call("GET", "/v1/sub-merchants").json["data"]] == [merchant["id"]]
    assert owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["pay_limit_fen"] is None
