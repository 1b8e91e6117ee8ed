"""Demo data for local mode, created through the real HTTP API (so the seed exercises what clients use)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

WAREHOUSE = {
    "name": "Demo Warehouse Hamburg",
    "address": {
        "name": "Demo Warehouse Hamburg",
        "street": "Hafenstrasse",
        "house_number": "12",
        "postal_code": "20457",
        "city": "Hamburg",
        "country": "DE",
    },
}
MERCHANT_SLUG = "demo-fashion"
MERCHANT = {"name": "Demo Fashion", "slug": MERCHANT_SLUG, "contact_email": "returns@demo-fashion.example"}
POLICY = {
    "return_window_days": 30,
    "non_returnable_tags": ["final_sale"],
    "reasons": [
        {
            "code": "fit",
            "label": "Size or fit",
            "children": [
                {"code": "too_small", "label": "Too small"},
                {"code": "too_large", "label": "Too large"},
            ],
        },
        {"code": "damaged", "label": "Arrived damaged", "comment_required": True},
        {"code": "not_as_described", "label": "Not as described", "comment_required": True},
        {
            "code": "hygiene_opened",
            "label": "Hygiene seal opened",
            "excludes_item": True,
            "message": "Hygiene articles with an opened seal cannot be returned.",
        },
        {"code": "changed_mind", "label": "Changed my mind"},
    ],
    "fees": [{"method_type": "pickup", "amount": "4.90", "deduct_from_refund": True}],
    "customs_defaults": {"hs_code": "620520", "country_of_origin": "PT", "weight_grams": 400},
    "label_validity_days": 30,
}
#: The operator's routing for the demo warehouse: label, label-less QR code, courier pickup and the pre-printed
#: label in Germany and Austria; a label everywhere else; Swiss customers ship to a Swiss consolidation address.
ROUTING = {
    "routes": [
        {
            "countries": ["DE", "AT"],
            "carriers": ["sandbox"],
            "methods": [{"type": "label"}, {"type": "qr"}, {"type": "pickup"}, {"type": "preprinted"}],
        },
        {"countries": ["*"], "carriers": ["sandbox"], "methods": [{"type": "label"}]},
    ],
    "consolidation_addresses": {
        "CH": {
            "name": "Demo Retouren Schweiz",
            "street": "Industriestrasse",
            "house_number": "7",
            "postal_code": "4133",
            "city": "Pratteln",
            "country": "CH",
        }
    },
}
GUIDELINES = {
    "rules": [
        {
            "name": "damaged: ask the merchant",
            "when": "checks.damaged == true",
            "grade": "B",
            "disposition": "refurbish",
            "clarify": True,
            "steps": ["repair seam", "steam", "repackage"],
        }
    ],
    "default": {"grade": "A", "disposition": "restock"},
    "feedback_sla_hours": 48,
}
# Grade B (refurbish) keeps back 10% of the unit price; the refund's breakdown says so.
REFUNDS = {"target": "manual", "auto_refund": True, "grade_deductions": {"B": "10"}}


def _address(name: str, street: str, number: str, postal_code: str, city: str, country: str = "DE") -> dict[str, str]:
    return {
        "name": name,
        "street": street,
        "house_number": number,
        "postal_code": postal_code,
        "city": city,
        "country": country,
    }


def demo_orders(now: datetime) -> list[dict[str, Any]]:
    """Three orders delivered a few days ago (well inside the 30-day window)."""

    def at(days: float) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    return [
        {
            "order_number": "DEMO-1001",
            "email": "erika@example.com",
            "currency": "EUR",
            "ordered_at": at(7),
            "delivered_at": at(3),
            "locale": "de",
            "shipping_address": _address("Erika Mustermann", "Musterweg", "5", "10115", "Berlin"),
            "items": [
                {"line_item_id": "L1", "sku": "SHIRT-M", "name": "Shirt M", "quantity": 2, "unit_price": "29.95"},
                {
                    "line_item_id": "L2",
                    "sku": "JEANS-32",
                    "name": "Jeans 32",
                    "quantity": 1,
                    "unit_price": "79.00",
                    "tags": ["denim"],
                },
            ],
        },
        {
            "order_number": "DEMO-1002",
            "email": "max@example.com",
            "currency": "EUR",
            "ordered_at": at(6),
            "delivered_at": at(2),
            "locale": "en",
            "shipping_address": _address("Max Mustermann", "Beispielstrasse", "17", "80331", "Muenchen"),
            "items": [
                {"line_item_id": "L1", "sku": "SNEAKER-42", "name": "Sneaker 42", "quantity": 1, "unit_price": "89.00"},
                {"line_item_id": "L2", "sku": "HOODIE-L", "name": "Hoodie L", "quantity": 1, "unit_price": "59.00"},
                {
                    "line_item_id": "L3",
                    "sku": "SOCKS-3P",
                    "name": "Socks (3 pairs, sale)",
                    "quantity": 1,
                    "unit_price": "9.95",
                    "tags": ["final_sale"],
                },
            ],
        },
        {
            "order_number": "DEMO-1003",
            "email": "lena@example.com",
            "currency": "EUR",
            "ordered_at": at(5),
            "delivered_at": at(1),
            "locale": "de",
            "shipping_address": _address("Lena Beispiel", "Hauptstrasse", "1", "50667", "Koeln"),
            "items": [
                {
                    "line_item_id": "L1",
                    "sku": "DRESS-S",
                    "name": "Summer dress S",
                    "quantity": 1,
                    "unit_price": "69.90",
                },
            ],
            "return_tracking_numbers": ["PRE-DEMO-1003"],  # a pre-printed return label came in the parcel
        },
        {
            "order_number": "DEMO-1004",  # international: customs data and a CN23
            "email": "jane@example.com",
            "currency": "GBP",
            "ordered_at": at(9),
            "delivered_at": at(4),
            "locale": "en",
            "shipping_address": _address("Jane Doe", "Baker Street", "221B", "NW1 6XE", "London", "GB"),
            "items": [
                {
                    "line_item_id": "L1",
                    "sku": "COAT-M",
                    "name": "Wool coat M",
                    "quantity": 1,
                    "unit_price": "149.00",
                    "hs_code": "620111",
                    "country_of_origin": "IT",
                    "weight_grams": 1400,
                },
                {"line_item_id": "L2", "sku": "SCARF", "name": "Scarf", "quantity": 1, "unit_price": "25.00"},
            ],
        },
        {
            "order_number": "DEMO-1005",  # Swiss: ships domestically to the consolidation address
            "email": "heidi@example.com",
            "currency": "CHF",
            "ordered_at": at(8),
            "delivered_at": at(2),
            "locale": "de-CH",
            "shipping_address": _address("Heidi Muster", "Bahnhofstrasse", "1", "8001", "Zuerich", "CH"),
            "items": [
                {"line_item_id": "L1", "sku": "BOOTS-39", "name": "Boots 39", "quantity": 1, "unit_price": "159.00"}
            ],
        },
    ]


@dataclass
class Seeded:
    warehouse: dict[str, str]
    merchant: dict[str, str]
    orders: list[dict[str, str]] = field(default_factory=list)


class SeedError(RuntimeError):
    pass


def _call(http: requests.Session, method: str, url: str, key: str, body: Any, expect: int) -> Any:
    resp = http.request(method, url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    if resp.status_code != expect:
        raise SeedError(f"{method} {url.split('/v1/', 1)[-1]}: HTTP {resp.status_code} {resp.text[:300]}")
    return resp.json()


def seed(api: str, operator_key: str) -> Seeded:
    with requests.Session() as http:
        wh = _call(http, "POST", f"{api}/v1/admin/warehouses", operator_key, WAREHOUSE, 201)
        _call(http, "PUT", f"{api}/v1/admin/warehouses/{wh['id']}/routing", operator_key, ROUTING, 200)
        m = _call(http, "POST", f"{api}/v1/admin/merchants", operator_key, {**MERCHANT, "warehouse_id": wh["id"]}, 201)
        key = m["api_key"]
        _call(http, "PUT", f"{api}/v1/settings/policy", key, POLICY, 200)
        _call(http, "PUT", f"{api}/v1/settings/guidelines", key, GUIDELINES, 200)
        _call(http, "PUT", f"{api}/v1/settings/refunds", key, REFUNDS, 200)
        orders = demo_orders(datetime.now(UTC))
        for order in orders:
            _call(http, "POST", f"{api}/v1/orders", key, order, 201)
    return Seeded(
        warehouse={"id": wh["id"], "api_key": wh["api_key"]},
        merchant={"id": m["id"], "slug": m["slug"], "api_key": key},
        orders=[{"order_number": o["order_number"], "email": o["email"]} for o in orders],
    )
