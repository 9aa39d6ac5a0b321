"""P6 by role: the phone's order detail and refund form (admin, manager, clerk on and off
shift, with and without refund permission) and the console's refund route. The shop is set
up as tests/test_onecode_store_pages.py sets it up; its provider takes WeChat Pay in the
sandbox, and a customer pays the store's code."""
from __future__ import annotations

import re
from urllib.parse import unquote

import pytest

from chalicelib import providers
from chalicelib.errors import NotFound
from chalicelib.models.orders import Order, Refund
from chalicelib.models.qrcodes import QrCode
from chalicelib.models.sub_merchants import SubMerchant
from chalicelib.onecode import access, activation, admins, codes, pages, staff
from chalicelib.payments import channels, orders, queries, refunds
from sandbox.wechatpay import register_merchant, state_of
from tests.drivers import Phone
from tests.test_onecode_store_pages import _wechat, shop  # noqa: F401 (the fixture)
from tests import test_payments_wechatpay as on_wechatpay

SP_MCHID = "1900000109"


@pytest.fixture
def paid(shop, sandbox):  # noqa: F811 (the imported fixture)
    """A 10.00 元 WeChat Pay order paid at the shop's store code."""
    credentials = register_merchant(sandbox, SP_MCHID, sub_mchids=[on_wechatpay.SUB_MCHID],
                                    appids=[on_wechatpay.SP_APPID])
    provider = providers.get(shop.account_id, SP_MCHID)
    providers.update(shop.account_id, shop.account_id, SP_MCHID, {"version": provider.version, "wechat_pay": {
        "app_id": on_wechatpay.SP_APPID, "serial_no": credentials["serial_no"],
        "api_v3_key": credentials["api_v3_key"], "private_key_pem": credentials["private_key_pem"],
        "platform_public_key_id": credentials["platform_public_key_id"],
        "platform_public_key_pem": credentials["platform_public_key_pem"]}})
    SubMerchant.get(shop.account_id, shop.merchant_id).update(
        actions=[SubMerchant.sub_mchid.set(on_wechatpay.SUB_MCHID)])
    sandbox.notifier.deliver = on_wechatpay.Channel()
    created = orders.create(QrCode.get(shop.store.collection_code_id), orders.Payer(on_wechatpay.OPENID), 1000, None,
                            "attempt-0000000000000001", "wechat")
    on_wechatpay.pay(created.order.out_trade_no)
    sandbox.notifier.deliver_due()
    order = Order.get(created.order.out_trade_no)
    assert order.state == "SUCCESS"
    return order


def _detail(phone: Phone, order: Order) -> Phone:
    return phone.open(f"/h5/orders/{order.out_trade_no}")


def _refund(phone: Phone, order: Order, amount: str, reason: str = "", csrf: str | None = None) -> Phone:
    page = _detail(phone, order)  # signs the phone in first, as opening the page would
    form = _refund_form(page) if csrf is None else {"csrf": csrf, "refund_nonce": refunds.new_form_nonce()}
    return phone.open(f"/h5/orders/{order.out_trade_no}/refund", "POST", form | {"amount": amount, "reason": reason})


def _refund_form(page: Phone) -> dict:
    """The refund form's hidden fields, as the page rendered them."""
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page.html))


def _notice(phone: Phone) -> str:
    assert phone.status == 303, (phone.status, phone.html)
    location = phone.last[2].get("Location", phone.last[2].get("location"))
    return pages.notice_from({"notice": unquote(location.split("notice=", 1)[1])})


def _actor(shop, phone: Phone):  # noqa: F811
    return access.in_store(shop.store.store_id, shop.openids[phone.user_id])[0]


