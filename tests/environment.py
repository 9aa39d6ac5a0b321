"""The test environment: set before anything imports the app, as Lambda and the local stack do."""
from __future__ import annotations

import contextlib
import functools
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
    "WechatAppId": "wx0123456789abcdef",
    "WechatOpenBaseUrl": f"{SANDBOX_ROOT}/wechat-open",
    "WechatApiBaseUrl": f"{SANDBOX_ROOT}/wechat-api",
    "WechatPayBaseUrl": f"{SANDBOX_ROOT}/wechatpay",
    "AlipayGatewayUrl": f"{SANDBOX_ROOT}/alipay/gateway.do",
    "AlipayOpenAuthBaseUrl": f"{SANDBOX_ROOT}/alipay/openauth",
    "MaidanBaseUrl": f"{SANDBOX_ROOT}/maidan",
    "MaidanPartnerId": "cloudpay-sandbox",
    "WechatPaymentTemplateId": "cp_sandbox_payment_received",
    "WechatShiftSummaryTemplateId": "cp_sandbox_shift_summary",
    "AlarmTopicArn": f"arn:aws:sns:{REGION}:123456789012:{STACK_NAME}-alarms",
}
# The platform's secrets: SSM SecureString parameters, each named by a `*_PARAMETER` variable.
PLATFORM_SIGNING_KEY = "test-platform-signing-key-0123456789abcdef"
WECHAT_APP_SECRET = "5f1d3c0a9e8b7a6f5e4d3c2b1a0f9e8d"
MAIDAN_API_KEY = "sandbox-maidan-api-key-0123456789abcdef"
SECRETS = {"PLATFORM_SIGNING_KEY_PARAMETER": PLATFORM_SIGNING_KEY, "WECHAT_APP_SECRET_PARAMETER": WECHAT_APP_SECRET,
           "MAIDAN_API_KEY_PARAMETER": MAIDAN_API_KEY}
STATIC_ENV = {
    "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "CLOUDPAY_STAGE": "test", "UPSTREAM_RETRIES": "1", "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
    "JOB_RETRY_BASE_SECONDS": "0",
    # scrypt at 2**12 (~15 ms) rather than the production 2**17 (~0.5 s): the suite signs in
    # hundreds of times; tests/test_accounts.py runs the real default where it matters.
    "PASSWORD_SCRYPT_N": "4096",
}


@functools.cache
def expected_env() -> dict[str, str]:
    from local import infra
    names = {"AccountsTable": "accounts", "UniqueClaimsTable": "unique-claims", "SessionsTable": "sessions",
             "LoginAttemptsTable": "login-attempts", "WechatBindingsTable": "wechat-bindings",
             "QrCodesTable": "qr-codes", "IdempotencyTable": "idempotency",
             "ProvidersTable": "providers", "AuditLogTable": "audit-log",
             "SubServiceProvidersTable": "sub-service-providers", "SubMerchantsTable": "sub-merchants",
             "JobsTable": "jobs", "JobStepsTable": "job-steps", "OrdersTable": "orders", "RefundsTable": "refunds",
             "MerchantAdminsTable": "merchant-admins", "StoresTable": "stores", "StaffTable": "staff",
             "DevicesTable": "devices", "ShiftsTable": "shifts", "OutboxTable": "outbox",
             "DailyTotalsTable": "daily-totals", "DeliveriesTable": "deliveries"}
    env = {}
    for variable, node in infra.template_env().items():
        if "Ref" in node and node["Ref"] in PARAMETERS:
            env[variable] = PARAMETERS[node["Ref"]]
        elif "Ref" in node and node["Ref"] in names:
            env[variable] = f"{STACK_NAME}-{names[node['Ref']]}"
    for variable, node in infra.function_env().items():
        env[variable] = node["Fn::Sub"].replace("${AWS::StackName}", STACK_NAME)
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
    with mock_aws(), fresh_secret_cache():
        resolved = infra.create_stack(boto3.Session(region_name=REGION), STACK_NAME, PARAMETERS, SECRETS)
        for variable, value in expected_env().items():
            assert resolved[variable] == value, variable
        os.environ["SYNC_QUEUE_URL"] = resolved["SYNC_QUEUE_URL"]
        for variable in ("REATTRIBUTION_QUEUE_URL", "SYNC_DEAD_LETTER_QUEUE_URL", "REATTRIBUTION_DEAD_LETTER_QUEUE_URL",
                         "PAYMENT_FOLLOW_UP_QUEUE_URL"):
            os.environ[variable] = resolved[variable]
        os.environ["KMS_KEY_ID"] = resolved["KMS_KEY_ID"]
        yield resolved


def empty_stack() -> None:
    """Bring a stack made by `in_memory_aws` back to what it held when it was new: no items,
    no messages, only the platform's own parameters with their values. Each test starts from
    that for a few milliseconds instead of the 1-2 s that creating the stack through moto's
    CloudFormation costs (the schema, queues and key stay those of infra/template.yaml)."""
    from collections import defaultdict

    from aws_lambda_powertools.utilities.parameters.base import DEFAULT_PROVIDERS
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.sqs.models import sqs_backends

    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables.values():
        table.items = defaultdict(dict)
    for queue in sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues.values():
        queue._messages = []
        queue._pending_messages = set()
        queue.deleted_messages = set()
    secrets = {expected_env()[variable]: value for variable, value in SECRETS.items()}
    ssm = _ssm_client()
    extra = [p["Name"] for page in ssm.get_paginator("describe_parameters").paginate()
             for p in page["Parameters"] if p["Name"] not in secrets]
    if extra:
        ssm.delete_parameters(Names=extra)
    for name, value in secrets.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()  # the values only: a new SSM client per test costs ~0.2 s


@functools.cache
def _ssm_client():
    return boto3.client("ssm", region_name=REGION)


@contextlib.contextmanager
def fresh_secret_cache():
    """Each test's SSM is new: forget the values the container cache kept from another."""
    from aws_lambda_powertools.utilities import parameters
    parameters.clear_caches()
    try:
        yield
    finally:
        parameters.clear_caches()


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
