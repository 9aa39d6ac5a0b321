"""C2/H1/H2: the WeChat binding gate, end to end through chalice.test.Client and the sandbox."""
from __future__ import annotations

import io
import threading

import zxingcpp
from PIL import Image

from chalicelib import binding
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.accounts import Account
from chalicelib.models.bindings import WechatBinding
from chalicelib.models.qrcodes import QrCode
from tests.environment import PARAMETERS


def _expire(code_id: str) -> None:
    """Move a code's expiry into the past, as if five minutes had gone by."""
    code = QrCode.get(code_id)
    code.update(actions=[QrCode.expires_at.set(code.created_at - 1)])


def _bound_user(console, phone, email="owner@example.com", admin="admin-01"):
    user = console.sign_up_and_in(email)
    code = user.call("POST", "/v1/wechat-binding-codes").json
    assert phone(admin).open(code["url"]).confirm().page_id == "binding-done"
    return user


def test_an_unbound_account_is_gated_until_an_admin_scans_and_confirms(console, phone, sandbox):
    user = console.sign_up_and_in("owner@example.com")
    gated = user.call("GET", "/v1/wechat-bindings")
    assert gated.status == 403 and gated.error_code == "wechat_binding_required"

    code = user.call("POST", "/v1/wechat-binding-codes")
    assert code.status == 201 and code.json["state"] == "pending"
    assert code.json["url"] == f"{PARAMETERS['PublicBaseUrl']}/h5/q/{code.json['id']}"
    assert code.json["expires_at"] - code.json["created_at"] == 300

    admin = phone("admin-01").open(code.json["url"])
    assert admin.page_id == "binding-confirm"
    assert "演示服务商01" in admin.html  # the providers this admin holds in 买单
    assert user.call("GET", f"/v1/wechat-binding-codes/{code.json['id']}").json["state"] == "scanned"

    assert admin.confirm().page_id == "binding-done"

    status = user.call("GET", f"/v1/wechat-binding-codes/{code.json['id']}").json
    assert status["state"] == "bound" and status["bound_at"]
    listed = user.call("GET", "/v1/wechat-bindings")
    assert listed.status == 200
    openid = sandbox.users["admin-01"].openid(PARAMETERS["WechatAppId"])
    assert [b["openid"] for b in listed.json["data"]] == [openid]
    assert listed.json["data"][0]["unionid"] == sandbox.users["admin-01"].unionid
    assert user.call("GET", "/v1/me").json["wechat_bound"] is True


def test_the_code_images_encode_the_url_the_phone_opens(console):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json

    png = user.call("GET", code["images"]["png"], headers={"accept": "image/png"})
    svg = user.call("GET", code["images"]["svg"])

    assert png.headers["content-type"] == "image/png" and png.raw.startswith(b"\x89PNG")
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.raw)))
    assert [d.text for d in decoded] == [code["url"]]
    assert svg.headers["content-type"] == "image/svg+xml" and svg.raw.lstrip().startswith(b"<?xml")


