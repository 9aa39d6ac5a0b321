"""WeChat as the real service answers it: web-page OAuth (snsapi_base and snsapi_userinfo,
with the user's profile at /sns/userinfo), the official account's access tokens (stable and
classic) and template messages.

snsapi_userinfo's consent page is taken as granted (the user pressed 允许); a refusal is a
callback without `code`, which tests build directly.

The signed-in WeChat user is the one the phone page picked (a cookie on the sandbox's
own host, like being logged in to WeChat); without one, the authorize page asks.
WeChat answers API errors with HTTP 200 and an `errcode`, and so does the sandbox.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

open_platform = Blueprint("wechat_open", __name__)
api = Blueprint("wechat_api", __name__)
USER_COOKIE = "sandbox_wechat_user"
OAUTH_CODE_TTL_SECONDS = 300
USER_TOKEN_TTL_SECONDS = 7200
PLACEHOLDER_NICKNAME = "微信用户"
PLACEHOLDER_AVATAR = "https://thirdwx.qlogo.cn/mmopen/sandbox/placeholder/132"
"""What WeChat answers for a user who has not granted a real profile."""
ACCESS_TOKEN_TTL_SECONDS = 7200
RENEW_WITHIN_SECONDS = 300
"""Stable tokens: inside their last 5 minutes a normal call gets a new token (the old one
stays valid until it expires). Classic tokens: the replaced one stays valid 5 more minutes."""
CLIENT_MSG_ID_WINDOW_SECONDS = 600
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{32,512}$")
TEMPLATES = {
    "cp_sandbox_payment_received": ("收款到账通知", ("thing1", "amount2", "time3", "character_string4")),
    "cp_sandbox_refund_succeeded": ("退款成功通知", ("thing1", "amount2", "time3", "character_string4")),
    "cp_sandbox_shift_summary": ("交班汇总通知", ("thing1", "time2", "number3", "amount4")),
}
"""The template ids the sandbox's official account has added: id -> (title, keywords)."""


def world():
    return current_app.config["WORLD"]


def _error(errcode: int, errmsg: str):
    return jsonify({"errcode": errcode, "errmsg": errmsg})


@open_platform.get("/connect/oauth2/authorize")
def authorize():
    args = request.args
    app_id, redirect_uri = args.get("appid", ""), args.get("redirect_uri", "")
    if app_id not in world().official_accounts:
        return render_template("wechat_error.html", message="appid 参数错误 (10003 redirect_uri 域名与后台配置不一致 / appid 无效)"), 400
    if args.get("response_type") != "code" or args.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
        return render_template("wechat_error.html", message="scope 参数错误或没有 scope 权限 (10005)"), 400
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return render_template("wechat_error.html", message="redirect_uri 参数错误 (10003)"), 400
    user_id = args.get("as_user") or request.cookies.get(USER_COOKIE)
    user = world().users.get(user_id or "")
    if user is None:
        return render_template("wechat_pick_user.html", users=world().users.values(), query=args)
    code = world().issue_oauth_code(app_id, user.user_id, args["scope"])
    separator = "&" if "?" in redirect_uri else "?"
    response = redirect(f"{redirect_uri}{separator}{urlencode({'code': code, 'state': args.get('state', '')})}")
    response.set_cookie(USER_COOKIE, user.user_id, samesite="Lax")
    return response


@api.get("/sns/oauth2/access_token")
def access_token():
    args = request.args
    secret = world().official_accounts.get(args.get("appid", ""))
    if secret is None:
        return _error(40013, "invalid appid")
    if args.get("secret") != secret:
        return _error(40125, "invalid appsecret")
    if args.get("grant_type") != "authorization_code":
        return _error(40002, "invalid grant_type")
    with world().lock:
        found = world().oauth_codes.get(args.get("code", ""))
        if found is None or found.app_id != args.get("appid"):
            return _error(40029, "invalid code")
        if found.used:
            return _error(40163, "code been used")
        if world().clock.now() - found.issued_at > OAUTH_CODE_TTL_SECONDS:
            return _error(40029, "invalid code")
        found.used = True
    user = world().users[found.user_id]
    openid = user.openid(found.app_id)
    with world().lock:
        token = user_token_store(world()).issue(found.app_id, openid, found.scope, world().clock.now())
    return jsonify({"access_token": token.value, "expires_in": USER_TOKEN_TTL_SECONDS,
                    "refresh_token": secrets.token_urlsafe(64), "openid": openid, "scope": token.scope,
                    "unionid": user.unionid})


@dataclass(frozen=True)
class UserToken:
    """A web-page access token: one user (openid) of one app, for what its scope allows."""
    value: str
    app_id: str
    openid: str
    scope: str
    expires_at: float


