"""EventBridge publisher for domain events (detail-type = the event type of CONTRACT.md).

Only the outbox relay (functions/event_publisher) publishes: services record events on the aggregate and the
repository writes them in the transaction of the change (docs/adr/0005-transactional-outbox.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.aws_clients import client
from chalicelib.observability import logger

SOURCE = "boomerang"
MAX_ENTRIES = 10  # PutEvents takes at most 10 entries


@dataclass(frozen=True)
class BusEvent:
    detail_type: str
    detail: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> BusEvent:
        """The event as a rule delivers it to a queue (`detail-type`, `detail`; moto's delivery leaves out `account`,
        so no strict envelope model). KeyError / ValueError when it is not one: the message is retried, then DLQ'd."""
        detail_type, detail = envelope["detail-type"], envelope["detail"]
        if not isinstance(detail, dict):
            raise ValueError(f"{detail_type}: detail is not an object")
        return cls(str(detail_type), detail)


class EventBridgePublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def publish(self, events: Sequence[BusEvent]) -> list[int]:
        """Put `events` on the bus in order, in chunks of MAX_ENTRIES. Returns the indexes of the events that are not
        published: the entries EventBridge refused in the first chunk that had a failure (or all of it, if the call
        failed), and every event after that chunk (not tried: the caller retries from the first failure anyway)."""
        for start in range(0, len(events), MAX_ENTRIES):
            chunk = events[start : start + MAX_ENTRIES]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": e.detail_type,
                    "Detail": json.dumps(e.detail, default=str),
                    "EventBusName": self.bus_name,
                    "Resources": [],
                }
                for e in chunk
            ]
            try:
                resp = client("events").put_events(Entries=entries)
            except Exception:
                logger.exception("PutEvents failed", count=len(entries))
                return list(range(start, len(events)))
            if resp.get("FailedEntryCount"):
                refused = [i for i, entry in enumerate(resp.get("Entries", [])) if entry.get("ErrorCode")]
                codes = sorted({str(resp["Entries"][i]["ErrorCode"]) for i in refused})
                logger.warning("events not published", failed=resp["FailedEntryCount"], error_codes=codes)
                refused = refused or list(range(len(chunk)))  # a count without entries: none is sure
                return [start + i for i in refused] + list(range(start + len(chunk), len(events)))
        return []
