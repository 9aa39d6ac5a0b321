"""U1 access token and U2 template messages: the real clients against the in-process sandbox."""
from __future__ import annotations

import concurrent.futures
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from chalicelib.upstream import http, wechat_message, wechat_oauth, wechat_token
from chalicelib.upstream.wechat_api import (
    ERRORS,
    WechatApiError,
    WechatConfigError,
    WechatRateLimited,
    WechatTokenRejected,
    call_api,
)
from chalicelib.upstream.wechat_message import (
    InvalidRecipient,
    InvalidTemplate,
    InvalidTemplateData,
    RecipientNotSubscribed,
)
from chalicelib.upstream.wechat_token import AppCredentials
from sandbox.wechat import sent_messages
from tests.environment import PARAMETERS, SANDBOX_ROOT, WECHAT_APP_SECRET, next_message_id

APP_ID = PARAMETERS["WechatAppId"]
pytestmark = pytest.mark.usefixtures("platform_secrets")  # the client reads WECHAT_APP_SECRET from SSM
TEMPLATE = "cp_sandbox_payment_received"
DATA = {"thing1": "一号门店", "amount2": "¥12.30", "time3": "2024-05-01 12:00:00", "character_string4": "CP0001"}


@pytest.fixture
def wechat_api(wire):
    """A plain HTTP client on the sandbox's WeChat API, for what other parties do."""
    with httpx.Client(transport=wire.inner, base_url=f"{SANDBOX_ROOT}/wechat-api") as plain:
        yield plain


@pytest.fixture(autouse=True)
def tokens_on_the_sandbox_clock(sandbox, monkeypatch):
    """A fresh token cache per test, ageing with the sandbox's clock."""
    monkeypatch.setattr(wechat_token, "tokens", wechat_token.AccessTokens(clock=sandbox.clock.now))


def _openid(sandbox, user_id="admin-01") -> str:
    return sandbox.users[user_id].openid(APP_ID)


def _force_refresh_elsewhere(wechat_api: httpx.Client) -> str:
    """Another holder of the app secret force-refreshes the stable token (revoking ours)."""
    return wechat_api.post("/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": APP_ID, "secret": WECHAT_APP_SECRET,
        "force_refresh": True}).json()["access_token"]


# --- U1 access token -----------------------------------------------------------------------


def test_the_access_token_is_fetched_once_and_then_served_from_the_cache(wire):
    first = wechat_token.access_token()
    second = wechat_token.access_token()

    assert first == second and len(first) > 32
    assert wire.count("/cgi-bin/stable_token") == 1


def test_the_token_is_renewed_in_its_last_five_minutes_and_the_new_one_works(sandbox, wire):
    first = wechat_token.access_token()
    sandbox.clock.advance(7200 - 301)
    assert wechat_token.access_token() == first and wire.count("/cgi-bin/stable_token") == 1

    sandbox.clock.advance(2)
    renewed = wechat_token.access_token()

    assert renewed != first and wire.count("/cgi-bin/stable_token") == 2
    assert wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id()) > 0
    assert wire.count("/cgi-bin/stable_token") == 2


def test_concurrent_threads_share_one_token_fetch(wire):
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        values = set(pool.map(lambda _: wechat_token.access_token(), range(16)))

    assert len(values) == 1 and wire.count("/cgi-bin/stable_token") == 1


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_a_rejected_token_is_replaced_and_the_call_retried_exactly_once(errcode, wire):
    seen: list[str] = []

    def call(token: str) -> str:
        seen.append(token)
        if len(seen) == 1:
            raise ERRORS[errcode](errcode, "rejected")
        return "done"

    assert wechat_token.call_with_token(call) == "done"
    assert len(seen) == 2 and seen[0] != seen[1]


def test_a_token_rejected_twice_is_not_retried_a_third_time():
    seen: list[str] = []

    def call(token: str) -> None:
        seen.append(token)
        raise WechatTokenRejected(40001, "invalid credential")

    with pytest.raises(WechatTokenRejected):
        wechat_token.call_with_token(call)
    assert len(seen) == 2


def test_a_token_revoked_by_a_force_refresh_elsewhere_is_replaced_and_the_message_still_sent(
        sandbox, wire, wechat_api):
    ours = wechat_token.access_token()
    theirs = _force_refresh_elsewhere(wechat_api)

    msgid = wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert theirs != ours and wechat_token.access_token() == theirs
    assert [m["msgid"] for m in sent_messages(sandbox)] == [msgid]
    assert wire.count("/cgi-bin/message/template/send") == 2


def test_a_token_wechat_considers_expired_is_replaced_when_our_clock_lags(sandbox, monkeypatch, wire):
    monkeypatch.setattr(wechat_token, "tokens", wechat_token.AccessTokens())  # our own (real) clock
    expired = wechat_token.access_token()
    sandbox.clock.advance(7300)

    wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert wechat_token.access_token() != expired
    assert len(sent_messages(sandbox)) == 1 and wire.count("/cgi-bin/stable_token") == 2


