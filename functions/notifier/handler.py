"""SQS consumer: domain events the bus routes to the notification queue -> customer emails
(chalicelib/services/notifications.py). Partial batch failures: a failed send is retried, then goes to the DLQ."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.adapters.event_bus import BusEvent
from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.notifications import notify

# A fully failed batch is reported record by record too (same effect as raising: every message is retried).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> str:
    """The body is the EventBridge event as the rule delivers it; only `detail-type` and `detail` are read (moto's
    delivery leaves out `account`, so no strict envelope model here)."""
    event = BusEvent.from_envelope(json.loads(record.body))
    event_type, detail = event.detail_type, event.detail
    outcome = notify(container(), event_type, detail)
    logger.debug("notification handled", event_type=event_type, return_id=detail.get("return_id"), outcome=outcome)
    return outcome


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
