"""Scheduled (definitions.Function.schedule, every 5 minutes): delivery, refund, export and acknowledgement records
stuck short of a final state are re-driven or failed (chalicelib/services/sweeper.sweep). Idempotent: each run
only picks records that are due, and claims each before it acts."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    from chalicelib.services.sweeper import sweep  # imported per call: a light module import

    return sweep(container())