def test_a_non_admin_sees_an_error_page_and_the_code_stays_usable(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json

    staff = phone("staff-01").open(code["url"])

    assert staff.status == 403 and staff.page_id == "not-maidan-admin"
    assert user.call("GET", f"/v1/wechat-binding-codes/{code['id']}").json["state"] == "pending"
    assert phone("admin-01").open(code["url"]).confirm().page_id == "binding-done"


def test_a_wechat_that_never_opened_the_assistant_is_told_how_to_open_it(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json

    guest = phone("guest-01").open(code["url"])

    assert guest.status == 403 and guest.page_id == "maidan-assistant-not-opened"
    assert "微信买单服务商助手" in guest.html and "<ol>" in guest.html
    assert user.call("GET", "/v1/me").json["wechat_bound"] is False


def test_an_expired_code_never_binds_and_the_console_sees_it_expired(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01").open(code["url"])
    _expire(code["id"])

    assert admin.confirm().page_id == "code-expired"
    assert phone("admin-02").open(code["url"]).page_id == "code-expired"
    assert user.call("GET", f"/v1/wechat-binding-codes/{code['id']}").json["state"] == "expired"
    assert user.call("GET", "/v1/me").json["wechat_bound"] is False


def test_refresh_issues_a_new_code_and_retires_the_old_one(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    old = user.call("POST", "/v1/wechat-binding-codes").json
    _expire(old["id"])

    new = user.call("POST", f"/v1/wechat-binding-codes/{old['id']}/refresh")

    assert new.status == 201 and new.json["id"] != old["id"] and new.json["state"] == "pending"
    assert phone("admin-01").open(new.json["url"]).confirm().page_id == "binding-done"


def test_refreshing_a_live_code_revokes_it(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    old = user.call("POST", "/v1/wechat-binding-codes").json
    new = user.call("POST", f"/v1/wechat-binding-codes/{old['id']}/refresh").json

    assert user.call("GET", f"/v1/wechat-binding-codes/{old['id']}").json["replaced_by"] == new["id"]
    assert phone("admin-01").open(old["url"]).page_id == "code-revoked"


def test_a_used_code_can_never_bind_again(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    first = phone("admin-01").open(code["url"])
    second = phone("admin-02").open(code["url"])
    assert first.confirm().page_id == "binding-done"

    assert second.confirm().page_id == "code-used"
    assert phone("admin-03").open(code["url"]).page_id == "code-used"
    assert Account.get(user.call("GET", "/v1/me").json["id"]).wechat_binding_count == 1


def test_two_phones_confirming_at_once_bind_exactly_one(console, sandbox):
    user = console.sign_up_and_in("owner@example.com")
    code_id = user.call("POST", "/v1/wechat-binding-codes").json["id"]
    identities = [WechatIdentity(PARAMETERS["WechatAppId"], sandbox.users[u].openid(PARAMETERS["WechatAppId"]),
                                 sandbox.users[u].unionid) for u in ("admin-01", "admin-02")]
    outcomes, barrier = [], threading.Barrier(2)

    def confirm(identity):
        barrier.wait()
        try:
            binding.confirm(code_id, identity)
            outcomes.append("bound")
        except Exception as exc:  # the loser's exception is the outcome under test
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=confirm, args=(identity,)) for identity in identities]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]

    assert sorted(outcomes) == ["CodeUnusable", "bound"], outcomes
    account_id = user.call("GET", "/v1/me").json["id"]
    assert len(list(WechatBinding.query(account_id))) == 1
    assert Account.get(account_id).wechat_binding_count == 1


def test_unknown_and_forged_codes_open_the_unknown_page(console, phone):
    assert phone("admin-01").open(f"{PARAMETERS['PublicBaseUrl']}/h5/q/forged-code-id").page_id == "code-unknown"


def test_a_forged_confirm_form_changes_nothing(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01").open(code["url"])

    forged = admin.open(f"{PARAMETERS['PublicBaseUrl']}/h5/q/{code['id']}/confirm", method="POST",
                        form={"csrf": "forged.token"})

    assert forged.status == 403 and forged.page_id == "confirm-stale"
    assert user.call("GET", "/v1/me").json["wechat_bound"] is False


def test_a_confirm_token_from_one_wechat_does_not_work_for_another(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    token = phone("admin-01").open(code["url"]).form_value("csrf")
    other = phone("admin-02").open(code["url"])

    answer = other.open(f"{PARAMETERS['PublicBaseUrl']}/h5/q/{code['id']}/confirm", method="POST", form={"csrf": token})

    assert answer.page_id == "confirm-stale"


def test_another_accounts_code_is_not_found(console, phone):
    owner = console.sign_up_and_in("owner@example.com")
    stranger = console.sign_up_and_in("stranger@example.com")
    code = owner.call("POST", "/v1/wechat-binding-codes").json

    for path in (f"/v1/wechat-binding-codes/{code['id']}", code["images"]["png"], code["images"]["svg"]):
        answer = stranger.call("GET", path)
        assert answer.status == 404 and answer.error_code == "not_found"
    assert stranger.call("POST", f"/v1/wechat-binding-codes/{code['id']}/refresh").status == 404


def test_a_second_wechat_can_be_bound_and_any_but_the_last_unbound(console, phone, sandbox):
    user = _bound_user(console, phone)
    code = user.call("POST", "/v1/wechat-binding-codes").json
    assert phone("admin-02").open(code["url"]).confirm().page_id == "binding-done"
    first, second = (sandbox.users[u].openid(PARAMETERS["WechatAppId"]) for u in ("admin-01", "admin-02"))
    assert {b["openid"] for b in user.call("GET", "/v1/wechat-bindings").json["data"]} == {first, second}

    assert user.call("DELETE", f"/v1/wechat-bindings/{first}").status == 200
    last = user.call("DELETE", f"/v1/wechat-bindings/{second}")

    assert last.status == 409 and last.error_code == "last_wechat_binding"
    assert [b["openid"] for b in user.call("GET", "/v1/wechat-bindings").json["data"]] == [second]
    assert user.call("DELETE", f"/v1/wechat-bindings/{first}").status == 404


def test_binding_the_same_wechat_twice_keeps_one_binding(console, phone):
    user = _bound_user(console, phone)
    code = user.call("POST", "/v1/wechat-binding-codes").json

    assert phone("admin-01").open(code["url"]).confirm().page_id == "binding-done"

    assert len(user.call("GET", "/v1/wechat-bindings").json["data"]) == 1
    assert user.call("GET", "/v1/me").json["wechat_binding_count"] == 1


def test_bindings_list_pages_with_an_opaque_cursor(console, phone):
    user = _bound_user(console, phone)
    for admin in ("admin-02", "admin-03"):
        code = user.call("POST", "/v1/wechat-binding-codes").json
        phone(admin).open(code["url"]).confirm()

    first = user.call("GET", "/v1/wechat-bindings?limit=2").json
    second = user.call("GET", f"/v1/wechat-bindings?limit=2&cursor={first['next_cursor']}").json

    assert first["has_more"] is True and len(first["data"]) == 2
    assert len(second["data"]) == 1 and {b["openid"] for b in first["data"] + second["data"]}.__len__() == 3
    assert user.call("GET", "/v1/wechat-bindings?cursor=tampered").json["error"]["param"] == "cursor"
    assert user.call("GET", "/v1/wechat-bindings?limit=0").json["error"]["param"] == "limit"


def test_a_cursor_from_another_account_is_refused(console, phone):
    owner = _bound_user(console, phone)
    for admin in ("admin-02",):
        phone(admin).open(owner.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()
    stranger = _bound_user(console, phone, email="stranger@example.com", admin="admin-03")
    cursor = owner.call("GET", "/v1/wechat-bindings?limit=1").json["next_cursor"]

    answer = stranger.call("GET", f"/v1/wechat-bindings?limit=1&cursor={cursor}")

    assert answer.status == 400 and answer.json["error"]["param"] == "cursor"


def test_the_binding_records_and_lists_the_nickname_wechat_answered(console, phone, sandbox):
    user = _bound_user(console, phone)
    openid = sandbox.users["admin-01"].openid(PARAMETERS["WechatAppId"])
    account_id = user.call("GET", "/v1/me").json["id"]

    listed = user.call("GET", "/v1/wechat-bindings").json["data"]

    assert WechatBinding.get(account_id, openid).nickname == "买单管理员01"
    assert [(b["openid"], b["nickname"]) for b in listed] == [(openid, "买单管理员01")]


def test_a_binding_made_before_nicknames_were_recorded_lists_a_null_nickname(console, phone, sandbox):
    user = _bound_user(console, phone)
    openid = sandbox.users["admin-01"].openid(PARAMETERS["WechatAppId"])
    account_id = user.call("GET", "/v1/me").json["id"]
    WechatBinding.get(account_id, openid).update(actions=[WechatBinding.nickname.remove()])

    listed = user.call("GET", "/v1/wechat-bindings").json["data"]

    assert listed[0]["openid"] == openid and listed[0]["nickname"] is None


def test_binding_the_same_wechat_again_takes_its_new_nickname(console, phone, sandbox):
    user = _bound_user(console, phone)
    sandbox.users["admin-01"].nickname = "改名后的管理员"
    code = user.call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01")

    assert admin.open(code["url"]).confirm().page_id == "binding-done"

    assert [b["nickname"] for b in user.call("GET", "/v1/wechat-bindings").json["data"]] == ["改名后的管理员"]
    assert user.call("GET", "/v1/me").json["wechat_binding_count"] == 1


def test_a_wechat_user_who_shares_no_profile_is_bound_with_wechats_placeholder_nickname(console, phone, sandbox):
    sandbox.users["admin-01"].shares_profile = False

    user = _bound_user(console, phone)

    assert [b["nickname"] for b in user.call("GET", "/v1/wechat-bindings").json["data"]] == ["微信用户"]
