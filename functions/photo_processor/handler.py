"""SQS consumer: photo uploads (S3 -> SQS event notifications). Checks each object by its bytes, records images
with a thumbnail, deletes everything else (chalicelib/services/photos.py). Partial batch failures; poison -> DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.photos import process_notification

# A fully failed batch is reported record by record too (same effect as raising: every message is retried).
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def record_handler(record: SQSRecord) -> None:
    process_notification(container(), record.body)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