@dataclass
class UserTokenStore:
    by_value: dict = field(default_factory=dict)  # token -> UserToken

    def issue(self, app_id: str, openid: str, scope: str, now: float) -> UserToken:
        token = UserToken(secrets.token_urlsafe(64), app_id, openid, scope, now + USER_TOKEN_TTL_SECONDS)
        self.by_value[token.value] = token
        return token


def user_token_store(the_world) -> UserTokenStore:
    return the_world.component("wechat_user_tokens", lambda _world: UserTokenStore())


@api.get("/sns/userinfo")
def user_info():
    """The profile behind a snsapi_userinfo token; a snsapi_base token never reads it (48001)."""
    args = request.args
    value = args.get("access_token", "")
    if not value:
        return _error(41001, "access_token missing")
    token = user_token_store(world()).by_value.get(value)
    if token is None:
        return _error(40001, "invalid credential, access_token is invalid or not latest")
    if world().clock.now() >= token.expires_at:
        return _error(42001, "access_token expired")
    if args.get("openid") != token.openid:
        return _error(40003, "invalid openid")
    if token.scope != "snsapi_userinfo":
        return _error(48001, "api unauthorized")
    user = world().user_by_openid(token.app_id, token.openid)
    nickname, avatar = ((user.nickname, f"https://thirdwx.qlogo.cn/mmopen/sandbox/{user.user_id}/132")
                        if user.shares_profile else (PLACEHOLDER_NICKNAME, PLACEHOLDER_AVATAR))
    return jsonify({"openid": token.openid, "nickname": nickname, "sex": 0, "province": "", "city": "",
                    "country": "", "headimgurl": avatar, "privilege": [], "unionid": user.unionid})


# --- Official-account access tokens --------------------------------------------------------


@dataclass
class IssuedToken:
    value: str
    app_id: str
    expires_at: float
    revoked_at: float | None = None
    """From then on WeChat answers 40001: replaced by a newer token or a force refresh."""


@dataclass
class TokenStore:
    by_value: dict = field(default_factory=dict)  # token -> IssuedToken
    latest: dict = field(default_factory=dict)    # (app_id, "stable" | "classic") -> IssuedToken

    def issue(self, app_id: str, kind: str, now: float) -> IssuedToken:
        token = IssuedToken(secrets.token_urlsafe(96), app_id, now + ACCESS_TOKEN_TTL_SECONDS)
        self.by_value[token.value] = token
        self.latest[(app_id, kind)] = token
        return token


def token_store(the_world) -> TokenStore:
    return the_world.component("wechat_tokens", lambda _world: TokenStore())


def sent_messages(the_world) -> list[dict]:
    """Every template message WeChat accepted, oldest first (what tests and the phone read)."""
    return the_world.component("wechat_messages", lambda _world: [])


def _injected_fault():
    fault = world().faults.take("wechat", request.headers)
    if fault == "TIMEOUT":
        world().faults.time_out()
    if fault == "SYSTEM_ERROR":
        return _error(-1, "system error")
    if fault == "RATE_LIMITED":
        return _error(45011, "api minute-quota reach limit, must slower, retry next minute")
    return None


def _credentials_problem(app_id, secret):
    if not app_id:
        return _error(41002, "appid missing")
    if app_id not in world().official_accounts:
        return _error(40013, "invalid appid")
    if not secret:
        return _error(41004, "appsecret missing")
    if secret != world().official_accounts[app_id]:
        return _error(40125, "invalid appsecret")
    return None


def _token_answer(token: IssuedToken, now: float):
    return jsonify({"access_token": token.value, "expires_in": int(token.expires_at - now)})


@api.post("/cgi-bin/stable_token")
def stable_token():
    """Normal mode hands every caller the same token; force_refresh revokes it at once."""
    body = request.get_json(silent=True)
    problem = _injected_fault() or (None if isinstance(body, dict) else _error(47001, "data format error"))
    if problem:
        return problem
    if body.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    problem = _credentials_problem(body.get("appid"), body.get("secret"))
    if problem:
        return problem
    now = world().clock.now()
    with world().lock:
        store = token_store(world())
        current = store.latest.get((body["appid"], "stable"))
        if current is not None and body.get("force_refresh") is True:
            current.revoked_at = now
        elif current is not None and current.expires_at - now > RENEW_WITHIN_SECONDS:
            return _token_answer(current, now)
        return _token_answer(store.issue(body["appid"], "stable", now), now)


