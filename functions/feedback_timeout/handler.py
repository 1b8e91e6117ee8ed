"""Step Functions task: the feedback SLA ran out; apply the guideline's default."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.processing import feedback_timed_out


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return feedback_timed_out(container(), event["return_id"])
