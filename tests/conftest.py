"""Test wiring: moto in-process (created from infra/template.yaml), the sandbox in-process.

The environment is set before anything imports the app, exactly as Lambda and the local
stack set it; `aws` then creates the stack from the same template and checks that the
environment it resolves is the one set here.
"""
from __future__ import annotations

import json
import os
import re
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

PUBLIC_BASE_URL = "http://h5.test"
SANDBOX_ROOT = "http://sandbox.test"
STACK_NAME = "cloudpay-test"
REGION = "ap-east-1"
PARAMETERS = {
    "PublicBaseUrl": PUBLIC_BASE_URL,
    "PlatformSigningKey": "test-platform-signing-key-0123456789abcdef",
    "WechatAppId": "wx0123456789abcdef",
    "WechatAppSecret": "sandbox-wechat-app-secret-0000000",
    "WechatOpenBaseUrl": f"{SANDBOX_ROOT}/wechat-open",
    "WechatApiBaseUrl": f"{SANDBOX_ROOT}/wechat-api",
    "MaidanBaseUrl": f"{SANDBOX_ROOT}/maidan",
    "MaidanPartnerId": "cloudpay-sandbox",
    "MaidanApiKey": "sandbox-maidan-api-key-0123456789abcdef",
}
STATIC_ENV = {
    "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "CLOUDPAY_STAGE": "test", "UPSTREAM_RETRIES": "1", "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
}


def _expected_env() -> dict[str, str]:
    from local import infra
    names = {"AccountsTable": "accounts", "UniqueClaimsTable": "unique-claims", "SessionsTable": "sessions",
             "LoginAttemptsTable": "login-attempts", "WechatBindingsTable": "wechat-bindings",
             "QrCodesTable": "qr-codes", "IdempotencyTable": "idempotency"}
    env = {}
    for variable, node in infra.template_env().items():
        if "Ref" in node and node["Ref"] in PARAMETERS:
            env[variable] = PARAMETERS[node["Ref"]]
        elif "Ref" in node and node["Ref"] in names:
            env[variable] = f"{STACK_NAME}-{names[node['Ref']]}"
    return env


os.environ.update(STATIC_ENV)
os.environ.update(_expected_env())
os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture
def aws():
    """A fresh in-memory AWS with the stack of infra/template.yaml in it."""
    from moto import mock_aws

    from local import infra
    from local.moto_atomic import serialize_moto_requests
    serialize_moto_requests()
    with mock_aws():
        resolved = infra.create_stack(boto3.Session(region_name=REGION), STACK_NAME, PARAMETERS)
        for variable, value in _expected_env().items():
            assert resolved[variable] == value, variable
        os.environ["SYNC_QUEUE_URL"] = resolved["SYNC_QUEUE_URL"]
        os.environ["KMS_KEY_ID"] = resolved["KMS_KEY_ID"]
        yield resolved


@pytest.fixture
def sandbox():
    """The sandbox app in-process; every upstream call of the app goes to it."""
    from chalicelib.upstream import http
    from sandbox.app import create_app
    from sandbox.world import SandboxConfig
    sandbox_app = create_app(SandboxConfig(providers=50, sub_merchants=2000))
    http.use_transport(httpx.WSGITransport(app=sandbox_app))
    yield sandbox_app.config["WORLD"]
    http.use_transport(None)


@pytest.fixture
def client(aws, sandbox):
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="local") as test_client:
        yield test_client


class ApiResponse:
    def __init__(self, raw) -> None:
        self.status = raw.status_code
        self.headers = {name.lower(): value for name, value in raw.headers.items()}
        self.raw = raw.body
        self.json = json.loads(raw.body) if raw.body and self.headers.get("content-type", "").startswith(
            "application/json") else None

    @property
    def error_code(self) -> str | None:
        return (self.json or {}).get("error", {}).get("code")


class Console:
    """A console user talking to the JSON API through chalice.test.Client."""

    def __init__(self, client, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None,
             token: str | None = None) -> ApiResponse:
        all_headers = {"content-type": "application/json", **(headers or {})}
        use_token = token or self.token
        if use_token:
            all_headers["authorization"] = f"Bearer {use_token}"
        raw = getattr(self.client.http, method.lower())(
            path, headers=all_headers, body=json.dumps(body) if body is not None else None)
        return ApiResponse(raw)

    def sign_up_and_in(self, email: str, password: str = "correct horse battery") -> "Console":
        created = self.call("POST", "/v1/accounts", {"email": email, "password": password})
        assert created.status == 201, created.json
        session = self.call("POST", "/v1/sessions", {"email": email, "password": password})
        assert session.status == 201, session.json
        return Console(self.client, session.json["token"])


class Phone:
    """A WeChat user's phone: opens URLs, follows redirects between our app and WeChat."""

    def __init__(self, client, user_id: str) -> None:
        self.client = client
        self.user_id = user_id
        self.app_cookies: dict[str, str] = {}
        self.last = None

    def _sandbox(self) -> httpx.Client:
        from chalicelib.upstream import http
        return httpx.Client(transport=http._transport, follow_redirects=False,
                            cookies={"sandbox_wechat_user": self.user_id})

    def _app(self, method: str, path: str, form: dict | None = None):
        headers = {}
        if self.app_cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.app_cookies.items())
        body = None
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = str(httpx.QueryParams(form))
        raw = getattr(self.client.http, method.lower())(path, headers=headers, body=body)
        headers = {name.lower(): value for name, value in raw.headers.items()}
        cookie = headers.get("set-cookie")
        if cookie:
            name, _, rest = cookie.partition("=")
            self.app_cookies[name] = rest.split(";")[0]
        return raw

    def open(self, url: str, method: str = "GET", form: dict | None = None) -> "Phone":
        for _ in range(10):
            parts = urlsplit(url)
            if url.startswith(SANDBOX_ROOT):
                raw = self._sandbox().get(url)
                status, location = raw.status_code, raw.headers.get("location")
                self.last = (status, raw.text, dict(raw.headers))
            else:
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                raw = self._app(method, path, form)
                status = raw.status_code
                location = {k.lower(): v for k, v in raw.headers.items()}.get("location")
                self.last = (status, raw.body.decode(), dict(raw.headers))
            method, form = "GET", None
            if status != 302:
                return self
            url = location
        raise AssertionError("too many redirects")

    @property
    def status(self) -> int:
        return self.last[0]

    @property
    def html(self) -> str:
        return self.last[1]

    @property
    def page_id(self) -> str | None:
        found = re.search(r'data-page="([^"]+)"', self.html)
        return found.group(1) if found else None

    def form_value(self, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]+)"', self.html)
        assert found, f"no {name} in page"
        return found.group(1)

    def confirm(self) -> "Phone":
        action = re.search(r'<form method="post" action="([^"]+)"', self.html).group(1)
        return self.open(PUBLIC_BASE_URL + action, method="POST", form={"csrf": self.form_value("csrf")})


@pytest.fixture
def console(client):
    return Console(client)


@pytest.fixture
def phone(client):
    return lambda user_id: Phone(client, user_id)
