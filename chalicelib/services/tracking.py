"""Carrier tracking: accept signed webhooks into the queue; apply normalized events idempotently, forward only."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from chalicelib.adapters.dynamodb.keys import Marker, return_pk
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification, MalformedInput, Unauthorized
from chalicelib.domain.signatures import verify_easypost
from chalicelib.domain.tracking import RETURN_STATUS_FOR, TrackingEvent, normalize_easypost
from chalicelib.observability import logger
from chalicelib.services.common import publish


def accept_easypost_webhook(c: Container, raw_body: bytes, signature: str | None) -> None:
    secret = c.settings.easypost_webhook_secret
    if not secret or not verify_easypost(secret, raw_body, signature):
        raise Unauthorized("invalid or missing X-Hmac-Signature")
    try:
        json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise MalformedInput("the body is not JSON") from None
    c.tracking_queue.enqueue("easypost", raw_body.decode("utf-8"), c.now().isoformat())


def _parse_time(raw: str | None, fallback: datetime) -> datetime:
    if not raw:
        return fallback
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def parse_easypost(body: str, received_at: datetime) -> TrackingEvent | None:
    """EasyPost `tracker.updated` event -> TrackingEvent; None for other event types."""
    payload: dict[str, Any] = json.loads(body)
    if payload.get("description") != "tracker.updated":
        return None
    result = payload["result"]
    details = result.get("tracking_details") or []
    latest = details[-1] if details else {}
    occurred = _parse_time(latest.get("datetime") or result.get("updated_at"), received_at)
    return TrackingEvent(
        provider="easypost",
        event_id=str(payload["id"]),
        tracking_number=str(result["tracking_code"]),
        status=normalize_easypost(str(result.get("status", "unknown"))),
        occurred_at=occurred,
        carrier_status=str(result.get("status", "unknown")),
        detail=result.get("status_detail"),
    )


PARSERS = {"easypost": parse_easypost}


def record_tracking_event(c: Container, event: TrackingEvent) -> int:
    """Apply one event to the return(s) with this tracking number. Returns how many returns changed.

    Idempotent on the provider's event id (a marker written in the same transaction), monotonic by rank.
    Unknown tracking numbers are acknowledged and logged.
    """
    returns = c.store.find_returns_by_tracking_number(event.tracking_number)
    if not returns:
        logger.info(
            "tracking event for an unknown tracking number ignored",
            provider=event.provider,
            event_id=event.event_id,
        )
        return 0
    changed = 0
    for candidate in returns:
        for _attempt in range(5):
            ret = c.store.get_return(candidate.id)
            moved = ret.apply_carrier_status(
                target=RETURN_STATUS_FOR[event.status],
                provider=event.provider,
                carrier_status=event.carrier_status,
                occurred_at=event.occurred_at,
                actor=f"carrier:{event.provider}",
                at=c.now(),
                detail=event.detail,
            )
            marker = Marker(
                pk=return_pk(ret.id),
                sk=f"CARRIEREVT#{event.provider}#{event.event_id}",
                data={"status": event.status.value},
            )
            try:
                c.store.save_return(ret, markers=(marker,))
            except AlreadyApplied:
                logger.info("duplicate tracking event ignored", return_id=ret.id, event_id=event.event_id)
                break
            except ConcurrentModification:
                continue
            publish(c, ret)
            changed += int(moved)
            break
        else:
            raise ConcurrentModification(f"return {candidate.id} kept changing; the message will be retried")
    return changed
