"""A provider's callback receiver (B5), for tests and the local stack: point a provider's
callback URL at `<sandbox>/receiver/<name>`.

It keeps every request (headers and body, as received) and answers 200, or 503 while it is
"down", so a test or a demo can play an outage and watch the retries arrive. It does not
verify signatures: a test does that with its own few lines, independent of the app's code.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, current_app, jsonify, request

blueprint = Blueprint("receiver", __name__)


@dataclass
class Receiver:
    down: bool = False
    requests: list[dict] = field(default_factory=list)


def receivers(world) -> dict[str, Receiver]:
    return world.component("receivers", lambda _: {})


def receiver(world, name: str) -> Receiver:
    with world.lock:
        return receivers(world).setdefault(name, Receiver())


def _world():
    return current_app.config["WORLD"]


@blueprint.post("/receiver/<name>")
def receive(name: str):
    target = receiver(_world(), name)
    status = 503 if target.down else 200
    with _world().lock:
        target.requests.append({"received_at": _world().clock.now(), "status": status,
                                "headers": dict(request.headers), "body": request.get_data(as_text=True)})
    if target.down:
        return "receiver is down", 503
    return jsonify({"received": True})


@blueprint.post("/receiver/<name>/down")
def set_down(name: str):
    """{"down": true|false}: answer 503 to everything until brought back up."""
    body = request.get_json(silent=True) or {}
    if not isinstance(body.get("down"), bool):
        return jsonify({"error": "down must be true or false"}), 400
    receiver(_world(), name).down = body["down"]
    return jsonify({"name": name, "down": body["down"]})


@blueprint.get("/receiver/<name>/requests")
def list_requests(name: str):
    """Every request received, oldest first, with the status it was answered."""
    return jsonify(receiver(_world(), name).requests)