@api.get("/cgi-bin/token")
def classic_token():
    """Every call issues a new token; the one it replaces works for 5 more minutes."""
    args = request.args
    problem = _injected_fault()
    if problem:
        return problem
    if args.get("grant_type") != "client_credential":
        return _error(40002, "invalid grant_type")
    problem = _credentials_problem(args.get("appid"), args.get("secret"))
    if problem:
        return problem
    now = world().clock.now()
    with world().lock:
        store = token_store(world())
        previous = store.latest.get((args["appid"], "classic"))
        if previous is not None and previous.revoked_at is None:
            previous.revoked_at = now + RENEW_WITHIN_SECONDS
        return _token_answer(store.issue(args["appid"], "classic", now), now)


def _caller_token():
    """(token, None) for a valid ?access_token=, else (None, the errcode WeChat answers)."""
    value = request.args.get("access_token", "")
    if not value:
        return None, _error(41001, "access_token missing")
    if not _TOKEN_SHAPE.match(value):
        return None, _error(40014, "invalid access_token")
    now = world().clock.now()
    token = token_store(world()).by_value.get(value)
    if token is None or (token.revoked_at is not None and now >= token.revoked_at):
        return None, _error(40001, "invalid credential, access_token is invalid or not latest")
    if now >= token.expires_at:
        return None, _error(42001, "access_token expired")
    return token, None


# --- Template messages ----------------------------------------------------------------------


def _template_data_problem(keywords: tuple[str, ...], data) -> str | None:
    if not isinstance(data, dict):
        return "argument invalid! data invalid"
    for keyword in keywords:
        entry = data.get(keyword)
        if not isinstance(entry, dict) or not isinstance(entry.get("value"), str) or not entry["value"]:
            return f"argument invalid! data.{keyword}.value empty"
    return None


@api.post("/cgi-bin/message/template/send")
def send_template_message():
    problem = _injected_fault()
    if problem:
        return problem
    token, problem = _caller_token()
    if problem:
        return problem
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _error(47001, "data format error")
    template = TEMPLATES.get(body.get("template_id"))
    if template is None:
        return _error(40037, "invalid template_id")
    touser = body.get("touser")
    user = world().user_by_openid(token.app_id, touser) if isinstance(touser, str) else None
    if user is None:
        return _error(40003, "invalid openid")
    if not user.subscribed:
        return _error(43004, "require subscribe")
    data_problem = _template_data_problem(template[1], body.get("data"))
    if data_problem:
        return _error(47003, data_problem)
    now, client_msg_id = world().clock.now(), body.get("client_msg_id")
    with world().lock:
        messages = sent_messages(world())
        if client_msg_id:
            repeated = next((m for m in messages if m["client_msg_id"] == client_msg_id and m["touser"] == touser
                             and now - m["sent_at"] < CLIENT_MSG_ID_WINDOW_SECONDS), None)
            if repeated:
                return jsonify({"errcode": 0, "errmsg": "ok", "msgid": repeated["msgid"]})
        msgid = 3_000_000_000 + len(messages)
        messages.append({"msgid": msgid, "app_id": token.app_id, "touser": touser, "user_id": user.user_id,
                         "template_id": body["template_id"], "title": template[0], "url": body.get("url"),
                         "data": {key: value["value"] for key, value in body["data"].items()},
                         "client_msg_id": client_msg_id, "sent_at": now})
    return jsonify({"errcode": 0, "errmsg": "ok", "msgid": msgid})


# --- Sandbox controls (not WeChat's API) ----------------------------------------------------


@api.get("/sandbox/messages")
def list_sent_messages():
    """The template messages a user received (?user=<user_id>), or all of them."""
    user_id = request.args.get("user")
    return jsonify([m for m in sent_messages(world()) if user_id in (None, m["user_id"])])


@api.post("/sandbox/official-accounts")
def create_official_account():
    """Register a provider's official account ({"appid"?}): WeChat then runs OAuth for it and
    issues openids per appid, so its users' openids differ from the platform account's."""
    app_id = (request.get_json(silent=True) or {}).get("appid")
    if app_id is not None and not (isinstance(app_id, str) and re.fullmatch(r"wx[0-9a-f]{16}", app_id)):
        return jsonify({"error": "appid must be wx + 16 hex digits"}), 400
    app_id, secret = world().add_official_account(app_id)
    return jsonify({"appid": app_id, "secret": secret})


@api.post("/sandbox/users/<user_id>/subscription")
def set_subscription(user_id: str):
    """Make a user follow or unfollow the official account (template messages need it)."""
    user = world().users.get(user_id)
    subscribed = (request.get_json(silent=True) or {}).get("subscribed")
    if user is None or not isinstance(subscribed, bool):
        return jsonify({"error": "an existing user and a boolean `subscribed` are required"}), 400
    user.subscribed = subscribed
    return jsonify({"user_id": user_id, "subscribed": subscribed})
