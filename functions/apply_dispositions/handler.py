"""Step Functions task: carry out the dispositions (restock + shop sync, work orders, disposal register)."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.floor import apply_dispositions


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return apply_dispositions(container(), event["return_id"])
