"""C3.3: bind a provider to the 买单 service-provider assistant ("立即绑定").

With exactly one bound WeChat the console binds at once, if 买单 says that WeChat is the
provider's admin. With several, the console shows a code that the provider's admin scans
and confirms, since only the admin's own phone can say which WeChat that is.
"""
from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib import audit, maidan_admins, providers, qrcodes, settings
from chalicelib.errors import Conflict
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.base import condition_failed, now
from chalicelib.models.bindings import WechatBinding
from chalicelib.models.providers import Provider
from chalicelib.models.qrcodes import QrCode
from chalicelib.upstream import maidan

KIND = "provider_assistant_bind"
HOW_TO_OPEN = ("在微信中打开小程序“微信买单服务商助手”，输入服务商商户号并验证管理员身份，开通后重试")


class AdminMismatch(Exception):
    """The WeChat is a 买单 admin, but not of this provider."""


def _mark_bound(provider: Provider, unionid: str, actor: str) -> Provider:
    for _ in range(3):
        provider.maidan_assistant_bound_at, provider.maidan_admin_unionid = now(), unionid
        provider.updated_at = provider.maidan_assistant_bound_at
        try:
            provider.save()
            break
        except PutError as exc:
            if not condition_failed(exc):
                raise
            provider = Provider.get(provider.account_id, provider.sp_mchid)
    else:
        raise Conflict("the provider kept changing; try again", code="version_conflict")
    audit.record(provider.account_id, actor, f"provider#{provider.sp_mchid}", "provider.maidan_assistant_bound",
                 {"maidan_assistant": {"from": None, "to": "bound"}})
    return provider


def _check_admin(lookup: maidan.AdminLookup, sp_mchid: str) -> None:
    if not any(p.sp_mchid == sp_mchid for p in lookup.providers):
        raise AdminMismatch()


def _usable(provider: Provider) -> Provider:
    """A provider whose sp_mchid its 买单 admin's account took over is not this account's to bind."""
    if provider.claim_lost_at is not None:
        raise Conflict("this provider was taken over by the account of its 买单 admin; it can no longer be bound "
                       "here", param="sp_mchid", code="provider_claim_lost")
    return provider


def bind(account_id: str, sp_mchid: str) -> tuple[str, dict]:
    """("bound", provider view) at once, or ("code", code view) when several WeChats are bound."""
    provider = _usable(providers.get(account_id, sp_mchid))
    bound = list(WechatBinding.query(account_id))
    if len(bound) > 1:
        code = qrcodes.issue(KIND, account_id, settings.current().binding_code_ttl_seconds, target=sp_mchid)
        return "code", code_view(code)
    unionid = bound[0].unionid or ""
    lookup = maidan.lookup_admin(unionid)
    if lookup.status == "NOT_OPENED":
        raise Conflict(f"the bound WeChat has not opened the 买单 service-provider assistant: {HOW_TO_OPEN}",
                       code="maidan_assistant_not_opened")
    try:
        _check_admin(lookup, sp_mchid)
    except AdminMismatch:
        raise Conflict("the bound WeChat is not this provider's admin in 买单; bind the admin's WeChat "
                       "(POST /v1/wechat-binding-codes) and try again", code="maidan_admin_mismatch") from None
    return "bound", providers.provider_view(_mark_bound(provider, unionid, account_id))


def code_view(code: QrCode) -> dict:
    return qrcodes.console_view(code, "maidan_assistant_binding_code", "bound")


def scan(code: QrCode, identity: WechatIdentity) -> maidan.AdminLookup:
    lookup = maidan_admins.scan(code, identity)
    _check_admin(lookup, code.target)
    return lookup


def confirm(code_id: str, identity: WechatIdentity) -> dict:
    code = qrcodes.usable(code_id, KIND)
    lookup = maidan_admins.require_admin(identity)
    _check_admin(lookup, code.target)
    code = qrcodes.consume(code_id, KIND, identity.openid)
    provider = _mark_bound(_usable(providers.get(code.account_id, code.target)), identity.unionid or "",
                           f"wechat:{identity.openid}")
    result = {"sp_mchid": provider.sp_mchid, "bound_at": provider.maidan_assistant_bound_at}
    qrcodes.record_result(code_id, result)
    return result
