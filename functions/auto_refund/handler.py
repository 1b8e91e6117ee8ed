"""Step Functions task: refund automatically when the merchant's settings cover the items' grades."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.refunds import auto_refund


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return auto_refund(container(), event["return_id"])
