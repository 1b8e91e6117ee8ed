"""The shops' own published payloads through our webhooks, signed as the shops sign them, at the deployed log level.

Our hand-written payloads (tests/integration/test_order_intake.py) only ever contain what we thought of; these come
from Shopify's documentation and SDK fixtures and WooCommerce's REST documentation (tests/fixtures/shops/SOURCES.md):
offsets in timestamps, ids beyond 2**53, nulls, empty SKUs, HTML entities in names, US addresses, old dates. The
first of them found the 500 that a reserved log field caused in production's INFO level.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import container
from chalicelib.domain.signatures import base64_hmac, woocommerce_signature
from infrastructure.definitions import LOG_LEVEL
from tests.integration.test_order_intake import shop_tenant
from tests.support import Api

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shops"


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def unwrapped(name: str, key: str) -> bytes:
    """An SDK fixture's inner object as a webhook carries it (the SDK's REST answer wraps it in `{key: ...}`)."""
    return json.dumps(json.loads(fixture_bytes(name))[key]).encode()


def send_shopify(api: Api, merchant_id: str, topic: str, raw: bytes, secret: str) -> Any:
    headers = {  # the headers Shopify sends with every delivery
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": base64_hmac(secret, raw),
        "X-Shopify-Shop-Domain": "johns-apparel.myshopify.com",
        "X-Shopify-API-Version": "2025-04",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2025-05-01T10:00:00.000000Z",
        "X-Shopify-Event-Id": str(uuid.uuid4()),
    }
    return api.call("POST", f"/v1/webhooks/shopify/{merchant_id}", headers=headers, raw=raw)


def send_woocommerce(api: Api, merchant_id: str, topic: str, raw: bytes, secret: str) -> Any:
    resource, _, event = topic.partition(".")
    headers = {  # the headers WC_Webhook::deliver sends
        "Content-Type": "application/json",
        "User-Agent": "WooCommerce/9.8.1 Hookshot (WordPress/6.8)",
        "X-WC-Webhook-Source": "https://shop.example/store/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": woocommerce_signature(secret, raw),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
    }
    return api.call("POST", f"/v1/webhooks/woocommerce/{merchant_id}", headers=headers, raw=raw)


def taken(resp: Any, result: str) -> None:
    assert resp.status_code == 200, (resp.status_code, resp.body)
    assert json.loads(resp.body) == {"status": "ok", "result": result}


def test_the_suite_runs_at_the_deployed_log_level() -> None:
    assert os.environ["POWERTOOLS_LOG_LEVEL"] == LOG_LEVEL
    from chalicelib.observability import logger

    assert logger.log_level == logging.getLevelName(LOG_LEVEL)


def test_shopifys_documented_orders_create_sample_is_taken(api: Api) -> None:
    t = shop_tenant(api)
    raw = fixture_bytes("shopify_orders_create_docs.json")  # the body exactly as published

    taken(send_shopify(api, t["mid"], "orders/create", raw, t["secret"]), "created")

    order = container().store.get_order(t["mid"], "9999")
    assert order is not None and order.source == "shopify" and order.external_id == "820982911946154508"
    assert order.email == "jon@example.com" and order.currency == "USD"
    assert [(i.line_item_id, i.sku, i.quantity) for i in order.items] == [
        ("487817672276298554", "SKU2006-001", 1),
        ("976318377106520349", "SKU2006-020", 1),
        ("315789986012684393", "SKU2006-035", 1),
    ]
    assert order.shipping_address.country == "US" and order.shipping_address.postal_code == "40003"
    # the same body again (Shopify retries with a new delivery id) keeps the order as it was
    taken(send_shopify(api, t["mid"], "orders/updated", raw, t["secret"]), "updated")
    again = container().store.get_order(t["mid"], "9999")
    assert again is not None and again.items == order.items and again.email == order.email


def test_shopifys_sdk_order_and_fulfillment_fixtures_are_taken(api: Api) -> None:
    t = shop_tenant(api)

    taken(
        send_shopify(api, t["mid"], "orders/create", unwrapped("shopify_python_api_order.json", "order"), t["secret"]),
        "created",
    )
    order = container().store.get_order(t["mid"], "1001")
    assert order is not None and order.external_id == "450789469" and order.email == "bob.norman@hostmail.com"
    assert {i.sku: i.quantity for i in order.items} == {"IPOD2008GREEN": 1, "IPOD2008RED": 1, "IPOD2008BLACK": 1}

    # the SDK's fulfillment of that order (status pending: shipped nothing yet, so nothing is delivered)
    fulfillment = unwrapped("shopify_python_api_fulfillment.json", "fulfillment")
    resp = send_shopify(api, t["mid"], "fulfillments/create", fulfillment, t["secret"])
    assert resp.status_code == 200, (resp.status_code, resp.body)
    after = container().store.get_order(t["mid"], "1001")
    assert after is not None and all(not i.deliveries for i in after.items)


def test_woocommerces_documented_order_is_taken_as_an_order_created_delivery(api: Api) -> None:
    t = shop_tenant(api, "woocommerce")
    raw = fixture_bytes("woocommerce_rest_docs_order.json")

    taken(send_woocommerce(api, t["mid"], "order.created", raw, t["secret"]), "created")

    order = container().store.get_order(t["mid"], "727")
    assert order is not None and order.source == "woocommerce" and order.external_id == "727"
    assert order.email == "john.doe@example.com" and order.currency == "USD"
    lines = {i.line_item_id: i for i in order.items}
    assert set(lines) == {"315", "316"}
    assert lines["315"].quantity == 2 and lines["315"].sku  # no SKU in the shop: a stable stand-in, never empty
    assert lines["316"].sku == "Bar3"
    assert lines["316"].name == "Ship Your Idea \u2013 Color: Black, Size: M Test"  # WordPress' entities as text
    # a forged delivery of the same body is refused, and nothing changes
    forged = send_woocommerce(api, t["mid"], "order.updated", raw.replace(b'"quantity": 2', b'"quantity": 9'), "x")
    assert forged.status_code == 401
    assert container().store.get_order(t["mid"], "727").items[0].quantity == 2  # type: ignore[union-attr]
