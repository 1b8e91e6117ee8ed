"""Orders as the shop reports them, and what of them can still be returned."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.addresses import Address
from chalicelib.domain.tenants import ReturnPolicy


@dataclass
class OrderItem:
    line_item_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    tags: list[str] = field(default_factory=list)
    delivered_at: datetime | None = None
    returned_quantity: int = 0  # reserved by returns that were not cancelled
    extra: dict[str, Any] = field(default_factory=dict)  # hs_code, country_of_origin, weight_grams, external_id


@dataclass
class Order:
    merchant_id: str
    order_number: str
    email: str
    currency: str
    ordered_at: datetime
    shipping_address: Address
    items: list[OrderItem]
    delivered_at: datetime | None = None
    locale: str | None = None
    return_tracking_numbers: list[str] = field(default_factory=list)
    version: int | None = None

    def item(self, line_item_id: str) -> OrderItem | None:
        return next((i for i in self.items if i.line_item_id == line_item_id), None)


@dataclass(frozen=True)
class Eligibility:
    returnable_quantity: int
    reason: str | None  # window_expired | final_sale | already_returned | not_delivered

    @property
    def returnable(self) -> bool:
        return self.returnable_quantity > 0


def eligibility(order: Order, item: OrderItem, policy: ReturnPolicy, now: datetime) -> Eligibility:
    """Whether (and how many of) an order line can still be returned, and if not, why."""
    if item.sku in policy.non_returnable_skus or set(item.tags) & set(policy.non_returnable_tags):
        return Eligibility(0, "final_sale")
    delivered = item.delivered_at or order.delivered_at
    if delivered is None:
        return Eligibility(0, "not_delivered")
    if now > delivered + timedelta(days=policy.window_days_for(item.tags)):
        return Eligibility(0, "window_expired")
    left = item.quantity - item.returned_quantity
    if left <= 0:
        return Eligibility(0, "already_returned")
    return Eligibility(left, None)
