"""Whether a scanning WeChat user is a 买单 service-provider assistant admin (U5 lookup).

Shared by every confirm page that only an admin may use (binding, provider sync,
assistant binding): each raises the same two errors, which the H5 pages explain.
"""
from __future__ import annotations

from chalicelib import qrcodes
from chalicelib.h5_identity import WechatIdentity
from chalicelib.upstream import maidan


class AssistantNotOpened(Exception):
    """The WeChat user has never opened the 买单 service-provider assistant."""


class NotMaidanAdmin(Exception):
    """The WeChat user opened the assistant but administers no provider there."""


class NoUnionId(Exception):
    """WeChat gave no unionid: the official account is not linked to the open platform."""


def scan(code, identity: WechatIdentity) -> maidan.AdminLookup:
    """The scanner opened a usable admin-only code: it must be a 买单 admin to be asked to
    confirm; the console then sees the code as scanned."""
    lookup = require_admin(identity)
    qrcodes.mark_scanned(code, identity.openid)
    return lookup


def require_admin(identity: WechatIdentity) -> maidan.AdminLookup:
    if not identity.unionid:
        raise NoUnionId()
    lookup = maidan.lookup_admin(identity.unionid)
    if lookup.status == "NOT_OPENED":
        raise AssistantNotOpened()
    if not lookup.is_admin:
        raise NotMaidanAdmin()
    return lookup
