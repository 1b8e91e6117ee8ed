"""SQS consumer of the webhook queue: domain events the bus routes there (one delivery per matching subscription)
and the dispatcher's own retry messages (DelaySeconds), see chalicelib/services/subscriptions.py. Partial batch
failures: a message that raised is retried by SQS, then goes to the DLQ."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.adapters.event_bus import BusEvent
from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.subscriptions import dispatch_event, parse_message, retry_delivery

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class SqsRetryQueue:
    """Retries go back to the queue the message came from (its URL from the record's ARN: no extra setting)."""

    def __init__(self, queue_arn: str) -> None:
        self.queue_arn = queue_arn
        self._url: str | None = None

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        from chalicelib.adapters.aws_clients import client

        sqs = client("sqs")
        if self._url is None:
            _, _, _, _, account, name = self.queue_arn.split(":", 5)
            self._url = str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])
        sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(body), DelaySeconds=delay_seconds)


def record_handler(record: SQSRecord) -> Any:
    """The body is an EventBridge event (`detail-type`, `detail`, `time`; moto's delivery leaves out `account`, so no
    strict envelope model) or a retry message (`{"retry": {...}}`)."""
    message = parse_message(record.body)
    retries = SqsRetryQueue(record.event_source_arn)
    if "retry" in message:
        outcome: Any = retry_delivery(container(), message, retries)
        logger.debug("webhook retry handled", outcome=outcome)
        return outcome
    event = BusEvent.from_envelope(message)
    outcome = dispatch_event(container(), event.detail_type, event.detail, message.get("time"), retries)
    logger.debug("webhook event handled", event_type=event.detail_type, **outcome)
    return outcome


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return response
