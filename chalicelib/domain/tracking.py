"""Carrier tracking: one normalized status vocabulary and what each status means for a return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chalicelib.domain.returns import ReturnStatus


class CarrierStatus(StrEnum):
    PRE_TRANSIT = "pre_transit"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    AVAILABLE_FOR_PICKUP = "available_for_pickup"
    DELIVERED = "delivered"
    FAILURE = "failure"
    RETURN_TO_SENDER = "return_to_sender"
    LOST = "lost"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


#: What a normalized carrier status does to a return (None: a checkpoint only).
RETURN_STATUS_FOR: dict[CarrierStatus, ReturnStatus | None] = {
    CarrierStatus.PRE_TRANSIT: None,
    CarrierStatus.IN_TRANSIT: ReturnStatus.IN_TRANSIT,
    CarrierStatus.OUT_FOR_DELIVERY: ReturnStatus.IN_TRANSIT,
    CarrierStatus.AVAILABLE_FOR_PICKUP: ReturnStatus.IN_TRANSIT,
    CarrierStatus.DELIVERED: ReturnStatus.DELIVERED,
    CarrierStatus.FAILURE: None,
    CarrierStatus.RETURN_TO_SENDER: None,
    CarrierStatus.LOST: None,
    CarrierStatus.UNKNOWN: None,
    CarrierStatus.CANCELLED: None,
}

_EASYPOST: dict[str, CarrierStatus] = {
    "unknown": CarrierStatus.UNKNOWN,
    "pre_transit": CarrierStatus.PRE_TRANSIT,
    "in_transit": CarrierStatus.IN_TRANSIT,
    "out_for_delivery": CarrierStatus.OUT_FOR_DELIVERY,
    "delivered": CarrierStatus.DELIVERED,
    "available_for_pickup": CarrierStatus.AVAILABLE_FOR_PICKUP,
    "return_to_sender": CarrierStatus.RETURN_TO_SENDER,
    "failure": CarrierStatus.FAILURE,
    "cancelled": CarrierStatus.CANCELLED,
    "error": CarrierStatus.FAILURE,
}


@dataclass(frozen=True)
class TrackingEvent:
    """One provider event, normalized."""

    provider: str
    event_id: str
    tracking_number: str
    status: CarrierStatus
    occurred_at: datetime
    carrier_status: str  # the provider's own word, kept for the timeline
    detail: str | None = None


def normalize_easypost(status: str) -> CarrierStatus:
    return _EASYPOST.get(status, CarrierStatus.UNKNOWN)