def test_an_admin_reads_the_order_and_refunds_part_of_it_audited_by_name(shop, paid, bound_console):  # noqa: F811
    page = _detail(shop.admin, paid)
    assert (page.status, page.page_id) == (200, "order") and "10.00 元" in page.html and "确认退款" in page.html
    assert len(page.html.encode()) <= 15_000 and "<script" not in page.html and "style=" not in page.html

    assert _notice(_refund(shop.admin, paid, "2.50", "少找零")) == "退款 2.50 元已提交，正在处理"

    [refund] = refunds.for_order(paid.out_trade_no)
    assert (refund.amount, refund.reason, refund.requested_by_name) == (250, "少找零", "王老板")
    assert refund.requested_by.startswith("admin#") and shop.openids["admin-01"] not in refund.requested_by
    entries = [e for e in bound_console.call("GET", "/v1/audit-log?limit=100").json["data"]
               if e["action"] == "order.refund_requested"]
    assert [(e["actor"], e["changes"]["actor_name"]["to"], e["changes"]["amount"]) for e in entries] == \
        [(refund.requested_by, "王老板", 250)]
    assert all(openid not in str(entries) for openid in shop.openids.values())
    after = _detail(shop.admin, paid)
    assert "退款中" in after.html and "确认退款" not in after.html  # one refund at a time (the console's word)


def test_an_amount_over_the_refundable_is_shown_next_to_the_field(shop, paid):  # noqa: F811
    refused = _refund(shop.admin, paid, "10.01")

    assert refused.status == 400 and "金额不能超过 10.00 元" in refused.html and 'value="10.01"' in refused.html
    assert list(Refund.scan()) == []


def test_the_same_refund_form_posted_twice_makes_one_refund_and_a_new_refund_needs_a_fresh_form(
        shop, paid, sandbox):  # noqa: F811
    form = _refund_form(_detail(shop.admin, paid)) | {"amount": "2.50", "reason": ""}
    path = f"/h5/orders/{paid.out_trade_no}/refund"
    assert _notice(shop.admin.open(path, "POST", form)) == "退款 2.50 元已提交，正在处理"
    sandbox.clock.advance(6)
    sandbox.notifier.deliver_due()  # settled: the order takes another refund again

    assert _notice(shop.admin.open(path, "POST", form)) == "已退款 2.50 元"  # a double tap, back + resubmit
    [refund] = refunds.for_order(paid.out_trade_no)
    assert (refund.state, Order.get(paid.out_trade_no).refunded) == ("SUCCESS", 250)
    assert _notice(_refund(shop.admin, paid, "1.00")) == "退款 1.00 元已提交，正在处理"
    assert len(refunds.for_order(paid.out_trade_no)) == 2


def test_an_abnormal_refund_shows_on_the_phone_in_chinese_and_offers_no_second_refund(shop, paid):  # noqa: F811
    _refund(shop.admin, paid, "1.99")  # the sandbox settles x.99 ABNORMAL
    [refund] = refunds.for_order(paid.out_trade_no)
    refunds.settle(refund.out_refund_no, channels.RefundState(channels.REFUND_ABNORMAL, "退款异常，请在微信支付商户平台处理"),
                   "notification")

    page = _detail(shop.admin, paid)

    assert "退款异常" in page.html and "请在微信支付商户平台处理" in page.html and "确认退款" not in page.html


def test_a_clerk_refunds_only_with_permission_and_while_on_shift(shop, paid):  # noqa: F811
    off = _detail(shop.clerk, paid)
    assert (off.status, off.page_id) == (403, "clerk-off-shift")

    staff.clock_in(_actor(shop, shop.clerk))
    without = _detail(shop.clerk, paid)
    assert without.status == 200 and "确认退款" not in without.html and "您没有退款权限" in without.html
    csrf = pages.form_token(shop.openids[shop.clerk.user_id], f"/h5/orders/{paid.out_trade_no}")  # no form shown
    assert (_refund(shop.clerk, paid, "1.00", csrf=csrf).page_id) == "refund-not-allowed"

    manager = _actor(shop, shop.manager)
    staff.set_refund(manager, shop.store, shop.clerk_id, True)
    assert _notice(_refund(shop.clerk, paid, "1.00")) == "退款 1.00 元已提交，正在处理"
    [refund] = refunds.for_order(paid.out_trade_no)
    assert refund.requested_by.startswith("clerk#") and refund.requested_by_name == "张店员"

    staff.clock_out(_actor(shop, shop.clerk))
    assert _refund(shop.clerk, paid, "1.00", csrf=csrf).page_id == "clerk-off-shift"
    assert len(refunds.for_order(paid.out_trade_no)) == 1


