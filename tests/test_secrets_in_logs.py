"""No secret reaches a log line: the whole flow runs with every logger the app can reach at
DEBUG, and every captured record is searched for every secret the flow handled."""
from __future__ import annotations

import base64
import logging
import re
from urllib.parse import quote, quote_plus, urlencode

import pytest

from sandbox import alipay as sandbox_alipay
from sandbox import wechatpay as sandbox_wechatpay
from sandbox.world import SandboxConfig
from tests import environment
from tests.queues import drain, make_messages_return_at_once

SP_MCHID = "1900000109"
PASSWORD = "logged-never-9f3a7c2e41"


@pytest.fixture
def sandbox_and_wire():
    """A small 买单 world: two providers, a few sub-merchants each (enough for one sync)."""
    with environment.sandbox_in_process(SandboxConfig(providers=2, sub_merchants=6, in_process=True)) as world_and_wire:
        yield world_and_wire


@pytest.fixture
def every_record(caplog):
    """Root at DEBUG, and the app's own logger (which does not propagate) into the same capture."""
    caplog.set_level(logging.DEBUG)
    app_logger = logging.getLogger("cloudpay")
    level = app_logger.level
    app_logger.setLevel(logging.DEBUG)
    app_logger.addHandler(caplog.handler)
    yield caplog
    app_logger.removeHandler(caplog.handler)
    app_logger.setLevel(level)


def _texts(caplog) -> list[str]:
    """Each record as a handler would print it, plus every attribute (extra fields included)."""
    texts = []
    for record in caplog.records:
        texts.append(caplog.handler.format(record))
        texts.append(repr(vars(record)))
    return texts


def _forms(secret: str) -> set[str]:
    """The secret as it could appear in a line: itself, URL-encoded, base64-encoded (KMS, JSON bodies)."""
    return {secret, quote(secret, safe=""), quote_plus(secret), base64.b64encode(secret.encode()).decode()}


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)[100:160]


def test_no_secret_of_a_whole_flow_reaches_any_log_record(every_record, bound_console, phone, client, sandbox, wire):
    from app import app
    from chalicelib import providers
    make_messages_return_at_once(app)
    answers = []
    wire.rewrite = lambda status, headers, body: answers.append(body) or (status, headers, body)
    session_tokens = [bound_console.token]
    user = bound_console
    signed_up = user.call("POST", "/v1/accounts", {"email": "second@example.com", "password": PASSWORD})
    assert signed_up.status == 201
    second = user.call("POST", "/v1/sessions", {"email": "second@example.com", "password": PASSWORD})
    session_tokens.append(second.json["token"])
    wechat = sandbox_wechatpay.register_merchant(sandbox, SP_MCHID)
    world_alipay = sandbox_alipay.state_of(sandbox)
    isv = world_alipay.create_app()
    created = user.call("POST", "/v1/providers", {
        "sp_mchid": SP_MCHID, "name": "演示服务商",
        "wechat_pay": {"app_id": sandbox.config.wechat_app_id, "app_secret": sandbox.config.wechat_app_secret,
                       "serial_no": wechat["serial_no"], "api_v3_key": wechat["api_v3_key"],
                       "private_key_pem": wechat["private_key_pem"],
                       "platform_public_key_id": wechat["platform_public_key_id"],
                       "platform_public_key_pem": wechat["platform_public_key_pem"]},
        "alipay": {"app_id": isv.app_id, "private_key": isv.app_private_key_pem,
                   "alipay_public_key": isv.alipay_public_key_pem}})
    assert created.status == 201, created.json
    check = user.call("POST", f"/v1/providers/{SP_MCHID}/configuration-checks")
    assert check.status == 200 and check.json["ok"], check.json
    merchant = user.call("POST", "/v1/sub-merchants", {"sp_mchid": SP_MCHID, "name": "一号面馆"}).json
    keys = user.call("POST", f"/v1/sub-merchants/{merchant['id']}/keys")
    assert keys.status == 201
    link = user.call("POST", f"/v1/sub-merchants/{merchant['id']}/alipay-authorization-links").json["url"]
    pid = list(world_alipay.merchants)[0]
    page = phone("merchant-phone").open(f"{link}&{urlencode({'merchant': pid})}")
    assert page.page_id == "alipay-authorized"
    account_id = user.call("GET", "/v1/me").json["id"]
    for maidan_provider in sandbox.providers_of("admin-01"):
        providers.upsert_from_maidan(account_id, account_id, maidan_provider.sp_mchid, maidan_provider.name)
    assert user.call("POST", "/v1/sub-merchant-sync-jobs").status == 202
    drain(app)
    assert user.call("GET", "/v1/jobs").json["data"][0]["status"] == "COMPLETED"
    assert user.call("GET", "/v1/sub-merchants?limit=1").json["has_more"]

    issued = [found.group(1) for body in answers
              for found in re.finditer(rb'"(?:access_token|app_auth_token|app_refresh_token)":\s*"([^"]+)"', body)]
    issued = [token.decode() for token in issued]
    granted = [token for found in world_alipay.authorizations.values()
               for token in (found.app_auth_token, found.app_refresh_token)]
    assert issued and granted
    secrets = [environment.PLATFORM_SIGNING_KEY, environment.WECHAT_APP_SECRET,
               environment.MAIDAN_API_KEY, PASSWORD, "correct horse battery", *session_tokens,
               wechat["api_v3_key"], _pem_body(wechat["private_key_pem"]), _pem_body(isv.app_private_key_pem),
               sandbox.config.wechat_app_secret, *issued, *granted, keys.json["auth_key"],
               _pem_body(keys.json["private_key_pem"])]
    texts = _texts(every_record)
    assert len(texts) > 20  # the capture saw the flow (request lines at least)
    leaks = sorted({(secret[:12], text[:300]) for secret in secrets for form in _forms(secret)
                    for text in texts if form in text})
    assert not leaks


