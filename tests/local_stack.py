"""The whole local stack (`python -m local`) as a subprocess on free ports, for the tests that
use it as a person would: a real browser, or curl as the README shows."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
DEMO_SIGN_IN = {"email": "demo@cloudpay.local", "password": "cloudpay-demo-2026"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def running_stack():
    """Start the stack, wait until the demo account it seeds can sign in, yield its base URLs
    ({"api", "sandbox"}), and stop it with Ctrl-C as a person would. Its output is read all the
    while (a full pipe would stall it) and shown if it does not come up."""
    ports = {"api": free_port(), "sandbox": free_port(), "moto": free_port()}
    process = subprocess.Popen(
        [sys.executable, "-m", "local", "--api-port", str(ports["api"]), "--sandbox-port", str(ports["sandbox"]),
         "--moto-port", str(ports["moto"])], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ACCOUNTS_"))},
        start_new_session=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()
    api = f"http://127.0.0.1:{ports['api']}"
    try:
        deadline = time.time() + 90
        while not _ready(api):
            if process.poll() is not None or time.time() > deadline:
                pytest.fail("the local stack did not come up:\n" + "".join(output))
            time.sleep(0.5)
        yield {"api": api, "sandbox": f"http://127.0.0.1:{ports['sandbox']}"}
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _ready(api: str) -> bool:
    try:
        return httpx.get(f"{api}/console", timeout=1).status_code == 200 and \
            httpx.post(f"{api}/v1/sessions", json=DEMO_SIGN_IN, timeout=5).status_code == 201
    except httpx.HTTPError:
        return False
