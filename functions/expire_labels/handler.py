"""Scheduled (definitions.Function.schedule): expire the labels of returns that were never sent within the label's
validity (chalicelib/services/cancellations.expire_labels). Idempotent: each run only picks returns still due."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    from chalicelib.services.cancellations import expire_labels  # imported per call: a light module import

    expired = expire_labels(container())
    logger.info("labels expired", count=expired)
    return {"expired": expired}
