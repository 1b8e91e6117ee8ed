"""Scheduled (definitions.Function.schedule): ask DHL for the tracking of returns on their way, since DHL's Shipment
Tracking API has no webhook (chalicelib/services/polling.poll_tracking). Idempotent: events are applied once per
DHL event id; a run cut short by DHL's rate limit is continued by the next one."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger

CARRIER = "dhl_de"
SAFETY_SECONDS = 30  # left of the Lambda's time when the last request may start (its events are still applied)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.services.polling import poll_tracking  # imported per call: a light module import

    remaining = context.get_remaining_time_in_millis() / 1000
    result = poll_tracking(container(), CARRIER, time_budget_s=max(remaining - SAFETY_SECONDS, remaining / 2))
    return {
        "requested": result.requested,
        "events": result.events,
        "moved": result.moved,
        "finished": result.finished,
        "failed": result.failed,
        "stopped_early": result.stopped_early,
    }
