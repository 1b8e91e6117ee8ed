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


class SqsWebhookQueue:
    """Messages for functions/webhook_dispatcher sent by the API (redeliveries asked by hand); satisfies
    services.subscriptions.RetryQueue."""

    def __init__(self, queue_url: str | None) -> None:
        self.queue_url = queue_url

    def send(self, body: dict[str, Any], delay_seconds: int) -> None:
        if not self.queue_url:
            from chalicelib.config import ConfigurationError

            raise ConfigurationError("missing or invalid settings: WEBHOOKS_QUEUE_URL")
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body), DelaySeconds=delay_seconds)


class SqsExportQueue:
    """Export requests for functions/export_worker (one message per export)."""

    def __init__(self, queue_url: str | None) -> None:
        self.queue_url = queue_url

    def enqueue(self, merchant_id: str, export_id: str) -> None:
        if not self.queue_url:
            from chalicelib.config import ConfigurationError

            raise ConfigurationError("missing or invalid settings: EXPORTS_QUEUE_URL")
        message = {"merchant_id": merchant_id, "export_id": export_id}
        client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(message))
