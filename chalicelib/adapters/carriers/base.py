"""The carrier adapter interface: every carrier (sandbox, DHL, EasyPost, ...) implements it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration

#: Return method types a customer can choose: print a label, show a QR code (label-less), book a pickup,
#: or drop the parcel off with a printed label.
METHOD_TYPES: frozenset[str] = frozenset({"label", "qr", "pickup", "drop_off"})


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


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str
    content: bytes  # what the customer prints or shows: a label, or a QR code for "qr"
    content_type: str
    qr_payload: str
    pickup_date: date | None = None  # for method "pickup": the day the carrier collects the parcel


class CarrierError(Exception):
    """The carrier refused or failed to create a label; `detail` is safe to show to a customer."""

    def __init__(self, detail: str, *, transient: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


class CarrierAdapter(Protocol):
    name: str
    methods: frozenset[str]  # the method types (of METHOD_TYPES) this carrier offers

    def create_label(self, request: LabelRequest) -> Label:
        """A label (or QR document) for `request`; raises CarrierError, also for a method not in `methods`."""
        ...

    def cancel_label(self, tracking_number: str) -> None:
        """Void an unused label. Idempotent: cancelling an already cancelled label succeeds."""
        ...
