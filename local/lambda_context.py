"""The context object a handler gets when the local stack, not Lambda, invokes it."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from chalice.config import Config
from chalice.constants import DEFAULT_LAMBDA_MEMORY_SIZE, DEFAULT_LAMBDA_TIMEOUT
from chalice.local import LambdaContext

STAGE = "local"
CHALICE_CONFIG = Path(__file__).resolve().parent.parent / ".chalice" / "config.json"


@functools.lru_cache(maxsize=1)
def _chalice_config_from_disk() -> dict:
    return json.loads(CHALICE_CONFIG.read_text(encoding="utf-8")) if CHALICE_CONFIG.exists() else {}


def lambda_context(app, handler_name: str) -> LambdaContext:
    """Named, sized and timed as .chalice/config.json deploys the function.

    So that logs and `get_remaining_time_in_millis()` read as they would on AWS; the local
    stack does not enforce the memory size or the timeout.
    """
    config = Config(chalice_stage=STAGE, function_name=handler_name, config_from_disk=_chalice_config_from_disk(),
                    default_params={"lambda_memory_size": DEFAULT_LAMBDA_MEMORY_SIZE,
                                    "lambda_timeout": DEFAULT_LAMBDA_TIMEOUT})
    return LambdaContext(f"{app.app_name}-{STAGE}-{handler_name}", memory_size=config.lambda_memory_size,
                         max_runtime_ms=config.lambda_timeout * 1000)
