"""C4: sub-service-providers attached to a provider; what a sub-service-provider may see."""
from __future__ import annotations

import pytest

from chalicelib.models.sub_service_providers import SubServiceProvider

SP_MCHID = "1900000109"


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    return bound_console


@pytest.fixture
def reseller(console, phone):
    """Another console account, with its own WeChat bound, to be attached as a reseller."""
    user = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    user.account_id = user.call("GET", "/v1/me").json["id"]
    return user


def _attach(owner, reseller, **extra):
    body = {"account_id": reseller.account_id, "name": "杭州渠道商", "admin_name": "王经理", "phone": "13800138000",
            "rebate_ratio_bp": 1500, "remark": "华东区", **extra}
    return owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", body)


def test_a_console_account_is_attached_listed_edited_and_detached(owner, reseller):
    attached = _attach(owner, reseller)
    assert attached.status == 201 and attached.json["name"] == "杭州渠道商" and attached.json["version"] == 1

    listed = owner.call("GET", f"/v1/providers/{SP_MCHID}/sub-service-providers").json["data"]
    assert [r["account_id"] for r in listed] == [reseller.account_id]

    edited = owner.call("PATCH", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}",
                        {"version": 1, "phone": "0571-88888888", "rebate_ratio_bp": 2000})
    assert edited.status == 200 and edited.json["phone"] == "0571-88888888" and edited.json["version"] == 2

    assert owner.call("DELETE", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}").status == 200
    assert owner.call("GET", f"/v1/providers/{SP_MCHID}/sub-service-providers").json["data"] == []
    actions = [e["action"] for e in owner.call("GET", f"/v1/audit-log?entity=provider%23{SP_MCHID}").json["data"]]
    assert actions[:3] == ["sub_service_provider.detached", "sub_service_provider.updated",
                           "sub_service_provider.attached"]


@pytest.mark.parametrize("change, param", [
    ({"account_id": "acct_does_not_exist"}, "account_id"),
    ({"account_id": ""}, "account_id"),
    ({"name": ""}, "name"),
    ({"admin_name": "x" * 33}, "admin_name"),
    ({"phone": "call me"}, "phone"),
    ({"rebate_ratio_bp": -1}, "rebate_ratio_bp"),
])
def test_each_bad_field_is_named(owner, reseller, change, param):
    answer = _attach(owner, reseller, **change)

    assert answer.status == 400 and answer.json["error"]["param"] == param
    assert owner.call("GET", f"/v1/providers/{SP_MCHID}/sub-service-providers").json["data"] == []


def test_the_owner_cannot_attach_itself_or_the_same_account_twice(owner, reseller):
    me = owner.call("GET", "/v1/me").json["id"]
    assert owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers",
                      {"account_id": me, "name": "n", "admin_name": "a", "phone": "13800138000"}).status == 400
    _attach(owner, reseller)

    again = _attach(owner, reseller)

    assert again.status == 409 and again.error_code == "sub_service_provider_exists"


def test_one_with_merchants_cannot_be_detached_and_the_answer_says_how_many(owner, reseller):
    _attach(owner, reseller)
    record = SubServiceProvider.get(reseller.account_id, SP_MCHID)
    record.update(actions=[SubServiceProvider.merchant_count.set(3)])

    answer = owner.call("DELETE", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}")

    assert answer.status == 409 and answer.error_code == "sub_service_provider_has_merchants"
    assert "3 sub-merchants" in answer.json["error"]["message"]
    assert len(owner.call("GET", f"/v1/providers/{SP_MCHID}/sub-service-providers").json["data"]) == 1


def test_a_stale_edit_is_refused(owner, reseller):
    _attach(owner, reseller)
    path = f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}"
    owner.call("PATCH", path, {"version": 1, "remark": "A"})

    stale = owner.call("PATCH", path, {"version": 1, "remark": "B"})

    assert stale.status == 409 and stale.error_code == "version_conflict"


def test_a_sub_service_provider_sees_only_its_providers_read_only(owner, reseller):
    _attach(owner, reseller)

    attributed = reseller.call("GET", "/v1/providers?as=sub_service_provider").json["data"]
    detail = reseller.call("GET", f"/v1/providers/{SP_MCHID}")

    assert [p["sp_mchid"] for p in attributed] == [SP_MCHID] and attributed[0]["access"] == "read_only"
    assert detail.status == 200 and detail.json["access"] == "read_only"
    assert "wechat_pay" not in detail.json and "callback_url" not in detail.json
    assert reseller.call("GET", "/v1/providers").json["data"] == []


def test_every_provider_route_refuses_a_sub_service_provider_and_a_stranger(owner, reseller, console, phone):
    _attach(owner, reseller)
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    calls = [("PATCH", f"/v1/providers/{SP_MCHID}", {"version": 1, "remark": "x"}),
             ("POST", f"/v1/providers/{SP_MCHID}/configuration-checks", None),
             ("POST", f"/v1/providers/{SP_MCHID}/maidan-assistant-binding", None),
             ("GET", f"/v1/providers/{SP_MCHID}/sub-service-providers", None),
             ("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers",
              {"account_id": reseller.account_id, "name": "n", "admin_name": "a", "phone": "13800138000"}),
             ("PATCH", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}", {"version": 1}),
             ("DELETE", f"/v1/providers/{SP_MCHID}/sub-service-providers/{reseller.account_id}", None)]

    for who in (reseller, stranger):
        for method, path, body in calls:
            answer = who.call(method, path, body)
            assert answer.status in (403, 404), (method, path, answer.status)
    assert stranger.call("GET", f"/v1/providers/{SP_MCHID}").status == 404
    assert owner.call("GET", f"/v1/providers/{SP_MCHID}").json["version"] == 1
