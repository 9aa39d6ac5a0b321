"""C5.7 in the console: a merchant's two setup codes (issued when first asked for, never at
sync), their re-issue, and the read-only views of its admins, stores, staff and devices."""
from __future__ import annotations

import threading

import pytest

from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.base import now
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode import access, activation, codes, staff, stores
from sandbox.world import SandboxConfig
from tests import environment

SP_MCHID = "1900000109"
ADMIN_OPENID = "oAdminOpenid-0001"
CLERK_OPENID = "oClerkOpenid-0002"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG = {"accept": "image/png"}


def _identity(openid: str) -> WechatIdentity:
    return WechatIdentity(app_id="wx0123456789abcdef", openid=openid, unionid=None)


def _one_code_items() -> list[QrCode]:
    return [code for code in QrCode.scan() if code.kind in codes.ALL_KINDS]


@pytest.fixture
def reseller(console, phone):
    """Another console account with its own WeChat bound, made the merchant's sub-service-provider."""
    user = console.sign_up_and_in("reseller@example.com")
    phone("admin-02").open(user.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    user.account_id = user.call("GET", "/v1/me").json["id"]
    return user


@pytest.fixture
def owner(bound_console, reseller):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    attached = bound_console.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers",
                                  {"account_id": reseller.account_id, "name": "杭州渠道商", "admin_name": "王经理",
                                   "phone": "13800138000"})
    assert attached.status == 201, attached.json
    created = bound_console.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "一号面馆",
                                                               "sub_service_provider": reseller.account_id})
    assert created.status == 201, created.json
    bound_console.merchant_id = created.json["id"]
    bound_console.account_id = bound_console.call("GET", "/v1/me").json["id"]
    return bound_console


def _codes(owner):
    answer = owner.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes")
    assert answer.status == 200, answer.json
    return answer.json


def _activate_admin(owner) -> str:
    code_id = _codes(owner)["admin_activation"]["id"]
    activation.activate(code_id, codes.MERCHANT_ADMIN_ACTIVATION, _identity(ADMIN_OPENID), {"name": "张老板"})
    return code_id


def _store_with_a_clerk(owner):
    """A store opened by the activated admin, its manager still pending, one clerk activated."""
    _activate_admin(owner)
    admin = access.as_admin(owner.merchant_id, ADMIN_OPENID)
    store, _manager = stores.create(admin, {"name": "西湖店", "province": "浙江省", "city": "杭州市",
                                            "district": "西湖区", "address": "文三路 1 号", "manager_name": "李店长"})
    admin_in_store, store = access.in_store(store.store_id, ADMIN_OPENID)
    clerk = staff.invite(admin_in_store, store, {"name": "王小二", "phone": "13800138000", "role": "clerk"})
    activation.activate(clerk.activation_code_id, codes.CLERK_ACTIVATION, _identity(CLERK_OPENID),
                        {"messages_on": "on"})
    return store


def test_a_created_merchant_has_no_codes_until_the_provider_asks_and_then_always_the_same_pair(owner):
    assert _one_code_items() == []

    first, second = _codes(owner), _codes(owner)

    assert first == second
    assert {first["admin_activation"]["kind"], first["management"]["kind"]} == {
        codes.MERCHANT_ADMIN_ACTIVATION, codes.MERCHANT_MANAGEMENT}
    assert (first["admin_activation"]["state"], first["management"]["state"]) == ("pending", "active")
    assert first["admin_activation"]["expires_at"] > now() and first["management"]["expires_at"] is None
    assert sorted(code.code_id for code in _one_code_items()) == sorted(
        [first["admin_activation"]["id"], first["management"]["id"]])


