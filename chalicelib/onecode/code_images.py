"""QR images of one-code codes for the phone pages (SPEC §3: the image is rendered from the
URL the code opens): GET /h5/codes/{code_id}/image.png|svg.

Only someone who may hand the code out sees it: an admin of the code's merchant, a manager
of its store, or — for a clerk collection code — the clerk it belongs to. Anyone else (and a
phone that is not signed in: an <img> cannot go through OAuth) gets the same "not found" as
an unknown code. The two role records come in one BatchGetItem.
"""
from __future__ import annotations

from chalicelib import qr, qrcodes
from chalicelib.h5 import PageResponse, _identity
from chalicelib.onecode import codes, lookup, pages
from chalicelib.onecode.access import MANAGER
from chalicelib.onecode.models import MerchantAdmin, Staff

FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


def urls(code_id: str | None) -> dict | None:
    """Where a phone page loads a code's images, and the URL the code opens."""
    if not code_id:
        return None
    return {"png": f"/h5/codes/{code_id}/image.png", "svg": f"/h5/codes/{code_id}/image.svg",
            "url": qrcodes.url_for(code_id)}


def _may_see(code, openid: str) -> bool:
    wanted = [(MerchantAdmin, code.merchant_id, openid)]
    if code.store_id:
        wanted.append((Staff, code.store_id, openid))
    admin, *member = lookup.get_many(wanted)
    if admin is not None:
        return True
    member = member[0] if member else None
    if member is None:
        return False
    if member.role == MANAGER and code.kind != codes.STORE_MANAGER_ACTIVATION:
        return True
    return code.kind == codes.CLERK_COLLECTION and member.member_key == code.member_key


def image(code_id: str, cookie: str | None, image_format: str) -> PageResponse:
    identity = _identity(cookie)
    code = qrcodes.find(code_id) if identity is not None else None
    if code is None or code.kind not in codes.ALL_KINDS or not code.merchant_id or not _may_see(code, identity.openid):
        return pages.no_role_page()
    url = qrcodes.url_for(code.code_id)
    body = qr.png(url) if image_format == "png" else qr.svg(url)
    return PageResponse(200, body, {"Content-Type": FORMATS[image_format], "Cache-Control": "private, max-age=300"})
