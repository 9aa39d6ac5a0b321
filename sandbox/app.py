"""The sandbox as one WSGI app: each upstream under its own prefix, plus the phone page.

Run it as a server (`python -m sandbox --port 8790`) for the local stack, or mount it
in-process with `httpx.WSGITransport(app=create_app(SandboxConfig(in_process=True)))` for tests.
"""
from __future__ import annotations

from flask import Flask, current_app, g, request

from sandbox import alipay, control, maidan, phone, receiver, wechat, wechatpay
from sandbox.world import SandboxConfig, World

PREFIXES = {"wechat_open": "/wechat-open", "wechat_api": "/wechat-api", "wechatpay": "/wechatpay",
            "alipay": "/alipay", "maidan": "/maidan"}


def create_app(config: SandboxConfig | None = None) -> Flask:
    app = Flask(__name__)
    app.config["WORLD"] = World(config or SandboxConfig())
    # In-process, a TIMEOUT fault raises httpx's timeout inside a view: let it reach the
    # client through the transport instead of becoming Flask's 500 page.
    app.config["PROPAGATE_EXCEPTIONS"] = app.config["WORLD"].config.in_process
    app.register_blueprint(wechat.open_platform, url_prefix=PREFIXES["wechat_open"])
    app.register_blueprint(wechat.api, url_prefix=PREFIXES["wechat_api"])
    app.register_blueprint(wechatpay.blueprint, url_prefix=PREFIXES["wechatpay"])
    app.register_blueprint(alipay.blueprint, url_prefix=PREFIXES["alipay"])
    app.register_blueprint(maidan.blueprint, url_prefix=PREFIXES["maidan"])
    app.register_blueprint(phone.blueprint)
    app.register_blueprint(control.blueprint)
    app.register_blueprint(receiver.blueprint)
    app.before_request(_note_lost_answer)
    app.after_request(_lose_answer)
    return app


def _system_of(path: str) -> str | None:
    names = {"wechat_api": "wechat", "wechat_open": "wechat"}
    for name, prefix in PREFIXES.items():
        if path.startswith(prefix + "/"):
            return names.get(name, name)
    return None


def _note_lost_answer() -> None:
    system = _system_of(request.path)
    g.lose_answer = system is not None and _world().faults.lose_answer(system, request.headers)


def _lose_answer(response):
    """The view has done its work; now the answer goes missing on the way back."""
    if g.get("lose_answer"):
        _world().faults.time_out()
    return response


def _world() -> World:
    return current_app.config["WORLD"]


def base_urls(root: str) -> dict[str, str]:
    """The app's *_BASE_URL settings for a sandbox served at `root`."""
    urls = {name: root.rstrip("/") + prefix for name, prefix in PREFIXES.items()}
    urls["alipay_gateway"] = urls["alipay"] + "/gateway.do"
    urls["alipay_openauth"] = urls["alipay"] + "/openauth"
    return urls
