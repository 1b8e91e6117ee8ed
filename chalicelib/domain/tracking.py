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

EASYPOST: dict[str, CarrierStatus] = {
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
    return EASYPOST.get(status, CarrierStatus.UNKNOWN)


# ----- Shippo `track_updated`: tracking_status.status, refined by substatus.code --------------------------------
SHIPPO: dict[str, CarrierStatus] = {
    "UNKNOWN": CarrierStatus.UNKNOWN,
    "PRE_TRANSIT": CarrierStatus.PRE_TRANSIT,
    "TRANSIT": CarrierStatus.IN_TRANSIT,
    "DELIVERED": CarrierStatus.DELIVERED,
    "RETURNED": CarrierStatus.RETURN_TO_SENDER,
    "FAILURE": CarrierStatus.FAILURE,
}
#: (status, substatus.code) pairs that say more than the status alone (Shippo's documented substatus codes).
SHIPPO_SUBSTATUS: dict[tuple[str, str], CarrierStatus] = {
    ("TRANSIT", "out_for_delivery"): CarrierStatus.OUT_FOR_DELIVERY,
    ("TRANSIT", "pickup_available"): CarrierStatus.AVAILABLE_FOR_PICKUP,
    ("FAILURE", "package_lost"): CarrierStatus.LOST,
}


def normalize_shippo(status: str, substatus: str | None = None) -> CarrierStatus:
    refined = SHIPPO_SUBSTATUS.get((status, substatus or ""))
    return refined or SHIPPO.get(status, CarrierStatus.UNKNOWN)


# ----- AfterShip `tracking_update`: msg.tag, refined by msg.subtag ---------------------------------------------
AFTERSHIP: dict[str, CarrierStatus] = {
    "Pending": CarrierStatus.PRE_TRANSIT,  # added, no carrier information yet
    "InfoReceived": CarrierStatus.PRE_TRANSIT,
    "InTransit": CarrierStatus.IN_TRANSIT,
    "OutForDelivery": CarrierStatus.OUT_FOR_DELIVERY,
    "AttemptFail": CarrierStatus.FAILURE,
    "AvailableForPickup": CarrierStatus.AVAILABLE_FOR_PICKUP,
    "Delivered": CarrierStatus.DELIVERED,
    "Exception": CarrierStatus.FAILURE,
    "Expired": CarrierStatus.UNKNOWN,  # no tracking information for 30 days
}
#: Exception subtags that say where the parcel went (AfterShip delivery sub-statuses).
AFTERSHIP_SUBTAG: dict[str, CarrierStatus] = {
    "Exception_010": CarrierStatus.RETURN_TO_SENDER,  # returning to sender
    "Exception_011": CarrierStatus.RETURN_TO_SENDER,  # returned to sender
    "Exception_013": CarrierStatus.LOST,  # shipment lost
}


def normalize_aftership(tag: str, subtag: str | None = None) -> CarrierStatus:
    refined = AFTERSHIP_SUBTAG.get(subtag or "") if tag == "Exception" else None
    return refined or AFTERSHIP.get(tag, CarrierStatus.UNKNOWN)


# ----- Sendcloud `parcel_status_changed`: parcel.status {id, message} ------------------------------------------
#: Sendcloud's parcel status ids (GET /parcels/statuses); the id decides, the message is only a fallback.
SENDCLOUD_BY_ID: dict[int, CarrierStatus] = {
    1: CarrierStatus.PRE_TRANSIT,  # Announced
    3: CarrierStatus.IN_TRANSIT,  # En route to sorting center
    4: CarrierStatus.IN_TRANSIT,  # Delivery delayed
    5: CarrierStatus.IN_TRANSIT,  # Sorted
    6: CarrierStatus.IN_TRANSIT,  # Not sorted
    7: CarrierStatus.IN_TRANSIT,  # Being sorted
    8: CarrierStatus.FAILURE,  # Delivery attempt failed
    11: CarrierStatus.DELIVERED,  # Delivered
    12: CarrierStatus.AVAILABLE_FOR_PICKUP,  # Awaiting customer pickup
    13: CarrierStatus.PRE_TRANSIT,  # Announced: not collected
    15: CarrierStatus.FAILURE,  # Error collecting
    22: CarrierStatus.IN_TRANSIT,  # Shipment picked up by driver
    80: CarrierStatus.FAILURE,  # Unable to deliver
    91: CarrierStatus.IN_TRANSIT,  # Parcel en route
    92: CarrierStatus.OUT_FOR_DELIVERY,  # Driver en route
    93: CarrierStatus.DELIVERED,  # Shipment collected by customer
    999: CarrierStatus.PRE_TRANSIT,  # No label
    1000: CarrierStatus.PRE_TRANSIT,  # Ready to send
    1001: CarrierStatus.PRE_TRANSIT,  # Being announced
    1002: CarrierStatus.FAILURE,  # Announcement failed
    1337: CarrierStatus.UNKNOWN,  # Unknown status - check carrier track & trace page
    1998: CarrierStatus.CANCELLED,  # Cancelled upstream
    1999: CarrierStatus.UNKNOWN,  # Cancellation requested (a request, not yet a cancellation)
    2000: CarrierStatus.CANCELLED,  # Cancelled
    2001: CarrierStatus.UNKNOWN,  # Submitting cancellation request
}
#: Sendcloud's status messages (lower case), for ids not in the table above (its tracking status definitions).
SENDCLOUD_BY_MESSAGE: dict[str, CarrierStatus] = {
    "announced": CarrierStatus.PRE_TRANSIT,
    "announced: not collected": CarrierStatus.PRE_TRANSIT,
    "being announced": CarrierStatus.PRE_TRANSIT,
    "ready to send": CarrierStatus.PRE_TRANSIT,
    "no label": CarrierStatus.PRE_TRANSIT,
    "en route to sorting center": CarrierStatus.IN_TRANSIT,
    "at sorting centre": CarrierStatus.IN_TRANSIT,
    "at customs": CarrierStatus.IN_TRANSIT,
    "sorted": CarrierStatus.IN_TRANSIT,
    "not sorted": CarrierStatus.IN_TRANSIT,
    "being sorted": CarrierStatus.IN_TRANSIT,
    "parcel en route": CarrierStatus.IN_TRANSIT,
    "shipment picked up by driver": CarrierStatus.IN_TRANSIT,
    "delivery delayed": CarrierStatus.IN_TRANSIT,
    "delivery date changed": CarrierStatus.IN_TRANSIT,
    "delivery address changed": CarrierStatus.IN_TRANSIT,
    "delivery method changed": CarrierStatus.IN_TRANSIT,
    "driver en route": CarrierStatus.OUT_FOR_DELIVERY,
    "awaiting customer pickup": CarrierStatus.AVAILABLE_FOR_PICKUP,
    "delivered": CarrierStatus.DELIVERED,
    "shipment collected by customer": CarrierStatus.DELIVERED,
    "delivery attempt failed": CarrierStatus.FAILURE,
    "unable to deliver": CarrierStatus.FAILURE,
    "error collecting": CarrierStatus.FAILURE,
    "announcement failed": CarrierStatus.FAILURE,
    "address invalid": CarrierStatus.FAILURE,
    "refused by recipient": CarrierStatus.FAILURE,
    "exception": CarrierStatus.FAILURE,
    "returned to sender": CarrierStatus.RETURN_TO_SENDER,
    "cancelled": CarrierStatus.CANCELLED,
    "cancelled upstream": CarrierStatus.CANCELLED,
}


def normalize_sendcloud(status_id: int | None, message: str | None = None) -> CarrierStatus:
    if status_id is not None and status_id in SENDCLOUD_BY_ID:
        return SENDCLOUD_BY_ID[status_id]
    return SENDCLOUD_BY_MESSAGE.get((message or "").strip().lower(), CarrierStatus.UNKNOWN)
