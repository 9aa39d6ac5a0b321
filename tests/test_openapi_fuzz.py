"""Schemathesis over docs/openapi.yaml against the app in-process: generated requests of every
operation, sent as a signed-in, WeChat-bound console account, never get a 5xx and answer as
documented. Deterministic (derandomized) and bounded: a few examples per operation."""
from __future__ import annotations

import io
from urllib.parse import urlsplit

import requests
import schemathesis
import urllib3
from hypothesis import HealthCheck, Phase, given, settings
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.test_openapi import DOCUMENT

BASE_URL = "http://cloudpay.test"
EXAMPLES_PER_OPERATION = 15


class ChaliceAdapter(requests.adapters.BaseAdapter):
    """A requests transport that hands each request to chalice.test.Client: the whole app,
    middleware and authorizer included, without a server."""

    def __init__(self, client) -> None:
        super().__init__()
        self.client = client
        self.sent: dict[str, int] = {}

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        self.sent[request.method] = self.sent.get(request.method, 0) + 1
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        answer = self.client.http.request(request.method, parts.path + (f"?{parts.query}" if parts.query else ""),
                                          headers=dict(request.headers), body=body)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(answer.body), headers=answer.headers,
                                            status=answer.status_code, version=11, preload_content=False)
        response._content = answer.body
        response.url, response.request, response.reason = request.url, request, "OK"
        return response

    def close(self) -> None:
        pass


def test_no_generated_request_gets_a_server_error_or_an_undocumented_answer(bound_console, client):
    schema = schemathesis.openapi.from_path(DOCUMENT)
    session = requests.Session()
    adapter = ChaliceAdapter(client)
    session.mount(BASE_URL, adapter)
    auth = {"Authorization": f"Bearer {bound_console.token}"}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        def exercise(case):
            if case.method != "POST" or case.path not in ("/v1/sessions", "/v1/accounts"):
                case.headers = {**(case.headers or {}), **auth}
            response = case.call(base_url=BASE_URL, session=session)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as failure:  # collect every operation's first failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {str(failure)[:1500]}")
    assert not failures, "\n\n".join(failures)
    operations = sum(1 for _ in schema.get_all_operations())
    assert sum(adapter.sent.values()) >= 3 * operations, adapter.sent  # the generator really ran
