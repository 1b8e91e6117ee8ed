"""Step Functions task: the refund target never confirmed; mark the refund failed and tell the merchant."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.refunds import record_refund_result

DEFAULT_MESSAGE = "the refund target did not confirm"


def failure_message(error: dict[str, Any]) -> str:
    """The sentence the merchant reads: a Lambda error's `errorMessage` only. The Catch's `Cause` is the error
    as JSON with the error type and the stack trace (file paths, code lines), which are nobody's business."""
    cause = error.get("Cause")
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            cause = parsed.get("errorMessage") or None
    return str(cause or error.get("Error") or DEFAULT_MESSAGE)[:500]


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    message = failure_message(event.get("error") or {})
    return record_refund_result(container(), event["return_id"], event["refund_id"], succeeded=False, error=message)
