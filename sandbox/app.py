"""The sandbox as one WSGI app: each upstream under its own prefix, plus the phone page.

Run it as a server (`python -m sandbox --port 8790`) for the local stack, or mount it
in-process with `httpx.WSGITransport(app=create_app())` for tests.
"""
from __future__ import annotations

from flask import Flask

from sandbox import maidan, phone, wechat
from sandbox.world import SandboxConfig, World

PREFIXES = {"wechat_open": "/wechat-open", "wechat_api": "/wechat-api", "maidan": "/maidan"}


def create_app(config: SandboxConfig | None = None) -> Flask:
    app = Flask(__name__)
    app.config["WORLD"] = World(config or SandboxConfig())
    app.register_blueprint(wechat.open_platform, url_prefix=PREFIXES["wechat_open"])
    app.register_blueprint(wechat.api, url_prefix=PREFIXES["wechat_api"])
    app.register_blueprint(maidan.blueprint, url_prefix=PREFIXES["maidan"])
    app.register_blueprint(phone.blueprint)
    return app


def base_urls(root: str) -> dict[str, str]:
    """The app's *_BASE_URL settings for a sandbox served at `root`."""
    return {name: root.rstrip("/") + prefix for name, prefix in PREFIXES.items()}
