"""The one-code setup's rules under concurrency and over time, on the domain functions: the
pages' tests drive the same functions through the phone; these race them directly."""
from __future__ import annotations

import threading
import time

import pytest

from chalicelib import qrcodes
from chalicelib.errors import Conflict, InvalidField
from chalicelib.h5_identity import WechatIdentity
from chalicelib.models.qrcodes import QrCode
from chalicelib.onecode import access, activation, admins, codes, staff, stores
from chalicelib.onecode.models import MerchantAdmin, Shift, Staff
from chalicelib.qrcodes import CodeUnusable


def _wechat(openid: str) -> WechatIdentity:
    return WechatIdentity("wx-platform", openid, None)


@pytest.fixture
def merchant(bound_console):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": "1900000109", "name": "服务商"}).status == 201
    created = bound_console.call("POST", "/v1/sub-merchants", {"sp_mchid": "1900000109", "name": "一号商户"})
    account_id = bound_console.call("GET", "/v1/me").json["id"]
    return account_id, created.json["id"]


def _admin(merchant, openid: str) -> access.Actor:
    account_id, merchant_id = merchant
    code_id = admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"]
    if codes.state_of(code_id) != "pending":
        code_id = admins.reissue_admin_activation(account_id, merchant_id)["admin_activation"]["id"]
    activation.activate(code_id, codes.MERCHANT_ADMIN_ACTIVATION, _wechat(openid), {"name": openid})
    return access.as_admin(merchant_id, openid)


def _race(*actions) -> list:
    """Run the actions at the same moment; each outcome is its return value or its exception."""
    outcomes: list = [None] * len(actions)
    start = threading.Barrier(len(actions))

    def run(index, action):
        start.wait()
        try:
            outcomes[index] = action()
        except Exception as exc:  # the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index, action)) for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_two_phones_confirming_one_activation_code_at_once_make_exactly_one_admin(merchant):
    account_id, merchant_id = merchant
    code_id = admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"]

    outcomes = _race(*(lambda openid=openid: activation.activate(code_id, codes.MERCHANT_ADMIN_ACTIVATION,
                                                                  _wechat(openid), {})
                       for openid in ("phone-a", "phone-b", "phone-c")))

    refused = [outcome for outcome in outcomes if isinstance(outcome, CodeUnusable)]
    assert len(refused) == 2 and {exc.reason for exc in refused} == {"used"}
    activated = [admin for admin in admins.people(merchant_id) if admin.openid]
    assert len(activated) == 1 and QrCode.get(code_id).used_by == activated[0].openid


def test_two_admins_removing_each_other_at_once_leave_one_admin(merchant):
    first, second = _admin(merchant, "boss-1"), _admin(merchant, "boss-2")

    outcomes = _race(lambda: admins.remove(first, second.admin.admin_id),
                     lambda: admins.remove(second, first.admin.admin_id))

    assert sum(isinstance(outcome, Conflict) for outcome in outcomes) == 1
    assert len([admin for admin in admins.people(merchant[1]) if admin.openid]) == 1


def test_revoking_refund_from_each_other_at_once_leaves_one_admin_who_may_refund(merchant):
    first, second = _admin(merchant, "boss-1"), _admin(merchant, "boss-2")

    _race(lambda: admins.set_refund(first, second.admin.admin_id, False),
          lambda: admins.set_refund(second, first.admin.admin_id, False))

    assert [admin.can_refund for admin in admins.people(merchant[1]) if admin.openid].count(True) == 1


def test_the_last_admin_and_the_last_admin_who_may_refund_stay(merchant):
    only = _admin(merchant, "boss-1")
    with pytest.raises(Conflict) as refused:
        admins.remove(only, only.admin.admin_id)
    assert refused.value.code == "last_admin"
    second = _admin(merchant, "boss-2")
    admins.set_refund(only, second.admin.admin_id, False)
    with pytest.raises(Conflict) as refused:
        admins.remove(second, only.admin.admin_id)
    assert refused.value.code == "last_refund_admin"
    assert MerchantAdmin.get(merchant[1], "boss-1").can_refund is True


def _clerk(merchant, openid: str = "clerk-1"):
    admin = _admin(merchant, "boss-1")
    store, _ = stores.create(admin, {"name": "一号店"})
    invite = staff.invite(admin, store, {"name": "小王"})
    activation.activate(invite.activation_code_id, codes.CLERK_ACTIVATION, _wechat(openid), {"messages_on": "on"})
    clerk, store = access.in_store(store.store_id, openid)
    return admin, clerk, store


def test_many_clock_ins_at_once_open_one_shift(merchant):
    _, clerk, store = _clerk(merchant)

    outcomes = _race(*(lambda: staff.clock_in(clerk) for _ in range(5)))

    assert [started for _, started in outcomes].count(True) == 1
    assert len(list(Shift.query(f"{store.store_id}#{clerk.staff.staff_id}"))) == 1


