"""The sandbox "phone": pick or create a WeChat user and open one of our H5 URLs as them."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from sandbox.wechat import USER_COOKIE

blueprint = Blueprint("phone", __name__)
H5_IDENTITY_COOKIE = "cp_wx"
STATUSES = {"NOT_OPENED": "未开通买单服务商助手", "NOT_ADMIN": "已开通助手，非管理员"}


def world():
    return current_app.config["WORLD"]


@blueprint.get("/")
def index():
    return redirect(url_for("phone.phone"))


@blueprint.get("/phone")
def phone():
    current = request.args.get("user") or request.cookies.get(USER_COOKIE) or "admin-01"
    url = request.args.get("url", "")
    response = current_app.make_response(render_template(
        "phone.html", users=list(world().users.values()), current=current, url=url, statuses=STATUSES,
        providers=world().providers_of(current)))
    if current in world().users:
        response.set_cookie(USER_COOKIE, current, samesite="Lax")
    if url:
        # Opening a URL is a fresh scan on a fresh phone: forget the identity our app
        # keeps for the previous user (cookies are per host, not per port).
        response.delete_cookie(H5_IDENTITY_COOKIE, path="/h5")
    return response


@blueprint.post("/phone/users")
def create_user():
    nickname = (request.form.get("nickname") or "").strip() or "新用户"
    status = request.form.get("maidan_status", "NOT_OPENED")
    if status not in STATUSES:
        return "maidan_status must be NOT_OPENED or NOT_ADMIN", 400
    user = world().create_user(nickname[:32], status)
    return redirect(url_for("phone.phone", user=user.user_id))


@blueprint.get("/sandbox/users")
def list_users():
    return jsonify([{"user_id": u.user_id, "nickname": u.nickname, "maidan_status": u.maidan_status,
                     "unionid": u.unionid} for u in world().users.values()])
