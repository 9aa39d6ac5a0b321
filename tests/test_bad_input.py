"""Bad request bodies are answered 400 (or 415) in the API's error shape, naming the field:
deep nesting, texts that are not Unicode, blank required names, unknown fields, and bodies
sent as something other than JSON. None of them may reach a 500."""
from __future__ import annotations

import json
import re

import pytest

SP_MCHID = "1900000109"
LONE_SURROGATE = "\ud800"


@pytest.fixture
def owner(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201
    return bound_console


def _raw(user, method: str, path: str, text: str, content_type: str = "application/json"):
    """Send `text` as it is (the driver would encode a dict itself)."""
    from tests.drivers import ApiResponse
    headers = {"content-type": content_type}
    if user.token:
        headers["authorization"] = f"Bearer {user.token}"
    return ApiResponse(getattr(user.client.http, method.lower())(path, headers=headers, body=text))


def _assert_refused(answer, param, status=400):
    assert answer.status == status, answer.json
    assert set(answer.json["error"]) == {"type", "code", "message", "param"}
    assert answer.json["error"]["param"] == param


@pytest.mark.parametrize("method, path", [("POST", "/v1/providers"), ("POST", "/v1/sub-merchants"),
                                          ("PATCH", f"/v1/providers/{SP_MCHID}")])
def test_a_body_nested_too_deep_is_refused_naming_its_field(owner, method, path):
    deep = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    nested = {"wechat_pay": {"app_id": [[[[[[[[["wx"]]]]]]]]]}}

    _assert_refused(_raw(owner, method, path, deep), "body")
    _assert_refused(owner.call(method, path, nested), "wechat_pay")


@pytest.mark.parametrize("method, path, field, body", [
    ("POST", "/v1/accounts", "display_name", {"email": "x@example.com", "password": "correct horse battery"}),
    ("POST", "/v1/sessions", "password", {"email": "x@example.com"}),
    ("POST", "/v1/providers", "name", {"sp_mchid": "1900000110"}),
    ("POST", "/v1/providers", "short_name", {"sp_mchid": "1900000110", "name": "x"}),
    ("POST", "/v1/sub-merchants", "name", {"sp_mchid": SP_MCHID}),
    ("POST", "/v1/sub-merchants", "admin_name", {"sp_mchid": SP_MCHID, "name": "x"}),
    ("POST", "/v1/sub-merchants", "remark", {"sp_mchid": SP_MCHID, "name": "x"}),
    ("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", "name", {"account_id": "acct_x", "phone": "13800138000"}),
    ("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", "admin_name",
     {"account_id": "acct_x", "name": "x", "phone": "13800138000"}),
])
def test_a_text_with_a_lone_surrogate_is_refused_naming_the_field(owner, method, path, field, body):
    answer = owner.call(method, path, {**body, field: "名" + LONE_SURROGATE})

    _assert_refused(answer, field)


def test_a_lone_surrogate_inside_a_section_names_its_path(owner):
    answer = owner.call("PATCH", f"/v1/providers/{SP_MCHID}", {"version": 1, "wechat_pay": {"app_id": LONE_SURROGATE}})

    _assert_refused(answer, "wechat_pay.app_id")


@pytest.mark.parametrize("field", ["name", "admin_name"])
def test_a_sub_service_provider_name_of_only_spaces_is_required_not_a_crash(owner, console, field):
    member = console.sign_up_and_in("member@example.com").call("GET", "/v1/me").json["id"]
    body = {"account_id": member, "name": "杭州渠道商", "admin_name": "王经理", "phone": "13800138000", field: "   "}

    _assert_refused(owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", body), field)
    body[field] = "正常"
    attached = owner.call("POST", f"/v1/providers/{SP_MCHID}/sub-service-providers", body)
    edited = owner.call("PATCH", f"/v1/providers/{SP_MCHID}/sub-service-providers/{member}",
                        {"version": attached.json["version"], field: " \t "})
    _assert_refused(edited, field)


def _mutating_routes():
    from app import app
    return sorted((method, path) for path, entries in app.routes.items() if path.startswith("/v1/")
                  for method in entries if method in ("POST", "PUT", "PATCH", "DELETE"))


def test_every_route_that_takes_a_body_refuses_an_unknown_field_by_name(owner):
    routes = _mutating_routes()
    assert len(routes) > 20
    for method, path in routes:
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        answer = owner.call(method, concrete, {"nonsense": 1})
        assert answer.status == 400 and answer.json["error"]["param"] == "nonsense", (method, path, answer.json)
        assert answer.error_code == "unknown_field"


def test_an_unknown_field_inside_a_section_is_named_with_its_path(owner):
    answer = owner.call("PATCH", f"/v1/providers/{SP_MCHID}", {"version": 1, "alipay": {"app_key": "x"}})

    _assert_refused(answer, "alipay.app_key")


def test_a_body_that_is_not_sent_as_json_gets_the_error_shape(owner):
    answer = _raw(owner, "POST", "/v1/sub-merchants", json.dumps({"sp_mchid": SP_MCHID, "name": "x"}), "text/plain")

    _assert_refused(answer, "Content-Type", status=415)
    assert answer.error_code == "unsupported_media_type"
