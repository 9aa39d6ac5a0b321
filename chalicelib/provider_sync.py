"""C3.2: sync providers from 买单. The console shows a single-use code; a 买单 assistant
admin scans it, sees the providers that will be synced, and confirms; every provider that
admin holds is created or updated under the account that showed the code, never another.
The scan proves the account administers those providers, so a provider another account
only typed in is taken over here (docs/providers.md, "Who holds an sp_mchid"); `created`
counts the providers taken over too, and `taken_over` says how many of them were.
"""
from __future__ import annotations

from chalicelib import maidan_admins, providers, qrcodes, settings
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.qrcodes import QrCode

KIND = "provider_sync"


def issue_code(account_id: str) -> QrCode:
    return qrcodes.issue(KIND, account_id, settings.current().binding_code_ttl_seconds)


def code_view(code: QrCode) -> dict:
    """A used code is `syncing` until its counts are recorded, so a console polling between
    the two writes never shows "synced" without saying what was synced."""
    view = qrcodes.console_view(code, "provider_sync_code", "synced")
    if view["state"] == "synced" and view["result"] is None:
        view["state"] = "syncing"
    return view


def confirm(code_id: str, identity: WechatIdentity) -> dict:
    """Use the code first, then sync: a used or expired code never syncs anything, and a
    sync that fails half-way is finished by syncing again (every step is an upsert)."""
    qrcodes.usable(code_id, KIND)
    lookup = maidan_admins.require_admin(identity)
    code = qrcodes.consume(code_id, KIND, identity.openid)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "elsewhere": 0, "taken_over": 0}
    outcomes = []
    for provider in lookup.providers:
        outcome = providers.upsert_from_maidan(code.account_id, f"wechat:{identity.openid}", provider.sp_mchid,
                                               provider.name)
        counts[outcome] += 1
        if outcome == "taken_over":
            counts["created"] += 1
        outcomes.append({"sp_mchid": provider.sp_mchid, "name": provider.name, "outcome": outcome})
    result = {**counts, "providers": outcomes}
    qrcodes.record_result(code_id, result)
    return result
