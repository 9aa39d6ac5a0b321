"""C5.1/C5.2/C5.4/C5.6: sub-merchants by hand, order prefixes, keys, channel switch, isolation."""
from __future__ import annotations

import base64

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from chalicelib.models.accounts import UniqueClaim
from chalicelib.models.sub_service_providers import SubServiceProvider
from tests.environment import STACK_NAME

SP_MCHID = "1900000109"


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    return bound_console


def _create(owner, **fields):
    body = {"sp_mchid": SP_MCHID, "name": "一号面馆", "short_name": "面馆", "admin_name": "李老板",
            "admin_email": "li@example.com", "sub_mchid": "1600000001", "remark": "试点", **fields}
    return owner.call("POST", "/v1/sub-merchants", body)


def test_a_sub_merchant_created_by_hand_gets_a_unique_order_prefix(owner):
    first = _create(owner)
    second = _create(owner, name="二号面馆", sub_mchid="1600000002")

    assert first.status == second.status == 201
    assert first.json["channel"] == "official_direct" and first.json["source"] == "manual"
    assert first.json["order_prefix"] != second.json["order_prefix"]
    assert len(first.json["order_prefix"]) == 6 and first.json["order_prefix"].startswith("M")
    assert owner.call("GET", f"/v1/sub-merchants/{first.json['id']}").json["name"] == "一号面馆"


@pytest.mark.parametrize("change, param", [
    ({"sp_mchid": "1999999999"}, "sp_mchid"),
    ({"name": ""}, "name"),
    ({"admin_email": "nope"}, "admin_email"),
    ({"sub_mchid": "12ab"}, "sub_mchid"),
    ({"logo_url": "http://plain.example/logo.png"}, "logo_url"),
    ({"sub_service_provider": "acct_not_attached"}, "sub_service_provider"),
])
def test_each_bad_field_is_named_and_nothing_is_written(owner, change, param):
    answer = _create(owner, **change)

    assert answer.status == 400 and answer.json["error"]["param"] == param
    assert owner.call("GET", "/v1/sub-merchants").json["data"] == []


def test_one_sub_mchid_is_one_sub_merchant(owner):
    _create(owner)

    again = _create(owner, name="别名")

    assert again.status == 409 and again.error_code == "sub_merchant_exists"


def test_edits_need_the_version_and_leave_fixed_fields_alone(owner):
    merchant = _create(owner).json
    path = f"/v1/sub-merchants/{merchant['id']}"

    edited = owner.call("PATCH", path, {"version": 1, "remark": "已上线", "ad_link_url": "https://shop.example/"})
    stale = owner.call("PATCH", path, {"version": 1, "remark": "旧的"})
    moved = owner.call("PATCH", path, {"version": 2, "sub_service_provider": "acct_x"})

    assert edited.status == 200 and edited.json["version"] == 2 and edited.json["remark"] == "已上线"
    assert stale.status == 409 and stale.error_code == "version_conflict"
    assert moved.status == 400 and moved.json["error"]["param"] == "sub_service_provider"


def test_list_filters_by_provider_channel_and_name_prefix(owner):
    _create(owner)
    _create(owner, name="二号面馆", sub_mchid="1600000002")
    owner.call("POST", "/v1/providers", {"sp_mchid": "1900000110", "name": "第二个服务商"})
    _create(owner, sp_mchid="1900000110", name="一号咖啡", sub_mchid="1600000003")

    names = lambda query: sorted(m["name"] for m in owner.call("GET", f"/v1/sub-merchants?{query}").json["data"])  # noqa: E731

    assert names("") == ["一号咖啡", "一号面馆", "二号面馆"]
    assert names(f"sp_mchid={SP_MCHID}") == ["一号面馆", "二号面馆"]
    assert names("name=%E4%B8%80%E5%8F%B7") == ["一号咖啡", "一号面馆"]
    assert names("channel=maidan") == []
    assert owner.call("GET", "/v1/sub-merchants?channel=cash").json["error"]["param"] == "channel"


