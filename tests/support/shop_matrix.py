"""The shop fault matrix's fixtures and helpers (tests/workflow/test_shop_refunds*.py): a merchant whose refunds go
into their shop, played by the stateful fakes of tests/support/fake_shops.py, and the checks that exactly one refund
reached it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.adapters.shops.base import carries_marker
from tests.support import Api, fake_shops, inspect, wait_for_status

ORDER_ID = 5001  # the shop's order id
LINES = {801: (2, "29.95"), 802: (1, "79.00")}  # the shop's line ids: (quantity, unit price)
LOCATION_ID = "66001"
AMOUNT = "59.90"  # both units of line 801 come back
WEBHOOK_SECRET = "whsec_shop_0123456789"
MERCHANT_EMAIL = "ops@shop.example"


@dataclass
class Shop:
    platform: str
    fake: Any  # FakeWooCommerce | FakeShopify
    settings: dict[str, Any]
    session: requests.Session

    @property
    def stray(self) -> list[str]:
        """Requests that went anywhere but the shop (refused by the fake network)."""
        return list(self.session.no_network.stray)  # type: ignore[attr-defined]


def make_shop(platform: str) -> Shop:
    """The merchant's shop, a fake holding order 5001, mounted as the container's HTTP session."""
    fake: Any
    if platform == "woocommerce":
        fake = fake_shops.FakeWooCommerce(base_url="https://shop.example")
        fake.add_order(ORDER_ID, LINES)
        settings = {
            "platform": "woocommerce",
            "base_url": "https://shop.example",
            "consumer_key": fake.consumer_key,
            "consumer_secret": fake.consumer_secret,
            "webhook_secret": WEBHOOK_SECRET,
        }
    else:
        fake = fake_shops.FakeShopify(shop_domain="example.myshopify.com")
        fake.add_order(ORDER_ID, LINES)
        settings = {
            "platform": "shopify",
            "shop_domain": "example.myshopify.com",
            "access_token": fake.access_token,
            "webhook_secret": WEBHOOK_SECRET,
            "location_id": LOCATION_ID,
        }
    session = fake_shops.install_shop(fake)
    return Shop(platform, fake, settings, session)


def completed_return(
    api: Api, shop: Shop, *, refunds: dict[str, Any] | None = None, refund_method: str = "original"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A merchant with the shop connected and refunds into it, an order from the shop, and a return of both units
    of line 801 received, inspected and completed."""
    t = api.tenant()
    api.ok("PUT", "/v1/settings/shop", t["m_key"], shop.settings)
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], refunds or {"target": "shop", "auto_refund": False})
    order = api.order(
        t["m_key"],
        external_id=str(ORDER_ID),
        items=[
            {
                "line_item_id": "L1",
                "sku": "SHIRT-M",
                "name": "Shirt M",
                "quantity": 2,
                "unit_price": "29.95",
                "external_id": "801",
            },
            {
                "line_item_id": "L2",
                "sku": "JEANS-32",
                "name": "Jeans 32",
                "quantity": 1,
                "unit_price": "79.00",
                "external_id": "802",
            },
        ],
    )
    token = api.session(t["slug"], order)
    lines = [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}]
    ret = api.ok("POST", "/v1/portal/returns", token, {"items": lines, "refund_method": refund_method}, 201)
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 2, "checks": {}}])
    wait_for_status(api, t["m_key"], ret["id"], "completed")
    return t, ret


def click(api: Api, t: dict[str, Any], ret: dict[str, Any], key: str, body: dict[str, Any] | None = None) -> str:
    out = api.ok(
        "POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], body or {}, 202, headers={"Idempotency-Key": key}
    )
    return str(out["refund_id"])


def refund_record(api: Api, t: dict[str, Any], ret: dict[str, Any], refund_id: str) -> dict[str, Any]:
    items = api.ok("GET", f"/v1/returns/{ret['id']}/refunds", t["m_key"])["items"]
    return next(r for r in items if r["id"] == refund_id)


def settled(
    api: Api, t: dict[str, Any], ret: dict[str, Any], refund_id: str, want: str, timeout: float = 45
) -> dict[str, Any]:
    """The refund once it left `pending`, which must be `want`."""
    deadline = time.time() + timeout
    while True:
        mine = refund_record(api, t, ret, refund_id)
        if mine["status"] != "pending":
            assert mine["status"] == want, mine
            return mine
        assert time.time() < deadline, f"still pending: {mine}"
        time.sleep(0.2)


def assert_refunded_once(
    api: Api, t: dict[str, Any], ret: dict[str, Any], shop: Shop, refund_id: str, amount: str = AMOUNT
) -> fake_shops.LedgerEntry:
    """Exactly one refund in the shop: ours (marker), of `amount`, on the order; Boomerang agrees."""
    ledger = shop.fake.ledger()
    assert len(ledger) == 1, ledger
    entry = ledger[0]
    assert carries_marker(entry.note, refund_id), entry
    assert entry.amount == Decimal(amount) and entry.order_id == str(ORDER_ID), entry
    mine = refund_record(api, t, ret, refund_id)
    assert mine["status"] == "succeeded" and mine["target"] == "shop", mine
    assert mine["amount"] == {"amount": amount, "currency": "EUR"}
    reference = mine["shop_reference"]
    assert reference["shop_refund_id"] == entry.shop_refund_id, reference
    assert set(reference) <= {"shop_refund_id", "dispositions"}, reference  # dispositions: Shopify Returns only
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "refunded", view["status"]
    assert view["refund"]["status"] == "succeeded", view["refund"]
    assert view["refunded"] == {"amount": amount, "currency": "EUR"}
    assert shop.stray == []
    return entry


#: The Shopify Returns calls that follow a delivered refund (recording the warehouse's verdict, best effort).
RETURNS_OPERATIONS = frozenset({"OrderReturns", "ReverseFulfillmentOrderDispose"})


def refund_operations(shop: Shop) -> list[str]:
    """The operations the shop saw for the refund itself (Shopify Returns calls left out)."""
    return [r.operation for r in shop.fake.requests if r.operation not in RETURNS_OPERATIONS]


def refund_creates(shop: Shop) -> list[Any]:
    """The requests that asked the shop to create a refund (whatever became of them)."""
    return shop.fake.writes("create_refund" if shop.platform == "woocommerce" else "RefundCreate")


def text_of(raw: str) -> str:
    """The plain-text part of a raw email."""
    import email

    message = email.message_from_string(raw)
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return "".join(p.get_payload(decode=True).decode() for p in parts)


def failure_emails(refund_id: str, timeout: float = 10) -> list[Any]:
    """The refund-failed emails to the merchant about `refund_id` (waits for the first)."""
    deadline = time.time() + timeout
    while True:
        sent = [
            m
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
            if hasattr(m, "raw_data") and refund_id in m.raw_data and MERCHANT_EMAIL in m.destinations[0]
        ]
        if sent or time.time() > deadline:
            return sent
        time.sleep(0.1)
