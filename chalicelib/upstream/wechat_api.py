"""What every WeChat official-account API call shares: the errcode inside HTTP 200 answers,
its exceptions, and "system busy" (-1) retried on the shared budget.

Used by OAuth (wechat_oauth), tokens (wechat_token) and messages (wechat_message).
"""
from __future__ import annotations

from typing import Callable, Mapping

import httpx

from chalicelib.upstream import http

SYSTEM = "WeChat API"
SYSTEM_BUSY = -1


class WechatApiError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WechatConfigError(WechatApiError):
    """The app id, app secret or the server IP allow-list is wrong: fix the deployment;
    retrying cannot help (40013, 40125, 40164, 41002, 41004)."""


class WechatTokenRejected(WechatApiError):
    """WeChat no longer takes the access token: revoked by a newer one (40001), malformed
    (40014) or expired (42001). `call_with_token` retries once with a fresh token."""


class WechatQuotaExceeded(WechatApiError):
    """The account used up today's quota of this API (45009): retrying today will not help."""


class WechatRateLimited(WechatApiError):
    """Too many calls in a short time (45011 per minute, 45047 per user): retry later."""


ERRORS: Mapping[int, type[WechatApiError]] = {
    40013: WechatConfigError, 40125: WechatConfigError, 40164: WechatConfigError,
    41002: WechatConfigError, 41004: WechatConfigError,
    40001: WechatTokenRejected, 40014: WechatTokenRejected, 42001: WechatTokenRejected,
    45009: WechatQuotaExceeded, 45011: WechatRateLimited, 45047: WechatRateLimited,
}
"""errcode -> exception for any official-account API; other modules extend it with their own."""


def call_api(build: Callable[[], httpx.Request], errors: Mapping[int, type[WechatApiError]] = ERRORS,
             idempotent: bool = True) -> dict:
    """Send a WeChat API request; its JSON body, or the exception its errcode maps to.

    WeChat reports errors inside HTTP 200 answers, so -1 ("system busy", transient by
    WeChat's own docs) is handed back to `http.send` as a retryable answer: one retry
    budget (UPSTREAM_RETRIES) for it, timeouts and 5xx alike.
    """
    def interpret(response: httpx.Response) -> dict:
        try:
            body = response.json()
        except ValueError:
            raise http.UpstreamUnavailable(SYSTEM, f"HTTP {response.status_code} answer is not JSON") from None
        errcode = int(body.get("errcode") or 0)
        if errcode == SYSTEM_BUSY:
            raise http.RetryableAnswer("system busy (errcode -1)")
        if errcode:
            raise errors.get(errcode, WechatApiError)(errcode, str(body.get("errmsg", "")))
        return body

    return http.send(SYSTEM, build, interpret, idempotent=idempotent)
