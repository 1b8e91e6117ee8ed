"""SQS consumer: export requests (POST /v1/exports). Streams each export's CSV to S3 in parts, in constant memory
(chalicelib/services/exports.py). One message per batch (an export may run for minutes); a failed run is retried
from the start, then recorded as failed; poison -> DLQ."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.bootstrap import container
from chalicelib.domain import exports
from chalicelib.observability import logger
from chalicelib.services.exports import handle_message

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

#: The part size the worker uploads (S3's minimum, but for the last part); tests lower it to see many parts.
PART_SIZE = exports.PART_SIZE


def record_handler(record: SQSRecord) -> None:
    handle_message(container(), record.body, part_size=PART_SIZE)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
