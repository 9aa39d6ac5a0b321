"""`Idempotency-Key` on mutating console calls, through Powertools' idempotency utility.

The key is scoped to the account and the route; the JSON body is the payload that must
match. Same key and body: the first answer again (marked `Idempotent-Replayed: true`).
Same key, another body: 409 `idempotency_key_reused`. Only successful answers are kept:
a call that failed can be retried with its key.
"""
from __future__ import annotations

from typing import Callable

from chalicelib import settings
from chalicelib.errors import Conflict, InvalidField

HEADER = "Idempotency-Key"
REPLAY_HEADER = "Idempotent-Replayed"
_persistence: dict[str, object] = {}


def _store(table_name: str):
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    if table_name not in _persistence:
        _persistence[table_name] = DynamoDBPersistenceLayer(table_name=table_name)
    return _persistence[table_name]


def _mark_replayed(response: dict, _record) -> dict:
    return {**response, "replayed": True}


def run(account_id: str, route: str, key: str | None, body, handler: Callable[[], tuple[int, dict]],
        lambda_context=None) -> dict:
    """Answer `handler()` once per key: {"status", "body", "replayed"}.

    With the Lambda context, an attempt that dies mid-way stops blocking its key when the
    invocation's time runs out rather than only when the record expires.
    """
    if key is None:
        status, answer = handler()
        return {"status": status, "body": answer, "replayed": False}
    if not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidField(HEADER, "Idempotency-Key must be 1 to 255 printable characters")

    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError, IdempotencyValidationError)

    config = IdempotencyConfig(event_key_jmespath="[account, route, key]", payload_validation_jmespath="body",
                               raise_on_no_idempotency_key=True,
                               expires_after_seconds=settings.current().idempotency_ttl_seconds,
                               response_hook=_mark_replayed)
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    @idempotent_function(data_keyword_argument="request", config=config,
                         persistence_store=_store(settings.current().idempotency_table))
    def answer_once(request: dict) -> dict:
        status, answer = handler()
        return {"status": status, "body": answer, "replayed": False}

    try:
        return answer_once(request={"account": account_id, "route": route, "key": key, "body": body})
    except IdempotencyValidationError:
        raise Conflict("this Idempotency-Key was used with a different request body", param=HEADER,
                       code="idempotency_key_reused") from None
    except IdempotencyAlreadyInProgressError:
        raise Conflict("a request with this Idempotency-Key is still in progress", param=HEADER,
                       code="idempotency_request_in_progress") from None
