"""The warehouse floor beyond the Return aggregate: refurbishment work orders, unidentified parcels,
the disposal register and the operator's billing counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import InvalidTransition


@dataclass
class WorkOrder:
    id: str
    return_id: str
    merchant_id: str
    warehouse_id: str
    line_item_id: str
    sku: str
    quantity: int
    steps: list[str]
    created_at: datetime
    status: str = "open"  # open | completed
    minutes: int | None = None
    notes: str | None = None
    completed_at: datetime | None = None

    def complete(self, minutes: int, notes: str | None, at: datetime) -> None:
        if self.status != "open":
            raise InvalidTransition(self.status, "completed", detail=f"work order '{self.id}' is already completed")
        self.status = "completed"
        self.minutes = minutes
        self.notes = notes
        self.completed_at = at


@dataclass
class UnidentifiedParcel:
    """A parcel that matched no return: kept (never thrown away) until someone matches it to a return."""

    id: str
    warehouse_id: str
    barcode: str
    created_at: datetime
    status: str = "open"  # open | matched
    notes: str | None = None
    sender: dict[str, Any] | None = None
    photos: list[str] = field(default_factory=list)
    return_id: str | None = None
    matched_at: datetime | None = None
    merchant_id: str | None = None  # whose it probably is (the warehouse's guess): that merchant is asked to help

    def assign(self, merchant_id: str) -> None:
        if self.status != "open":
            raise InvalidTransition(self.status, "assigned", detail=f"parcel '{self.id}' is already matched")
        self.merchant_id = merchant_id

    def match(self, return_id: str, at: datetime) -> None:
        if self.status != "open":
            raise InvalidTransition(self.status, "matched", detail=f"parcel '{self.id}' is already matched")
        self.status = "matched"
        self.return_id = return_id
        self.matched_at = at


BILLING_COUNTERS = ("receipts", "inspections", "photos", "refurbishment_minutes", "restocks", "disposals")


def billing_month(at: datetime) -> str:
    return at.strftime("%Y-%m")
