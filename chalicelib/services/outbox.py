"""Relay of the transactional outbox (docs/adr/0005-transactional-outbox.md): the table's stream delivers the
timeline records that carry a domain event; their events go on the bus, in stream order, at least once."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamodb.outbox import bus_event
from chalicelib.adapters.event_bus import BusEvent
from chalicelib.bootstrap import Container
from chalicelib.observability import logger


def relay(c: Container, records: list[dict[str, Any]]) -> list[str]:
    """Publish the events of `records` (DynamoDB stream records as Lambda delivers them, in stream order).

    Returns the sequence numbers of the records whose event is not on the bus for sure, in order: Lambda retries
    from the first of them (ReportBatchItemFailures), so an event may be published twice, never lost. A record that
    cannot be read fails too (and with it every later record of the batch): retried, then Lambda bisects the batch
    and hands what keeps failing to the event source's on-failure destination. Nothing is skipped in silence.
    """
    pending: list[tuple[str, BusEvent]] = []
    unread: list[str] = []
    for position, record in enumerate(records):
        sequence_number = str(record["dynamodb"]["SequenceNumber"])
        try:
            event = bus_event(record)
        except (KeyError, TypeError, ValueError):
            logger.exception("outbox record unreadable", sequence_number=sequence_number)
            unread = [str(r["dynamodb"]["SequenceNumber"]) for r in records[position:]]
            break
        if event is None:  # not an outbox record (the event source's filter should not have let it through)
            logger.warning("stream record without an event ignored", sequence_number=sequence_number)
            continue
        pending.append((sequence_number, event))
    not_published = c.events.publish([event for _, event in pending]) if pending else []
    failed = [pending[i][0] for i in not_published] + unread
    logger.info("outbox relayed", records=len(records), published=len(pending) - len(not_published), failed=len(failed))
    return failed
