"""Drivers for end-to-end tests: a console user on the JSON API, a WeChat user's phone."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import httpx

from tests.environment import PUBLIC_BASE_URL, SANDBOX_ROOT


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


WECHAT_USER_AGENT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                     "Mobile/15E148 MicroMessenger/8.0.50 NetType/WIFI Language/zh_CN")


class Phone:
    """A WeChat user's phone: opens URLs, follows redirects between our app and WeChat."""

    def __init__(self, client, user_id: str, user_agent: str = WECHAT_USER_AGENT) -> None:
        self.client = client
        self.user_id = user_id
        self.user_agent = user_agent
        self.app_cookies: dict[str, str] = {}
        self.last = None

    def _sandbox(self) -> httpx.Client:
        from chalicelib.upstream import http
        return httpx.Client(transport=http._transport, follow_redirects=False,
                            cookies={"sandbox_wechat_user": self.user_id})

    def _app(self, method: str, path: str, form: dict | None = None):
        headers = {"user-agent": self.user_agent}
        if self.app_cookies:
            headers["cookie"] = "; ".join(f"{k}={v}" for k, v in self.app_cookies.items())
        body = None
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = str(httpx.QueryParams(form))
        raw = getattr(self.client.http, method.lower())(path, headers=headers, body=body)
        headers = {name.lower(): value for name, value in raw.headers.items()}
        cookies = headers.get("set-cookie") or []
        for cookie in [cookies] if isinstance(cookies, str) else cookies:
            name, _, rest = cookie.partition("=")
            if "max-age=0" in rest.lower().replace(" ", ""):
                self.app_cookies.pop(name, None)
            else:
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
