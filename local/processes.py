"""The stack's servers that run as child processes: the sandbox and `chalice local`.

Each child gets its own session (process group), so a Ctrl-C in the terminal reaches only
the runner, which then stops the children itself, in order, and waits for them; and so
that stopping a child's group also stops anything the child started.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

STOP_GRACE_SECONDS = 10
READY_POLL_SECONDS = 0.2


class ChildFailed(RuntimeError):
    """A child exited, or never answered, while the stack needed it."""


class Child:
    """A server process whose output is relayed to ours, each line prefixed with its label."""

    def __init__(self, label: str, command: list[str], *, cwd, env: dict[str, str]) -> None:
        self.label = label
        self.process = subprocess.Popen(command, cwd=cwd, env={**env, "PYTHONUNBUFFERED": "1"},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace",
                                        start_new_session=True)
        self._relay = threading.Thread(target=self._relay_output, name=f"relay-{label}", daemon=True)
        self._relay.start()

    def _relay_output(self) -> None:
        for line in self.process.stdout:
            sys.stdout.write(f"[{self.label}] {line}")
            sys.stdout.flush()

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            self._relay.join(timeout=2)
            raise ChildFailed(f"{self.label} exited with code {code} (its output is above, "
                              f"lines starting [{self.label}])")

    def wait_until_serving(self, url: str, timeout: float, stop) -> bool:
        """Poll `url` until it answers HTTP at all; False if `stop` was set meanwhile.

        `stop` is anything with an Event's is_set() and wait(timeout).
        """
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            self.check_running()
            try:
                httpx.get(url, timeout=1.0)
                return True
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise ChildFailed(f"{self.label} did not answer {url} within {timeout:.0f} s") from None
                stop.wait(READY_POLL_SECONDS)
        return False

    def stop(self) -> None:
        """SIGTERM the child's group, then SIGKILL it if it has not exited within the grace time."""
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait()
        self._relay.join(timeout=2)

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass
