"""Orders as the shop reports them, and what of them can still be returned."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.tenants import ReturnPolicy


@dataclass(frozen=True)
class Delivery:
    """A piece of a line that reached the customer (split shipments deliver a line in several pieces)."""

    quantity: int
    delivered_at: datetime
    ref: str | None = None  # the shop's fulfillment id: a repeated report of the same fulfillment replaces it


@dataclass
class OrderItem:
    line_item_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    tags: list[str] = field(default_factory=list)
    delivered_at: datetime | None = None
    returned_quantity: int = 0  # reserved by returns that were not cancelled or expired
    extra: dict[str, Any] = field(default_factory=dict)  # hs_code, country_of_origin, weight_grams, external_id
    deliveries: list[Delivery] = field(default_factory=list)
    paid_total: Decimal | None = None  # what the customer paid for the whole line after discounts (None: full price)
    category: str | None = None  # the merchant's product category (reports group return reasons by it)

    @property
    def paid(self) -> Decimal:
        """What the customer paid for all units of this line (discounts taken off when the shop reported them)."""
        return self.paid_total if self.paid_total is not None else self.unit_price * self.quantity

    def add_delivery(self, quantity: int, at: datetime, ref: str | None) -> bool:
        """Record a delivered piece; a piece with the same `ref` (fulfillment) is replaced, not added twice.
        Never more pieces than ordered. Whether anything changed."""
        pieces = [d for d in self.deliveries if ref is None or d.ref != ref]
        room = self.quantity - sum(d.quantity for d in pieces)
        piece = Delivery(min(quantity, room), at, ref)
        if piece.quantity < 1:
            return False
        new = [*pieces, piece]
        if new == self.deliveries:
            return False
        self.deliveries = new
        return True

    def delivered(self, order_delivered_at: datetime | None) -> tuple[int, datetime | None]:
        """(quantity delivered, when the last delivered piece arrived). Pieces win over the item's date, which
        wins over the order's; a date without pieces means the whole line was delivered then."""
        if self.deliveries:
            qty = min(self.quantity, sum(d.quantity for d in self.deliveries))
            return qty, max(d.delivered_at for d in self.deliveries)
        at = self.delivered_at or order_delivered_at
        return (self.quantity, at) if at is not None else (0, None)


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
    used_return_tracking_numbers: list[str] = field(default_factory=list)  # taken by returns (preprinted method)
    open_withdrawal_id: str | None = None  # an EU withdrawal declaration no return has followed yet
    external_id: str | None = None  # the shop's order id (Shopify numeric id, WooCommerce id)
    source: str = "api"  # api | shopify | woocommerce | csv
    shipping_paid: Decimal = Decimal(0)  # what the customer paid for the original shipping
    # Refunded so far across all returns of the order (pending refunds included; a failed one gives it back):
    refunded: dict[str, Decimal] = field(default_factory=dict)  # line_item_id -> amount
    shipping_refunded: Decimal = Decimal(0)
    version: int | None = None

    def item(self, line_item_id: str) -> OrderItem | None:
        return next((i for i in self.items if i.line_item_id == line_item_id), None)

    def free_return_tracking_number(self) -> str | None:
        """A pre-printed return label (packed in the parcel) that no return uses yet."""
        return next((t for t in self.return_tracking_numbers if t not in self.used_return_tracking_numbers), None)

    def reserve(self, line_item_id: str, quantity: int, policy: ReturnPolicy, now: datetime) -> None:
        """Put `quantity` of a line into a return; never more than was delivered and not yet returned."""
        item = self.item(line_item_id)
        if item is None:
            raise ValidationFailed.at(["line_item_id"], f"'{line_item_id}' is not a line of this order")
        el = eligibility(self, item, policy, now)
        if quantity < 1 or quantity > el.returnable_quantity:
            raise ValidationFailed.at(["quantity"], f"at most {el.returnable_quantity} can be returned")
        item.returned_quantity += quantity

    def release(self, line_item_id: str, quantity: int) -> None:
        """A cancelled or expired return gives its quantities back."""
        item = self.item(line_item_id)
        if item is not None:
            item.returned_quantity = max(0, item.returned_quantity - quantity)


@dataclass(frozen=True)
class Eligibility:
    returnable_quantity: int
    reason: str | None  # window_expired | final_sale | already_returned | not_delivered

    @property
    def returnable(self) -> bool:
        return self.returnable_quantity > 0


def eligibility(order: Order, item: OrderItem, policy: ReturnPolicy, now: datetime) -> Eligibility:
    """Whether (and how many of) an order line can still be returned, and if not, why.

    The window runs from the delivery of the line's last delivered piece, for as many days as the policy (or the
    longest override of the item's tags) gives. Only delivered pieces can be returned, less what other returns hold.
    """
    if item.sku in policy.non_returnable_skus or set(item.tags) & set(policy.non_returnable_tags):
        return Eligibility(0, "final_sale")
    delivered_qty, last_delivery = item.delivered(order.delivered_at)
    if delivered_qty == 0 or last_delivery is None:
        return Eligibility(0, "not_delivered")
    if now > last_delivery + timedelta(days=policy.window_days_for(item.tags)):
        return Eligibility(0, "window_expired")
    left = delivered_qty - item.returned_quantity
    if left <= 0:
        return Eligibility(0, "not_delivered" if delivered_qty < item.quantity else "already_returned")
    return Eligibility(left, None)


class TrackingNumberTaken(Conflict):
    """A pre-printed return tracking number another merchant of the warehouse already registered."""

    def __init__(self, number: str) -> None:
        super().__init__("this return tracking number is used by another merchant in this warehouse")
        self.number = number
