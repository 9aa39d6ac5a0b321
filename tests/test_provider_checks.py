"""C3.4 configuration checks: an unexpected failure answers a stable message, never its own text."""
from __future__ import annotations

import logging

from chalicelib import provider_checks

SP_MCHID = "1900000109"


def test_an_unexpected_failure_of_a_check_says_so_without_its_detail_and_is_logged(bound_console, monkeypatch,
                                                                                   caplog):
    assert bound_console.call("POST", "/v1/providers", {"sp_mchid": SP_MCHID, "name": "演示服务商"}).status == 201

    def broken(provider):
        raise RuntimeError("internal detail: /var/task/chalicelib/x.py table cloudpay-providers")

    monkeypatch.setattr(provider_checks.providers, "wechat_pay_configured", lambda provider: True)
    monkeypatch.setattr(provider_checks, "_wechat_pay_probe", broken)
    app_logger = logging.getLogger("cloudpay")
    app_logger.addHandler(caplog.handler)
    try:
        answer = bound_console.call("POST", f"/v1/providers/{SP_MCHID}/configuration-checks")
    finally:
        app_logger.removeHandler(caplog.handler)

    [wechat_pay] = [check for check in answer.json["checks"] if check["check"] == "wechat_pay"]
    assert answer.status == 200 and wechat_pay["ok"] is False
    assert wechat_pay["problem"] == provider_checks.UNEXPECTED_PROBLEM
    assert "internal detail" not in answer.raw.decode()
    assert any("internal detail" in (record.exc_text or "") or record.exc_info for record in caplog.records
               if record.name == "cloudpay")
