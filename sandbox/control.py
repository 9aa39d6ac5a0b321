"""Controls of the sandbox itself (not of any real service): clock, faults, notifications."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

blueprint = Blueprint("control", __name__)


def world():
    return current_app.config["WORLD"]


@blueprint.post("/sandbox/clock/advance")
def advance_clock():
    seconds = float((request.get_json(silent=True) or {}).get("seconds", 0))
    world().clock.advance(seconds)
    return jsonify({"offset": world().clock.offset})


@blueprint.post("/sandbox/faults")
def arm_fault():
    body = request.get_json(silent=True) or {}
    try:
        world().faults.arm(str(body.get("system")), str(body.get("fault")), int(body.get("times", 1)))
    except ValueError as exc:
        return jsonify({"error": str(exc)}), 400
    return jsonify({"armed": world().faults.armed})


@blueprint.post("/sandbox/notifications/deliver")
def deliver_due():
    attempted = world().notifier.deliver_due()
    return jsonify({"attempted": [n.notification_id for n in attempted]})


@blueprint.post("/sandbox/notifications/hold")
def hold_notifications():
    world().notifier.hold()
    return jsonify({"held": True})


@blueprint.post("/sandbox/notifications/release")
def release_notifications():
    reverse = (request.get_json(silent=True) or {}).get("order") == "reverse"
    released = world().notifier.release(reverse=reverse)
    return jsonify({"delivered": [n.notification_id for n in released]})


@blueprint.get("/sandbox/notifications")
def list_notifications():
    return jsonify([{"id": n.notification_id, "system": n.system, "url": n.url, "acknowledged": n.acknowledged,
                     "gave_up": n.gave_up, "attempts": len(n.attempts), "next_at": n.next_at}
                    for n in world().notifier.notifications.values()])


@blueprint.post("/sandbox/maidan/broken-pages")
def break_maidan_page():
    """Make one page of a provider's sub-merchants fail every time (or work again: `broken: false`)."""
    body = request.get_json(silent=True) or {}
    page = (str(body.get("sp_mchid")), int(body.get("offset", 0)))
    if body.get("broken", True):
        world().broken_maidan_pages.add(page)
    else:
        world().broken_maidan_pages.discard(page)
    return jsonify({"broken": sorted(list(p) for p in world().broken_maidan_pages)})
