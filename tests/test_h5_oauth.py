"""U1 on H5: WeChat OAuth through the platform account, and the signed identity cookie."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from chalicelib import signed_tokens
from chalicelib.h5_identity import COOKIE_NAME, OAUTH_NONCE_COOKIE, WechatIdentity, cookie_header, from_cookie_header
from tests.environment import PARAMETERS, PUBLIC_BASE_URL, SANDBOX_ROOT


def _start(console, phone):
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    raw = phone("admin-01")._app("GET", f"/h5/q/{code['id']}")
    return code, {k.lower(): v for k, v in raw.headers.items()}["location"]


def _scan(holder, code_id: str) -> str:
    """Scan a code on `holder`'s phone without following the redirect: where WeChat OAuth starts."""
    raw = holder._app("GET", f"/h5/q/{code_id}")
    return {k.lower(): v for k, v in raw.headers.items()}["location"]


def _authorize(holder, oauth_url: str) -> str:
    """WeChat approves `holder` and answers with our callback URL (a fresh code each time), unopened."""
    return holder._sandbox().get(oauth_url).headers["location"]


def _scope(oauth_url: str) -> str:
    return parse_qs(urlsplit(oauth_url).query)["scope"][0]


def test_an_unknown_scanner_of_a_binding_code_is_sent_to_wechat_oauth_with_snsapi_userinfo(console, phone):
    _, location = _start(console, phone)

    parts = urlsplit(location)
    query = parse_qs(parts.query)
    assert location.startswith(f"{SANDBOX_ROOT}/wechat-open/connect/oauth2/authorize?")
    assert parts.fragment == "wechat_redirect"
    assert query["appid"] == [PARAMETERS["WechatAppId"]] and query["scope"] == ["snsapi_userinfo"]
    assert query["redirect_uri"] == [f"{PARAMETERS['PublicBaseUrl']}/h5/oauth/wechat"]


def test_an_unknown_scanner_of_a_provider_sync_code_signs_in_silently_with_snsapi_base(bound_console, phone, wire):
    code = bound_console.call("POST", "/v1/provider-sync-codes").json
    admin = phone("admin-02")
    profiles_read = wire.count("/sns/userinfo")

    assert _scope(_scan(admin, code["id"])) == "snsapi_base"
    assert admin.open(code["url"]).page_id == "provider-sync-confirm"
    assert wire.count("/sns/userinfo") == profiles_read


def test_a_phone_signed_in_silently_signs_in_again_with_snsapi_userinfo_to_bind(bound_console, phone, sandbox, wire):
    sync = bound_console.call("POST", "/v1/provider-sync-codes").json
    admin = phone("admin-02")
    assert admin.open(sync["url"]).page_id == "provider-sync-confirm"
    assert from_cookie_header(f"{COOKIE_NAME}={admin.app_cookies[COOKIE_NAME]}",
                              PARAMETERS["WechatAppId"]).nickname is None
    binding_code = bound_console.call("POST", "/v1/wechat-binding-codes").json
    profiles_read = wire.count("/sns/userinfo")

    oauth_url = _scan(admin, binding_code["id"])
    page = admin.open(binding_code["url"])

    assert _scope(oauth_url) == "snsapi_userinfo"
    assert page.page_id == "binding-confirm" and wire.count("/sns/userinfo") == profiles_read + 1
    assert admin.confirm().page_id == "binding-done"
    nicknames = {b["openid"]: b["nickname"] for b in bound_console.call("GET", "/v1/wechat-bindings").json["data"]}
    assert nicknames[sandbox.users["admin-02"].openid(PARAMETERS["WechatAppId"])] == "买单管理员02"


def test_a_phone_signed_in_for_a_binding_keeps_its_identity_for_other_codes(bound_console, phone, wire):
    binding_code = bound_console.call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-02")
    assert admin.open(binding_code["url"]).page_id == "binding-confirm"
    sync = bound_console.call("POST", "/v1/provider-sync-codes").json
    exchanges = wire.count("/sns/oauth2/access_token")

    page = admin.open(sync["url"])

    assert page.page_id == "provider-sync-confirm"
    assert wire.count("/sns/oauth2/access_token") == exchanges


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
    code = console.sign_up_and_in("owner@example.com").call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01")
    used_callback = _authorize(admin, _scan(admin, code["id"]))
    first_page = admin.open(used_callback).page_id
    admin.app_cookies.pop(COOKIE_NAME)
    fresh_state = parse_qs(urlsplit(_authorize(admin, _scan(admin, code["id"]))).query)["state"][0]
    used_code = parse_qs(urlsplit(used_callback).query)["code"][0]

    replay = admin.open(f"{PUBLIC_BASE_URL}/h5/oauth/wechat?code={used_code}&state={fresh_state}")

    assert first_page == "binding-confirm"
    assert replay.status == 400 and replay.page_id == "oauth-code-refused"


