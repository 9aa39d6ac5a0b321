"""C3.1/C3.4/C3.5: providers created by hand, configured, checked upstream, audited, isolated."""
from __future__ import annotations

import threading

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox import alipay as sandbox_alipay
from sandbox import wechatpay as sandbox_wechatpay
from tests.environment import STACK_NAME

SP_MCHID = "1900000109"
APP_SECRET = "0123456789abcdef0123456789abcdef"


def _other_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def credentials(sandbox):
    """What the provider downloads from WeChat Pay's and Alipay's merchant platforms."""
    wechat = sandbox_wechatpay.register_merchant(sandbox, SP_MCHID)
    isv = sandbox_alipay.state_of(sandbox).create_app()
    return {
        "wechat_pay": {"app_id": sandbox.config.wechat_app_id, "app_secret": sandbox.config.wechat_app_secret,
                       "serial_no": wechat["serial_no"], "api_v3_key": wechat["api_v3_key"],
                       "private_key_pem": wechat["private_key_pem"],
                       "platform_public_key_id": wechat["platform_public_key_id"],
                       "platform_public_key_pem": wechat["platform_public_key_pem"], "rebate_ratio_bp": 2000},
        "alipay": {"app_id": isv.app_id, "private_key": isv.app_private_key_pem,
                   "alipay_public_key": isv.alipay_public_key_pem, "partner_id": "2088000000000001"},
    }


def _create(user, credentials, **extra):
    body = {"sp_mchid": SP_MCHID, "name": "演示服务商", "short_name": "演示", "callback_url": "https://isv.example/cb",
            "logo_url": "https://isv.example/logo.png", **credentials, **extra}
    return user.call("POST", "/v1/providers", body)


def test_a_provider_created_by_hand_shows_its_settings_but_never_its_secrets(bound_console, credentials):
    created = _create(bound_console, credentials)

    assert created.status == 201
    view = created.json
    assert view["sp_mchid"] == SP_MCHID and view["source"] == "manual" and view["version"] == 1
    assert view["wechat_pay"]["configured"] and view["alipay"]["configured"]
    assert view["wechat_pay"]["api_v3_key"]["set"] is True and view["wechat_pay"]["api_v3_key"]["set_at"]
    assert view["maidan_assistant"]["bound"] is False
    text = created.raw.decode()
    for secret in (credentials["wechat_pay"]["api_v3_key"], APP_SECRET, credentials["wechat_pay"]["app_secret"],
                   "PRIVATE KEY"):
        assert secret not in text


def test_secrets_are_encrypted_at_rest(bound_console, credentials):
    _create(bound_console, credentials)
    account_id = bound_console.call("GET", "/v1/me").json["id"]

    raw = boto3.client("dynamodb").get_item(TableName=f"{STACK_NAME}-providers",
                                            Key={"account_id": {"S": account_id}, "sp_mchid": {"S": SP_MCHID}})
    stored = repr(raw["Item"])

    assert "secrets" in raw["Item"]
    for secret in (credentials["wechat_pay"]["api_v3_key"], credentials["wechat_pay"]["app_secret"],
                   "BEGIN PRIVATE KEY", credentials["alipay"]["private_key"][40:80]):
        assert secret not in stored