def test_concurrent_first_asks_agree_on_one_pair(owner):
    answers, barrier = [], threading.Barrier(4)

    def ask():
        barrier.wait()
        answers.append(owner.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes"))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status for answer in answers] == [200] * 4
    pairs = {(answer.json["admin_activation"]["id"], answer.json["management"]["id"]) for answer in answers}
    assert len(pairs) == 1
    assert len(_one_code_items()) == 2


def test_a_used_activation_code_shows_used_and_a_reissue_gives_a_new_pending_one(owner):
    used_id = _activate_admin(owner)
    assert _codes(owner)["admin_activation"] == _codes(owner)["admin_activation"] | {"id": used_id, "state": "used"}

    reissued = owner.call("POST", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes/admin-activation")

    assert reissued.status == 201, reissued.json
    fresh = reissued.json["admin_activation"]
    assert fresh["id"] != used_id and fresh["state"] == "pending"
    assert codes.state_of(used_id) == "used"
    assert _codes(owner)["admin_activation"]["id"] == fresh["id"]


def test_an_expired_activation_code_is_shown_expired_and_a_reissue_revokes_it(owner):
    old = _codes(owner)["admin_activation"]
    QrCode(old["id"]).update(actions=[QrCode.expires_at.set(now() - 1)])
    assert _codes(owner)["admin_activation"]["state"] == "expired"

    reissued = owner.call("POST", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes/admin-activation")

    assert reissued.status == 201 and reissued.json["admin_activation"]["state"] == "pending"
    assert codes.state_of(old["id"]) == "revoked"
    pending = owner.call("POST", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes/admin-activation")
    assert codes.state_of(reissued.json["admin_activation"]["id"]) == "revoked"
    assert pending.json["admin_activation"]["state"] == "pending"


def test_a_management_reissue_revokes_the_old_management_code(owner):
    old = _codes(owner)["management"]

    reissued = owner.call("POST", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes/management")

    assert reissued.status == 201, reissued.json
    assert reissued.json["management"]["id"] != old["id"] and reissued.json["management"]["state"] == "active"
    assert codes.state_of(old["id"]) == "revoked"
    assert _codes(owner)["management"]["id"] == reissued.json["management"]["id"]


def test_setup_codes_answer_not_found_to_the_sub_service_provider_and_to_a_stranger(owner, reseller, console, phone):
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    for caller in (reseller, stranger):
        for method, path in (("GET", "setup-codes"), ("POST", "setup-codes/admin-activation"),
                             ("POST", "setup-codes/management")):
            answer = caller.call(method, f"/v1/sub-merchants/{owner.merchant_id}/{path}")
            assert (answer.status, answer.error_code) == (404, "not_found"), (method, path)
    assert _one_code_items() == []
    assert stranger.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/admins").status == 404
    assert stranger.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/stores").status == 404


def test_the_admins_list_shows_who_is_active_and_the_pending_codes_without_any_openid(owner):
    _activate_admin(owner)
    pending = owner.call("POST", f"/v1/sub-merchants/{owner.merchant_id}/setup-codes/admin-activation").json

    answer = owner.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/admins")

    assert answer.status == 200, answer.json
    by_state = {admin["state"]: admin for admin in answer.json["data"]}
    active, waiting = by_state["active"], by_state["pending"]
    assert len(answer.json["data"]) == 2
    assert (active["name"], active["state"], active["can_refund"], active["activation_code"]) == (
        "张老板", "active", True, None)
    assert active["activated_at"] is not None and active["invited_by"] == "provider"
    assert waiting["state"] == "pending" and waiting["activation_code"]["id"] == pending["admin_activation"]["id"]
    assert ADMIN_OPENID.encode() not in answer.raw


def test_the_owner_and_the_sub_service_provider_read_the_stores_with_staff_devices_and_codes(owner, reseller):
    store = _store_with_a_clerk(owner)

    for caller in (owner, reseller):
        listed = caller.call("GET", f"/v1/sub-merchants/{owner.merchant_id}/stores?limit=1")
        assert listed.status == 200, listed.json
        assert [item["name"] for item in listed.json["data"]] == ["西湖店"]
        assert listed.json["data"][0]["collection_code"]["kind"] == codes.STORE_COLLECTION
        detail = caller.call("GET", f"/v1/stores/{store.store_id}")
        assert detail.status == 200, detail.json
        assert (detail.json["name"], detail.json["merchant_name"], detail.json["address"]) == (
            "西湖店", "一号面馆", "文三路 1 号")
        manager, clerk = detail.json["staff"]
        assert (manager["role"], manager["state"], clerk["role"], clerk["state"], clerk["messages_on"]) == (
            "manager", "pending", "clerk", "active", True)
        assert clerk["collection_code"]["kind"] == codes.CLERK_COLLECTION
        assert detail.json["devices"] == []
        for answer in (listed, detail):
            assert ADMIN_OPENID.encode() not in answer.raw and CLERK_OPENID.encode() not in answer.raw
        image = caller.call("GET", detail.json["collection_code"]["images"]["png"], headers=PNG)
        assert image.status == 200 and image.raw.startswith(PNG_MAGIC)
    assert owner.call("GET", f"/v1/stores/{store.store_id}").json["staff"][0]["activation_code"]["kind"] == (
        codes.STORE_MANAGER_ACTIVATION)
    assert reseller.call("GET", f"/v1/stores/{store.store_id}").json["staff"][0]["activation_code"] is None


def test_a_foreign_store_answers_not_found(owner, console, phone):
    store = _store_with_a_clerk(owner)
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-03").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    answer = stranger.call("GET", f"/v1/stores/{store.store_id}")
    collection_png = owner.call("GET", f"/v1/stores/{store.store_id}").json["collection_code"]["images"]["png"]
    image = stranger.call("GET", collection_png, headers=PNG)

    assert (answer.status, answer.error_code, answer.json["error"]["param"]) == (404, "not_found", "store_id")
    assert image.status == 404
    assert owner.call("GET", "/v1/stores/s_0000000000000000").status == 404


def test_the_images_of_the_setup_codes_render_for_the_owner_only(owner, reseller):
    setup = _codes(owner)
    for code in (setup["admin_activation"], setup["management"]):
        png = owner.call("GET", code["images"]["png"], headers=PNG)
        svg = owner.call("GET", code["images"]["svg"], headers={"accept": "image/svg+xml"})
        assert png.status == 200 and png.raw.startswith(PNG_MAGIC)
        assert svg.status == 200 and b"<svg" in svg.raw
        assert reseller.call("GET", code["images"]["png"], headers=PNG).status == 404


@pytest.fixture
def sandbox_and_wire(request):
    """The usual sandbox, or the one a test names (indirect parametrization)."""
    config = getattr(request, "param", None)
    with (environment.sandbox_in_process(config) if config else environment.sandbox_in_process()) as world:
        yield world


@pytest.mark.parametrize("sandbox_and_wire", [SandboxConfig(providers=2, sub_merchants=250, in_process=True)],
                         indirect=True, ids=["250_merchants"])
def test_a_sync_of_many_merchants_writes_no_one_code_setup_codes(bound_console, sandbox, client):
    from app import app
    from chalicelib import providers
    from chalicelib.models.sub_merchants import SubMerchant
    from tests.queues import drain, make_messages_return_at_once

    make_messages_return_at_once(app)
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    for provider in sandbox.providers_of("admin-01"):
        providers.upsert_from_maidan(account_id, account_id, provider.sp_mchid, provider.name)
    assert bound_console.call("POST", "/v1/sub-merchant-sync-jobs").status == 202

    drain(app)

    assert len(list(SubMerchant.query(account_id))) > 100
    assert _one_code_items() == []
