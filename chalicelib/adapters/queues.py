"""SQS: raw carrier webhooks are queued for the tracking consumer."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.aws_clients import client


class SqsTrackingQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url

    def enqueue(self, provider: str, body: str, received_at: str) -> None:
        message: dict[str, Any] = {"provider": provider, "body": body, "received_at": received_at}
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))