@pytest.mark.parametrize("change, param", [
    ({"sp_mchid": "12ab"}, "sp_mchid"),
    ({"name": ""}, "name"),
    ({"callback_url": "ftp://isv.example/cb"}, "callback_url"),  # http is refused only outside local/test
    ({"logo_url": "not a url"}, "logo_url"),
    ({"logo_url": "https://[::1"}, "logo_url"),  # urlsplit raises on it: still a 400, not a 500
    ({"wechat_pay": {"app_id": "wxNOTHEX"}}, "wechat_pay.app_id"),
    ({"wechat_pay": {"app_secret": "short"}}, "wechat_pay.app_secret"),
    ({"wechat_pay": {"api_v3_key": "x" * 31}}, "wechat_pay.api_v3_key"),
    ({"wechat_pay": {"private_key_pem": "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----"}},
     "wechat_pay.private_key_pem"),
    ({"wechat_pay": {"serial_no": "zz"}}, "wechat_pay.serial_no"),
    ({"wechat_pay": {"platform_public_key_id": "PUB_KEY_ID_0001", "platform_public_key_pem": "garbage"}},
     "wechat_pay.platform_public_key_pem"),
    ({"wechat_pay": {"rebate_ratio_bp": 10001}}, "wechat_pay.rebate_ratio_bp"),
    ({"wechat_pay": {"rebate_ratio_bp": 0.5}}, "wechat_pay.rebate_ratio_bp"),
    ({"alipay": {"app_id": "123"}}, "alipay.app_id"),
    ({"alipay": {"partner_id": "1088000000000001"}}, "alipay.partner_id"),
    ({"alipay": {"private_key": "abc"}}, "alipay.private_key"),
    ({"alipay": {"alipay_public_key": "abc"}}, "alipay.alipay_public_key"),
    ({"alipay": "not an object"}, "alipay"),
])
def test_each_bad_field_is_named_and_nothing_is_written(bound_console, change, param):
    answer = bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商", **change})

    assert answer.status == 400 and answer.json["error"]["param"] == param
    assert bound_console.call("GET", "/v1/providers").json["data"] == []


def test_one_sp_mchid_is_one_provider_per_account(bound_console, credentials):
    _create(bound_console, credentials)

    again = _create(bound_console, credentials)

    assert again.status == 409 and again.error_code == "provider_exists"


def test_providers_list_pages_and_says_what_is_configured(bound_console, credentials):
    _create(bound_console, credentials)
    bound_console.call("POST", "/v1/providers", {"sp_mchid": "1900000110", "name": "第二个服务商"})

    first = bound_console.call("GET", "/v1/providers?limit=1").json
    second = bound_console.call("GET", f"/v1/providers?limit=1&cursor={first['next_cursor']}").json

    assert first["has_more"] and [p["sp_mchid"] for p in first["data"] + second["data"]] == [SP_MCHID, "1900000110"]
    assert second["data"][0]["wechat_pay"]["configured"] is False
    assert second["data"][0]["alipay"]["configured"] is False


def test_an_edit_from_a_stale_version_is_refused_and_loses_nothing(bound_console, credentials):
    version = _create(bound_console, credentials).json["version"]
    assert bound_console.call("PATCH", f"/v1/providers/{SP_MCHID}", {"version": version, "remark": "A"}).status == 200

    stale = bound_console.call("PATCH", f"/v1/providers/{SP_MCHID}", {"version": version, "short_name": "B"})

    assert stale.status == 409 and stale.error_code == "version_conflict"
    current = bound_console.call("GET", f"/v1/providers/{SP_MCHID}").json
    assert current["remark"] == "A" and current["short_name"] == "演示" and current["version"] == version + 1


def test_two_edits_at_once_never_lose_an_update(bound_console, credentials, aws):
    from chalicelib import providers
    version = _create(bound_console, credentials).json["version"]
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    outcomes, barrier = [], threading.Barrier(2)

    def edit(field, value):
        barrier.wait()
        try:
            providers.update(account_id, account_id, SP_MCHID, {"version": version, field: value})
            outcomes.append(("saved", field))
        except Exception as exc:  # the loser's error is the outcome under test
            outcomes.append((getattr(exc, "code", type(exc).__name__), field))

    threads = [threading.Thread(target=edit, args=args) for args in (("remark", "A"), ("short_name", "B"))]
    [t.start() for t in threads]
    [t.join() for t in threads]

    assert sorted(o[0] for o in outcomes) == ["saved", "version_conflict"]
    winner = next(field for outcome, field in outcomes if outcome == "saved")
    current = bound_console.call("GET", f"/v1/providers/{SP_MCHID}").json
    assert current["version"] == version + 1
    assert current[winner] == {"remark": "A", "short_name": "B"}[winner]


def test_a_patch_needs_the_version_it_starts_from(bound_console, credentials):
    _create(bound_console, credentials)

    answer = bound_console.call("PATCH", f"/v1/providers/{SP_MCHID}", {"remark": "x"})

    assert answer.status == 400 and answer.json["error"]["param"] == "version"


