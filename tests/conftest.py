"""Test wiring: moto in-process (created from infra/template.yaml), the sandbox in-process.

The environment is set (tests/environment.py) before anything imports the app; `aws` then
creates the stack from the same template and checks that the environment it resolves is
the one set.
"""
from __future__ import annotations

import pytest

from tests import environment
from tests.drivers import Console, Phone

environment.apply()


@pytest.fixture
def aws():
    """A fresh in-memory AWS with the stack of infra/template.yaml in it."""
    with environment.in_memory_aws() as resolved:
        yield resolved


@pytest.fixture
def sandbox():
    """The sandbox app in-process; every upstream call of the app goes to it."""
    with environment.sandbox_in_process() as world:
        yield world


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
