"""EventBridge publisher for domain events (detail-type = the event type of CONTRACT.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from chalicelib.adapters.aws_clients import client
from chalicelib.domain.returns import DomainEvent
from chalicelib.observability import logger

SOURCE = "boomerang"


class EventBridgePublisher:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def publish(self, events: Sequence[DomainEvent]) -> None:
        entries = [
            {
                "Source": SOURCE,
                "DetailType": e.type,
                "Detail": json.dumps(e.detail(), default=str),
                "EventBusName": self.bus_name,
                "Resources": [],
            }
            for e in events
        ]
        for start in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
            resp = client("events").put_events(Entries=entries[start : start + 10])
            if resp.get("FailedEntryCount"):
                logger.warning("events not published", failed=resp["FailedEntryCount"])
