"""Route moto's Lambda invocations to this project's own handlers (local mode and tests only).

moto runs no Lambda code without Docker; its `use_docker: False` backend only echoes. This patch looks up
the function by name, calls `functions/<name>/handler.py:handler`, and on an exception answers like
Lambda does (`x-amz-function-error` + errorType = the exception's class name), so Step Functions Retry
and Catch match on the class name.
"""

from __future__ import annotations

import importlib
import json
import threading
import traceback
import uuid
from dataclasses import dataclass
from typing import Any

_patched = False
_lock = threading.Lock()
PREFIX = "boomerang-"


@dataclass
class FakeContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def function_name_from(name_or_arn: str) -> str:
    name = name_or_arn.rsplit(":function:", maxsplit=1)[-1].split(":", maxsplit=1)[0]
    return name.removeprefix(PREFIX)


def call_handler(name: str, payload: Any) -> Any:
    module = importlib.import_module(f"functions.{name}.handler")
    ctx = FakeContext(
        function_name=f"{PREFIX}{name}",
        invoked_function_arn=f"arn:aws:lambda:local:0:function:{name}",
        aws_request_id=str(uuid.uuid4()),
    )
    try:
        return module.handler(payload, ctx)
    finally:
        _forget_lambda_context()


#: What Powertools' `inject_lambda_context` appends to the (process-wide) logger.
_LAMBDA_CONTEXT_KEYS = (
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
)


def _forget_lambda_context() -> None:
    """Handlers share one process here (unlike in Lambda): without this, the API's log lines would carry the
    last handler's function name and request id."""
    try:
        from chalicelib.observability import logger

        logger.remove_keys(list(_LAMBDA_CONTEXT_KEYS))
    except Exception:  # logging hygiene only
        return


def install() -> None:
    global _patched
    with _lock:
        if _patched:
            return
        from moto.awslambda_simple.models import LambdaSimpleBackend

        def invoke(
            self: Any,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            name = function_name_from(function_name)
            try:
                payload = json.loads(body) if body else {}
                result = call_handler(name, payload)
                return json.dumps(result).encode()
            except Exception as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc)[:1000],
                        "stackTrace": traceback.format_exception(exc)[-3:],
                    }
                ).encode()

        LambdaSimpleBackend.invoke = invoke  # type: ignore[method-assign]
        _patched = True