@pytest.mark.parametrize("line", [
    "GET https://api.weixin.qq.com/sns/oauth2/access_token?appid=wx1&secret=S3CR3T&code=abc&grant_type=x",
    "GET https://api.weixin.qq.com/cgi-bin/message?access_token=S3CR3T",
    'sent {"appsecret": "S3CR3T", "ok": 1}',
    "alipay sign=S3CR3T&app_auth_token=S3CR3T",
])
def test_the_redaction_filter_hides_known_secret_parameters_in_any_line(line):
    from chalicelib.log import RedactSecrets
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s", (line,), None)
    record.detail = line

    assert RedactSecrets().filter(record) is True
    assert "S3CR3T" not in record.getMessage() and "S3CR3T" not in record.detail


def test_the_app_keeps_library_request_logs_below_what_it_prints():
    import chalicelib.log  # noqa: F401  (configures the libraries' loggers)

    for name in ("httpx", "httpcore", "botocore", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


@pytest.mark.parametrize("line, secret", [
    ('{"secret": "abc def"}', "abc def"),
    ('"private_key_pem": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADAN\\n-----END PRIVATE KEY-----", "x": 1',
     "MIIEvQIBADAN"),
    ('"password": "a,b"', ",b"),
    ("wechat_app_secret=xyz123&next=1", "xyz123"),
    ("client_secret: zzz999", "zzz999"),
    ("Authorization: Bearer cps_abc.def", "cps_abc.def"),
    ('{\\"api_v3_key\\": \\"with space\\"}', "with space"),
])
def test_a_secret_is_redacted_to_its_end_whatever_its_quoting_or_prefix(line, secret):
    from chalicelib.log import redact
    assert secret not in redact(line)


def test_secrets_in_structured_log_fields_are_redacted_and_error_codes_are_kept():
    from chalicelib.log import REDACTED, redact_value
    fields = {"code": "not_found", "api_v3_key": "k3y", "nested": [{"token": "t0k"}, "password=p4ss"], "pages": 3}
    assert redact_value(fields) == {"code": "not_found", "api_v3_key": REDACTED,
                                    "nested": [{"token": REDACTED}, f"password={REDACTED}"], "pages": 3}
