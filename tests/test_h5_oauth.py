"""U1 on H5: WeChat OAuth through the platform account, and the signed identity cookie."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from chalicelib import signed_tokens
from chalicelib.h5_identity import COOKIE_NAME, WechatIdentity, cookie_header, from_cookie_header
from tests.environment import PARAMETERS, SANDBOX_ROOT


def _start(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    raw = phone("admin-01")._app("GET", f"/h5/q/{code['id']}")
    return code, {k.lower(): v for k, v in raw.headers.items()}["location"]


def test_an_unknown_scanner_is_sent_to_wechat_oauth_with_snsapi_base(console, phone):
    _, location = _start(console, phone)

    parts = urlsplit(location)
    query = parse_qs(parts.query)
    assert location.startswith(f"{SANDBOX_ROOT}/wechat-open/connect/oauth2/authorize?")
    assert parts.fragment == "wechat_redirect"
    assert query["appid"] == [PARAMETERS["WechatAppId"]] and query["scope"] == ["snsapi_base"]
    assert query["redirect_uri"] == [f"{PARAMETERS['PublicBaseUrl']}/h5/oauth/wechat"]


def test_a_forged_oauth_state_is_refused(phone, client):
    page = phone("admin-01").open(f"{PARAMETERS['PublicBaseUrl']}/h5/oauth/wechat?code=x&state=forged.state")

    assert page.status == 400 and page.page_id == "oauth-bad-state"


def test_a_state_that_points_outside_h5_is_refused(phone, client):
    state = signed_tokens.sign("oauth-state", {"r": "https://evil.example/"}, ttl_seconds=60)

    page = phone("admin-01").open(f"{PARAMETERS['PublicBaseUrl']}/h5/oauth/wechat?code=x&state={state}")

    assert page.page_id == "oauth-bad-state"


def test_a_user_who_denies_authorization_sees_why(phone, client):
    state = signed_tokens.sign("oauth-state", {"r": "/h5/q/abc"}, ttl_seconds=60)

    page = phone("admin-01").open(f"{PARAMETERS['PublicBaseUrl']}/h5/oauth/wechat?state={state}")

    assert page.status == 403 and page.page_id == "oauth-denied"


def test_an_oauth_code_works_once(console, phone, sandbox):
    _, location = _start(console, phone)
    admin = phone("admin-01")
    callback = admin._sandbox().get(location).headers["location"]

    first = admin.open(callback)
    replay = phone("admin-02").open(callback)

    assert first.page_id == "binding-confirm"
    assert replay.status == 400 and replay.page_id == "oauth-code-refused"


def test_the_identity_cookie_is_signed_and_bound_to_the_app(aws):
    identity = WechatIdentity(PARAMETERS["WechatAppId"], "openid-1", "unionid-1")
    header = cookie_header(identity)
    value = header.split(";")[0]

    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/h5" in header
    assert from_cookie_header(value, PARAMETERS["WechatAppId"]) == identity
    assert from_cookie_header(value, "wx_other_app_id_00") is None
    payload, mac = value.split("=", 1)[1].split(".")
    assert from_cookie_header(f"{COOKIE_NAME}={payload}x.{mac}", PARAMETERS["WechatAppId"]) is None
    assert from_cookie_header("garbage;;=", PARAMETERS["WechatAppId"]) is None
