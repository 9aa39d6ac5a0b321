"""The test environment: set before anything imports the app, as Lambda and the local stack do."""
from __future__ import annotations

import contextlib
import itertools
import os

import boto3
import httpx

PUBLIC_BASE_URL = "http://h5.test"
SANDBOX_ROOT = "http://sandbox.test"
STACK_NAME = "cloudpay-test"
REGION = "ap-east-1"
PARAMETERS = {
    "PublicBaseUrl": PUBLIC_BASE_URL,
    "PlatformSigningKey": "test-platform-signing-key-0123456789abcdef",
    "WechatAppId": "wx0123456789abcdef",
    "WechatAppSecret": "5f1d3c0a9e8b7a6f5e4d3c2b1a0f9e8d",
    "WechatOpenBaseUrl": f"{SANDBOX_ROOT}/wechat-open",
    "WechatApiBaseUrl": f"{SANDBOX_ROOT}/wechat-api",
    "WechatPayBaseUrl": f"{SANDBOX_ROOT}/wechatpay",
    "AlipayGatewayUrl": f"{SANDBOX_ROOT}/alipay/gateway.do",
    "AlipayOpenAuthBaseUrl": f"{SANDBOX_ROOT}/alipay/openauth",
    "MaidanBaseUrl": f"{SANDBOX_ROOT}/maidan",
    "MaidanPartnerId": "cloudpay-sandbox",
    "MaidanApiKey": "sandbox-maidan-api-key-0123456789abcdef",
}
STATIC_ENV = {
    "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "CLOUDPAY_STAGE": "test", "UPSTREAM_RETRIES": "1", "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
    "JOB_RETRY_BASE_SECONDS": "0",
}


def expected_env() -> dict[str, str]:
    from local import infra
    names = {"AccountsTable": "accounts", "UniqueClaimsTable": "unique-claims", "SessionsTable": "sessions",
             "LoginAttemptsTable": "login-attempts", "WechatBindingsTable": "wechat-bindings",
             "QrCodesTable": "qr-codes", "IdempotencyTable": "idempotency",
             "ProvidersTable": "providers", "AuditLogTable": "audit-log",
             "SubServiceProvidersTable": "sub-service-providers", "SubMerchantsTable": "sub-merchants",
             "JobsTable": "jobs", "JobStepsTable": "job-steps", "OrdersTable": "orders", "RefundsTable": "refunds"}
    env = {}
    for variable, node in infra.template_env().items():
        if "Ref" in node and node["Ref"] in PARAMETERS:
            env[variable] = PARAMETERS[node["Ref"]]
        elif "Ref" in node and node["Ref"] in names:
            env[variable] = f"{STACK_NAME}-{names[node['Ref']]}"
    return env




def apply() -> None:
    os.environ.update(STATIC_ENV)
    os.environ.update(expected_env())
    os.environ.pop("AWS_ENDPOINT_URL", None)


@contextlib.contextmanager
def in_memory_aws():
    """moto in-process with the stack of infra/template.yaml; yields the resolved environment."""
    from moto import mock_aws

    from local import infra
    from local.moto_atomic import serialize_moto_requests
    serialize_moto_requests()
    with mock_aws():
        resolved = infra.create_stack(boto3.Session(region_name=REGION), STACK_NAME, PARAMETERS)
        for variable, value in expected_env().items():
            assert resolved[variable] == value, variable
        os.environ["SYNC_QUEUE_URL"] = resolved["SYNC_QUEUE_URL"]
        for variable in ("REATTRIBUTION_QUEUE_URL", "SYNC_DEAD_LETTER_QUEUE_URL", "REATTRIBUTION_DEAD_LETTER_QUEUE_URL"):
            os.environ[variable] = resolved[variable]
        os.environ["KMS_KEY_ID"] = resolved["KMS_KEY_ID"]
        yield resolved


class Wire(httpx.BaseTransport):
    """The app's side of the wire to the sandbox: passes every request on and keeps it, so
    tests and benchmarks see what the clients really sent. `rewrite(status, headers, body)`
    may alter each answer on its way back, as a man in the middle could."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []
        self.rewrite = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if self.rewrite is None:
            return response
        headers = {name: value for name, value in response.headers.items() if name != "content-length"}
        status, headers, body = self.rewrite(response.status_code, headers, response.read())
        return httpx.Response(status, headers=headers, content=body)

    @property
    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]

    def count(self, suffix: str) -> int:
        return sum(path.endswith(suffix) for path in self.paths)


@contextlib.contextmanager
def sandbox_in_process(config=None):
    """The sandbox app in-process; every upstream call of the app goes to it through a Wire.

    Yields (world, wire)."""
    from chalicelib.upstream import http
    from sandbox.app import create_app
    from sandbox.world import SandboxConfig
    sandbox_app = create_app(config or SandboxConfig(providers=50, sub_merchants=2000, in_process=True))
    wire = Wire(httpx.WSGITransport(app=sandbox_app))
    http.use_transport(wire)
    try:
        yield sandbox_app.config["WORLD"], wire
    finally:
        http.use_transport(None)


_message_ids = itertools.count(1)


def next_message_id() -> str:
    """A fresh client_msg_id: each template message a test sends is a different message."""
    return f"test-message-{next(_message_ids)}"
