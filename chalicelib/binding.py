"""C2: the WeChat binding gate. A console account can do nothing until a 买单 assistant
admin scans its binding code and confirms; more WeChats can be bound later, and any but
the last unbound.
"""
from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import maidan_admins, pagination, qrcodes, settings
from chalicelib.errors import Conflict, NotFound
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.accounts import Account
from chalicelib.models.base import condition_failed, now, transaction
from chalicelib.models.bindings import WechatBinding
from chalicelib.models.qrcodes import QrCode

KIND = "wechat_binding"
BINDINGS_LIST = "wechat-bindings"


def issue_code(account_id: str) -> QrCode:
    return qrcodes.issue(KIND, account_id, settings.current().binding_code_ttl_seconds)


def own_code(account_id: str, code_id: str) -> QrCode:
    return qrcodes.own(account_id, code_id, KIND)


def refresh_code(account_id: str, code_id: str) -> QrCode:
    old = own_code(account_id, code_id)
    new = issue_code(account_id)
    qrcodes.replace(old, new.code_id)
    return new


def code_view(code: QrCode) -> dict:
    view = qrcodes.console_view(code, "wechat_binding_code", "bound")
    view["bound_at"] = view.pop("used_at")
    return view


def _binding(account_id: str, openid: str) -> WechatBinding | None:
    try:
        return WechatBinding.get(account_id, openid)
    except DoesNotExist:
        return None


def confirm(code_id: str, identity: WechatIdentity) -> QrCode:
    """Bind the confirming WeChat to the code's account, once, whatever the races.

    The code is consumed, the binding written and the account's count raised in one
    transaction; a WeChat already bound to the account only consumes the code and takes
    the nickname WeChat answered this time (people rename themselves).
    """
    code = qrcodes.usable(code_id, KIND)
    maidan_admins.require_admin(identity)
    for _ in range(2):
        at = now()
        already_bound = _binding(code.account_id, identity.openid) is not None
        try:
            with transaction() as tx:
                tx.update(QrCode(code_id), actions=qrcodes.use_actions(identity.openid, at),
                                   condition=qrcodes.use_condition(KIND, at))
                nickname = identity.nickname or None
                if already_bound and nickname is not None:
                    tx.update(WechatBinding(code.account_id, identity.openid),
                              actions=[WechatBinding.nickname.set(nickname)],
                              condition=WechatBinding.openid.exists())
                if not already_bound:
                    tx.save(WechatBinding(code.account_id, identity.openid, unionid=identity.unionid,
                                                   nickname=nickname, bound_at=at, code_id=code_id),
                                     condition=WechatBinding.openid.does_not_exist())
                    tx.update(Account(code.account_id),
                                       actions=[Account.wechat_binding_count.add(1)],
                                       condition=Account.account_id.exists())
            return qrcodes.find(code_id)
        except TransactWriteError as exc:
            if not condition_failed(exc):
                raise
            qrcodes.usable(code_id, KIND)  # raises if the code itself was the reason
    raise Conflict("the binding changed while confirming; scan the code again", code="binding_race")


def list_bindings(account_id: str, limit: int, cursor: str | None) -> pagination.Page:
    start = pagination.decode_cursor(cursor, BINDINGS_LIST)
    results = WechatBinding.query(account_id, limit=limit, last_evaluated_key=start)
    return pagination.page_of(results, BINDINGS_LIST)


def binding_view(binding: WechatBinding) -> dict:
    return {"object": "wechat_binding", "openid": binding.openid, "unionid": binding.unionid,
            "nickname": binding.nickname, "bound_at": binding.bound_at}


def unbind(account_id: str, openid: str) -> None:
    """Remove one bound WeChat; the last one stays, or the account would be locked out."""
    try:
        with transaction() as tx:
            tx.delete(WechatBinding(account_id, openid), condition=WechatBinding.openid.exists())
            tx.update(Account(account_id), actions=[Account.wechat_binding_count.add(-1)],
                               condition=Account.wechat_binding_count > 1)
    except TransactWriteError as exc:
        if not condition_failed(exc):
            raise
        if _binding(account_id, openid) is None:
            raise NotFound("no such bound WeChat", param="openid") from None
        raise Conflict("the last bound WeChat cannot be unbound; bind another one first",
                       code="last_wechat_binding") from None
