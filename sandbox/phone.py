"""The sandbox "phone": pick or create a WeChat or Alipay user and open one of our H5 URLs
as them; a WeChat user's phone also shows the template messages WeChat delivered to it.

Which user is "signed in" is a cookie on the sandbox's host, read by the sandbox's OAuth
pages (WeChat `sandbox_wechat_user`, Alipay `sandbox_alipay_user`).
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for

from sandbox import alipay
from sandbox.wechat import USER_COOKIE, sent_messages

blueprint = Blueprint("phone", __name__)
H5_IDENTITY_COOKIE = "cp_wx"
STATUSES = {"NOT_OPENED": "未开通买单服务商助手", "NOT_ADMIN": "已开通助手，非管理员"}
WALLETS = {"wechat": "微信", "alipay": "支付宝"}


def world():
    return current_app.config["WORLD"]


def _people(wallet: str) -> list[tuple[str, str]]:
    if wallet == "alipay":
        return [(buyer.user_id, buyer.nickname) for buyer in alipay.state_of(world()).buyers.values()]
    return [(user.user_id, user.nickname) for user in world().users.values()]


@blueprint.get("/")
def index():
    return redirect(url_for("phone.phone"))


@blueprint.get("/phone")
def phone():
    wallet = request.args.get("wallet", "wechat")
    if wallet not in WALLETS:
        return "wallet must be wechat or alipay", 400
    cookie = USER_COOKIE if wallet == "wechat" else alipay.USER_COOKIE
    people = _people(wallet)
    current = request.args.get("user") or request.cookies.get(cookie) or (people[0][0] if people else "")
    url = request.args.get("url", "")
    user = world().users.get(current) if wallet == "wechat" else None
    messages = [m for m in sent_messages(world()) if user and m["user_id"] == user.user_id][-5:]
    response = current_app.make_response(render_template(
        "phone.html", wallet=wallet, wallets=WALLETS, people=people, current=current, url=url, statuses=STATUSES,
        providers=world().providers_of(current) if user else [], messages=list(reversed(messages))))
    if any(person_id == current for person_id, _ in people):
        response.set_cookie(cookie, current, samesite="Lax")
    if url:
        # Opening a URL is a fresh scan on a fresh phone: forget the identity our app
        # keeps for the previous user (cookies are per host, not per port).
        response.delete_cookie(H5_IDENTITY_COOKIE, path="/h5")
    return response


@blueprint.post("/phone/users")
def create_user():
    nickname = (request.form.get("nickname") or "").strip()[:32] or "新用户"
    if request.form.get("wallet") == "alipay":
        buyer = alipay.state_of(world()).create_buyer(nickname)
        return redirect(url_for("phone.phone", wallet="alipay", user=buyer.user_id))
    status = request.form.get("maidan_status", "NOT_OPENED")
    if status not in STATUSES:
        return "maidan_status must be NOT_OPENED or NOT_ADMIN", 400
    user = world().create_user(nickname, status)
    return redirect(url_for("phone.phone", user=user.user_id))


@blueprint.get("/sandbox/users")
def list_users():
    return jsonify([{"user_id": u.user_id, "nickname": u.nickname, "maidan_status": u.maidan_status,
                     "unionid": u.unionid} for u in world().users.values()])