def test_removing_a_clerk_on_shift_ends_the_shift_revokes_the_codes_and_the_role_at_once(merchant):
    admin, clerk, store = _clerk(merchant)
    staff.clock_in(clerk)
    collection_code = clerk.staff.collection_code_id

    staff.remove(admin, store, clerk.staff.staff_id)

    with pytest.raises(access.NoRoleHere):
        access.in_store(store.store_id, "clerk-1")
    assert [shift.ended_at is not None for shift in Shift.query(f"{store.store_id}#{clerk.staff.staff_id}")] == [True]
    assert codes.state_of(collection_code) == "revoked"
    with pytest.raises(access.NoRoleHere):
        staff.clock_in(clerk)
    assert len(list(Shift.query(f"{store.store_id}#{clerk.staff.staff_id}"))) == 1
    assert not list(Staff.query(store.store_id, Staff.member_key == "clerk-1"))


def test_activation_codes_expire_after_seven_days_and_permanent_codes_never(merchant):
    account_id, merchant_id = merchant
    setup = admins.setup_codes(account_id, merchant_id)
    later = int(time.time()) + 7 * 86400 + 1

    swept = qrcodes.expire_due(later)

    assert swept.expired == 1
    assert codes.state_of(setup["admin_activation"]["id"]) == "expired"
    assert codes.state_of(setup["management"]["id"]) == "active"
    assert admins.setup_codes(account_id, merchant_id)["admin_activation"]["state"] == "expired"


def test_a_reissued_activation_code_retires_the_previous_one(merchant):
    account_id, merchant_id = merchant
    first = admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"]

    second = admins.reissue_admin_activation(account_id, merchant_id)["admin_activation"]["id"]

    assert second != first and codes.state_of(first) == "revoked" and codes.state_of(second) == "pending"
    with pytest.raises(CodeUnusable) as refused:
        activation.activate(first, codes.MERCHANT_ADMIN_ACTIVATION, _wechat("late"), {})
    assert refused.value.reason == "revoked"
    assert [admin.openid for admin in admins.people(merchant_id)] == [None]


def test_a_staff_member_cannot_take_a_second_role_in_the_same_store(merchant):
    admin, clerk, store = _clerk(merchant)
    manager_invite = staff.invite(admin, store, {"name": "二店长", "role": "manager"})

    with pytest.raises(activation.AlreadyHoldsRole):
        activation.activate(manager_invite.activation_code_id, codes.STORE_MANAGER_ACTIVATION, _wechat("clerk-1"), {})

    assert codes.state_of(manager_invite.activation_code_id) == "pending"
    assert access.in_store(store.store_id, "clerk-1")[0].role == "clerk"


def test_an_admin_who_also_works_a_shift_in_a_store_keeps_both_roles_there(merchant):
    admin = _admin(merchant, "boss-1")
    store, _ = stores.create(admin, {"name": "一号店"})
    invite = staff.invite(admin, store, {"name": "老板本人"})
    activation.activate(invite.activation_code_id, codes.CLERK_ACTIVATION, _wechat("boss-1"), {})

    actor, _ = access.in_store(store.store_id, "boss-1")

    assert actor.role == "admin" and actor.staff.name == "老板本人"
    assert staff.clock_in(actor)[1] is True
    second = staff.invite(actor, store, {"name": "新店长", "role": "manager"})
    assert second.role == "manager"


def test_the_activation_transaction_alone_refuses_the_second_confirm_that_passed_every_check(merchant, monkeypatch):
    """Both phones pass the reads before the write (as two truly simultaneous confirms do);
    the transaction's conditions alone must let only one of them through."""
    account_id, merchant_id = merchant
    code = qrcodes.usable(admins.setup_codes(account_id, merchant_id)["admin_activation"]["id"])
    offers = {openid: activation.invitation(code, openid) for openid in ("phone-a", "phone-b")}
    monkeypatch.setattr(activation.qrcodes, "usable", lambda code_id, kind=None: code)
    monkeypatch.setattr(activation, "invitation", lambda code, openid: offers[openid])

    activation.activate(code.code_id, codes.MERCHANT_ADMIN_ACTIVATION, _wechat("phone-a"), {})
    with pytest.raises(CodeUnusable):
        activation.activate(code.code_id, codes.MERCHANT_ADMIN_ACTIVATION, _wechat("phone-b"), {})

    assert [admin.openid for admin in admins.people(merchant_id)] == ["phone-a"]
    assert QrCode.get(code.code_id).used_by == "phone-a"


def test_a_pending_clerk_cannot_be_promoted_so_a_manager_cannot_mint_manager_codes(merchant):
    admin = _admin(merchant, "boss-1")
    store, manager_invite = stores.create(admin, {"name": "一号店"})
    activation.activate(manager_invite.activation_code_id, codes.STORE_MANAGER_ACTIVATION, _wechat("mgr"), {})
    manager, store = access.in_store(store.store_id, "mgr")
    pending = staff.invite(manager, store, {"name": "小王"})

    with pytest.raises(InvalidField):
        staff.promote(manager, store, pending.staff_id)

    assert staff.find(store.store_id, pending.staff_id).role == "clerk"
