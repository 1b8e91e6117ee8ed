"""Outbound webhooks (merchant subscriptions to domain events): the pure rules.

Which event types exist, which subscription an event matches, the retry schedule of a delivery and the identity of
a delivery (one per event and subscription, whatever is redelivered by the bus). Which URLs may be called is the
policy every merchant-supplied URL shares: chalicelib/domain/urls.py. No AWS here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

#: CONTRACT.md (Insights: subscriptions): the event types a merchant can subscribe to; also the bus detail-types.
EVENT_TYPES: tuple[str, ...] = (
    "return.requested",
    "return.label_created",
    "return.in_transit",
    "return.delivered",
    "return.received",
    "return.inspected",
    "return.awaiting_feedback",
    "return.completed",
    "return.refunded",
    "return.cancelled",
    "return.expired",
    "return.rejected",
    "item.graded",
    "item.restocked",
    "item.disposed",
    "work_order.opened",
    "work_order.completed",
    "refund.succeeded",
    "refund.failed",
    "carrier.exception",
    "parcel.unidentified",
    "customer.erased",  # a customer's personal data was erased (services/privacy.py): no return_id
)
ALL_EVENTS = "*"
MAX_SUBSCRIPTIONS_PER_MERCHANT = 20

#: Waits after attempt 1, 2, ... (attempt n+1 follows attempt n after RETRY_SCHEDULE[n-1]); 8 attempts in all.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
#: SQS caps DelaySeconds at 15 minutes: a longer wait is several hops.
MAX_QUEUE_DELAY_SECONDS = 900


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Subscription:
    id: str
    merchant_id: str
    url: str
    events: tuple[str, ...]
    created_at: datetime

    def matches(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events

    def to_dict(self) -> dict[str, Any]:
        """The API view: never the secret (which is in SSM only)."""
        from chalicelib.domain.returns import iso

        return {"id": self.id, "url": self.url, "events": list(self.events), "created_at": iso(self.created_at)}


@dataclass(frozen=True)
class Delivery:
    id: str
    merchant_id: str
    subscription_id: str
    event_id: str
    event_type: str
    payload: str  # the exact JSON body sent (a redelivery sends the same bytes)
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        from chalicelib.domain.returns import iso

        out: dict[str, Any] = {
            "id": self.id,
            "subscription_id": self.subscription_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "status": self.status.value,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
        }
        if self.last_status_code is not None:
            out["last_status_code"] = self.last_status_code
        if self.last_error is not None:
            out["last_error"] = self.last_error
        if self.delivered_at is not None:
            out["delivered_at"] = iso(self.delivered_at)
        if self.next_attempt_at is not None and self.status is DeliveryStatus.PENDING:
            out["next_attempt_at"] = iso(self.next_attempt_at)
        return out


# ----- validation ---------------------------------------------------------------------------------------------------
def event_errors(events: Sequence[str]) -> list[dict[str, Any]]:
    """Validation errors (`loc` relative to the body) for a subscription's event list; empty when it is valid."""
    if not events:
        return [{"loc": ["events"], "msg": "name at least one event type, or '*'"}]
    errors: list[dict[str, Any]] = []
    for i, event in enumerate(events):
        if event == ALL_EVENTS:
            if len(events) > 1:
                errors.append({"loc": ["events", i], "msg": "'*' stands alone"})
        elif event not in EVENT_TYPES:
            errors.append({"loc": ["events", i], "msg": f"unknown event type '{event}'"})
    return errors


def normalize_events(events: Iterable[str]) -> tuple[str, ...]:
    """Deduplicated, in the order given."""
    return tuple(dict.fromkeys(events))


# ----- deliveries ---------------------------------------------------------------------------------------------------
def delivery_id(event_id: str, subscription_id: str, created_at: datetime) -> str:
    """Derived from the event and the subscription: a duplicate event makes the same id (and so no new delivery).
    Starts with the event time, so delivery ids sort by time (the list is one Query, newest first)."""
    digest = hashlib.sha256(f"{event_id}\n{subscription_id}".encode()).hexdigest()[:20]
    return f"dlv_{created_at.strftime('%Y%m%d%H%M%S%f')}_{digest}"


def next_wait(attempts: int) -> timedelta | None:
    """How long to wait after `attempts` failed attempts; None when no attempt is left (the delivery failed)."""
    if attempts < 1:
        return timedelta(0)
    if attempts >= MAX_ATTEMPTS:
        return None
    return RETRY_SCHEDULE[attempts - 1]


def queue_delay(remaining: timedelta) -> int:
    """DelaySeconds for a wait of `remaining` (SQS allows 0..900; a longer wait takes several hops)."""
    return max(0, min(MAX_QUEUE_DELAY_SECONDS, int(remaining.total_seconds() + 0.999)))


def payload(event_id: str, event_type: str, created_at: str, detail: dict[str, Any]) -> str:
    """The JSON body of a delivery: `{id, type, created_at, data}` (data = the event's detail)."""
    import json

    return json.dumps(
        {"id": event_id, "type": event_type, "created_at": created_at, "data": detail},
        separators=(",", ":"),
        default=str,
    )


def describe_failure(status_code: int | None, error: str | None) -> str:
    """The short text kept as `last_error` (never the response body: it may carry anything)."""
    if error:
        return error[:200]
    return f"HTTP {status_code}"
