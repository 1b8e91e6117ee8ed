"""Step Functions task: deliver one refund to the merchant's target (raises RefundTargetError to retry)."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.refunds import send_refund


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return send_refund(container(), event["return_id"], event["refund_id"])
