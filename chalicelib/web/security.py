"""The security headers of every answer: pages get a Content-Security-Policy without
'unsafe-inline' (scripts and styles are files served by the app, `/static/...`), nothing
may be framed (on the local stack, only by the sandbox phone: FRAME_ANCESTORS), nothing is
MIME-sniffed, no Referer leaves, and https deployments pin https.

A page that needs another origin (a payment page loading the wallet's jsbridge.js from
WeChat Pay or Alipay, the sandbox locally) sets its own policy with `page_policy(...)`;
`headers` never replaces a policy the view set.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from chalicelib import settings

HSTS = "max-age=31536000"
API_POLICY = "default-src 'none'; frame-ancestors 'none'"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_policy(script_origins: tuple[str, ...] = ()) -> str:
    """'self' for everything a page loads; data: and blob: images for QR codes, and https:
    images for the merchant's logo (an address the merchant gives; images only, so it can
    run nothing); a form may also land on WeChat's OAuth page (the confirm form re-asks who
    the phone is). A wallet script's origin may also be fetched from: the sandbox's wallet
    talks back to the sandbox that served it."""
    config = settings.current()
    scripts = " ".join(("'self'", *sorted(set(script_origins))))
    ancestors = config.frame_ancestors or "'none'"
    return (f"default-src 'none'; script-src {scripts}; style-src 'self'; img-src 'self' data: blob: https:; "
            f"connect-src {scripts}; form-action 'self' {origin(config.wechat_open_base_url)}; "
            f"frame-ancestors {ancestors}; base-uri 'none'")


def headers(content_type: str, existing: dict) -> dict:
    """The headers to add to an answer of `content_type` that already carries `existing`."""
    added = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
    if not settings.current().frame_ancestors:
        added["X-Frame-Options"] = "DENY"
    if "Content-Security-Policy" not in existing:
        added["Content-Security-Policy"] = page_policy() if content_type.startswith("text/html") else API_POLICY
    if settings.current().cookies_secure:
        added["Strict-Transport-Security"] = HSTS
    return added