def test_reset_keys_returns_them_once_and_keeps_only_the_public_key_and_an_encrypted_auth_key(owner):
    merchant = _create(owner).json

    keys = owner.call("POST", f"/v1/sub-merchants/{merchant['id']}/keys")

    assert keys.status == 201 and keys.json["auth_key"] and "PRIVATE KEY" in keys.json["private_key_pem"]
    private = serialization.load_pem_private_key(keys.json["private_key_pem"].encode(), None)
    assert private.key_size == 2048
    signature = private.sign(b"order", padding.PKCS1v15(), hashes.SHA256())
    detail = owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json
    public = serialization.load_pem_public_key(detail["keys"]["public_key_pem"].encode())
    public.verify(signature, b"order", padding.PKCS1v15(), hashes.SHA256())
    assert detail["keys"]["auth_key_set"] and detail["keys"]["reset_at"]
    assert keys.json["auth_key"] not in repr(detail)
    account_id = owner.call("GET", "/v1/me").json["id"]
    raw = boto3.client("dynamodb").get_item(TableName=f"{STACK_NAME}-sub-merchants",
                                            Key={"account_id": {"S": account_id}, "merchant_id": {"S": merchant["id"]}})
    assert keys.json["auth_key"] not in repr(raw) and "PRIVATE KEY" not in repr(raw)
    assert base64.b64decode(raw["Item"]["keys"]["M"]["auth_key"]["S"])


def test_a_key_reset_cannot_be_replayed_so_its_secrets_are_never_stored(owner):
    merchant = _create(owner).json

    answer = owner.call("POST", f"/v1/sub-merchants/{merchant['id']}/keys", headers={"idempotency-key": "k"})

    assert answer.status == 400 and answer.json["error"]["param"] == "Idempotency-Key"


def test_switching_to_maidan_asks_maidan_first(owner, sandbox):
    opened = next(m for m in (sandbox.sub_merchant(0, j) for j in range(20)) if m.opened_maidan)
    closed = next(m for m in (sandbox.sub_merchant(0, j) for j in range(20)) if not m.opened_maidan)
    administered = sandbox.provider(0).sp_mchid  # admin-01's, whose WeChat the owner bound
    owner.call("POST", "/v1/providers", {"sp_mchid": administered, "name": "演示服务商01"})
    good = _create(owner, sp_mchid=administered, sub_mchid=opened.sub_mchid).json
    bad = _create(owner, sp_mchid=administered, name="未开通", sub_mchid=closed.sub_mchid).json

    switched = owner.call("PUT", f"/v1/sub-merchants/{good['id']}/channel", {"channel": "maidan", "version": 1})
    refused = owner.call("PUT", f"/v1/sub-merchants/{bad['id']}/channel", {"channel": "maidan", "version": 1})
    back = owner.call("PUT", f"/v1/sub-merchants/{good['id']}/channel", {"channel": "official_direct", "version": 2})

    assert switched.status == 200 and switched.json["channel"] == "maidan"
    assert refused.status == 409 and refused.error_code == "maidan_not_opened"
    assert "微信买单服务商助手" in refused.json["error"]["message"]
    assert owner.call("GET", f"/v1/sub-merchants/{bad['id']}").json["channel"] == "official_direct"
    assert back.status == 200 and back.json["channel"] == "official_direct"


