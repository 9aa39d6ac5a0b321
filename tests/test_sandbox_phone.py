"""The sandbox phone: choose a WeChat or Alipay user, and that user is who the wallets' OAuth sees."""
from __future__ import annotations

import httpx

from sandbox import alipay
from tests.environment import SANDBOX_ROOT, next_message_id


def _phone(wire) -> httpx.Client:
    return httpx.Client(transport=wire.inner, base_url=SANDBOX_ROOT)


def test_the_phone_lists_wechat_users_and_signs_the_chosen_one_in(sandbox, wire):
    page = _phone(wire).get("/phone?user=staff-01&url=http://h5.test/h5/q/abc")

    assert page.status_code == 200 and 'value="staff-01" selected' in page.text
    assert 'src="http://h5.test/h5/q/abc"' in page.text
    assert "sandbox_wechat_user=staff-01" in page.headers["set-cookie"]
    assert "cp_wx=;" in page.headers["set-cookie"] or "cp_wx=\"\"" in page.headers["set-cookie"]


def test_an_alipay_user_can_be_created_and_chosen(sandbox, wire):
    phone = _phone(wire)

    created = phone.post("/phone/users", data={"wallet": "alipay", "nickname": "小张"})
    page = phone.get(created.headers["location"])

    buyer = next(b for b in alipay.state_of(sandbox).buyers.values() if b.nickname == "小张")
    assert f'value="{buyer.user_id}" selected' in page.text
    assert f"sandbox_alipay_user={buyer.user_id}" in page.headers["set-cookie"]


def test_a_wechat_users_phone_shows_the_messages_wechat_delivered(sandbox, wire):
    from chalicelib.upstream import wechat_message
    openid = sandbox.users["admin-01"].openid(sandbox.config.wechat_app_id)
    wechat_message.send_template(openid, "cp_sandbox_payment_received",
                                 {"thing1": "一号门店", "amount2": "¥12.30", "time3": "2026-11-22 10:00:00",
                                  "character_string4": "CP0001"}, client_msg_id=next_message_id())

    page = _phone(wire).get("/phone?user=admin-01")

    assert "¥12.30" in page.text and "一号门店" in page.text


def test_an_unknown_wallet_is_refused(sandbox, wire):
    assert _phone(wire).get("/phone?wallet=unionpay").status_code == 400
