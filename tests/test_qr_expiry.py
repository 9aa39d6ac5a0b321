"""B2: the scheduled sweep marks expired codes through the expiry index, never by scanning."""
from __future__ import annotations

from app import expire_qr_codes
from chalicelib import qrcodes
from chalicelib.models.qrcodes import QrCode
from tests.dynamodb_calls import counting_aws_calls


SCHEDULED_EVENT = {"version": "0", "id": "e1", "detail-type": "Scheduled Event", "source": "aws.events",
                   "account": "123456789012", "time": "2026-11-22T00:00:00Z", "region": "ap-east-1",
                   "resources": ["arn:aws:events:ap-east-1:123456789012:rule/expire"], "detail": {}}


def _issue(account_id: str, ttl: int) -> QrCode:
    return qrcodes.issue("wechat_binding", account_id, ttl)


def test_the_sweep_expires_only_live_codes_past_their_time(aws):
    due = [_issue("acct_a", -1) for _ in range(7)]
    live = _issue("acct_a", 300)
    used = _issue("acct_a", -1)
    used.update(actions=qrcodes.use_actions("someone", used.created_at))

    with counting_aws_calls() as calls:
        result = expire_qr_codes(SCHEDULED_EVENT, None)

    assert result == {"examined": 7, "expired": 7}
    assert {QrCode.get(code.code_id).state for code in due} == {"expired"}
    assert QrCode.get(live.code_id).state == "pending"
    assert QrCode.get(used.code_id).state == "used"
    assert "Scan" not in calls and calls["Query"] == 4  # one query per shard
    assert calls["UpdateItem"] == 7


def test_an_expired_code_leaves_the_index_so_the_next_sweep_reads_nothing(aws):
    _issue("acct_a", -1)
    expire_qr_codes(SCHEDULED_EVENT, None)

    with counting_aws_calls() as calls:
        result = expire_qr_codes(SCHEDULED_EVENT, None)

    assert result == {"examined": 0, "expired": 0}
    assert "UpdateItem" not in calls


def test_a_code_used_while_the_sweep_runs_stays_used(aws):
    code = _issue("acct_a", -1)
    QrCode(code.code_id).update(actions=[QrCode.state.set("used")])

    assert qrcodes.expire_due().expired == 0
    assert QrCode.get(code.code_id).state == "used"


def test_expired_codes_are_purged_by_ttl_later(aws):
    code = _issue("acct_a", 300)

    assert code.purge_at == code.expires_at + 30 * 86400
