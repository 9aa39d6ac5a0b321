"""The whole local stack, started by `python -m local` and stopped by Ctrl-C.

In this process: moto server (the AWS the app talks to, through AWS_ENDPOINT_URL), the
stack of infra/template.yaml created in it, the demo account, the queue dispatcher and the
scheduler (Chalice runs neither locally). As child processes: the sandbox and
`chalice local`, which get the same environment Lambda would, resolved from the stack.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3

from local import demo, dispatcher, infra, scheduler
from local.moto_atomic import serialize_moto_requests
from local.processes import Child, ChildFailed

log = logging.getLogger("local")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "ap-east-1"
STACK_NAME = "cloudpay-local"
STAGE = "local"
READY_TIMEOUT_SECONDS = 30
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REAL_CREDENTIAL_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
WORKER_JOIN_SECONDS = 5


@dataclass(frozen=True)
class PortOption:
    name: str
    label: str
    flag: str
    variable: str
    default: int


PORT_OPTIONS = (
    PortOption("api", "API", "--api-port", "CLOUDPAY_API_PORT", 8000),
    PortOption("sandbox", "sandbox", "--sandbox-port", "CLOUDPAY_SANDBOX_PORT", 8790),
    PortOption("moto", "moto", "--moto-port", "CLOUDPAY_MOTO_PORT", 5055),
)


@dataclass(frozen=True)
class Ports:
    api: int
    sandbox: int
    moto: int


def _port_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, not {text!r}")
    return int(text)


def parse_ports(argv: list[str] | None, environ) -> Ports:
    """Ports from the flags, else the CLOUDPAY_*_PORT variables, else the defaults."""
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0])
    for option in PORT_OPTIONS:
        parser.add_argument(option.flag, dest=option.name, type=_port_number, metavar="PORT",
                            default=environ.get(option.variable, str(option.default)),
                            help=f"{option.label} port (env {option.variable}, default {option.default})")
    arguments = parser.parse_args(argv)
    return Ports(**{option.name: getattr(arguments, option.name) for option in PORT_OPTIONS})


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (SO_REUSEADDR, as the servers set it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def port_problem(ports: Ports) -> str | None:
    """What stops the stack from listening on its ports, said so the user can fix it."""
    seen: dict[int, PortOption] = {}
    for option in PORT_OPTIONS:
        port = getattr(ports, option.name)
        if port in seen:
            return (f"port {port} is given to both {seen[port].label} and {option.label}: "
                    f"pass {option.flag} / set {option.variable} to another port")
        seen[port] = option
        if not port_is_free(port):
            return (f"port {port} ({option.label}) is busy: stop what uses it or pass {option.flag} "
                    f"/ set {option.variable}")
    return None


def aws_environment(moto_port: int) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": f"http://{HOST}:{moto_port}", "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
            **FAKE_CREDENTIALS}


def stack_parameters(ports: Ports) -> dict[str, str]:
    """The template's parameters: our URLs, the sandbox's upstreams and public identifiers."""
    from sandbox.app import base_urls
    from sandbox.world import SandboxConfig

    sandbox_config = SandboxConfig()
    upstreams = base_urls(f"http://{HOST}:{ports.sandbox}")
    return {
        "PublicBaseUrl": f"http://{HOST}:{ports.api}",
        "WechatAppId": sandbox_config.wechat_app_id,
        "WechatOpenBaseUrl": upstreams["wechat_open"],
        "WechatApiBaseUrl": upstreams["wechat_api"],
        "WechatPayBaseUrl": upstreams["wechatpay"],
        "AlipayGatewayUrl": upstreams["alipay_gateway"],
        "AlipayOpenAuthBaseUrl": upstreams["alipay_openauth"],
        "MaidanBaseUrl": upstreams["maidan"],
        "MaidanPartnerId": sandbox_config.maidan_partner_id,
        "WechatPaymentTemplateId": "cp_sandbox_payment_received",
        "WechatShiftSummaryTemplateId": "cp_sandbox_shift_summary",
        "AlarmTopicArn": f"arn:aws:sns:{REGION}:123456789012:{STACK_NAME}-alarms",
    }


def platform_secrets() -> dict[str, str]:
    """The SSM parameters' values, by the variable that names each: the sandbox's
    credentials and a fresh signing key."""
    from sandbox.world import SandboxConfig

    sandbox_config = SandboxConfig()
    return {"PLATFORM_SIGNING_KEY_PARAMETER": secrets.token_hex(32),
            "WECHAT_APP_SECRET_PARAMETER": sandbox_config.wechat_app_secret,
            "MAIDAN_API_KEY_PARAMETER": sandbox_config.maidan_api_key}


def chalice_executable() -> Path:
    return Path(sys.executable).parent / "chalice"


def configure_logging() -> None:
    """Our lines on stdout as `[local] ...`, next to the children's `[api] ...`/`[sandbox] ...`."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[local] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    ports = parse_ports(argv, os.environ)
    problem = port_problem(ports)
    if problem:
        log.error(problem)
        return 2
    if not chalice_executable().exists():
        log.error("no chalice next to %s: install requirements-dev.txt into this environment", sys.executable)
        return 1
    return run(ports)


