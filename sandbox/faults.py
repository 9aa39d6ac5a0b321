"""Deterministic faults, so tests and demos can make the next upstream call fail on purpose.

Two ways to ask: the request header `X-Sandbox-Fault: <FAULT>` (per call, from a test's
client), or `arm(system, fault, times)` (for calls the app makes on its own). Each system
answers a fault the way the real service does (its own error codes and statuses).
"""
from __future__ import annotations

import threading
import time

import httpx

HEADER = "X-Sandbox-Fault"
LOST_ANSWER = "LOST_ANSWER"
"""The upstream did the work, but its answer never arrived: handled for every system at once
(sandbox/app.py), since the request itself is served normally."""
FAULTS = {"SYSTEM_ERROR", "RATE_LIMITED", "TIMEOUT", "PAYER_ERROR", "USER_PAYING", "NOT_ENOUGH", "SIGN_ERROR",
          LOST_ANSWER}


class Faults:
    def __init__(self, in_process: bool, timeout_sleep_seconds: float = 30.0) -> None:
        self.in_process = in_process
        self.timeout_sleep_seconds = timeout_sleep_seconds
        self.armed: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def arm(self, system: str, fault: str, times: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault}; one of {sorted(FAULTS)}")
        with self.lock:
            self.armed.setdefault(system, []).extend([fault] * times)

    def take(self, system: str, headers) -> str | None:
        """The fault for this call: the header's, else the next armed one, else None.
        A lost answer is not the system's to play, so it is never handed out here."""
        requested = headers.get(HEADER)
        if requested:
            return requested if requested in FAULTS - {LOST_ANSWER} else None
        with self.lock:
            queue = self.armed.get(system)
            if queue and queue[0] != LOST_ANSWER:
                return queue.pop(0)
            return None

    def lose_answer(self, system: str, headers) -> bool:
        """Whether this call's answer is to be lost after the work is done."""
        if headers.get(HEADER) == LOST_ANSWER:
            return True
        with self.lock:
            queue = self.armed.get(system)
            if queue and queue[0] == LOST_ANSWER:
                queue.pop(0)
                return True
            return False

    def time_out(self) -> None:
        """Never answer in time. In-process the client's transport times out at once
        (deterministic, no waiting); as a server, sleep past any sane client timeout."""
        if self.in_process:
            raise httpx.ReadTimeout("sandbox fault: the upstream did not answer in time")
        time.sleep(self.timeout_sleep_seconds)
