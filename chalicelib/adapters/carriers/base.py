"""The carrier adapter interface: every carrier (sandbox, DHL, EasyPost, ...) implements it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.addresses import Address


@dataclass(frozen=True)
class LabelRequest:
    return_id: str
    order_number: str
    merchant_name: str
    sender: Address  # the end customer
    recipient: Address  # the warehouse
    parcel_count: int = 1


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str
    content: bytes
    content_type: str
    qr_payload: str


class CarrierError(Exception):
    """The carrier refused or failed to create a label; `detail` is safe to show to a customer."""

    def __init__(self, detail: str, *, transient: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.transient = transient


class CarrierAdapter(Protocol):
    name: str

    def create_label(self, request: LabelRequest) -> Label: ...

    def cancel_label(self, tracking_number: str) -> None: ...