def test_every_change_is_audited_with_secrets_only_as_changed(bound_console, credentials):
    version = _create(bound_console, credentials).json["version"]
    bound_console.call("PATCH", f"/v1/providers/{SP_MCHID}",
                       {"version": version, "remark": "新备注", "wechat_pay": {"api_v3_key": "N" * 32}})

    entries = bound_console.call("GET", f"/v1/audit-log?entity=provider%23{SP_MCHID}").json["data"]

    assert [e["action"] for e in entries] == ["provider.updated", "provider.created"]
    assert entries[0]["changes"]["remark"] == {"from": None, "to": "新备注"}
    assert entries[0]["changes"]["wechat_pay.api_v3_key"] == "changed"
    assert entries[1]["changes"]["wechat_pay.private_key_pem"] == "changed"
    assert "N" * 32 not in repr(entries) and credentials["wechat_pay"]["api_v3_key"] not in repr(entries)


def test_a_good_configuration_passes_every_check(bound_console, credentials):
    _create(bound_console, credentials)

    checked = bound_console.call("POST", f"/v1/providers/{SP_MCHID}/configuration-checks")

    assert checked.status == 200
    assert checked.json["ok"] is True, checked.json
    assert {c["check"] for c in checked.json["checks"]} == {"wechat_pay", "official_account", "alipay"}


def test_a_wrong_merchant_key_is_reported_in_words(bound_console, credentials):
    credentials["wechat_pay"]["private_key_pem"] = _other_private_key()
    _create(bound_console, credentials)

    checks = {c["check"]: c for c in bound_console.call(
        "POST", f"/v1/providers/{SP_MCHID}/configuration-checks").json["checks"]}

    assert checks["wechat_pay"]["ok"] is False and "private key" in checks["wechat_pay"]["problem"]
    assert checks["alipay"]["ok"] is True


def test_a_wrong_alipay_public_key_is_reported_in_words(bound_console, credentials, sandbox):
    credentials["alipay"]["alipay_public_key"] = sandbox_alipay.state_of(sandbox).create_app().alipay_public_key_pem
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    credentials["alipay"]["alipay_public_key"] = other.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    _create(bound_console, credentials)

    checks = {c["check"]: c for c in bound_console.call(
        "POST", f"/v1/providers/{SP_MCHID}/configuration-checks").json["checks"]}

    assert checks["alipay"]["ok"] is False and "Alipay public key" in checks["alipay"]["problem"]


def test_a_wrong_app_secret_is_reported(bound_console, credentials):
    credentials["wechat_pay"]["app_secret"] = APP_SECRET
    _create(bound_console, credentials)

    checks = {c["check"]: c for c in bound_console.call(
        "POST", f"/v1/providers/{SP_MCHID}/configuration-checks").json["checks"]}

    assert checks["official_account"]["ok"] is False and "AppSecret" in checks["official_account"]["problem"]


def test_another_accounts_provider_is_not_found(bound_console, credentials, console, phone):
    _create(bound_console, credentials)
    stranger = console.sign_up_and_in("stranger@example.com")
    phone("admin-02").open(stranger.call("POST", "/v1/wechat-binding-codes").json["url"]).confirm()

    for method, path, body in (("GET", f"/v1/providers/{SP_MCHID}", None),
                               ("PATCH", f"/v1/providers/{SP_MCHID}", {"version": 1, "remark": "x"}),
                               ("POST", f"/v1/providers/{SP_MCHID}/configuration-checks", None)):
        answer = stranger.call(method, path, body)
        assert answer.status == 404 and answer.error_code == "not_found", path
    assert stranger.call("GET", "/v1/providers").json["data"] == []
    assert stranger.call("GET", "/v1/audit-log").json["data"] == []


def test_provider_routes_are_behind_the_binding_gate(console):
    user = console.sign_up_and_in("unbound@example.com")

    assert user.call("GET", "/v1/providers").error_code == "wechat_binding_required"
    assert user.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "x"}).error_code == \
        "wechat_binding_required"
