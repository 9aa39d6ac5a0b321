"""Whether a WeChat user is a 买单 service-provider assistant admin (U5 lookup), and which
providers a console account's bound WeChats administer there.

Shared by every confirm page that only an admin may use (binding, provider sync,
assistant binding): each raises the same two errors, which the H5 pages explain. And by
every path that reads a provider's data from 买单 with the platform's credentials: a
console account may read only what one of its bound WeChats administers there, asked at
the moment of the read, since a binding can be removed and an admin replaced at any time.
"""
from __future__ import annotations

from dataclasses import dataclass

from chalicelib import qrcodes
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.bindings import WechatBinding
from chalicelib.upstream import maidan
from chalicelib.upstream.http import UpstreamUnavailable

LOOKUP_ERRORS = (UpstreamUnavailable, maidan.MaidanError, maidan.MaidanSignatureError)


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


@dataclass(frozen=True)
class AccountAdmins:
    """What the account's bound WeChats administer in 买单 now, over all of them."""

    providers: dict[str, maidan.MaidanProvider]
    failures: tuple[str, ...]
    """Why a bound WeChat could not be asked: its providers are missing from `providers`."""


def _bound_unionids(account_id: str) -> list[str]:
    return [binding.unionid for binding in WechatBinding.query(account_id, consistent_read=True) if binding.unionid]


def account_admins(account_id: str) -> AccountAdmins:
    providers: dict[str, maidan.MaidanProvider] = {}
    failures = []
    for unionid in _bound_unionids(account_id):
        try:
            lookup = maidan.lookup_admin(unionid)
        except LOOKUP_ERRORS as exc:
            failures.append(str(exc))
            continue
        for provider in lookup.providers:
            providers.setdefault(provider.sp_mchid, provider)
    return AccountAdmins(providers, tuple(failures))


_LAST_PROOF: dict[tuple[str, str], str] = {}
"""(account, sp_mchid) → the bound WeChat (unionid) whose look-up last proved it, asked first
next time: a sync asks before every page, and in a warm container that is then one look-up
a page instead of one per bound WeChat. Only an order: 买单 is still asked every time, and
only WeChats bound now count."""


def account_administers(account_id: str, sp_mchid: str) -> bool:
    """True as soon as one bound WeChat administers `sp_mchid` in 买单. When none does but
    one could not be asked, its error is raised: "could not ask" is not "no"."""
    failure = None
    unionids = _bound_unionids(account_id)
    proved_last = _LAST_PROOF.get((account_id, sp_mchid))
    if proved_last in unionids:
        unionids.sort(key=lambda unionid: unionid != proved_last)
    for unionid in unionids:
        try:
            lookup = maidan.lookup_admin(unionid)
        except LOOKUP_ERRORS as exc:
            failure = exc
            continue
        if any(provider.sp_mchid == sp_mchid for provider in lookup.providers):
            _LAST_PROOF[(account_id, sp_mchid)] = unionid
            return True
    if failure is not None:
        raise failure
    return False
