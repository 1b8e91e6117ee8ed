"""Step Functions task: grade the items of an inspected return."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.processing import classify_items


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return classify_items(container(), event["return_id"])
