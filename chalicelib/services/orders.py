"""Order intake (merchant API upsert)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import ConcurrentModification, ValidationFailed
from chalicelib.domain.orders import Delivery, Order, OrderItem

_EXTRA_KEYS = ("hs_code", "country_of_origin", "weight_grams", "external_id")


def upsert_order(c: Container, merchant_id: str, data: dict[str, Any]) -> tuple[Order, bool]:
    """Create or replace an order by order_number; quantities already returned are kept. (order, created)."""
    for _attempt in range(3):
        existing = c.store.get_order(merchant_id, data["order_number"])
        returned = {i.line_item_id: i.returned_quantity for i in existing.items} if existing else {}
        items = []
        for idx, raw in enumerate(data["items"]):
            already = returned.get(raw["line_item_id"], 0)
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
                    deliveries=[Delivery(d["quantity"], d["delivered_at"]) for d in raw.get("deliveries") or []],
                )
            )
        order = Order(
            merchant_id=merchant_id,
            order_number=data["order_number"],
            email=data["email"].strip().lower(),
            currency=data["currency"],
            ordered_at=data["ordered_at"],
            shipping_address=Address.from_dict(data["shipping_address"]),
            items=items,
            delivered_at=data.get("delivered_at"),
            locale=data.get("locale"),
            return_tracking_numbers=list(data.get("return_tracking_numbers") or []),
            used_return_tracking_numbers=list(existing.used_return_tracking_numbers) if existing else [],
            open_withdrawal_id=existing.open_withdrawal_id if existing else None,
            version=existing.version if existing else None,
        )
        try:
            c.store.save_order(order, c.now())
        except ConcurrentModification:
            continue
        return order, existing is None
    raise ConcurrentModification("the order changed concurrently; retry")


def parse_dt(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
