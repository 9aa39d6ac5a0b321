"""`chalice local` that answers its own refusals as API Gateway does with our template.

On AWS, a request to a console route without an `Authorization` header never reaches the
function: API Gateway refuses it (401) and `infra/template.yaml`'s GatewayResponse gives
that refusal the API's error shape. `chalice local` plays API Gateway too, but answers
`{"message": "Unauthorized"}` from its own gateway, where the app's middleware never sees
it. This server is `chalice local` (same config, stage and app loading) with one change:
its gateway's refusals are answered with the template's GatewayResponses, read from the
same file that AWS deploys, so local and AWS answer alike.

    python -m local.api_gateway --stage local --host 127.0.0.1 --port 8000
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from chalice.cli import run_local_server
from chalice.cli.factory import CLIFactory
from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalDevServer, LocalGatewayException, \
    NotAuthorizedError

from local.infra import load_template

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_HEADER_PREFIX = "gatewayresponse.header."


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    """None: API Gateway keeps the status of the refusal (the DEFAULT_4XX/5XX responses)."""
    headers: dict[str, str]
    body: str


def gateway_responses(template: dict) -> dict[str, GatewayResponse]:
    """The template's AWS::ApiGateway::GatewayResponse resources by ResponseType."""
    responses = {}
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::ApiGateway::GatewayResponse":
            continue
        properties = resource["Properties"]
        headers = {name[len(_HEADER_PREFIX):]: value.strip("'")
                   for name, value in properties.get("ResponseParameters", {}).items()
                   if name.startswith(_HEADER_PREFIX)}
        responses[properties["ResponseType"]] = GatewayResponse(
            int(properties["StatusCode"]) if "StatusCode" in properties else None, headers,
            properties["ResponseTemplates"]["application/json"])
    return responses


def response_type(error: LocalGatewayException) -> str:
    """API Gateway's ResponseType for a refusal of chalice's local gateway."""
    if isinstance(error, NotAuthorizedError):
        return "UNAUTHORIZED"
    if isinstance(error, ForbiddenError):
        return "MISSING_AUTHENTICATION_TOKEN" if b"Missing Authentication Token" in (error.body or b"") \
            else "ACCESS_DENIED"
    return "DEFAULT_5XX"


def answer_for(error: LocalGatewayException, responses: dict[str, GatewayResponse]) -> GatewayResponse | None:
    """The GatewayResponse API Gateway would use (its type's, else the 4XX/5XX default), if any."""
    fallback = "DEFAULT_4XX" if error.CODE < 500 else "DEFAULT_5XX"
    return responses.get(response_type(error)) or responses.get(fallback)


def handler_class(responses: dict[str, GatewayResponse]) -> type[ChaliceRequestHandler]:
    class GatewayResponsesHandler(ChaliceRequestHandler):
        def _send_error_response(self, error: LocalGatewayException) -> None:
            answer = answer_for(error, responses)
            if answer is None:
                super()._send_error_response(error)
                return
            self._send_http_response(answer.status or error.CODE, {**error.headers, **answer.headers}, answer.body)

    return GatewayResponsesHandler


class GatewayResponsesFactory(CLIFactory):
    """chalice's own CLI factory, whose local server sends the template's GatewayResponses."""

    def create_local_server(self, app_obj, config, host: str, port: int) -> LocalDevServer:
        return LocalDevServer(app_obj, config, host, port,
                              handler_cls=handler_class(gateway_responses(load_template())))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")  # as `chalice local` does
    run_local_server(GatewayResponsesFactory(project_dir=str(PROJECT_ROOT), environ=os.environ),
                     args.host, args.port, args.stage)


if __name__ == "__main__":
    main()
