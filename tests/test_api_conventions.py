"""API conventions: one error shape, request ids, Idempotency-Key replay and conflict."""
from __future__ import annotations

import json
import threading

import httpx
import pytest

from chalicelib.models.accounts import Session
from chalicelib.models.qrcodes import QrCode


def test_every_answer_carries_a_request_id(console):
    ok = console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": "correct horse battery"})
    error = console.call("POST", "/v1/accounts", {})

    assert ok.headers["x-request-id"] and error.headers["x-request-id"]
    assert ok.headers["x-request-id"] != error.headers["x-request-id"]
    assert set(error.json["error"]) == {"type", "code", "message", "param"}


def test_the_same_idempotency_key_and_body_answer_the_first_answer_again(console):
    user = console.sign_up_and_in("a@example.com")

    first = user.call("POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "k-1"})
    again = user.call("POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "k-1"})

    assert first.status == again.status == 201
    assert again.json == first.json
    assert again.headers.get("idempotent-replayed") == "true" and "idempotent-replayed" not in first.headers
    assert len(list(QrCode.scan())) == 1


def test_the_same_key_with_another_body_is_a_conflict(console):
    user = console.sign_up_and_in("a@example.com")
    user.call("POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "k-1"})

    other = user.call("POST", "/v1/wechat-binding-codes", {"note": "different"}, headers={"idempotency-key": "k-1"})

    assert other.status == 409 and other.error_code == "idempotency_key_reused"
    assert other.json["error"]["param"] == "Idempotency-Key"


def test_keys_are_scoped_to_the_account(console):
    alice = console.sign_up_and_in("alice@example.com")
    bob = console.sign_up_and_in("bob@example.com")

    first = alice.call("POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "shared"})
    second = bob.call("POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "shared"})

    assert second.status == 201 and second.json["id"] != first.json["id"]


def test_without_a_key_each_call_acts_again(console):
    user = console.sign_up_and_in("a@example.com")

    first = user.call("POST", "/v1/wechat-binding-codes")
    second = user.call("POST", "/v1/wechat-binding-codes")

    assert first.json["id"] != second.json["id"]


def test_a_failed_call_is_not_replayed(console):
    user = console.sign_up_and_in("a@example.com")

    missing = user.call("POST", "/v1/wechat-binding-codes/nope/refresh", {}, headers={"idempotency-key": "k-2"})
    again = user.call("POST", "/v1/wechat-binding-codes/nope/refresh", {}, headers={"idempotency-key": "k-2"})

    assert missing.status == again.status == 404
    assert "idempotent-replayed" not in again.headers


def test_an_unknown_route_answers_not_found(client):
    assert client.http.get("/v1/nothing-here").status_code in (403, 404)


@pytest.fixture
def local_api(aws, sandbox):
    """The API as `make run` serves it (chalice local with the template's GatewayResponses), on a free port."""
    from chalice.config import Config
    from chalice.local import LocalDevServer

    from app import app
    from local.api_gateway import gateway_responses, handler_class
    from local.infra import load_template

    server = LocalDevServer(app, Config(chalice_stage="local"), "127.0.0.1", 0,
                            handler_cls=handler_class(gateway_responses(load_template())))
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    with httpx.Client(base_url=f"http://127.0.0.1:{server.server.server_address[1]}", timeout=10) as http:
        yield http
    server.shutdown()


def _expired_session_header(local_api) -> dict:
    local_api.post("/v1/accounts", json={"email": "a@example.com", "password": "correct horse battery"})
    token = local_api.post("/v1/sessions", json={"email": "a@example.com", "password": "correct horse battery"}
                           ).json()["token"]
    session = next(Session.scan())
    session.update(actions=[Session.expires_at.set(session.created_at - 1)])
    return {"Authorization": f"Bearer {token}"}


def test_no_header_a_malformed_header_and_an_expired_token_are_refused_in_the_one_error_shape(local_api):
    answers = {"missing_token": local_api.get("/v1/me"),
               "invalid_token": local_api.get("/v1/me", headers={"Authorization": "Basic abc"}),
               "session_expired": local_api.get("/v1/me", headers=_expired_session_header(local_api))}

    for code, answer in answers.items():
        assert answer.status_code == 401, (code, answer.text)
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert set(error) == {"type", "code", "message", "param"}
        assert (error["type"], error["code"], error["param"]) == ("authentication_error", code, None)
    assert answers["missing_token"].json()["error"]["message"] == "sign in first: the Authorization header is missing"


def test_the_local_gateway_answers_a_missing_header_exactly_as_the_function_and_the_aws_template_do():
    from chalice.local import NotAuthorizedError

    from chalicelib import accounts
    from chalicelib.errors import Unauthenticated
    from local.api_gateway import answer_for, gateway_responses
    from local.infra import load_template

    local = answer_for(NotAuthorizedError({}, b'{"message":"Unauthorized"}'), gateway_responses(load_template()))
    with pytest.raises(Unauthenticated) as refused:
        accounts.authenticate("")

    assert local.status == refused.value.status
    assert json.loads(local.body) == refused.value.body()


def test_an_unknown_path_is_refused_by_the_gateway_in_the_error_shape_with_the_security_headers(local_api):
    refused = local_api.get("/v1/no-such-thing")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "gateway_refused"
    assert refused.headers["x-content-type-options"] == "nosniff" and refused.headers["x-frame-options"] == "DENY"
    missing = local_api.get("/v1/me")
    assert missing.headers["x-content-type-options"] == "nosniff" and missing.headers["x-frame-options"] == "DENY"
