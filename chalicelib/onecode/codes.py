"""The one-code setup's QR code kinds (SPEC §3) and what each shows of itself.

Activation codes are single use and live 7 days (`ACTIVATION_CODE_TTL_SECONDS`); management
and collection codes are permanent until revoked. Each carries the merchant (and store) it
acts in, so a scan finds where it points without another read.
"""
from __future__ import annotations

from pynamodb.exceptions import UpdateError

from chalicelib import qrcodes, settings
from chalicelib.models.base import condition_failed
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode.writes import transact

MERCHANT_ADMIN_ACTIVATION = "merchant_admin_activation"
MERCHANT_MANAGEMENT = "merchant_management"
STORE_MANAGER_ACTIVATION = "store_manager_activation"
CLERK_ACTIVATION = "clerk_activation"
STORE_COLLECTION = "store_collection"
CLERK_COLLECTION = "clerk_collection"

ACTIVATION_KINDS = (MERCHANT_ADMIN_ACTIVATION, STORE_MANAGER_ACTIVATION, CLERK_ACTIVATION)
PERMANENT_KINDS = (MERCHANT_MANAGEMENT, STORE_COLLECTION, CLERK_COLLECTION)
ALL_KINDS = ACTIVATION_KINDS + PERMANENT_KINDS

KIND_NAMES = {MERCHANT_ADMIN_ACTIVATION: "商户管理员激活码", MERCHANT_MANAGEMENT: "商户管理码",
              STORE_MANAGER_ACTIVATION: "店长激活码", CLERK_ACTIVATION: "店员激活码",
              STORE_COLLECTION: "门店收款码", CLERK_COLLECTION: "店员收款码"}


def activation_code(kind: str, account_id: str, merchant_id: str, invite_key: str,
                    store_id: str | None = None) -> QrCode:
    return qrcodes.new_code(kind, account_id, settings.current().activation_code_ttl_seconds, target=merchant_id,
                            merchant_id=merchant_id, store_id=store_id, member_key=invite_key)


def permanent_code(kind: str, account_id: str, merchant_id: str, store_id: str | None = None,
                   member_key: str | None = None, sp_mchid: str | None = None) -> QrCode:
    return qrcodes.new_code(kind, account_id, None, target=store_id or merchant_id, merchant_id=merchant_id,
                            store_id=store_id, member_key=member_key, sp_mchid=sp_mchid)


def revoke_actions() -> list:
    return [QrCode.state.set(qrcodes.REVOKED), QrCode.expiry_shard.remove()]


def revoke_condition():
    """Only a code that can still be used is revoked: a used code keeps saying "used"."""
    return QrCode.state.is_in(*qrcodes.LIVE_STATES, qrcodes.ACTIVE)


def revoke(code_id: str | None) -> None:
    """Retire a code if it is still usable; harmless when it is already used, expired or gone."""
    if not code_id:
        return
    try:
        QrCode(code_id).update(actions=revoke_actions(), condition=revoke_condition() & QrCode.code_id.exists())
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def state_of(code_id: str | None) -> str:
    """pending | expired | used | active | revoked | unknown, as a person should read it."""
    code = qrcodes.find(code_id) if code_id else None
    if code is None:
        return "unknown"
    state = qrcodes.effective_state(code)
    return "pending" if state == qrcodes.SCANNED else state


def view(code: QrCode) -> dict:
    """A code as the console and the phone pages show it: where it opens and its images."""
    state = qrcodes.effective_state(code)
    return {"id": code.code_id, "object": "qr_code", "kind": code.kind,
            "state": "pending" if state == qrcodes.SCANNED else state, "url": qrcodes.url_for(code.code_id),
            "created_at": code.created_at, "expires_at": code.expires_at, "used_at": code.used_at,
            "merchant_id": code.merchant_id, "store_id": code.store_id, "images": qrcodes.images(code.code_id)}


def find_views(code_ids: list[str | None]) -> dict[str, dict]:
    """Views of several codes by id, in one BatchGetItem (a page shows a code per person)."""
    wanted = sorted({code_id for code_id in code_ids if code_id})
    if not wanted:
        return {}
    return {code.code_id: view(code) for code in QrCode.batch_get(wanted)}


def swap_activation_code(invite, attribute, code: QrCode, noun: str) -> None:
    """Point a pending invite (admin or staff) at a new activation code, in one transaction,
    then retire the old code: activation checks which code its invite names, so the old one
    is refused even before the revoke lands."""
    old_code_id = invite.activation_code_id

    def write(tx):
        tx.update(invite, actions=[attribute.set(code.code_id)])
        tx.save(code, condition=QrCode.code_id.does_not_exist())
    transact(write, noun)
    revoke(old_code_id)
