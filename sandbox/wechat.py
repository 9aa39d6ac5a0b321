"""WeChat web-page OAuth (snsapi_base) as the real service answers it.

The signed-in WeChat user is the one the phone page picked (a cookie on the sandbox's
own host, like being logged in to WeChat); without one, the authorize page asks.
"""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, redirect, render_template, request

open_platform = Blueprint("wechat_open", __name__)
api = Blueprint("wechat_api", __name__)
USER_COOKIE = "sandbox_wechat_user"
OAUTH_CODE_TTL_SECONDS = 300


def world():
    return current_app.config["WORLD"]


def _error(errcode: int, errmsg: str):
    return jsonify({"errcode": errcode, "errmsg": errmsg})


@open_platform.get("/connect/oauth2/authorize")
def authorize():
    args = request.args
    app_id, redirect_uri = args.get("appid", ""), args.get("redirect_uri", "")
    if app_id != world().config.wechat_app_id:
        return render_template("wechat_error.html", message="appid 参数错误 (10003 redirect_uri 域名与后台配置不一致 / appid 无效)"), 400
    if args.get("response_type") != "code" or args.get("scope") not in ("snsapi_base", "snsapi_userinfo"):
        return render_template("wechat_error.html", message="scope 参数错误或没有 scope 权限 (10005)"), 400
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        return render_template("wechat_error.html", message="redirect_uri 参数错误 (10003)"), 400
    user_id = args.get("as_user") or request.cookies.get(USER_COOKIE)
    user = world().users.get(user_id or "")
    if user is None:
        return render_template("wechat_pick_user.html", users=world().users.values(), query=args)
    code = world().issue_oauth_code(app_id, user.user_id)
    separator = "&" if "?" in redirect_uri else "?"
    response = redirect(f"{redirect_uri}{separator}{urlencode({'code': code, 'state': args.get('state', '')})}")
    response.set_cookie(USER_COOKIE, user.user_id, samesite="Lax")
    return response


@api.get("/sns/oauth2/access_token")
def access_token():
    args = request.args
    config = world().config
    if args.get("appid") != config.wechat_app_id:
        return _error(40013, "invalid appid")
    if args.get("secret") != config.wechat_app_secret:
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
    return jsonify({"access_token": "sandbox-" + found.user_id, "expires_in": 7200,
                    "refresh_token": "sandbox-refresh-" + found.user_id,
                    "openid": user.openid(found.app_id), "scope": "snsapi_base",
                    "unionid": user.unionid})