def test_a_sub_service_provider_sees_only_its_sub_merchants_and_the_count_follows(owner, console, phone):
    reseller = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(reseller.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    reseller_id = reseller.call("GET", "/v1/me").json["id"]
    owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers",
               {"account_id": reseller_id, "name": "渠道商", "admin_name": "王", "phone": "13800138000"})
    theirs = _create(owner, sub_service_provider=reseller_id).json
    mine = _create(owner, name="直营店", sub_mchid="1600000009").json

    listed = reseller.call("GET", "/v1/sub-merchants?as=sub_service_provider").json["data"]
    by_filter = owner.call("GET", f"/v1/sub-merchants?sub_service_provider={reseller_id}").json["data"]

    assert [m["id"] for m in listed] == [theirs["id"]] and listed[0]["access"] == "read_only"
    assert [m["id"] for m in by_filter] == [theirs["id"]]
    assert reseller.call("GET", f"/v1/sub-merchants/{theirs['id']}").json["access"] == "read_only"
    assert reseller.call("GET", f"/v1/sub-merchants/{mine['id']}").status == 404
    for method, path, body in (("PATCH", f"/v1/sub-merchants/{theirs['id']}", {"version": 1, "remark": "x"}),
                               ("POST", f"/v1/sub-merchants/{theirs['id']}/keys", None),
                               ("PUT", f"/v1/sub-merchants/{theirs['id']}/channel", {"channel": "maidan", "version": 1})):
        assert reseller.call(method, path, body).status == 404
    assert SubServiceProvider.get(reseller_id, SP_MCHID).merchant_count == 1
    detach = owner.call("DELETE", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller_id}")
    assert detach.status == 409 and "1 sub-merchants" in detach.json["error"]["message"]


def test_another_accounts_sub_merchant_is_not_found(owner, console, phone):
    merchant = _create(owner).json
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    assert stranger.call("GET", f"/v1/sub-merchants/{merchant['id']}").status == 404
    assert stranger.call("GET", "/v1/sub-merchants").json["data"] == []
    assert stranger.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "x"}).json["error"]["param"] == \
        "sp_mchid"


def test_a_refused_edit_leaves_the_new_sub_mchid_unclaimed(owner):
    created = _create(owner, sub_mchid=None).json

    refused = owner.call("PATCH", f"/v1/sub-merchants/{created['id']}",
                         {"version": created["version"], "sub_mchid": "1600000077", "name": "x" * 65})
    retried = owner.call("PATCH", f"/v1/sub-merchants/{created['id']}",
                         {"version": created["version"], "sub_mchid": "1600000077"})

    assert refused.status == 400 and refused.json["error"]["param"] == "name"
    assert retried.status == 200 and retried.json["sub_mchid"] == "1600000077" and retried.json["version"] == 2
    assert UniqueClaim.get("sub_mchid#1600000077").owner_id == created["id"]


def test_a_sub_mchid_claimed_by_another_merchant_changes_nothing_on_edit(owner):
    _create(owner, sub_mchid="1600000088")
    other = _create(owner, name="二号面馆", sub_mchid=None).json

    refused = owner.call("PATCH", f"/v1/sub-merchants/{other['id']}",
                         {"version": other["version"], "sub_mchid": "1600000088", "short_name": "二号"})

    assert refused.status == 409 and refused.error_code == "sub_merchant_exists"
    stored = owner.call("GET", f"/v1/sub-merchants/{other['id']}").json
    assert (stored["sub_mchid"], stored["short_name"], stored["version"]) == (None, "面馆", other["version"])


@pytest.mark.parametrize("member", [False, 0, [], {}, 12])
def test_a_sub_service_provider_that_is_not_an_account_id_is_named_on_create_and_edit(owner, member):
    created = _create(owner).json

    on_create = _create(owner, sub_mchid="1600000099", sub_service_provider=member)
    on_edit = owner.call("PATCH", f"/v1/sub-merchants/{created['id']}",
                         {"version": created["version"], "sub_service_provider": member})

    for answer in (on_create, on_edit):
        assert answer.status == 400 and answer.json["error"]["param"] == "sub_service_provider"


def test_switching_to_maidan_under_a_provider_no_bound_wechat_administers_is_refused_before_maidan_is_asked(
        owner, sandbox, wire):
    opened = next(m for m in (sandbox.sub_merchant(0, j) for j in range(20)) if m.opened_maidan)
    merchant = _create(owner, sub_mchid=opened.sub_mchid).json

    refused = owner.call("PUT", f"/v1/sub-merchants/{merchant['id']}/channel", {"channel": "maidan", "version": 1})

    assert refused.status == 409 and refused.error_code == "provider_not_administered"
    assert wire.count("/maidan-status") == 0
    assert owner.call("GET", f"/v1/sub-merchants/{merchant['id']}").json["channel"] == "official_direct"
