"""SQS pollers: play Lambda's SQS event source mapping in local mode, with partial batch failures; and the
scheduler, which plays the EventBridge schedules of definitions.Function.schedule.

moto's own event source mapping invokes synchronously inside SendMessage and ignores `batchItemFailures`
(PLATFORM-NOTES), so local mode polls each queue of infrastructure.definitions that names a consumer:
long-poll a batch, hand it to the consumer as a Lambda SQS event, delete what succeeded. A failed message
is made visible again after a short delay; after the queue's maxReceiveCount, moto moves it to the DLQ.

Schedules: every function with a `schedule` is invoked through the lambda router every SCHEDULE_INTERVAL_SECONDS
(env, default 30), whatever its rate in AWS (local mode should show an expiry within a minute, not an hour).
"""

from __future__ import annotations

import os
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from infrastructure import definitions as d
from local import lambda_router

WAIT_SECONDS = 1
RETRY_AFTER_SECONDS = 2  # visibility of a failed message (the queue's own timeout is for Lambda in AWS)
SCHEDULE_INTERVAL_SECONDS = 30  # default of the env var of the same name


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


# ----- schedules -------------------------------------------------------------------------------------------------
def scheduled_event(function: str, region: str, at: datetime | None = None) -> dict[str, Any]:
    """The event an EventBridge schedule hands its Lambda target."""
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": when,
        "region": region,
        "resources": [f"arn:aws:events:{region}:123456789012:rule/boomerang-{function}-schedule"],
        "detail": {},
    }


def schedule_interval_seconds() -> float:
    raw = os.environ.get("SCHEDULE_INTERVAL_SECONDS")
    return float(raw) if raw else SCHEDULE_INTERVAL_SECONDS


class Scheduler(threading.Thread):
    """Invokes each scheduled function every `interval` seconds (first after one interval), one after the other."""

    def __init__(self, functions: list[d.Function], interval: float, stop: threading.Event) -> None:
        super().__init__(name="scheduler", daemon=True)
        self.functions = functions
        self.interval = interval
        self.stop_event = stop
        self.runs = 0
        self.failed = 0

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "eu-central-1"
        for fn in self.functions:
            if self.stop_event.is_set():
                return
            try:
                lambda_router.call_handler(fn.name, scheduled_event(fn.name, region))
                self.runs += 1
            except Exception as exc:  # as in AWS: this run failed, the next one comes on schedule
                self.failed += 1
                _say_schedule(f"{fn.name} failed ({type(exc).__name__})")


def _say_schedule(text: str) -> None:
    sys.stderr.write(f"cron {text}\n")


def start_scheduler(stop: threading.Event, interval: float | None = None) -> Scheduler | None:
    functions = [fn for fn in d.FUNCTIONS if fn.schedule]
    if not functions:
        return None
    scheduler = Scheduler(functions, schedule_interval_seconds() if interval is None else interval, stop)
    scheduler.start()
    return scheduler