def test_an_unknown_app_id_or_wrong_secret_is_a_configuration_error():
    with pytest.raises(WechatConfigError) as unknown_app:
        wechat_token.access_token(AppCredentials("wx_not_an_app_0000", WECHAT_APP_SECRET))
    with pytest.raises(WechatConfigError) as wrong_secret:
        wechat_token.access_token(AppCredentials(APP_ID, "not-the-secret"))

    assert unknown_app.value.errcode == 40013 and wrong_secret.value.errcode == 40125


def test_the_token_endpoint_busy_once_is_retried(sandbox):
    sandbox.faults.arm("wechat", "SYSTEM_ERROR")

    assert wechat_token.access_token()
    assert sandbox.faults.armed["wechat"] == []


def test_the_classic_token_api_replaces_the_previous_token_after_five_minutes(sandbox, wechat_api):
    def classic() -> str:
        return wechat_api.get("/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": APP_ID, "secret": WECHAT_APP_SECRET,
        }).json()["access_token"]

    def send_with(token: str) -> int:
        return wechat_api.post("/cgi-bin/message/template/send", params={"access_token": token}, json={
            "touser": _openid(sandbox), "template_id": TEMPLATE,
            "data": {k: {"value": v} for k, v in DATA.items()}}).json()["errcode"]

    old = classic()
    new = classic()
    assert old != new and send_with(old) == 0
    sandbox.clock.advance(301)
    assert send_with(old) == 40001 and send_with(new) == 0


# --- U2 template messages ------------------------------------------------------------------


def test_a_template_message_is_delivered_to_the_subscribed_user(sandbox):
    msgid = wechat_message.send_template(_openid(sandbox, "staff-01"), TEMPLATE, DATA,
                                         url="http://h5.test/h5/orders/1", client_msg_id=next_message_id())

    [message] = sent_messages(sandbox)
    assert message["msgid"] == msgid and message["user_id"] == "staff-01"
    assert message["template_id"] == TEMPLATE and message["data"] == DATA
    assert message["url"] == "http://h5.test/h5/orders/1"


def test_the_sandbox_lists_the_messages_a_user_received(sandbox, wechat_api):
    wechat_message.send_template(_openid(sandbox, "staff-01"), TEMPLATE, DATA, client_msg_id=next_message_id())
    wechat_message.send_template(_openid(sandbox, "admin-01"), TEMPLATE, DATA, client_msg_id=next_message_id())

    listed = wechat_api.get("/sandbox/messages", params={"user": "staff-01"}).json()

    assert [m["user_id"] for m in listed] == ["staff-01"]


def test_the_same_client_msg_id_sends_one_message(sandbox):
    first = wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id="order-1:clerk-1")
    again = wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id="order-1:clerk-1")

    assert first == again and len(sent_messages(sandbox)) == 1


def test_a_user_who_unfollowed_the_account_cannot_be_messaged(sandbox):
    sandbox.users["staff-01"].subscribed = False

    with pytest.raises(RecipientNotSubscribed) as refused:
        wechat_message.send_template(_openid(sandbox, "staff-01"), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert refused.value.errcode == 43004 and sent_messages(sandbox) == []


@pytest.mark.parametrize("touser, template_id, data, expected, errcode", [
    ("o-not-an-openid-of-this-app", TEMPLATE, DATA, InvalidRecipient, 40003),
    (None, "not-a-registered-template", DATA, InvalidTemplate, 40037),
    (None, TEMPLATE, {"thing1": "一号门店"}, InvalidTemplateData, 47003),
])
def test_each_refused_message_raises_its_own_error(sandbox, touser, template_id, data, expected, errcode):
    with pytest.raises(expected) as refused:
        wechat_message.send_template(touser or _openid(sandbox), template_id, data, client_msg_id=next_message_id())

    assert refused.value.errcode == errcode and sent_messages(sandbox) == []


def test_a_rate_limit_is_a_distinct_error_and_not_retried(sandbox, wire):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "RATE_LIMITED")

    with pytest.raises(WechatRateLimited) as refused:
        wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert refused.value.errcode == 45011 and wire.count("/cgi-bin/message/template/send") == 1


def test_system_busy_is_retried_and_the_message_sent_once(sandbox, wire):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "SYSTEM_ERROR")

    msgid = wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert [m["msgid"] for m in sent_messages(sandbox)] == [msgid]
    assert wire.count("/cgi-bin/message/template/send") == 2


def test_system_busy_on_every_attempt_ends_as_upstream_unavailable(sandbox):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "SYSTEM_ERROR", times=2)

    with pytest.raises(http.UpstreamUnavailable, match="system busy"):
        wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())


def test_a_timeout_is_retried_then_the_message_is_sent(sandbox, wire):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "TIMEOUT")

    wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())

    assert len(sent_messages(sandbox)) == 1 and wire.count("/cgi-bin/message/template/send") == 2


