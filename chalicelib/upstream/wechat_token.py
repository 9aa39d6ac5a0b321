"""U1: official-account access tokens, cached per process and refreshed early.

Tokens come from the stable token API (POST /cgi-bin/stable_token), not the classic
/cgi-bin/token: every Lambda container caches its own copy, and each classic call replaces
the token the other containers hold. In normal mode the stable API hands every caller the
same token and renews it only in its last 5 minutes, so containers never revoke one another.

https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import httpx

from chalicelib import settings
from chalicelib.upstream.wechat_api import WechatTokenRejected, call_api

REFRESH_MARGIN_SECONDS = 300
T = TypeVar("T")


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    app_secret: str = field(repr=False)


def platform_app() -> AppCredentials:
    """The platform's own official account (staff H5 pages, clerk notifications)."""
    config = settings.current()
    return AppCredentials(config.wechat_app_id, config.wechat_app_secret)


@dataclass(frozen=True)
class _CachedToken:
    value: str
    expires_at: float


class AccessTokens:
    """Access tokens cached per app id in this process and renewed 5 minutes before expiry.

    `clock` is injectable because expiry is WeChat's clock, not ours: tests drive both with
    the sandbox's clock.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[str, _CachedToken] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, app_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(app_id, threading.Lock())

    def _fresh(self, app_id: str) -> str | None:
        token = self._tokens.get(app_id)
        if token is not None and token.expires_at - self.clock() > REFRESH_MARGIN_SECONDS:
            return token.value
        return None

    def get(self, app: AppCredentials) -> str:
        """The cached token, or a new one when none is cached or it is in its last 5 minutes.

        Threads of one process wait for a single fetch instead of each fetching.
        """
        cached = self._fresh(app.app_id)
        if cached:
            return cached
        with self._lock(app.app_id):
            return self._fresh(app.app_id) or self._fetch(app, force_refresh=False)

    def invalidate(self, app_id: str, token: str | None = None) -> None:
        """Forget the cached token; with `token`, only if that is still the one cached, so a
        late rejection of an old token does not throw away a newer one."""
        with self._lock(app_id):
            cached = self._tokens.get(app_id)
            if cached is not None and token in (None, cached.value):
                del self._tokens[app_id]

    def call(self, fn: Callable[[str], T], app: AppCredentials) -> T:
        """fn(token), retried exactly once with a fresh token if WeChat rejects the token."""
        token = self.get(app)
        try:
            return fn(token)
        except WechatTokenRejected:
            self.invalidate(app.app_id, token)
        fresh = self.get(app)
        if fresh == token:
            # WeChat still hands out the very token it refused: make it issue another,
            # unless another thread did so meanwhile.
            with self._lock(app.app_id):
                cached = self._fresh(app.app_id)
                fresh = cached if cached not in (None, token) else self._fetch(app, force_refresh=True)
        return fn(fresh)

    def _fetch(self, app: AppCredentials, force_refresh: bool) -> str:
        """Ask WeChat for the token (caller holds the app's lock)."""
        asked_at = self.clock()
        body = _stable_token(app, force_refresh)
        token = _CachedToken(body["access_token"], asked_at + int(body["expires_in"]))
        self._tokens[app.app_id] = token
        return token.value


def _stable_token(app: AppCredentials, force_refresh: bool) -> dict:
    url = f"{settings.current().wechat_api_base_url}/cgi-bin/stable_token"
    payload = {"grant_type": "client_credential", "appid": app.app_id, "secret": app.app_secret,
               "force_refresh": force_refresh}
    return call_api(lambda: httpx.Request("POST", url, json=payload))


def verify_credentials(app: AppCredentials) -> None:
    """Have WeChat check an AppID and AppSecret, past any cached token (a provider's settings
    check). Without force_refresh WeChat hands back its current token and revokes nothing."""
    _stable_token(app, force_refresh=False)


tokens = AccessTokens()
"""This process's cache; tests replace it with one on the sandbox's clock."""


def access_token(app: AppCredentials | None = None) -> str:
    return tokens.get(app or platform_app())


def invalidate(app_id: str | None = None, token: str | None = None) -> None:
    """Drop the cached token of `app_id` (default: the platform account), e.g. after a
    40001 seen outside `call_with_token`."""
    tokens.invalidate(app_id or platform_app().app_id, token)


def call_with_token(fn: Callable[[str], T], app: AppCredentials | None = None) -> T:
    """fn(access_token) for `app` (default: the platform account), retried once with a fresh
    token on 40001, 40014 or 42001; the second rejection propagates."""
    return tokens.call(fn, app or platform_app())
