"""The 买单 service-provider assistant API, as docs/upstreams/maidan.md defines it.

Written from the contract, not from the client: it verifies the request signature on its
own, refuses stale timestamps and replayed nonces, and signs every answer.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets

from flask import Blueprint, Response, current_app, request

blueprint = Blueprint("maidan", __name__)
_AUTH = re.compile(r'^MAIDAN-HMAC-SHA256 (.+)$')
_PARAM = re.compile(r'(\w+)="([^"]*)"')


def world():
    return current_app.config["WORLD"]


def _mac(message: str) -> str:
    key = world().config.maidan_api_key.encode()
    return base64.b64encode(hmac.new(key, message.encode(), hashlib.sha256).digest()).decode()


def signed(status: int, payload: dict) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    timestamp, nonce = str(int(world().clock.now())), secrets.token_hex(16)
    return Response(body, status=status, mimetype="application/json", headers={
        "Maidan-Timestamp": timestamp, "Maidan-Nonce": nonce,
        "Maidan-Signature": _mac(f"{timestamp}\n{nonce}\n{body}\n")})


def error(status: int, code: str, message: str) -> Response:
    return signed(status, {"code": code, "message": message})


@blueprint.before_request
def verify_signature():
    match = _AUTH.match(request.headers.get("Authorization", ""))
    if not match:
        return error(401, "SIGN_ERROR", "Authorization header is missing or not MAIDAN-HMAC-SHA256")
    params = dict(_PARAM.findall(match.group(1)))
    if params.get("partner_id") != world().config.maidan_partner_id:
        return error(401, "SIGN_ERROR", "unknown partner_id")
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce_str", "")
    now = world().clock.now()
    if not timestamp.isdigit() or abs(now - int(timestamp)) > 300:
        return error(401, "SIGN_ERROR", "timestamp is more than 5 minutes off")
    path_and_query = request.full_path.rstrip("?")
    body = request.get_data(as_text=True)
    expected = _mac(f"{request.method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
    if not hmac.compare_digest(expected, params.get("signature", "")):
        return error(401, "SIGN_ERROR", "signature does not match")
    if not world().accept_nonce(nonce, now):
        return error(401, "SIGN_ERROR", "nonce_str was already used")
    return None


@blueprint.post("/v1/assistant/admin-lookups")
def admin_lookup():
    payload = request.get_json(silent=True) or {}
    unionid = payload.get("unionid")
    if not isinstance(unionid, str) or not unionid:
        return error(400, "PARAM_ERROR", "unionid is required")
    user = world().user_by_unionid(unionid)
    if user is None or user.maidan_status == "NOT_OPENED":
        return signed(200, {"status": "NOT_OPENED", "providers": []})
    providers = world().providers_of(user.user_id) if user.maidan_status == "ADMIN" else []
    return signed(200, {"status": "ADMIN" if providers else "NOT_ADMIN",
                        "providers": [{"sp_mchid": p.sp_mchid, "name": p.name} for p in providers]})
