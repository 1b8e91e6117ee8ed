"""SQS pollers: play Lambda's SQS event source mapping in local mode, with partial batch failures.

moto's own event source mapping invokes synchronously inside SendMessage and ignores `batchItemFailures`
(PLATFORM-NOTES), so local mode polls each queue of infrastructure.definitions that names a consumer:
long-poll a batch, hand it to the consumer as a Lambda SQS event, delete what succeeded. A failed message
is made visible again after a short delay; after the queue's maxReceiveCount, moto moves it to the DLQ.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from infrastructure import definitions as d
from local import lambda_router

WAIT_SECONDS = 1
RETRY_AFTER_SECONDS = 2  # visibility of a failed message (the queue's own timeout is for Lambda in AWS)


def _message_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute shape -> Lambda event shape."""
    out = {}
    for name, attr in raw.items():
        value: dict[str, Any] = {"dataType": attr.get("DataType"), "stringListValues": [], "binaryListValues": []}
        if "StringValue" in attr:
            value["stringValue"] = attr["StringValue"]
        if "BinaryValue" in attr:
            import base64

            value["binaryValue"] = base64.b64encode(attr["BinaryValue"]).decode()
        out[name] = value
    return out


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS consumer (see tests/integration/test_lifecycle.drain_tracking_queue)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes") or {}),
                "messageAttributes": _message_attributes(m.get("MessageAttributes") or {}),
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class QueuePoller(threading.Thread):
    def __init__(self, queue: d.Queue, queue_url: str, stop: threading.Event) -> None:
        super().__init__(name=f"poller-{queue.name}", daemon=True)
        assert queue.consumer is not None
        self.queue = queue
        self.consumer: str = queue.consumer
        self.queue_url = queue_url
        self.stop_event = stop
        self.handled = 0
        self.failed = 0

    def run(self) -> None:
        import boto3

        sqs = boto3.session.Session().client("sqs")
        region = sqs.meta.region_name
        arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self.stop_event.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(self.queue.batch_size, 10),
                    WaitTimeSeconds=WAIT_SECONDS,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception as exc:
                if self.stop_event.is_set():
                    return
                _say(f"{self.queue.name}: receive failed ({type(exc).__name__}); retrying")
                self.stop_event.wait(1)
                continue
            if messages:
                self._deliver(sqs, messages, arn, region)

    def _deliver(self, sqs: Any, messages: list[dict[str, Any]], arn: str, region: str) -> None:
        ids = {m["MessageId"] for m in messages}
        try:
            result = lambda_router.call_handler(self.consumer, lambda_event(messages, arn, region))
            failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])} & ids
        except Exception as exc:  # the whole invocation failed (Powertools raises when every record failed)
            _say(f"{self.consumer}: batch of {len(messages)} failed ({type(exc).__name__})")
            failed = ids
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        for m in retry:
            receives = m.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            _say(
                f"{self.consumer}: message {m['MessageId']} failed (receive {receives} of "
                f"{self.queue.max_receive_count}); visible again in {RETRY_AFTER_SECONDS} s"
            )
            try:
                sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=RETRY_AFTER_SECONDS
                )
            except Exception as exc:
                _say(f"{self.queue.name}: could not shorten the visibility timeout ({type(exc).__name__})")
        self.handled += len(done)
        self.failed += len(retry)


def _say(text: str) -> None:
    sys.stderr.write(f"sqs  {text}\n")


def start_pollers(queue_urls: dict[str, str], stop: threading.Event) -> list[QueuePoller]:
    pollers = [QueuePoller(q, queue_urls[q.name], stop) for q in d.QUEUES if q.consumer]
    for p in pollers:
        p.start()
    return pollers