def test_a_merchant_admin_without_refund_permission_is_refused_on_the_phone_and_nothing_is_written(
        shop, paid, sandbox, client, bound_console):  # noqa: F811
    boss = access.as_admin(shop.merchant_id, shop.openids["admin-01"])
    invite = admins.invite(boss, {"name": "二老板"})
    second_user = sandbox.create_user("二老板", "NOT_OPENED").user_id
    activation.activate(invite.activation_code_id, codes.MERCHANT_ADMIN_ACTIVATION, _wechat(sandbox, second_user), {})
    admins.set_refund(boss, invite.admin_id, False)
    second = Phone(client, second_user)
    page = _detail(second, paid)
    assert (page.status, page.page_id) == (200, "order") and "确认退款" not in page.html and "您没有退款权限" in page.html
    order_before = Order.get(paid.out_trade_no, consistent_read=True).attribute_values
    audit_before = bound_console.call("GET", "/v1/audit-log?limit=100").json["data"]
    path = f"/h5/orders/{paid.out_trade_no}"
    csrf = pages.form_token(_wechat(sandbox, second_user).openid, path)  # the page shows no form

    refused = _refund(second, paid, "1.00", csrf=csrf)

    assert (refused.status, refused.page_id) == (403, "refund-not-allowed") and "您没有退款权限" in refused.html
    assert Order.get(paid.out_trade_no, consistent_read=True).attribute_values == order_before
    assert list(Refund.scan()) == [] and state_of(sandbox).refunds == {}
    assert bound_console.call("GET", "/v1/audit-log?limit=100").json["data"] == audit_before


def test_a_manager_refunds_with_permission_while_on_shift(shop, paid):  # noqa: F811
    manager = _actor(shop, shop.manager)
    csrf = pages.form_token(manager.openid, f"/h5/orders/{paid.out_trade_no}")  # the page shows no form yet
    assert _refund(shop.manager, paid, "1.00", csrf=csrf).page_id == "refund-not-allowed"

    staff.set_refund(_actor(shop, shop.admin), shop.store, manager.staff.staff_id, True)
    staff.clock_in(_actor(shop, shop.manager))

    assert _notice(_refund(shop.manager, paid, "1.00")).startswith("退款 1.00 元")


def test_the_console_refunds_its_order_and_shows_the_refunds_on_it(shop, paid, bound_console):  # noqa: F811
    path = f"/v1/orders/{paid.out_trade_no}"
    over = bound_console.call("POST", f"{path}/refunds", {"amount": 1001})
    assert (over.status, over.json["error"]["param"]) == (400, "amount")

    made = bound_console.call("POST", f"{path}/refunds", {"amount": 300, "reason": "退一杯"})

    assert made.status == 201
    assert {key: made.json[key] for key in ("object", "amount", "state", "reason", "channel", "requested_by_name")} \
        == {"object": "refund", "amount": 300, "state": "PROCESSING", "reason": "退一杯",
            "channel": "official_direct", "requested_by_name": "控制台"}
    detail = bound_console.call("GET", path).json
    assert [r["out_refund_no"] for r in detail["refunds"]] == [made.json["out_refund_no"]]
    assert "callbacks" in detail and "messages" in detail
    again = bound_console.call("POST", f"{path}/refunds", {"amount": 100})
    assert (again.status, again.json["error"]["code"]) == (409, "refund_in_progress")


def test_the_console_order_names_its_merchant_store_and_clerk(shop, paid, bound_console):  # noqa: F811
    paid.update(actions=[Order.clerk_id.set(shop.clerk_id)])

    detail = bound_console.call("GET", f"/v1/orders/{paid.out_trade_no}").json

    merchant = SubMerchant.get(shop.account_id, shop.merchant_id)
    assert (detail["merchant_name"], detail["store_name"], detail["clerk_name"]) == \
        (merchant.name, shop.store.name, "张店员")


def test_a_sub_service_provider_reads_the_order_but_gets_not_found_when_refunding(shop, paid):  # noqa: F811
    paid.update(actions=[Order.ssp_account_id.set("acct-ssp")])

    assert queries.for_console("acct-ssp", paid.out_trade_no).out_trade_no == paid.out_trade_no
    with pytest.raises(NotFound):
        refunds.console_requester("acct-ssp", Order.get(paid.out_trade_no))
