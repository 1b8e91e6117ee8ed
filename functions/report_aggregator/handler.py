"""SQS consumer: the domain events the bus routes to the reports queue (definitions.REPORT_EVENTS) -> report counters
(chalicelib/services/reports.py). Idempotent per event (`detail.event_id`): a redelivered event changes nothing.
Partial batch failures: a failed message is retried, then goes to the DLQ."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.adapters.event_bus import BusEvent
from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.reports import aggregate

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    """The body is the EventBridge event; only `detail-type` and `detail` are read (see functions/notifier)."""
    event = BusEvent.from_envelope(json.loads(record.body))
    event_type, detail = event.detail_type, event.detail
    outcome = aggregate(container(), event_type, detail)
    logger.debug("report event handled", event_type=event_type, event_id=detail.get("event_id"), outcome=outcome)
    return outcome


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