def test_timeouts_on_every_attempt_end_as_a_clear_upstream_unavailable(sandbox):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "TIMEOUT", times=2)

    with pytest.raises(http.UpstreamUnavailable, match="WeChat API is unavailable: timed out after 2 attempts"):
        wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id=next_message_id())
    assert sent_messages(sandbox) == []


def test_an_unmapped_errcode_is_still_a_wechat_api_error():
    def unknown() -> httpx.Request:
        return httpx.Request("POST", f"{SANDBOX_ROOT}/wechat-api/cgi-bin/message/template/send")

    with pytest.raises(WechatApiError) as refused:
        call_api(unknown)
    assert refused.value.errcode == 41001


def test_a_message_whose_answer_was_lost_is_sent_once(sandbox, wire):
    wechat_token.access_token()
    sandbox.faults.arm("wechat", "LOST_ANSWER")

    wechat_message.send_template(_openid(sandbox), TEMPLATE, DATA, client_msg_id="order-9:clerk-1")

    assert wire.count("/cgi-bin/message/template/send") == 2
    assert len(sent_messages(sandbox)) == 1


# --- U1 web-page OAuth: scopes and the user's profile ----------------------------------------


def _oauth_code(wire, user_id: str, scope: str) -> str:
    """What WeChat's authorize page hands our callback for `user_id` under `scope`."""
    url = wechat_oauth.authorize_url(APP_ID, "https://h5.example/h5/oauth/wechat", "state-1", scope)
    with httpx.Client(transport=wire.inner) as plain:
        location = plain.get(url.split("#")[0] + f"&as_user={user_id}").headers["location"]
    return parse_qs(urlsplit(location).query)["code"][0]


def _user_token(wechat_api, wire, user_id: str, scope: str) -> dict:
    return wechat_api.get("/sns/oauth2/access_token", params={
        "appid": APP_ID, "secret": WECHAT_APP_SECRET, "code": _oauth_code(wire, user_id, scope),
        "grant_type": "authorization_code"}).json()


def test_the_authorize_url_asks_for_the_scope_it_is_given_and_snsapi_base_by_default():
    assert parse_qs(urlsplit(wechat_oauth.authorize_url(APP_ID, "https://h5.example/cb", "s")).query)["scope"] == [
        "snsapi_base"]
    userinfo = wechat_oauth.authorize_url(APP_ID, "https://h5.example/cb", "s", wechat_oauth.USERINFO)
    assert parse_qs(urlsplit(userinfo).query)["scope"] == ["snsapi_userinfo"]
    with pytest.raises(ValueError):
        wechat_oauth.authorize_url(APP_ID, "https://h5.example/cb", "s", "snsapi_login")


def test_the_token_exchange_answers_the_scope_asked_at_authorize_time(wechat_api, wire):
    assert _user_token(wechat_api, wire, "admin-01", "snsapi_base")["scope"] == "snsapi_base"
    assert _user_token(wechat_api, wire, "admin-01", "snsapi_userinfo")["scope"] == "snsapi_userinfo"


def test_a_snsapi_userinfo_code_gives_the_identity_with_its_nickname(sandbox, wire):
    found = wechat_oauth.exchange_code(APP_ID, WECHAT_APP_SECRET, _oauth_code(wire, "admin-01", "snsapi_userinfo"))

    assert found.openid == _openid(sandbox) and found.unionid == sandbox.users["admin-01"].unionid
    assert found.nickname == "买单管理员01"
    assert wire.count("/sns/userinfo") == 1


def test_a_snsapi_base_code_gives_the_identity_without_reading_the_profile(sandbox, wire):
    found = wechat_oauth.exchange_code(APP_ID, WECHAT_APP_SECRET, _oauth_code(wire, "admin-01", "snsapi_base"))

    assert found.openid == _openid(sandbox) and found.nickname is None
    assert wire.count("/sns/userinfo") == 0


def test_a_snsapi_base_token_cannot_read_the_users_profile(sandbox, wechat_api, wire):
    token = _user_token(wechat_api, wire, "admin-01", "snsapi_base")

    with pytest.raises(WechatApiError) as refused:
        wechat_oauth.user_info(token["access_token"], token["openid"])

    assert refused.value.errcode == 48001


def test_a_user_token_reads_only_its_own_users_profile(sandbox, wechat_api, wire):
    token = _user_token(wechat_api, wire, "admin-01", "snsapi_userinfo")

    with pytest.raises(WechatApiError) as refused:
        wechat_oauth.user_info(token["access_token"], _openid(sandbox, "admin-02"))

    assert refused.value.errcode == 40003
    assert wechat_oauth.user_info(token["access_token"], token["openid"])["nickname"] == "买单管理员01"


def test_a_user_who_shares_no_profile_is_answered_as_wechats_placeholder_nickname(sandbox, wire):
    sandbox.users["admin-01"].shares_profile = False

    found = wechat_oauth.exchange_code(APP_ID, WECHAT_APP_SECRET, _oauth_code(wire, "admin-01", "snsapi_userinfo"))

    assert found.nickname == "微信用户"
