"""The carrier adapter interface: every carrier (sandbox, DHL, EasyPost, ...) implements it.

An adapter makes return labels (`create_label`), voids unused ones (`cancel_label`) and pulls tracking events
(`fetch_tracking`) for the carrier account of a warehouse (`account`; None is the operator's default account).
Credentials come from a `CredentialSource`; they never appear in logs or in a `CarrierError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration

#: Return method types a customer can choose: print a label, show a QR code (label-less), book a pickup,
#: or drop the parcel off with a printed label.
METHOD_TYPES: frozenset[str] = frozenset({"label", "qr", "pickup", "drop_off"})

#: The normalized tracking vocabulary every adapter maps its carrier's statuses to
#: (the values of `chalicelib.domain.tracking.CarrierStatus`).
TRACKING_STATUSES: frozenset[str] = frozenset(
    {
        "pre_transit",
        "in_transit",
        "out_for_delivery",
        "available_for_pickup",
        "delivered",
        "failure",
        "return_to_sender",
        "lost",
        "unknown",
        "cancelled",
    }
)

#: Parcel weight assumed when neither the request nor its customs declaration knows one.
DEFAULT_PARCEL_WEIGHT_GRAMS = 1000


@dataclass(frozen=True)
class LabelRequest:
    return_id: str
    order_number: str
    merchant_name: str
    sender: Address  # the end customer
    recipient: Address  # the warehouse
    parcel_count: int = 1
    method: str = "label"  # one of METHOD_TYPES, the return method type the customer chose
    customs: CustomsDeclaration | None = None  # given when customs are required; the carrier passes it on
    weight_grams: int | None = None
    account: str | None = None  # whose carrier account to use: the warehouse id; None = the operator's default

    @property
    def parcel_weight_grams(self) -> int:
        """The declared weight, else the customs declaration's total, else `DEFAULT_PARCEL_WEIGHT_GRAMS`."""
        if self.weight_grams is not None and self.weight_grams > 0:
            return self.weight_grams
        if self.customs is not None and self.customs.total_weight_grams > 0:
            return self.customs.total_weight_grams
        return DEFAULT_PARCEL_WEIGHT_GRAMS


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str
    content: bytes  # what the customer prints or shows: a label, or a QR code for "qr"
    content_type: str
    qr_payload: str
    pickup_date: date | None = None  # for method "pickup": the day the carrier collects the parcel
    carrier_reference: str | None = None  # the carrier's own id for the label (EasyPost shipment, Sendcloud return)
    international_tracking_number: str | None = None  # a second number abroad (DHL `internationalShipmentNo`)
    qr_link: str | None = None  # a deep link that opens the QR code in the carrier's app (DHL `qrLink`)


@dataclass(frozen=True)
class TrackingUpdate:
    """One tracking event pulled from a carrier, in the normalized vocabulary (`TRACKING_STATUSES`)."""

    tracking_number: str
    status: str  # one of TRACKING_STATUSES
    carrier_status: str  # the carrier's own word for it, kept for the timeline
    occurred_at: datetime  # timezone-aware, UTC
    event_id: str  # stable across fetches (f"{number}:{carrier_status}:{timestamp}"), for idempotent recording
    detail: str | None = None  # the carrier's description of the event


class CarrierError(Exception):
    """The carrier refused or failed (a label, a cancellation, tracking); `detail` is safe to show to a customer
    and never holds a credential. `transient`: the same call may succeed later (timeouts, rate limits, 5xx)."""

    def __init__(self, detail: str, *, transient: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


class CredentialSource(Protocol):
    """Carrier credentials per account (`chalicelib.adapters.secrets.SsmSecrets` is the real one)."""

    def carrier_credential(self, account: str | None, carrier: str, key: str) -> str | None:
        """The value of `key` (e.g. "api_key") for `carrier` in `account` (None: the default account), or None."""
        ...


class CarrierAdapter(Protocol):
    name: str
    methods: frozenset[str]  # the method types (of METHOD_TYPES) this carrier offers

    def create_label(self, request: LabelRequest) -> Label:
        """A label (or QR document) for `request`; raises CarrierError, also for a method not in `methods`."""
        ...

    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        """Void an unused label. Idempotent: cancelling an already cancelled label succeeds.

        `carrier_reference` is `Label.carrier_reference` when the caller kept it; carriers that void by their own
        id look it up from the tracking number otherwise (one more request).
        """
        ...

    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        """The tracking events the carrier knows for these numbers, oldest first; unknown numbers yield none.
        Raises CarrierError (transient for rate limits, timeouts and server errors)."""
        ...
