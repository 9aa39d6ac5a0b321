"""Serve the sandbox: python -m sandbox --port 8790.

A thread delivers due notifications every second, as the real services would on their own.
"""
from __future__ import annotations

import argparse
import threading

from werkzeug.serving import run_simple

from sandbox.app import create_app

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8790)
arguments = parser.parse_args()
sandbox_app = create_app()
world = sandbox_app.config["WORLD"]
stop = threading.Event()


def deliver_notifications() -> None:
    while not stop.wait(1.0):
        world.notifier.deliver_due()


threading.Thread(target=deliver_notifications, name="notifications", daemon=True).start()
run_simple(arguments.host, arguments.port, sandbox_app, threaded=True)
