"""Carrier tracking: accept signed webhooks into the queue; apply normalized events idempotently, forward only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.adapters.dynamodb.keys import Marker, return_pk
from chalicelib.bootstrap import Container
from chalicelib.config import Settings
from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification, MalformedInput, Unauthorized
from chalicelib.domain.signatures import verify_aftership, verify_easypost, verify_sendcloud, verify_shippo
from chalicelib.domain.tracking import (
    RETURN_STATUS_FOR,
    TrackingEvent,
    normalize_aftership,
    normalize_easypost,
    normalize_sendcloud,
    normalize_shippo,
)
from chalicelib.observability import logger


# ----- receiving ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookReceiver:
    """How one provider signs its webhooks: the header, where its secret is configured, how to check it."""

    header: str
    secret: Callable[[Settings], str | None]
    verify: Callable[[str, bytes, str | None, datetime], bool]


RECEIVERS: dict[str, WebhookReceiver] = {
    "easypost": WebhookReceiver(
        "X-Hmac-Signature",
        lambda s: s.easypost_webhook_secret,
        lambda secret, body, header, _now: verify_easypost(secret, body, header),
    ),
    "shippo": WebhookReceiver("Shippo-Auth-Signature", lambda s: s.shippo_webhook_secret, verify_shippo),
    "aftership": WebhookReceiver(
        "aftership-hmac-sha256",
        lambda s: s.aftership_webhook_secret,
        lambda secret, body, header, _now: verify_aftership(secret, body, header),
    ),
    "sendcloud": WebhookReceiver(
        "Sendcloud-Signature",
        lambda s: s.sendcloud_webhook_secret,
        lambda secret, body, header, _now: verify_sendcloud(secret, body, header),
    ),
}


def accept_webhook(c: Container, provider: str, raw_body: bytes, signature: str | None) -> None:
    """Verify the provider's signature over the raw body, then queue the body as received.

    No secret configured, a missing, wrong or (Shippo) stale signature: Unauthorized, nothing queued.
    A signed body that is not a JSON object: MalformedInput.
    """
    receiver = RECEIVERS[provider]
    secret = receiver.secret(c.settings)
    now = c.now()
    if not secret or not receiver.verify(secret, raw_body, signature, now):
        logger.info("webhook signature rejected", provider=provider, signature_present=bool(signature))
        raise Unauthorized(f"invalid, missing or stale {receiver.header}")
    try:
        text = raw_body.decode("utf-8")
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise MalformedInput("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise MalformedInput("the body is not a JSON object")
    c.tracking_queue.enqueue(provider, text, now.isoformat())


def accept_easypost_webhook(c: Container, raw_body: bytes, signature: str | None) -> None:
    accept_webhook(c, "easypost", raw_body, signature)


# ----- normalizing ---------------------------------------------------------------------------------------------
def _parse_time(raw: Any, fallback: datetime) -> datetime:
    """An ISO 8601 time; one without an offset is taken as UTC (AfterShip sends carrier-local times without one)."""
    if not raw:
        return fallback
    parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_epoch(value: Any, *, scale: float = 1) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value / scale, UTC)


def _object(payload: Any, key: str) -> dict[str, Any]:
    value = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(value, dict):
        raise MalformedInput(f"`{key}` is missing or not an object")
    return value


def _required(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None or value == "":
        raise MalformedInput(f"`{key}` is missing")
    return str(value)


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


def parse_shippo(body: str, received_at: datetime) -> TrackingEvent | None:
    """Shippo `track_updated` -> TrackingEvent; None for other event types.

    Shippo sends no event id: the idempotency key is tracking number + status + status_date.
    """
    payload: dict[str, Any] = json.loads(body)
    if payload.get("event") != "track_updated":
        return None
    data = _object(payload, "data")
    tracking_number = _required(data, "tracking_number")
    tracking_status = data.get("tracking_status") or {}
    if not isinstance(tracking_status, dict):
        raise MalformedInput("`tracking_status` is not an object")
    status = str(tracking_status.get("status") or "UNKNOWN")
    substatus = tracking_status.get("substatus")
    code = substatus.get("code") if isinstance(substatus, dict) else None
    status_date = tracking_status.get("status_date")
    return TrackingEvent(
        provider="shippo",
        event_id=f"{tracking_number}:{status}:{status_date or ''}",
        tracking_number=tracking_number,
        status=normalize_shippo(status, str(code) if code else None),
        occurred_at=_parse_time(status_date, received_at),
        carrier_status=status,
        detail=str(code) if code else None,
    )


def parse_aftership(body: str, received_at: datetime) -> TrackingEvent | None:
    """AfterShip `tracking_update` -> TrackingEvent (event_id is the idempotency key); None for other events.

    The carrier's time is the latest checkpoint's `checkpoint_time`.
    """
    payload: dict[str, Any] = json.loads(body)
    if payload.get("event") != "tracking_update":
        return None
    msg = _object(payload, "msg")
    event_id = _required(payload, "event_id")
    tracking_number = _required(msg, "tracking_number")
    tag = str(msg.get("tag") or "Pending")
    subtag = msg.get("subtag")
    checkpoints = msg.get("checkpoints") or []
    latest = checkpoints[-1] if isinstance(checkpoints, list) and checkpoints else {}
    fallback = _from_epoch(payload.get("ts")) or received_at
    occurred = _parse_time(latest.get("checkpoint_time") if isinstance(latest, dict) else None, fallback)
    return TrackingEvent(
        provider="aftership",
        event_id=event_id,
        tracking_number=tracking_number,
        status=normalize_aftership(tag, str(subtag) if subtag else None),
        occurred_at=occurred,
        carrier_status=tag,
        detail=str(subtag) if subtag else None,
    )


def parse_sendcloud(body: str, received_at: datetime) -> TrackingEvent | None:
    """Sendcloud `parcel_status_changed` -> TrackingEvent; None for other actions and parcels without a number.

    `timestamp` (milliseconds) is the carrier's time; the idempotency key is parcel id + status id + timestamp.
    """
    payload: dict[str, Any] = json.loads(body)
    if payload.get("action") != "parcel_status_changed":
        return None
    parcel = _object(payload, "parcel")
    parcel_id = _required(parcel, "id")
    tracking_number = parcel.get("tracking_number")
    if not tracking_number:
        logger.info("sendcloud parcel without a tracking number ignored", parcel_id=parcel_id)
        return None
    status = _object(parcel, "status")
    raw_id = status.get("id")
    status_id = int(str(raw_id)) if str(raw_id).isascii() and str(raw_id).isdigit() else None
    message = status.get("message")
    timestamp = payload.get("timestamp")
    return TrackingEvent(
        provider="sendcloud",
        event_id=f"{parcel_id}:{raw_id}:{timestamp if timestamp is not None else ''}",
        tracking_number=str(tracking_number),
        status=normalize_sendcloud(status_id, str(message) if message else None),
        occurred_at=_from_epoch(timestamp, scale=1000) or received_at,
        carrier_status=str(message or raw_id),
        detail=None,
    )


PARSERS: dict[str, Callable[[str, datetime], TrackingEvent | None]] = {
    "easypost": parse_easypost,
    "shippo": parse_shippo,
    "aftership": parse_aftership,
    "sendcloud": parse_sendcloud,
}


# ----- applying ------------------------------------------------------------------------------------------------
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
        for attempt in range(5):
            # The index answer is the whole return: try it first. A stale copy (the index lags the table) fails the
            # version check of the write and the retry reads the table consistently. Saves a read per event.
            ret = candidate if attempt == 0 else c.store.get_return(candidate.id)
            moved = ret.apply_carrier_status(
                target=RETURN_STATUS_FOR[event.status],
                provider=event.provider,
                carrier_status=event.carrier_status,
                occurred_at=event.occurred_at,
                actor=f"carrier:{event.provider}",
                at=c.now(),
                detail=event.detail,
                normalized=event.status.value,
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
            changed += int(moved)
            break
        else:
            raise ConcurrentModification(f"return {candidate.id} kept changing; the message will be retried")
    return changed