class SignalledStop:
    """Set by SIGINT or SIGTERM; waited on like a threading.Event.

    Not an Event itself: its set() takes a lock, and a handler that runs while the main
    thread holds that same lock (inside Event.wait) would deadlock. A flag needs no lock.
    """

    POLL_SECONDS = 0.1

    def __init__(self) -> None:
        self.requested = False
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request)

    def _request(self, signum, frame) -> None:
        self.requested = True

    def is_set(self) -> bool:
        return self.requested

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.requested and time.monotonic() < deadline:
            time.sleep(self.POLL_SECONDS)
        return self.requested


def run(ports: Ports) -> int:
    """Start everything, wait for Ctrl-C or SIGTERM, stop everything in reverse order."""
    stop = SignalledStop()
    try:
        with contextlib.ExitStack() as running:
            children = _start(ports, stop, running)
            if not stop.is_set():
                _announce(ports)
            while not stop.wait(1.0):
                for child in children:
                    child.check_running()
            log.info("stopping")
    except ChildFailed as exc:
        log.error("%s; stopped the rest of the stack", exc)
        return 1
    log.info("stopped")
    return 0


def _start(ports: Ports, stop: SignalledStop, running: contextlib.ExitStack) -> list[Child]:
    _start_moto(ports.moto, running)
    app_environment = infra.create_stack(boto3.Session(region_name=REGION), STACK_NAME, stack_parameters(ports),
                                         platform_secrets())
    # The sandbox phone shows the H5 pages in a phone-sized frame; nowhere else may frame them.
    os.environ.update({**app_environment, "CLOUDPAY_STAGE": STAGE, "FRAME_ANCESTORS": f"http://{HOST}:{ports.sandbox}"})
    log.info("created stack %s from infra/template.yaml", STACK_NAME)

    sandbox = Child("sandbox", [sys.executable, "-m", "sandbox", "--host", HOST, "--port", str(ports.sandbox)],
                    cwd=PROJECT_ROOT, env=dict(os.environ))
    running.callback(sandbox.stop)
    api = Child("api", [sys.executable, "-m", "local.api_gateway", "--stage", STAGE,  # chalice local + GatewayResponses
                        "--host", HOST, "--port", str(ports.api)], cwd=PROJECT_ROOT, env=dict(os.environ))
    running.callback(api.stop)

    _start_in_process_parts(running)

    for child, url in ((sandbox, f"http://{HOST}:{ports.sandbox}/phone"), (api, f"http://{HOST}:{ports.api}/")):
        if not child.wait_until_serving(url, READY_TIMEOUT_SECONDS, stop):
            break
    return [sandbox, api]


def _start_moto(port: int, running: contextlib.ExitStack) -> None:
    """moto in a thread of this process; from here on every AWS client of ours and the children's uses it.

    Real credentials are removed so that nothing can reach a real account by mistake.
    """
    from moto.server import ThreadedMotoServer

    serialize_moto_requests()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log: one line per AWS call
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    running.callback(server.stop)
    for variable in REAL_CREDENTIAL_VARIABLES:
        os.environ.pop(variable, None)
    os.environ.update(aws_environment(port))
    log.info("moto server on http://%s:%d (region %s)", HOST, port, REGION)


def _start_in_process_parts(running: contextlib.ExitStack) -> None:
    """The demo account, the dispatcher and the scheduler, which need the app in this process.

    The app is imported only now, once the environment holds the stack's table names.
    """
    from app import app

    if demo.ensure_demo_account():
        log.info("created the demo console account %s", demo.DEMO_EMAIL)
    workers_stop = threading.Event()
    workers = dispatcher.start(app, boto3.client("sqs", region_name=REGION), workers_stop, STACK_NAME,
                               dispatcher.job_page_concurrency())
    workers += scheduler.start(app, REGION, workers_stop)
    running.callback(_stop_workers, workers_stop, workers)


def _stop_workers(workers_stop: threading.Event, workers: list[threading.Thread]) -> None:
    workers_stop.set()
    for worker in workers:
        worker.join(timeout=WORKER_JOIN_SECONDS)


def _announce(ports: Ports) -> None:
    api = f"http://{HOST}:{ports.api}"
    lines = [
        "",
        "Cloud Pay local stack is running",
        f"  console        {api}/console",
        f"    sign in as   {demo.DEMO_EMAIL} / {demo.DEMO_PASSWORD}",
        f"  sandbox phone  http://{HOST}:{ports.sandbox}/phone",
        f"  API            {api}",
        f"  moto (AWS)     http://{HOST}:{ports.moto}  (AWS_ENDPOINT_URL for boto3; region {REGION}, "
        "any credentials)",
        f"Stop with Ctrl-C (or kill -TERM {os.getpid()}).",
        "",
    ]
    for line in lines:
        log.info(line)
