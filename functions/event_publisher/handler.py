"""DynamoDB stream consumer: the relay of the transactional outbox (chalicelib/services/outbox.relay). New timeline
records that carry a domain event (the event source's filter: infrastructure/definitions.OUTBOX) -> EventBridge.
Partial batch failures by sequence number: Lambda retries from the first event not published."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import container
from chalicelib.observability import logger
from chalicelib.services.outbox import relay


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    failed = relay(container(), list(event.get("Records") or []))
    return {"batchItemFailures": [{"itemIdentifier": sequence_number} for sequence_number in failed]}
