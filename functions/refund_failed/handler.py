"""Step Functions task: the refund target never confirmed; mark the refund failed and tell the merchant."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.refunds import record_refund_result


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    error = event.get("error") or {}
    message = str(error.get("Cause") or error.get("Error") or "the refund target did not confirm")[:500]
    return record_refund_result(container(), event["return_id"], event["refund_id"], succeeded=False, error=message)
