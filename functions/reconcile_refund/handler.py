"""Step Functions task: ask the shop again about a refund whose outcome it could not tell; settle it if it can."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.refunds import reconcile_refund


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return reconcile_refund(container(), event["return_id"], event["refund_id"])
