"""Print the figures of the binding flow and of cold start (`python -m bench lists`: only
the list figures of bench/lists.py, without the long sync bench; `python -m bench onecode`:
only the one-code setup's scans and page sizes, bench/onecode.py; `python -m bench payments`:
only the customer payments' round trips and page sizes, bench/payments.py; `python -m bench
transactions`: only the C6 summary reads and CSV export figures, bench/transactions.py).

- AWS (DynamoDB) calls per request of the binding flow, by operation, and upstream calls;
- the import time of app.py as a ratio to a bare Chalice app's (median of fresh processes).
Counts are what stays stable across machines; the import ratio is a ratio for that reason.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path


from tests import environment

environment.apply()

ROOT = Path(__file__).resolve().parent.parent


def binding_flow_calls() -> list[tuple[str, Counter, int]]:
    from chalice.test import Client

    from app import app
    from tests.drivers import Console, Phone
    from tests.dynamodb_calls import counting_aws_calls

    rows = []
    with environment.in_memory_aws(), environment.sandbox_in_process() as (_, wire), \
            Client(app, stage_name="local") as client:
        console = Console(client)

        def measure(label, action):
            before = len(wire.requests)
            with counting_aws_calls() as calls:
                result = action()
            rows.append((label, calls, len(wire.requests) - before))
            return result

        measure("POST /v1/accounts (sign up)", lambda: console.call(
            "POST", "/v1/accounts", {"email": "bench@example.com", "password": "correct horse battery"}))
        session = measure("POST /v1/sessions (sign in)", lambda: console.call(
            "POST", "/v1/sessions", {"email": "bench@example.com", "password": "correct horse battery"}))
        user = Console(client, session.json["token"])
        measure("GET /v1/wechat-bindings (gated, 403)", lambda: user.call("GET", "/v1/wechat-bindings"))
        code = measure("POST /v1/wechat-binding-codes", lambda: user.call("POST", "/v1/wechat-binding-codes")).json
        measure("POST /v1/wechat-binding-codes + Idempotency-Key", lambda: user.call(
            "POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "bench"}))
        measure("  same key again (replay)", lambda: user.call(
            "POST", "/v1/wechat-binding-codes", {}, headers={"idempotency-key": "bench"}))
        measure("GET /v1/wechat-binding-codes/{id} (poll)", lambda: user.call(
            "GET", f"/v1/wechat-binding-codes/{code['id']}"))
        phone = Phone(client, "admin-01")
        path = f"/h5/q/{code['id']}"
        redirect = measure("GET /h5/q/{code} (no identity: to OAuth)", lambda: phone._app("GET", path))
        location = {k.lower(): v for k, v in redirect.headers.items()}["location"]
        callback = phone._sandbox().get(location).headers["location"]
        callback_path = callback[len(environment.PUBLIC_BASE_URL):]
        measure("GET /h5/oauth/wechat (code exchange)", lambda: phone._app("GET", callback_path))
        measure("GET /h5/q/{code} (confirm page)", lambda: phone._app("GET", path))
        phone.last = (200, phone._app("GET", path).body.decode(), {})
        csrf = phone.form_value("csrf")
        measure("POST /h5/q/{code}/confirm (bind)", lambda: phone._app("POST", f"{path}/confirm", {"csrf": csrf}))
        measure("GET /v1/wechat-bindings", lambda: user.call("GET", "/v1/wechat-bindings"))
    return rows


def import_seconds(statement: str, runs: int = 7) -> float:
    """Median seconds `statement` takes in a fresh interpreter, with the app's environment set."""
    code = "import time; t = time.perf_counter(); %s; print(time.perf_counter() - t)" % statement
    env = {**os.environ, **environment.STATIC_ENV, **environment.expected_env()}
    samples = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                    cwd=ROOT, env=env).stdout) for _ in range(runs)]
    return statistics.median(samples)


def main() -> None:
    print("Binding flow: AWS calls and upstream calls per request")
    print(f"{'request':52} {'AWS calls':>9} {'upstream':>8}  by operation")
    for label, calls, upstream in binding_flow_calls():
        detail = ", ".join(f"{name} {count}" for name, count in sorted(calls.items()))
        print(f"{label:52} {sum(calls.values()):>9} {upstream:>8}  {detail}")
    bare = import_seconds("from chalice import Chalice; Chalice(app_name='bare')")
    ours = import_seconds("import app")
    print()
    print(f"Import time (median of 7 fresh processes): bare Chalice app {bare * 1000:.1f} ms, "
          f"app.py {ours * 1000:.1f} ms, ratio {ours / bare:.2f}")
    print()
    from bench import jobs, lists, onecode, payments, transactions, upstreams
    upstreams.report()
    jobs.report()
    print()
    lists.report()
    print()
    onecode.report()
    print()
    payments.report()
    print()
    transactions.report()


if __name__ == "__main__":
    if sys.argv[1:] == ["lists"]:
        from bench import lists
        lists.report()
    elif sys.argv[1:] == ["onecode"]:
        from bench import onecode
        onecode.report()
    elif sys.argv[1:] == ["payments"]:
        from bench import payments
        payments.report()
    elif sys.argv[1:] == ["transactions"]:
        from bench import transactions
        transactions.report()
    else:
        main()
