"""Order intake (merchant API upsert)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.addresses import Address
from chalicelib.domain.emails import normalise_email
from chalicelib.domain.errors import ConcurrentModification, ValidationFailed
from chalicelib.domain.orders import Delivery, Order, OrderItem, TrackingNumberTaken
from chalicelib.domain.return_index import email_key
from chalicelib.services import reports

_EXTRA_KEYS = ("hs_code", "country_of_origin", "weight_grams", "external_id")


def upsert_order(
    c: Container, merchant_id: str, data: dict[str, Any], *, source: str = "api", keep_deliveries: bool = False
) -> tuple[Order, bool]:
    """Create or replace an order by order_number; quantities already returned and amounts already refunded are
    kept. (order, created).

    `keep_deliveries`: a line reported without delivery pieces keeps the pieces it has (a shop's order update
    carries no delivery dates; its fulfillment webhooks brought them)."""
    for _attempt in range(3):
        existing = c.store.get_order(merchant_id, data["order_number"])
        returned = {i.line_item_id: i.returned_quantity for i in existing.items} if existing else {}
        pieces = {i.line_item_id: i.deliveries for i in existing.items} if existing else {}
        items = []
        for idx, raw in enumerate(data["items"]):
            already = returned.get(raw["line_item_id"], 0)
            deliveries = [Delivery(d["quantity"], d["delivered_at"], d.get("ref")) for d in raw.get("deliveries") or []]
            if not deliveries and keep_deliveries:
                deliveries = list(pieces.get(raw["line_item_id"], []))
            if sum(d["quantity"] for d in raw.get("deliveries") or []) > raw["quantity"]:
                raise ValidationFailed.at(["items", idx, "deliveries"], "more pieces delivered than ordered")
            if raw["quantity"] < already:
                raise ValidationFailed.at(["items", idx, "quantity"], f"{already} of this line are already in returns")
            items.append(
                OrderItem(
                    line_item_id=raw["line_item_id"],
                    sku=raw["sku"],
                    name=raw["name"],
                    quantity=raw["quantity"],
                    unit_price=Decimal(raw["unit_price"]),
                    tags=list(raw.get("tags") or []),
                    delivered_at=raw.get("delivered_at"),
                    returned_quantity=already,
                    extra={k: raw[k] for k in _EXTRA_KEYS if raw.get(k) is not None},
                    deliveries=deliveries,
                    paid_total=Decimal(raw["paid_total"]) if raw.get("paid_total") is not None else None,
                    category=raw.get("category"),
                )
            )
        order = Order(
            merchant_id=merchant_id,
            order_number=data["order_number"],
            email=normalise_email(data["email"]),
            currency=data["currency"],
            ordered_at=data["ordered_at"],
            shipping_address=Address.from_dict(data["shipping_address"]),
            items=items,
            delivered_at=data.get("delivered_at"),
            locale=data.get("locale"),
            return_tracking_numbers=list(data.get("return_tracking_numbers") or []),
            used_return_tracking_numbers=list(existing.used_return_tracking_numbers) if existing else [],
            open_withdrawal_id=existing.open_withdrawal_id if existing else None,
            external_id=data.get("external_id") or (existing.external_id if existing else None),
            source=source,
            shipping_paid=Decimal(data.get("shipping_paid") or "0"),
            refunded=dict(existing.refunded) if existing else {},
            shipping_refunded=existing.shipping_refunded if existing else Decimal(0),
            version=existing.version if existing else None,
        )
        # the customer -> orders link (their access export and erasure find the order by it) goes into the order's
        # transaction, after the tracking numbers' claims: a refused order leaves nothing behind
        link = c.store.customer_order_link(merchant_id, email_key(order.email), order.order_number, c.now())
        try:
            # with the change of its sold quantities per SKU and its return tracking numbers' claims, in the same
            # transaction (report return rates; no number in two merchants' hands in one warehouse)
            reports.save_order(c, order, existing, [*_claims(c, order), link])
        except TrackingNumberTaken as exc:
            index = order.return_tracking_numbers.index(exc.number)
            raise ValidationFailed.at(["return_tracking_numbers", index], exc.detail) from None
        except ConcurrentModification:
            continue
        return order, existing is None
    raise ConcurrentModification("the order changed concurrently; retry")


def _claims(c: Container, order: Order) -> list[tuple[Any, Any]]:
    """A pre-printed return tracking number is the merchant's alone within its warehouse: a scan of it must never
    receive a parcel on another tenant's return. Every number of the order is claimed (again) with the order's
    write, on condition that no other merchant of the warehouse holds it (one GetItem for the merchant's warehouse,
    only for orders that carry numbers). A number stays claimed when an order drops it."""
    if not order.return_tracking_numbers:
        return []
    warehouse_id = c.store.get_merchant(order.merchant_id).warehouse_id
    return c.store.claim_tracking_numbers(
        warehouse_id, order.merchant_id, order.order_number, order.return_tracking_numbers, c.now()
    )


def record_deliveries(
    c: Container, merchant_id: str, order_number: str, pieces: list[tuple[str, int, datetime, str | None]]
) -> Order | None:
    """Delivered pieces a shop reported (line_item_id, quantity, delivered_at, fulfillment ref). Lines the order
    does not have are skipped; a repeated report of the same fulfillment changes nothing. None: no such order."""
    for _attempt in range(3):
        order = c.store.get_order(merchant_id, order_number)
        if order is None:
            return None
        changed = False
        for line_item_id, quantity, at, ref in pieces:
            item = order.item(line_item_id)
            if item is not None and item.add_delivery(quantity, at, ref):
                changed = True
        if not changed:
            return order
        try:
            c.store.save_order(order, c.now())
        except ConcurrentModification:
            continue
        return order
    raise ConcurrentModification("the order changed concurrently; retry")


def parse_dt(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