def test_an_attackers_code_with_a_genuine_state_is_refused_on_a_phone_that_did_not_start_the_sign_in(
        console, phone, wire):
    code = console.sign_up_and_in("owner@example.com").call("POST", "/v1/wechat-binding-codes").json
    attacker = phone("admin-02")
    lure = _authorize(attacker, _scan(attacker, code["id"]))
    victim = phone("admin-01")

    page = victim.open(lure)

    assert page.status == 403 and page.page_id == "oauth-wrong-browser"
    assert COOKIE_NAME not in victim.app_cookies
    assert wire.count("/sns/oauth2/access_token") == 0
    assert "授权" in page.html


def test_a_used_state_is_refused_again_even_with_its_nonce_cookie(console, phone, wire):
    code = console.sign_up_and_in("owner@example.com").call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01")
    oauth_url = _scan(admin, code["id"])
    nonce_cookie = dict(admin.app_cookies)
    assert admin.open(_authorize(admin, oauth_url)).page_id == "binding-confirm"
    admin.app_cookies = nonce_cookie

    replay = admin.open(_authorize(admin, oauth_url))

    assert replay.status == 400 and replay.page_id == "oauth-state-used"
    assert COOKIE_NAME not in admin.app_cookies
    assert wire.count("/sns/oauth2/access_token") == 1


def test_signing_in_on_the_phone_that_scanned_keeps_the_identity_and_drops_the_nonce(console, phone):
    code = console.sign_up_and_in("owner@example.com").call("POST", "/v1/wechat-binding-codes").json
    admin = phone("admin-01")

    page = admin.open(f"{PUBLIC_BASE_URL}/h5/q/{code['id']}")

    assert page.page_id == "binding-confirm"
    assert COOKIE_NAME in admin.app_cookies and OAUTH_NONCE_COOKIE not in admin.app_cookies
    assert admin.confirm().page_id == "binding-done"


def test_the_oauth_nonce_is_an_httponly_cookie_for_the_callback_only_and_the_state_holds_its_hash(console, phone):
    code = console.sign_up_and_in("owner@example.com").call("POST", "/v1/wechat-binding-codes").json
    raw = phone("admin-01")._app("GET", f"/h5/q/{code['id']}")
    headers = {k.lower(): v for k, v in raw.headers.items()}
    set_cookie = headers["set-cookie"]
    nonce = set_cookie.split(";")[0].split("=", 1)[1]
    state = parse_qs(urlsplit(headers["location"]).query)["state"][0]

    assert set_cookie.startswith(f"{OAUTH_NONCE_COOKIE}=") and len(nonce) >= 32
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/h5/oauth" in set_cookie
    assert "Max-Age=600" in set_cookie
    assert nonce not in state


def test_the_identity_cookie_is_signed_and_bound_to_the_app(aws):
    identity = WechatIdentity(PARAMETERS["WechatAppId"], "openid-1", "unionid-1", nickname="买单管理员01")
    header = cookie_header(identity)
    value = header.split(";")[0]

    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/h5" in header
    assert from_cookie_header(value, PARAMETERS["WechatAppId"]) == identity
    assert from_cookie_header(value, "wx_other_app_id_00") is None
    payload, mac = value.split("=", 1)[1].split(".")
    assert from_cookie_header(f"{COOKIE_NAME}={payload}x.{mac}", PARAMETERS["WechatAppId"]) is None
    assert from_cookie_header("garbage;;=", PARAMETERS["WechatAppId"]) is None


def test_confirming_a_binding_with_a_silent_sign_in_goes_through_snsapi_userinfo_first(bound_console, phone):
    sync = bound_console.call("POST", "/v1/provider-sync-codes").json
    admin = phone("admin-02")
    assert admin.open(sync["url"]).page_id == "provider-sync-confirm"
    binding_code = bound_console.call("POST", "/v1/wechat-binding-codes").json

    raw = admin._app("POST", f"/h5/q/{binding_code['id']}/confirm", form={"csrf": "x"})

    assert raw.status_code == 302
    assert _scope({k.lower(): v for k, v in raw.headers.items()}["location"]) == "snsapi_userinfo"
    assert bound_console.call("GET", "/v1/me").json["wechat_binding_count"] == 1
