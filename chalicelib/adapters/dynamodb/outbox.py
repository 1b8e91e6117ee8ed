"""The transactional outbox (docs/adr/0005-transactional-outbox.md), both ways.

Writing: the timeline record of an entry that announces a domain event carries the event as it goes on the bus
(`detail_type`, and `detail` as JSON text), in the same transaction as the change.

Reading: the table's stream delivers each new such record (INSERT, NEW_IMAGE, filtered by
infrastructure/definitions.OUTBOX) to functions/event_publisher, which turns it back into the bus event. The event
id consumers deduplicate on is the record's key: stable, whatever is redelivered or republished.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.event_bus import BusEvent
from chalicelib.domain.returns import DomainEvent

#: The attributes of a timeline record that make it an outbox record.
DETAIL_TYPE = "detail_type"
DETAIL = "detail"


def outbox_attributes(event: DomainEvent) -> dict[str, str]:
    """What the timeline record of `event` carries (the detail exactly as it was published after the commit)."""
    return {DETAIL_TYPE: event.type, DETAIL: json.dumps(event.detail(), default=str)}


def event_id(pk: str, sk: str) -> str:
    """The id of the event an outbox record holds: its key (unique in the table, never reused)."""
    return f"{pk}#{sk}"


def bus_event(record: dict[str, Any]) -> BusEvent | None:
    """The bus event of a DynamoDB stream record as Lambda delivers it; None if the record holds no event (an
    update, a deletion, or an item that is not an outbox record: the event source's filter lets none through)."""
    if record.get("eventName") != "INSERT":
        return None
    change = record["dynamodb"]
    image = change.get("NewImage") or {}
    detail_type = (image.get(DETAIL_TYPE) or {}).get("S")
    detail = (image.get(DETAIL) or {}).get("S")
    if not detail_type or detail is None:
        return None
    keys = change["Keys"]
    parsed = json.loads(detail)
    if not isinstance(parsed, dict):
        raise ValueError(f"{detail_type}: the outbox detail is not an object")
    return BusEvent(detail_type=detail_type, detail={**parsed, "event_id": event_id(keys["pk"]["S"], keys["sk"]["S"])})
