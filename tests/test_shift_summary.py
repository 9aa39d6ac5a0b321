"""H5 shift summary: a clerk's clock-out shows the store's takings since the previous clock-out
of anyone in the store (or since the shift began), and sends them to the clerk as the shift
summary template message (not to a clerk with messages off); a failed send does not fail the
clock-out. The window reaches back at most a day before the shift began, and the read is
capped (the figures then say "至少")."""
from __future__ import annotations

import logging

from chalicelib.models.base import now
from chalicelib.models.orders import Order
from chalicelib.onecode import staff
from chalicelib.onecode.models import Shift
from chalicelib.payments import shift_summary
from chalicelib.upstream import wechat_message
from sandbox.wechat import sent_messages
from tests.test_onecode_store_pages import _notice, _post, shop  # noqa: F401 (the fixture)

TEMPLATE = "cp_sandbox_shift_summary"
DAY = 86_400


def save_order(of_shop, number: int, *, created_at: int, paid_at: int | None, total: int,
               state: str = "SUCCESS", store_id: str | None = None) -> None:
    out_trade_no = f"M00001SHIFT{number:04d}"
    Order(out_trade_no=out_trade_no, account_id=of_shop.account_id, sp_mchid="1900000109",
          merchant_id=of_shop.merchant_id, store_id=store_id or of_shop.store.store_id, channel="official_direct",
          wallet="wechat", state=state, total=total, created_at=created_at, paid_at=paid_at,
          created_key=f"{created_at:010d}#{out_trade_no}").save()


def ended_shift(store_id: str, staff_id: str, started_at: int, ended_at: int) -> None:
    Shift(staff_ref=f"{store_id}#{staff_id}", shift_id=f"{started_at:010d}#x", store_id=store_id, staff_id=staff_id,
          started_at=started_at, ended_at=ended_at).save()


def summaries_sent(sandbox) -> list[dict]:
    return [message for message in sent_messages(sandbox) if message["template_id"] == TEMPLATE]


def test_clock_out_counts_the_orders_paid_since_the_previous_clock_out_in_the_store(shop, sandbox):  # noqa: F811
    sid, at = shop.store.store_id, now()
    ended_shift(sid, "t_colleague", at - 8 * 3600, at - 3600)  # the colleague handed over an hour ago
    save_order(shop, 1, created_at=at - 1900, paid_at=at - 1800, total=1250)
    save_order(shop, 2, created_at=at - 3700, paid_at=at - 3500, total=300)  # created before, paid after
    save_order(shop, 3, created_at=at - 7300, paid_at=at - 7200, total=9999)  # the colleague's shift
    save_order(shop, 4, created_at=at - 100, paid_at=None, total=5000, state="CLOSED")
    save_order(shop, 5, created_at=at - 100, paid_at=at - 90, total=7777, store_id="st_elsewhere")
    _post(shop.clerk, sid, "clock-in")

    notice = _notice(_post(shop.clerk, sid, "clock-out"))

    assert notice.startswith("已下班，本班 ") and notice.endswith("本班收款 2 笔，共 15.50 元")
    [message] = summaries_sent(sandbox)
    assert message["touser"] == shop.openids[shop.clerk.user_id]
    assert (message["data"]["thing1"], message["data"]["number3"], message["data"]["amount4"]) == ("一号店", "2", "15.50元")


def test_without_an_earlier_clock_out_the_summary_starts_at_this_shifts_start(shop, sandbox, monkeypatch):  # noqa: F811
    sid = shop.store.store_id
    _post(shop.clerk, sid, "clock-in")
    [open_shift] = Shift.query(f"{sid}#{shop.clerk_id}")
    started = int(open_shift.started_at)
    save_order(shop, 1, created_at=started - 200, paid_at=started - 100, total=400)  # before the shift
    save_order(shop, 2, created_at=started + 10, paid_at=started + 20, total=888)
    monkeypatch.setattr(staff, "now", lambda: started + 60)

    assert _notice(_post(shop.clerk, sid, "clock-out")).endswith("本班收款 1 笔，共 8.88 元")
    assert summaries_sent(sandbox)[0]["data"]["number3"] == "1"


def test_a_failed_summary_message_does_not_fail_the_clock_out_nor_log_the_openid(shop, monkeypatch, caplog):  # noqa: F811
    sid = shop.store.store_id
    _post(shop.clerk, sid, "clock-in")

    def refuse(*args, **kwargs):
        raise RuntimeError("WeChat did not answer")

    monkeypatch.setattr(wechat_message, "send_template", refuse)
    with caplog.at_level(logging.INFO):
        notice = _notice(_post(shop.clerk, sid, "clock-out"))

    assert notice.endswith("本班收款 0 笔，共 0.00 元")
    assert all(shift.ended_at is not None for shift in Shift.query(f"{sid}#{shop.clerk_id}"))
    assert "shift summary message not sent" in caplog.text
    assert shop.openids[shop.clerk.user_id] not in caplog.text



def test_a_clock_out_weeks_after_the_previous_one_reaches_back_only_a_day_before_the_shift_began(shop, sandbox):  # noqa: F811
    sid = shop.store.store_id
    _post(shop.clerk, sid, "clock-in")
    [open_shift] = Shift.query(f"{sid}#{shop.clerk_id}")
    started = int(open_shift.started_at)
    ended_shift(sid, "t_colleague", started - 22 * DAY, started - 21 * DAY)  # the last hand-over, three weeks ago
    save_order(shop, 1, created_at=started - 5 * DAY - 100, paid_at=started - 5 * DAY, total=7000)  # outside the day
    save_order(shop, 2, created_at=started - 2 * 3600 - 100, paid_at=started - 2 * 3600, total=1200)  # inside it

    assert _notice(_post(shop.clerk, sid, "clock-out")).endswith("本班收款 1 笔，共 12.00 元")
    assert summaries_sent(sandbox)[0]["data"]["amount4"] == "12.00元"


def test_the_shift_summary_stops_reading_at_its_cap_and_says_at_least(shop, sandbox, monkeypatch):  # noqa: F811
    sid = shop.store.store_id
    _post(shop.clerk, sid, "clock-in")
    [open_shift] = Shift.query(f"{sid}#{shop.clerk_id}")
    started = int(open_shift.started_at)
    for number in range(5):
        save_order(shop, number, created_at=started - 60, paid_at=started + 1 + number, total=100)
    monkeypatch.setattr(shift_summary, "MAX_ORDERS_READ", 3)
    monkeypatch.setattr(shift_summary, "PAGE_SIZE", 2)
    monkeypatch.setattr(staff, "now", lambda: started + 60)

    notice = _notice(_post(shop.clerk, sid, "clock-out"))

    assert "本班收款至少 3 笔，共至少 3.00 元" in notice
    [message] = summaries_sent(sandbox)
    assert (message["data"]["thing1"], message["data"]["number3"]) == ("一号店（至少）", "3")


def test_a_clerk_who_turned_messages_off_gets_the_summary_on_the_page_but_no_message(shop, sandbox):  # noqa: F811
    sid = shop.store.store_id
    assert _notice(_post(shop.clerk, sid, "messages", on="0")) == "已关闭接收支付消息"
    _post(shop.clerk, sid, "clock-in")

    notice = _notice(_post(shop.clerk, sid, "clock-out"))

    assert notice.endswith("本班收款 0 笔，共 0.00 元")
    assert summaries_sent(sandbox) == []
    [member] = [m for m in staff.people(sid) if m.staff_id == shop.clerk_id]
    assert member.messages_on is False
