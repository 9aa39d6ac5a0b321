"""C5.5: a sub-merchant authorizes its provider's Alipay app, end to end: the console's link,
the merchant approving on the sandbox's Alipay page, our H5 callback, tokens stored
encrypted, refreshed before expiry by index, cleared and authorized again."""
from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from app import refresh_alipay_authorizations
from chalicelib import alipay_authorization, secrets, signed_tokens
from chalicelib.errors import Conflict
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.upstream import alipay, http
from sandbox import alipay as sandbox_alipay
from tests.dynamodb_calls import counting_aws_calls
from tests.environment import PUBLIC_BASE_URL, SANDBOX_ROOT, STACK_NAME

SP_MCHID = "1900000109"
DAY = 86400
CALLBACK = f"{PUBLIC_BASE_URL}/h5/alipay/app-auth"
SCHEDULED_EVENT = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-11-22T00:00:00Z", "region": "ap-east-1",
                   "resources": ["arn:aws:events:ap-east-1:123456789012:rule/refresh"], "detail": {}}


@pytest.fixture
def world_alipay(sandbox):
    return sandbox_alipay.state_of(sandbox)


@pytest.fixture
def isv(world_alipay):
    return world_alipay.create_app()


@pytest.fixture
def owner(bound_console, isv):
    """A console account whose provider has its Alipay ISV app configured."""
    created = bound_console.call("POST", "/v1/providers", {
        "sp_mchid": SP_MCHID, "name": "演示服务商",
        "alipay": {"app_id": isv.app_id, "private_key": isv.app_private_key_pem,
                   "alipay_public_key": isv.alipay_public_key_pem}})
    assert created.status == 201, created.json
    return bound_console


def _create_merchant(owner, name="一号面馆", sp_mchid=SP_MCHID) -> dict:
    created = owner.call("POST", "/v1/sub-merchants", {"sp_mchid": sp_mchid, "name": name})
    assert created.status == 201, created.json
    return created.json


@pytest.fixture
def merchant(owner) -> dict:
    return _create_merchant(owner)


@pytest.fixture
def pids(world_alipay) -> list[str]:
    """The Alipay merchants (PIDs) the sandbox knows; each can approve on the authorization page."""
    return list(world_alipay.merchants)


def _link(owner, merchant_id: str):
    return owner.call("POST", f"/v1/sub-merchants/{merchant_id}/alipay-authorization-links")


def _approve(url: str, pid: str) -> str:
    """The merchant signs in to Alipay as `pid` and approves: where Alipay sends it back."""
    answer = http.client().get(f"{url}&{urlencode({'merchant': pid})}")
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


def _authorize(owner, phone, merchant_id: str, pid: str):
    """Link → approve on Alipay's page → our callback page, as the merchant's phone sees it."""
    url = _link(owner, merchant_id).json["url"]
    return phone("merchant-phone").open(f"{url}&{urlencode({'merchant': pid})}")


def _detail(owner, merchant_id: str) -> dict:
    return owner.call("GET", f"/v1/sub-merchants/{merchant_id}").json


def _raw_item(owner, merchant_id: str) -> dict:
    account_id = owner.call("GET", "/v1/me").json["id"]
    return boto3.client("dynamodb").get_item(TableName=f"{STACK_NAME}-sub-merchants", Key={
        "account_id": {"S": account_id}, "merchant_id": {"S": merchant_id}})["Item"]


def _record(owner, merchant_id: str) -> SubMerchant:
    return SubMerchant.get(owner.call("GET", "/v1/me").json["id"], merchant_id)


def _live_authorizations(world_alipay, pid: str) -> list:
    """The sandbox's tokens for `pid` that still work (a refresh replaces the old ones)."""
    return [found for found in world_alipay.authorizations.values()
            if found.merchant.user_id == pid and not found.replaced]


