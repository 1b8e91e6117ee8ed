"""Orders arriving from the merchant's shop through the API against moto: signed Shopify and WooCommerce webhooks
(orders, fulfillments, deliveries, duplicates, bad signatures) and CSV imports with their stored reports."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import container
from chalicelib.domain.signatures import base64_hmac
from tests.support import Api, unique


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    return dict(json.loads(resp.body))


def shop_tenant(api: Api, platform: str = "shopify") -> dict[str, Any]:
    """A merchant with a connected shop; `secret` is its webhook secret."""
    t = api.tenant()
    secret = f"whsec_{uuid.uuid4().hex}"
    if platform == "shopify":
        shop = {
            "platform": "shopify",
            "shop_domain": f"{unique('shop')}.myshopify.com",
            "access_token": "shpat_0123456789abcdef",
            "webhook_secret": secret,
        }
    else:
        shop = {
            "platform": "woocommerce",
            "base_url": "https://shop.example/store",
            "consumer_key": "ck_0123456789abcdef",
            "consumer_secret": "cs_0123456789abcdef",
            "webhook_secret": secret,
        }
    api.ok("PUT", "/v1/settings/shop", t["m_key"], shop)
    return {**t, "mid": t["merchant"]["id"], "secret": secret}


# ----- Shopify -----------------------------------------------------------------------------------------------------
def shopify_order_body(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    number = random.randint(10**6, 10**9)
    return {
        "id": random.randint(10**17, 10**18),
        "name": f"#{number}",
        "order_number": number,
        "email": "Jon.Doe@Example.com",
        "currency": "EUR",
        "created_at": iso(now - timedelta(days=5)),
        "updated_at": iso(now - timedelta(days=5)),
        "customer_locale": "de",
        "taxes_included": True,
        "shipping_address": {
            "name": "Jon Doe",
            "address1": "Hauptstr. 5",
            "address2": "",
            "zip": "10115",
            "city": "Berlin",
            "country_code": "DE",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "variant_id": 808950810,
                "sku": "SHIRT-M",
                "name": "Shirt - M",
                "quantity": 2,
                "price": "29.95",
                "discount_allocations": [{"amount": "5.90"}],
                "requires_shipping": True,
            },
            {
                "id": 141249953214522974,
                "variant_id": 457924702,
                "sku": "SOCKS",
                "name": "Socks",
                "quantity": 1,
                "price": "9.00",
                "requires_shipping": True,
            },
        ],
        "shipping_lines": [{"price": "4.90", "discounted_price": "4.90"}],
        "fulfillments": [],
        **extra,
    }


def fulfillment_body(order: dict[str, Any], *, delivered_at: datetime | None, fid: int = 255858046) -> dict[str, Any]:
    return {
        "id": fid,
        "order_id": order["id"],
        "status": "success",
        "shipment_status": "delivered" if delivered_at else "in_transit",
        "created_at": iso(datetime.now(UTC) - timedelta(days=4)),
        "updated_at": iso(delivered_at or datetime.now(UTC)),
        "line_items": [{"id": li["id"], "quantity": li["quantity"]} for li in order["line_items"]],
    }


def shopify(
    api: Api,
    merchant_id: str,
    topic: str,
    body: dict[str, Any] | bytes,
    secret: str,
    *,
    webhook_id: str | None = None,
    signed: bytes | None = None,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    headers = {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-SHA256": base64_hmac(secret, raw if signed is None else signed),
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "demo.myshopify.com",
        "X-Shopify-API-Version": "2025-04",
    }
    return api.call("POST", f"/v1/webhooks/shopify/{merchant_id}", headers=headers, raw=raw)


def accepted(resp: Any, result: str) -> None:
    assert resp.status_code == 200, (resp.status_code, resp.body)
    assert json.loads(resp.body) == {"status": "ok", "result": result}


def portal_items(api: Api, token: str) -> dict[str, dict[str, Any]]:
    return {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}


def test_a_shopify_order_then_its_delivery_makes_it_returnable_in_the_portal(api: Api) -> None:
    t = shop_tenant(api)
    body = shopify_order_body()
    number = body["name"].lstrip("#")

    # Given a signed orders/create, When it arrives, Then the order exists with the shop's data
    accepted(shopify(api, t["mid"], "orders/create", body, t["secret"]), "created")
    order = container().store.get_order(t["mid"], number)
    assert order is not None and order.source == "shopify" and order.external_id == str(body["id"])
    assert order.email == "jon.doe@example.com" and order.locale == "de"
    assert [(i.line_item_id, i.quantity, str(i.paid_total)) for i in order.items] == [
        ("866550311766439020", 2, "54.00"),
        ("141249953214522974", 1, "9.00"),
    ]
    assert (order.shipping_address.street, order.shipping_address.house_number) == ("Hauptstr.", "5")
    token = api.session(t["slug"], {"order_number": number, "email": "jon.doe@example.com"})
    assert {i["not_returnable_reason"] for i in portal_items(api, token).values()} == {"not_delivered"}

    # When Shopify reports the fulfillment delivered (the payload names the shop's order id, not our number)
    delivered = datetime.now(UTC) - timedelta(days=1)
    accepted(
        shopify(api, t["mid"], "fulfillments/update", fulfillment_body(body, delivered_at=delivered), t["secret"]),
        "delivered",
    )
    # Then the lines are returnable, and the customer can return one
    view = portal_items(api, token)
    assert view["866550311766439020"]["returnable_quantity"] == 2 and view["141249953214522974"]["returnable"]
    ret = api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "866550311766439020", "quantity": 1, "reason": "too_small"}]},
        201,
    )
    assert ret["order_number"] == number and ret["status"] in ("requested", "label_created")

    # an orders/updated without delivery data keeps the delivered pieces (and the quantity in the return)
    later = {**body, "updated_at": iso(datetime.now(UTC))}
    accepted(shopify(api, t["mid"], "orders/updated", later, t["secret"]), "updated")
    assert portal_items(api, token)["866550311766439020"]["returnable_quantity"] == 1


def test_the_same_webhook_again_changes_nothing(api: Api) -> None:
    t = shop_tenant(api)
    body = shopify_order_body()
    number = body["name"].lstrip("#")
    accepted(shopify(api, t["mid"], "orders/create", body, t["secret"], webhook_id="wh-1"), "created")
    version = container().store.get_order(t["mid"], number).version  # type: ignore[union-attr]

    accepted(shopify(api, t["mid"], "orders/create", body, t["secret"], webhook_id="wh-1"), "duplicate")
    assert container().store.get_order(t["mid"], number).version == version  # type: ignore[union-attr]

    # a fulfillment reported twice (two deliveries of the webhook, then a later update of it) counts once
    at = datetime.now(UTC) - timedelta(days=1)
    accepted(
        shopify(api, t["mid"], "fulfillments/update", fulfillment_body(body, delivered_at=at), t["secret"]), "delivered"
    )
    version = container().store.get_order(t["mid"], number).version  # type: ignore[union-attr]
    again = fulfillment_body(body, delivered_at=at + timedelta(hours=2))
    accepted(shopify(api, t["mid"], "fulfillments/update", again, t["secret"]), "unchanged")
    order = container().store.get_order(t["mid"], number)
    assert order is not None and order.version == version
    assert [(d.quantity, d.delivered_at, d.ref) for d in order.items[0].deliveries] == [
        (2, at.replace(microsecond=0), "255858046")
    ]


def test_bad_signatures_are_401_and_write_nothing(api: Api) -> None:
    t = shop_tenant(api)
    other = shop_tenant(api)
    body = shopify_order_body()
    raw = json.dumps(body).encode()
    number = body["name"].lstrip("#")

    tampered = problem(
        shopify(api, t["mid"], "orders/create", raw, t["secret"], signed=raw.replace(b"29.95", b"0.01")), 401
    )
    foreign = problem(shopify(api, t["mid"], "orders/create", raw, other["secret"]), 401)
    unknown = problem(shopify(api, "mer_DOESNOTEXIST0000000000000", "orders/create", raw, t["secret"]), 401)
    weird = problem(shopify(api, t["mid"] + "%2Fx", "orders/create", raw, t["secret"]), 401)
    missing = problem(
        api.call("POST", f"/v1/webhooks/shopify/{t['mid']}", headers={"X-Shopify-Topic": "orders/create"}, raw=raw),
        401,
    )
    # the same answer whatever the reason: nothing tells whether the merchant exists
    assert tampered == foreign == unknown == weird == missing
    # a merchant whose shop is WooCommerce does not take Shopify webhooks, even with its own secret
    woo = shop_tenant(api, "woocommerce")
    assert problem(shopify(api, woo["mid"], "orders/create", raw, woo["secret"]), 401) == tampered
    # a merchant without a shop neither
    bare = api.tenant()
    assert problem(shopify(api, bare["merchant"]["id"], "orders/create", raw, "anything-at-all"), 401) == tampered
    assert container().store.get_order(t["mid"], number) is None
    assert container().store.get_shop_order(t["mid"], "shopify", str(body["id"])) is None


def test_fulfillments_for_unknown_orders_and_other_topics_are_acknowledged(api: Api) -> None:
    t = shop_tenant(api)
    stranger = shopify_order_body()
    at = datetime.now(UTC)
    accepted(
        shopify(api, t["mid"], "fulfillments/create", fulfillment_body(stranger, delivered_at=at), t["secret"]),
        "unknown_order",
    )
    accepted(shopify(api, t["mid"], "products/update", {"id": 1, "title": "x"}, t["secret"]), "ignored")
    accepted(shopify(api, t["mid"], "orders/create", shopify_order_body(email=None), t["secret"]), "ignored")
    assert container().store.get_order(t["mid"], stranger["name"].lstrip("#")) is None


def test_a_fulfillment_event_delivers_the_lines_of_its_fulfillment(api: Api) -> None:
    t = shop_tenant(api)
    body = shopify_order_body()
    number = body["name"].lstrip("#")
    accepted(shopify(api, t["mid"], "orders/create", body, t["secret"]), "created")
    accepted(
        shopify(api, t["mid"], "fulfillments/create", fulfillment_body(body, delivered_at=None, fid=77), t["secret"]),
        "recorded",
    )
    happened = datetime.now(UTC) - timedelta(days=2)
    event = {
        "id": 944956391,
        "fulfillment_id": 77,
        "order_id": body["id"],
        "status": "delivered",
        "happened_at": iso(happened),
    }
    accepted(shopify(api, t["mid"], "fulfillment_events/create", event, t["secret"]), "delivered")
    order = container().store.get_order(t["mid"], number)
    assert order is not None
    assert [(i.line_item_id, [(d.quantity, d.ref) for d in i.deliveries]) for i in order.items] == [
        ("866550311766439020", [(2, "77")]),
        ("141249953214522974", [(1, "77")]),
    ]
    assert order.items[0].deliveries[0].delivered_at == happened.replace(microsecond=0)
    accepted(
        shopify(api, t["mid"], "fulfillment_events/create", {**event, "status": "in_transit"}, t["secret"]), "ignored"
    )


def test_an_older_update_after_a_newer_one_is_skipped(api: Api) -> None:
    t = shop_tenant(api)
    now = datetime.now(UTC)
    body = shopify_order_body(updated_at=iso(now))
    number = body["name"].lstrip("#")
    accepted(shopify(api, t["mid"], "orders/updated", body, t["secret"]), "created")
    old = shopify_order_body(
        id=body["id"], name=body["name"], updated_at=iso(now - timedelta(hours=1)), email="old@example.com"
    )
    accepted(shopify(api, t["mid"], "orders/updated", old, t["secret"]), "stale")
    assert container().store.get_order(t["mid"], number).email == "jon.doe@example.com"  # type: ignore[union-attr]


def test_bad_shop_data_is_422_naming_the_field_and_the_retry_is_processed(api: Api) -> None:
    t = shop_tenant(api)
    body = shopify_order_body()
    bad = {**body, "shipping_address": {**body["shipping_address"], "country_code": "Germany"}}
    err = problem(shopify(api, t["mid"], "orders/create", bad, t["secret"], webhook_id="wh-bad"), 422)
    assert [e["loc"] for e in err["errors"]] == [["shipping_address", "country_code"]]
    assert container().store.get_order(t["mid"], body["name"].lstrip("#")) is None
    # the claim was released: the shop's retry of the same delivery (fixed meanwhile) is taken
    accepted(shopify(api, t["mid"], "orders/create", body, t["secret"], webhook_id="wh-bad"), "created")
    assert problem(shopify(api, t["mid"], "orders/create", b"{not json", t["secret"]), 400)["status"] == 400


# ----- WooCommerce -------------------------------------------------------------------------------------------------
def woo_order_body(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    oid = random.randint(1000, 10**8)
    return {
        "id": oid,
        "number": str(oid),
        "status": "processing",
        "currency": "EUR",
        "prices_include_tax": True,
        "date_created_gmt": (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%S"),
        "date_modified_gmt": (now - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M:%S"),
        "date_completed_gmt": None,
        "shipping_total": "4.20",
        "shipping_tax": "0.80",
        "billing": {"first_name": "Erika", "last_name": "Mustermann", "email": "erika@example.com"},
        "shipping": {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "address_1": "Musterweg 5",
            "address_2": "",
            "city": "Köln",
            "postcode": "50667",
            "country": "DE",
        },
        "line_items": [
            {
                "id": 315,
                "name": "Hoodie",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 1,
                "subtotal": "50.00",
                "subtotal_tax": "9.50",
                "total": "50.00",
                "total_tax": "9.50",
                "sku": "HOODIE-L",
                "price": 50,
            }
        ],
        **extra,
    }


def woo(api: Api, merchant_id: str, topic: str, body: dict[str, Any], secret: str, delivery: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    headers = {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.partition(".")[0],
        "X-WC-Webhook-Event": topic.partition(".")[2],
        "X-WC-Webhook-Signature": base64_hmac(secret, raw),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery or uuid.uuid4().hex,
    }
    return api.call("POST", f"/v1/webhooks/woocommerce/{merchant_id}", headers=headers, raw=raw)


def test_a_woocommerce_order_and_its_completion(api: Api) -> None:
    t = shop_tenant(api, "woocommerce")
    # WooCommerce's ping when the webhook is saved: unsigned, form-encoded, must get a 200
    ping = api.call(
        "POST",
        f"/v1/webhooks/woocommerce/{t['mid']}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        raw=b"webhook_id=12",
    )
    accepted(ping, "ping")

    body = woo_order_body()
    number = body["number"]
    accepted(woo(api, t["mid"], "order.created", body, t["secret"], delivery="d-1"), "created")
    accepted(woo(api, t["mid"], "order.created", body, t["secret"], delivery="d-1"), "duplicate")
    order = container().store.get_order(t["mid"], number)
    assert order is not None and order.source == "woocommerce" and order.external_id == str(body["id"])
    assert (order.items[0].sku, str(order.items[0].unit_price), str(order.shipping_paid)) == (
        "HOODIE-L",
        "59.50",
        "5.00",
    )
    token = api.session(t["slug"], {"order_number": number, "email": "erika@example.com"})
    assert portal_items(api, token)["315"]["not_returnable_reason"] == "not_delivered"

    completed = datetime.now(UTC) - timedelta(days=1)
    done = {
        **body,
        "status": "completed",
        "date_completed_gmt": completed.strftime("%Y-%m-%dT%H:%M:%S"),
        "date_modified_gmt": completed.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    accepted(woo(api, t["mid"], "order.updated", done, t["secret"]), "updated")
    order = container().store.get_order(t["mid"], number)
    assert order is not None
    assert [(d.quantity, d.ref) for d in order.items[0].deliveries] == [(1, "wc-completed")]
    assert portal_items(api, token)["315"]["returnable"]
    api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "315", "quantity": 1, "reason": "too_small"}]},
        201,
    )

    # unsigned or wrongly signed deliveries: 401; other topics: acknowledged and ignored
    raw = json.dumps(done).encode()
    unsigned = api.call(
        "POST", f"/v1/webhooks/woocommerce/{t['mid']}", headers={"X-WC-Webhook-Topic": "order.updated"}, raw=raw
    )
    problem(unsigned, 401)
    problem(woo(api, t["mid"], "order.updated", done, "not-the-secret"), 401)
    accepted(woo(api, t["mid"], "product.updated", {"id": 93}, t["secret"]), "ignored")


# ----- CSV imports -------------------------------------------------------------------------------------------------
HEADER = (
    "order_number,email,currency,ordered_at,delivered_at,locale,ship_name,ship_street,ship_house_number,"
    "ship_postal_code,ship_city,ship_country,line_item_id,sku,name,quantity,unit_price,tags,paid_total"
)


def csv_rows(prefix: str) -> list[str]:
    day = iso(datetime.now(UTC) - timedelta(days=3))
    return [
        f"{prefix}-1,erika@example.com,EUR,{day},{day},de,Erika Mustermann,Musterweg,5,10115,Berlin,DE,"
        "L1,SHIRT-M,Shirt M,2,29.95,summer|sale,",
        f"{prefix}-1,,,,{day},,,,,,,,L2,JEANS-32,Jeans,1,79.00,,70.00",
        f"{prefix}-2,max@example.com,EUR,{day},,,Max Muster,Hauptstr.,1,80331,München,DE,L1,CAP,Cap,x,15.00,,",
        f"{prefix}-3,lea@example.com,EUR,{day},,en,Lea Example,Main St,5,10001,New York,US,L1,MUG,Mug,1,12.00,,",
    ]


def upload(api: Api, key: str, text: str | bytes) -> Any:
    raw = text.encode() if isinstance(text, str) else text
    return api.call("POST", "/v1/orders/imports", key, headers={"Content-Type": "text/csv"}, raw=raw)


def test_a_csv_import_takes_the_good_orders_and_names_the_bad_row(api: Api) -> None:
    t = api.tenant()
    prefix = unique("CSV")
    text = "\n".join([HEADER, *csv_rows(prefix)]) + "\n"

    resp = upload(api, t["m_key"], text)
    assert resp.status_code == 202, resp.body
    import_id = json.loads(resp.body)["id"]
    report = api.ok("GET", f"/v1/orders/imports/{import_id}", t["m_key"])
    assert report["id"] == import_id and report["status"] == "completed"
    assert (report["rows"], report["orders"], report["imported"], report["created"], report["failed"]) == (
        4,
        3,
        2,
        2,
        1,
    )
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(4, "quantity")]

    first = container().store.get_order(t["merchant"]["id"], f"{prefix}-1")
    assert first is not None and first.source == "csv" and [i.quantity for i in first.items] == [2, 1]
    assert container().store.get_order(t["merchant"]["id"], f"{prefix}-2") is None
    token = api.session(t["slug"], {"order_number": f"{prefix}-1", "email": "erika@example.com"})
    assert portal_items(api, token)["L1"]["returnable_quantity"] == 2

    # another merchant cannot read the report
    other = api.tenant()
    assert problem(api.call("GET", f"/v1/orders/imports/{import_id}", other["m_key"]), 404)["status"] == 404
    problem(api.call("GET", "/v1/orders/imports/imp_00000000000000000000000000", t["m_key"]), 404)
    problem(api.call("GET", "/v1/orders/imports/not-an-id", t["m_key"]), 404)

    # the same file again: an idempotent update
    again = upload(api, t["m_key"], text)
    assert again.status_code == 202
    report2 = api.ok("GET", f"/v1/orders/imports/{json.loads(again.body)['id']}", t["m_key"])
    assert (report2["imported"], report2["created"], report2["updated"], report2["failed"]) == (2, 0, 2, 1)
    same = container().store.get_order(t["merchant"]["id"], f"{prefix}-1")
    assert same is not None
    assert [(i.line_item_id, i.quantity, i.unit_price, i.tags, i.paid_total) for i in same.items] == [
        (i.line_item_id, i.quantity, i.unit_price, i.tags, i.paid_total) for i in first.items
    ]
    assert (same.email, same.shipping_address, same.ordered_at) == (
        first.email,
        first.shipping_address,
        first.ordered_at,
    )


def test_csv_limits_and_unreadable_files(api: Api) -> None:
    t = api.tenant()
    too_big = problem(upload(api, t["m_key"], b"x" * (2 * 1024 * 1024 + 1)), 413)
    assert "MB" in too_big["detail"]
    row = csv_rows("BIG")[3]
    too_many = problem(upload(api, t["m_key"], "\n".join([HEADER, *[row] * 5001])), 422)
    assert "5000" in too_many["detail"]
    assert problem(upload(api, t["m_key"], "order_number,email\nA,b@c.de\n"), 422)["errors"][0]["loc"][0] == "header"
    assert problem(upload(api, t["m_key"], b"\xff\xfe\x00bad"), 422)["status"] == 422
    assert problem(upload(api, t["m_key"], ""), 422)["status"] == 422
    # only merchants import
    assert (
        api.call("POST", "/v1/orders/imports", None, headers={"Content-Type": "text/csv"}, raw=b"a").status_code == 401
    )


def test_a_changed_secret_works_and_forged_requests_do_not_read_ssm_each_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.services import order_intake

    t = shop_tenant(api)
    reads: list[str] = []
    secrets = container().secrets
    original = secrets.get

    def counting(merchant_id: str, name: str) -> str | None:
        reads.append(name)
        return original(merchant_id, name)

    monkeypatch.setattr(secrets, "get", counting)
    accepted(shopify(api, t["mid"], "orders/create", shopify_order_body(), t["secret"]), "created")
    for _ in range(5):
        problem(shopify(api, t["mid"], "orders/create", shopify_order_body(), "forged-secret"), 401)
    assert len(reads) <= 2  # the first read, at most one re-read: not one per forged request

    # the merchant changes the secret: once the re-read window has passed, the new one is used
    new_secret = f"whsec_{uuid.uuid4().hex}"
    api.ok(
        "PUT",
        "/v1/settings/shop",
        t["m_key"],
        {
            "platform": "shopify",
            "shop_domain": "demo-fashion.myshopify.com",
            "access_token": "shpat_0123456789abcdef",
            "webhook_secret": new_secret,
        },
    )
    monkeypatch.setattr(order_intake, "SECRET_REREAD_SECONDS", 0.0)
    accepted(shopify(api, t["mid"], "orders/create", shopify_order_body(), new_secret), "created")
    problem(shopify(api, t["mid"], "orders/create", shopify_order_body(), t["secret"]), 401)
