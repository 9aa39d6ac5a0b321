"""API conventions: one error shape, request ids, Idempotency-Key replay and conflict."""
from __future__ import annotations

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
