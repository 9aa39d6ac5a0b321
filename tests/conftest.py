"""Test wiring: moto in-process (created from infra/template.yaml), the sandbox in-process.

The environment is set (tests/environment.py) before anything imports the app; the stack
is then created once per test process from the same template (checking that the
environment it resolves is the one set), and emptied before each test that uses it.
"""
from __future__ import annotations

import pytest

from tests import environment
from tests.drivers import Console, Phone
from tests.local_stack import running_stack

environment.apply()


@pytest.fixture(scope="session", autouse=True)
def aws_stack():
    """The in-memory AWS with the stack of infra/template.yaml, made once per test process.
    Every test runs inside it, so none can reach a real AWS endpoint whatever the order."""
    with environment.in_memory_aws() as resolved:
        yield resolved


@pytest.fixture
def aws(aws_stack):
    """That stack, emptied: every test starts from what a new stack holds."""
    environment.empty_stack()
    yield aws_stack


@pytest.fixture
def platform_secrets(aws):
    """The platform's secrets in SSM: for tests of the upstream clients."""


@pytest.fixture
def sandbox_and_wire():
    with environment.sandbox_in_process() as world_and_wire:
        yield world_and_wire


@pytest.fixture
def sandbox(sandbox_and_wire):
    """The sandbox app in-process; every upstream call of the app goes to it."""
    return sandbox_and_wire[0]


@pytest.fixture
def wire(sandbox_and_wire) -> environment.Wire:
    """Every request the app sent to the sandbox (and a way to tamper with the answers)."""
    return sandbox_and_wire[1]


@pytest.fixture
def client(aws, sandbox):
    from chalice.test import Client

    from app import app
    with Client(app, stage_name="local") as test_client:
        yield test_client


@pytest.fixture
def console(client):
    return Console(client)


@pytest.fixture
def phone(client):
    return lambda user_id: Phone(client, user_id)


@pytest.fixture
def bound_console(console, phone):
    """A signed-in console account with admin-01's WeChat bound (the gate passed)."""
    user = console.sign_up_and_in("owner@example.com")
    code = user.call("POST", "/v1/wechat-binding-codes").json
    assert phone("admin-01").open(code["url"]).confirm().page_id == "binding-done"
    return user


@pytest.fixture(scope="module")
def stack():
    """The whole local stack as a subprocess (tests/local_stack.py), one per test module.

    Browser assertions on it wait up to 15 s rather than Playwright's 5: the stack's own
    processes share the two cores with the other test workers, and a console list that
    answers in 6 s under that load is not a failure."""
    try:
        from playwright.sync_api import expect
        expect.set_options(timeout=15_000)
    except ImportError:  # the stack tests that drive no browser need no Playwright
        pass
    with running_stack() as urls:
        yield urls
