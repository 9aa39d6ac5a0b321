"""C1: sign up, sign in, sessions that expire and revoke, the failed-attempt limit."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import accounts, passwords
from chalicelib.errors import ApiError, TooManyAttempts
from chalicelib.models.accounts import Account, Session, UniqueClaim

PASSWORD = "correct horse battery"


def test_sign_up_stores_a_scrypt_hash_and_claims_the_email(console):
    created = console.call("POST", "/v1/accounts", {"email": " Alice@Example.COM ", "password": PASSWORD})

    assert created.status == 201
    assert created.json["email"] == "alice@example.com"
    assert created.json["wechat_bound"] is False
    stored = Account.get(created.json["id"])
    assert stored.password_hash.startswith("scrypt$") and PASSWORD not in stored.password_hash
    assert UniqueClaim.get("email#alice@example.com").owner_id == created.json["id"]


@pytest.mark.parametrize("body, param", [
    ({"password": PASSWORD}, "email"),
    ({"email": "not-an-email", "password": PASSWORD}, "email"),
    ({"email": "a@example.com"}, "password"),
    ({"email": "a@example.com", "password": "short"}, "password"),
    ({"email": "a@example.com", "password": PASSWORD, "display_name": ""}, "display_name"),
])
def test_sign_up_names_the_bad_field(console, body, param):
    answer = console.call("POST", "/v1/accounts", body)

    assert answer.status == 400
    assert answer.json["error"] == {"type": "invalid_request_error", "code": "invalid_field",
                                    "message": answer.json["error"]["message"], "param": param}
    assert answer.headers["x-request-id"]


def test_a_body_that_is_not_json_is_refused_with_the_error_shape(client):
    raw = client.http.post("/v1/accounts", headers={"content-type": "application/json"}, body="{nope")

    assert raw.status_code == 400
    assert b'"param":"body"' in raw.body


def test_the_same_email_cannot_sign_up_twice(console):
    console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})

    again = console.call("POST", "/v1/accounts", {"email": "A@example.com", "password": PASSWORD + "x"})

    assert again.status == 409 and again.error_code == "email_taken"


def test_wrong_password_and_unknown_account_answer_the_same(console):
    console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})

    wrong = console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": "wrong password!"})
    unknown = console.call("POST", "/v1/sessions", {"email": "nobody@example.com", "password": PASSWORD})

    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json
    assert wrong.error_code == "invalid_credentials"


@pytest.mark.parametrize("email", ["a@example.com", "nobody@example.com"])
def test_five_failures_lock_the_email_even_for_the_right_password(console, email):
    console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})
    for _ in range(5):
        assert console.call("POST", "/v1/sessions", {"email": email, "password": "wrong password!"}).status == 401

    locked = console.call("POST", "/v1/sessions", {"email": email, "password": PASSWORD})

    assert locked.status == 429 and locked.error_code == "too_many_attempts"
    assert int(locked.headers["retry-after"]) > 0


def test_successful_sign_ins_do_not_count_towards_the_limit(console):
    console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})
    for _ in range(4):
        console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": "wrong password!"})

    successes = [console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD}).status
                 for _ in range(6)]

    assert successes == [201] * 6
    assert console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": "wrong password!"}).status == 401
    assert console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD}).status == 429


def test_a_burst_of_concurrent_wrong_passwords_gets_no_more_password_checks_than_the_limit(aws, monkeypatch):
    accounts.sign_up("a@example.com", PASSWORD)
    checked = []
    real_verify = passwords.verify_password
    monkeypatch.setattr(passwords, "verify_password",
                        lambda password, stored: checked.append(password) or real_verify(password, stored))
    start = threading.Barrier(21)

    def sign_in(password):
        start.wait()
        try:
            accounts.sign_in("a@example.com", password)
            return 201
        except ApiError as refused:
            return refused.status

    with ThreadPoolExecutor(21) as pool:
        answers = list(pool.map(sign_in, ["wrong password!"] * 20 + [PASSWORD]))

    wrong, right = answers[:20], answers[20]
    assert wrong.count(401) == checked.count("wrong password!") <= 5
    assert wrong.count(429) == 20 - wrong.count(401)
    assert right == (201 if PASSWORD in checked else 429)
    assert wrong.count(401) == 5 or right == 201


def test_sign_up_is_limited_per_email_with_a_retry_after(console):
    answers = [console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})
               for _ in range(6)]

    assert [answer.status for answer in answers] == [201, 409, 409, 409, 409, 429]
    limited = answers[-1]
    assert limited.json["error"]["type"] == "rate_limit_error" and limited.error_code == "too_many_attempts"
    assert 0 < int(limited.headers["retry-after"]) <= 3600


def test_sign_up_is_limited_per_source_ip(console, monkeypatch):
    monkeypatch.setenv("SIGN_UP_MAX_PER_IP", "3")
    answers = [console.call("POST", "/v1/accounts", {"email": f"user{n}@example.com", "password": PASSWORD})
               for n in range(4)]

    assert [answer.status for answer in answers] == [201, 201, 201, 429]
    assert int(answers[-1].headers["retry-after"]) > 0
    assert not UniqueClaim.count("email#user3@example.com")
    assert accounts.sign_up("user3@example.com", PASSWORD, source_ip="198.51.100.7").email == "user3@example.com"


def test_an_ip_over_its_limit_does_not_spend_the_emails_sign_ups(aws, monkeypatch):
    monkeypatch.setenv("SIGN_UP_MAX_PER_IP", "1")
    accounts.sign_up("first@example.com", PASSWORD, source_ip="203.0.113.9")
    for _ in range(6):
        with pytest.raises(TooManyAttempts):
            accounts.sign_up("second@example.com", PASSWORD, source_ip="203.0.113.9")

    assert accounts.sign_up("second@example.com", PASSWORD, source_ip="198.51.100.7").email == "second@example.com"


def test_new_passwords_use_the_owasp_scrypt_parameters_by_default(console, monkeypatch):
    monkeypatch.delenv("PASSWORD_SCRYPT_N", raising=False)

    created = console.call("POST", "/v1/accounts", {"email": "a@example.com", "password": PASSWORD})
    signed_in = console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD})

    assert created.status == 201 and signed_in.status == 201
    assert Account.get(created.json["id"]).password_hash.startswith("scrypt$131072$8$1$")
    assert passwords.unknown_account_hash().startswith("scrypt$131072$8$1$")


def test_a_hash_made_with_the_old_work_factor_is_upgraded_at_the_next_successful_sign_in(console, monkeypatch):
    monkeypatch.delenv("PASSWORD_SCRYPT_N", raising=False)
    account = accounts.sign_up("a@example.com", PASSWORD)
    old_hash = passwords.hash_password(PASSWORD, n=2**14)
    account.update(actions=[Account.password_hash.set(old_hash)])

    wrong = console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": "wrong password!"})
    assert Account.get(account.account_id).password_hash == old_hash
    right = console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD})

    assert wrong.status == 401 and right.status == 201
    upgraded = Account.get(account.account_id).password_hash
    assert upgraded.startswith("scrypt$131072$8$1$") and passwords.verify_password(PASSWORD, upgraded)
    assert console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD}).status == 201


def test_the_session_token_is_stored_only_as_a_hash(console):
    user = console.sign_up_and_in("a@example.com")

    sessions = list(Session.scan())

    assert len(sessions) == 1
    assert sessions[0].token_hash != user.token and user.token not in sessions[0].token_hash


def test_every_console_route_needs_a_session(console):
    no_header = console.call("GET", "/v1/me")
    garbage = console.call("GET", "/v1/me", token="cps_forged-token")
    wrong_scheme = console.call("GET", "/v1/me", headers={"authorization": "Basic abc"})

    assert no_header.status == 401
    assert garbage.status == 401 and garbage.error_code == "invalid_token"
    assert wrong_scheme.status == 401 and wrong_scheme.error_code == "invalid_token"


def test_an_expired_session_is_refused(console):
    user = console.sign_up_and_in("a@example.com")
    session = next(Session.scan())
    session.update(actions=[Session.expires_at.set(session.created_at - 1)])

    answer = user.call("GET", "/v1/me")

    assert answer.status == 401 and answer.error_code == "session_expired"


def test_signing_out_revokes_the_session(console):
    user = console.sign_up_and_in("a@example.com")
    other = console.call("POST", "/v1/sessions", {"email": "a@example.com", "password": PASSWORD})

    assert user.call("DELETE", "/v1/sessions/current").status == 200

    assert user.call("GET", "/v1/me").error_code == "session_revoked"
    assert console.call("GET", "/v1/me", token=other.json["token"]).status == 200
