"""Step Functions callback task: keep the task token on the return until the merchant answers."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.processing import await_feedback


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return await_feedback(container(), event["return_id"], event["task_token"])