def test_the_link_points_at_alipays_authorization_page_with_our_callback_and_a_qr_image(owner, merchant, isv):
    link = _link(owner, merchant["id"])

    assert link.status == 201
    url = urlsplit(link.json["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{SANDBOX_ROOT}/alipay/openauth/oauth2/appToAppAuth.htm"
    query = parse_qs(url.query)
    assert query["app_id"] == [isv.app_id] and query["redirect_uri"] == [CALLBACK] and query["state"]
    assert link.json["redirect_uri"] == CALLBACK and link.json["expires_at"] >= time.time() + DAY - 5
    prefix = "data:image/png;base64,"
    assert link.json["qr_code"]["png"].startswith(prefix)
    assert base64.b64decode(link.json["qr_code"]["png"][len(prefix):]).startswith(b"\x89PNG")
    assert link.json["authorization"]["status"] == "not_authorized"


def test_a_merchant_authorizes_and_the_tokens_are_stored_only_encrypted(owner, merchant, phone, world_alipay, pids):
    page = _authorize(owner, phone, merchant["id"], pids[0])

    assert page.status == 200 and page.page_id == "alipay-authorized" and "一号面馆" in page.html
    [granted] = _live_authorizations(world_alipay, pids[0])
    detail = _detail(owner, merchant["id"])
    authorization = detail["alipay_authorization"]
    assert authorization["status"] == "authorized" and authorization["user_id"] == pids[0]
    assert authorization["auth_app_id"] == granted.merchant.auth_app_id
    assert authorization["expires_at"] == pytest.approx(time.time() + 365 * DAY, abs=60)
    raw = _raw_item(owner, merchant["id"])
    for token in (granted.app_auth_token, granted.app_refresh_token):
        assert token not in repr(raw) and token not in repr(detail) and token not in page.html
    stored = raw["alipay"]["M"]
    account_id = raw["account_id"]["S"]
    assert secrets.decrypt(stored["app_auth_token"]["S"], account_id=account_id, record=f"sub_merchant#{merchant['id']}",
                           field="alipay.app_auth_token") == granted.app_auth_token
    with pytest.raises(Exception):  # the encryption context binds the ciphertext to its record and field
        secrets.decrypt(stored["app_auth_token"]["S"], account_id=account_id, record="sub_merchant#m_other",
                        field="alipay.app_auth_token")
    audit = owner.call("GET", f"/v1/audit-log?entity=sub_merchant%23{merchant['id']}").json["data"]
    assert audit[0]["action"] == "sub_merchant.alipay_authorized"
    assert audit[0]["changes"]["alipay.app_auth_token"] == "changed"


def test_the_stored_token_is_what_payments_use_with_alipay(owner, merchant, phone, pids):
    _authorize(owner, phone, merchant["id"], pids[0])

    credentials = alipay_authorization.payment_credentials(_record(owner, merchant["id"]))

    with pytest.raises(alipay.TradeNotExist):  # Alipay accepted the token: only the trade is unknown
        alipay.query_trade(credentials.app, app_auth_token=credentials.app_auth_token, out_trade_no="M00001NONE")
    assert credentials.user_id == pids[0]


def test_a_forged_state_changes_nothing(owner, merchant, phone, pids):
    url = _link(owner, merchant["id"]).json["url"]
    back = _approve(url, pids[0])
    query = parse_qs(urlsplit(back).query)
    state = query["state"][0]
    forged = back.replace(state, state[:-4] + ("AAAA" if not state.endswith("AAAA") else "BBBB"))

    page = phone("merchant-phone").open(forged)

    assert page.status == 400 and page.page_id == "alipay-auth-state-invalid"
    assert _detail(owner, merchant["id"])["alipay_authorization"]["status"] == "not_authorized"


def test_an_expired_link_is_refused_with_its_own_page(owner, merchant, phone, isv, pids):
    account_id = owner.call("GET", "/v1/me").json["id"]
    yesterdays = signed_tokens.sign(alipay_authorization.STATE_PURPOSE, {"a": account_id, "m": merchant["id"]},
                                    ttl_seconds=-1)
    url = alipay.app_authorization_url(isv.app_id, CALLBACK, yesterdays)

    page = phone("merchant-phone").open(f"{url}&{urlencode({'merchant': pids[0]})}")

    assert page.status == 410 and page.page_id == "alipay-auth-state-expired"
    assert _detail(owner, merchant["id"])["alipay_authorization"]["status"] == "not_authorized"


def test_a_code_used_twice_is_refused_the_second_time(owner, merchant, phone, pids):
    back = _approve(_link(owner, merchant["id"]).json["url"], pids[0])

    first = phone("merchant-phone").open(back).page_id
    again = phone("merchant-phone").open(back)

    assert first == "alipay-authorized"
    assert again.status == 410 and again.page_id == "alipay-auth-code-used"
    assert _detail(owner, merchant["id"])["alipay_authorization"]["status"] == "authorized"


def test_a_merchant_gone_before_the_callback_gets_a_page_saying_so(owner, merchant, phone, pids):
    back = _approve(_link(owner, merchant["id"]).json["url"], pids[0])
    _record(owner, merchant["id"]).delete()

    page = phone("merchant-phone").open(back)

    assert page.status == 404 and page.page_id == "alipay-auth-merchant-gone"


def test_another_accounts_merchant_is_not_found(owner, merchant, console, phone):
    stranger = console.sign_up_and_in("stranger@example.com")
    code = stranger.call("POST", "/v1/wechat-binding-codes").json
    assert phone("admin-02").open(code["url"]).confirm().page_id == "binding-done"

    link = _link(stranger, merchant["id"])
    cleared = stranger.call("DELETE", f"/v1/sub-merchants/{merchant['id']}/alipay-authorization")

    assert link.status == 404 and link.error_code == "not_found" and link.json["error"]["param"] == "merchant_id"
    assert cleared.status == 404


def test_a_provider_without_alipay_gets_a_clear_error_naming_the_missing_setting(owner):
    assert owner.call("POST", "/v1/providers", {"sp_mchid": "1900000110", "name": "未配置支付宝"}).status == 201
    bare = _create_merchant(owner, sp_mchid="1900000110")

    link = _link(owner, bare["id"])

    assert link.status == 409 and link.error_code == "alipay_not_configured"
    assert link.json["error"]["param"] == "alipay.app_id"
    with pytest.raises(Conflict) as refused:
        alipay_authorization.payment_credentials(_record(owner, bare["id"]))
    assert refused.value.code == "alipay_not_authorized"  # nothing to send to Alipay: never authorized


def test_the_alipay_user_id_cannot_be_edited(owner, merchant):
    for name in ("alipay_user_id", "alipay_authorization"):
        answer = owner.call("PATCH", f"/v1/sub-merchants/{merchant['id']}", {"version": 1, name: "2088000000000009"})

        assert answer.status == 400 and answer.json["error"]["param"] == name
        assert "DELETE" in answer.json["error"]["message"]


def test_another_alipay_account_cannot_replace_the_authorization_until_it_is_cleared(owner, merchant, phone, pids):
    _authorize(owner, phone, merchant["id"], pids[0])

    other = _authorize(owner, phone, merchant["id"], pids[1])

    assert other.status == 409 and other.page_id == "alipay-auth-other-user"
    assert pids[0] not in other.html  # only masked
    assert _detail(owner, merchant["id"])["alipay_authorization"]["user_id"] == pids[0]


def test_clearing_forgets_the_user_id_and_tokens_and_the_merchant_authorizes_again(owner, merchant, phone, pids):
    _authorize(owner, phone, merchant["id"], pids[0])

    cleared = owner.call("DELETE", f"/v1/sub-merchants/{merchant['id']}/alipay-authorization")

    assert cleared.status == 200 and cleared.json["status"] == "not_authorized" and cleared.json["user_id"] is None
    raw = _raw_item(owner, merchant["id"])
    assert "alipay" not in raw and "alipay_refresh_shard" not in raw
    with pytest.raises(Conflict) as refused:
        alipay_authorization.payment_credentials(_record(owner, merchant["id"]))
    assert refused.value.code == "alipay_not_authorized"
    again = _authorize(owner, phone, merchant["id"], pids[1])
    assert again.page_id == "alipay-authorized"
    assert _detail(owner, merchant["id"])["alipay_authorization"]["user_id"] == pids[1]
    actions = [entry["action"] for entry in
               owner.call("GET", f"/v1/audit-log?entity=sub_merchant%23{merchant['id']}").json["data"]]
    assert actions[:3] == ["sub_merchant.alipay_authorized", "sub_merchant.alipay_authorization_cleared",
                           "sub_merchant.alipay_authorized"]


def test_an_expired_token_gives_a_clear_error_and_shows_as_expired(owner, merchant, phone, pids):
    _authorize(owner, phone, merchant["id"], pids[0])
    record = _record(owner, merchant["id"])
    record.update(actions=[SubMerchant.alipay.expires_at.set(int(time.time()) - 1)])

    with pytest.raises(Conflict) as refused:
        alipay_authorization.payment_credentials(_record(owner, merchant["id"]))

    assert refused.value.code == "alipay_authorization_expired"
    assert _detail(owner, merchant["id"])["alipay_authorization"]["status"] == "expired"


def test_the_sweep_refreshes_only_tokens_near_expiry_through_the_index(owner, phone, sandbox, world_alipay, pids):
    soon, later = _create_merchant(owner, "快到期"), _create_merchant(owner, "还早")
    world_alipay.app_auth_token_lifetime = 40 * DAY  # due 20 days on (half its life; 30-day window)
    _authorize(owner, phone, soon["id"], pids[0])
    world_alipay.app_auth_token_lifetime = 365 * DAY
    _authorize(owner, phone, later["id"], pids[1])
    [old] = _live_authorizations(world_alipay, pids[0])
    later_before = _raw_item(owner, later["id"])
    sandbox.clock.advance(21 * DAY)

    with counting_aws_calls() as calls:
        sweep = alipay_authorization.refresh_due(at=int(time.time()) + 21 * DAY)

    assert (sweep.examined, sweep.refreshed, sweep.failed) == (1, 1, 0)
    assert "Scan" not in calls and calls["Query"] == alipay_authorization.REFRESH_SHARDS
    assert old.replaced  # Alipay replaced the old tokens with the new ones
    [new] = _live_authorizations(world_alipay, pids[0])
    credentials = alipay_authorization.payment_credentials(_record(owner, soon["id"]), at=int(time.time()) + 21 * DAY)
    assert credentials.app_auth_token == new.app_auth_token != old.app_auth_token
    refreshed = _detail(owner, soon["id"])["alipay_authorization"]
    assert refreshed["refreshed_at"] and refreshed["refresh_failure"] is None
    assert _raw_item(owner, later["id"]) == later_before


def test_the_scheduled_sweep_reads_the_index_only(owner, merchant, phone, pids):
    _authorize(owner, phone, merchant["id"], pids[0])

    with counting_aws_calls() as calls:
        result = refresh_alipay_authorizations(SCHEDULED_EVENT, None)

    assert result == {"examined": 0, "refreshed": 0, "failed": 0, "stopped_early": False}
    assert dict(calls) == {"Query": alipay_authorization.REFRESH_SHARDS}


def test_a_refused_refresh_token_is_recorded_and_leaves_the_sweep(owner, merchant, phone, world_alipay, pids):
    _authorize(owner, phone, merchant["id"], pids[0])
    for granted in _live_authorizations(world_alipay, pids[0]):
        granted.replaced = True  # the merchant cancelled the authorization in Alipay
    due = int(time.time()) + 340 * DAY

    sweep = alipay_authorization.refresh_due(at=due)

    assert (sweep.examined, sweep.refreshed, sweep.failed) == (1, 0, 1)
    authorization = _detail(owner, merchant["id"])["alipay_authorization"]
    assert authorization["status"] == "refresh_failed" and authorization["next_refresh_at"] is None
    assert authorization["refresh_failure"]["code"] == "isv.refresh-token-invalid"
    assert authorization["refresh_failure"]["will_retry"] is False
    assert alipay_authorization.refresh_due(at=due + DAY).examined == 0


def test_a_refresh_that_fails_for_now_is_retried_later_and_then_succeeds(owner, merchant, phone, sandbox, pids):
    _authorize(owner, phone, merchant["id"], pids[0])
    due = int(time.time()) + 340 * DAY
    sandbox.faults.arm("alipay", "SYSTEM_ERROR")

    failed = alipay_authorization.refresh_due(at=due)

    assert (failed.refreshed, failed.failed) == (0, 1)
    authorization = _detail(owner, merchant["id"])["alipay_authorization"]
    assert authorization["status"] == "refresh_failed" and authorization["refresh_failure"]["will_retry"] is True
    assert authorization["next_refresh_at"] == due + alipay_authorization.RETRY_AFTER_SECONDS
    assert alipay_authorization.refresh_due(at=due + 60).examined == 0
    retried = alipay_authorization.refresh_due(at=due + alipay_authorization.RETRY_AFTER_SECONDS)
    assert retried.refreshed == 1
    authorization = _detail(owner, merchant["id"])["alipay_authorization"]
    assert authorization["status"] == "authorized" and authorization["refresh_failure"] is None
