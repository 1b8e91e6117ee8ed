"""Header and key injection (issue 13, defect 5): control characters in identifiers and names are refused at every
edge (API, CSV import, shop webhooks); identifiers that become parts of S3 keys are encoded so `/` cannot change
the key's shape (Shopify's `gid://shopify/LineItem/1` works end to end); over-long path values are 404."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from PIL import Image

from app import app
from chalicelib.bootstrap import container
from tests.integration.test_order_intake import shop_tenant, shopify, shopify_order_body, upload
from tests.support import ADDRESS, OPERATOR_KEY, Api, unique

GID = "gid://shopify/LineItem/1"
BREAKS = ["\r\n", "\n", "\r", "\u2028", "\x00", "\t", "\x1b"]


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    return dict(json.loads(resp.body))


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body.get("errors", [])]


def order_body(**extra: Any) -> dict[str, Any]:
    return {
        "order_number": unique("ORD"),
        "email": "erika@example.com",
        "currency": "EUR",
        "ordered_at": "2026-11-15T10:00:00Z",
        "delivered_at": "2026-11-20T10:00:00Z",
        "shipping_address": {**ADDRESS, "name": "Erika Mustermann"},
        "items": [{"line_item_id": "L1", "sku": "SHIRT-M", "name": "Shirt M", "quantity": 1, "unit_price": "29.95"}],
        **extra,
    }


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "navy").save(out, "JPEG")
    return out.getvalue()


# ----- control characters at the edge --------------------------------------------------------------------------
@pytest.mark.parametrize("brk", BREAKS)
def test_control_characters_in_an_order_number_are_422_and_nothing_is_stored(api: Api, brk: str) -> None:
    t = api.tenant()
    number = f"ORD-{unique('x')}{brk}Bcc: evil@example.com"
    err = problem(api.call("POST", "/v1/orders", t["m_key"], order_body(order_number=number)), 422)
    assert locs(err) == [["order_number"]]
    assert "control character" in err["errors"][0]["msg"]
    assert container().store.get_order(t["merchant"]["id"], number) is None
    assert container().store.get_order(t["merchant"]["id"], number.strip()) is None


def test_trailing_line_breaks_are_refused_not_stripped(api: Api) -> None:
    t = api.tenant()
    number = unique("ORD")
    err = problem(api.call("POST", "/v1/orders", t["m_key"], order_body(order_number=f"{number}\r\n")), 422)
    assert locs(err) == [["order_number"]]
    assert container().store.get_order(t["merchant"]["id"], number) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("line_item_id", "L1\r\nX"), ("sku", "SHIRT\nM"), ("name", "Shirt\rM"), ("external_id", "1\n2")],
)
def test_control_characters_in_order_lines_are_422_naming_the_field(api: Api, field: str, value: str) -> None:
    t = api.tenant()
    body = order_body()
    body["items"][0][field] = value
    err = problem(api.call("POST", "/v1/orders", t["m_key"], body), 422)
    assert locs(err) == [["items", 0, field]]
    assert container().store.get_order(t["merchant"]["id"], body["order_number"]) is None


def test_control_characters_in_the_shipping_address_are_422(api: Api) -> None:
    t = api.tenant()
    body = order_body(shipping_address={**ADDRESS, "street": "Musterweg\r\nX-Injected: 1"})
    assert locs(problem(api.call("POST", "/v1/orders", t["m_key"], body), 422)) == [["shipping_address", "street"]]


def test_a_merchant_or_warehouse_name_with_a_line_break_is_422(api: Api) -> None:
    wh = api.warehouse()
    body = {"name": "Shop\r\nBcc: evil@example.com", "slug": unique("shop"), "warehouse_id": wh["id"]}
    err = problem(api.call("POST", "/v1/admin/merchants", OPERATOR_KEY, body), 422)
    assert locs(err) == [["name"]]
    # nothing stored: the slug is still free
    api.ok("POST", "/v1/admin/merchants", OPERATOR_KEY, {**body, "name": "Shop"}, 201)
    err = problem(api.call("POST", "/v1/admin/warehouses", OPERATOR_KEY, {"name": "WH\n", "address": ADDRESS}), 422)
    assert locs(err) == [["name"]]


def test_free_text_keeps_line_breaks_but_no_other_control_characters(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    line = {"line_item_id": "L1", "quantity": 1, "reason": "too_small"}
    bad = {"items": [{**line, "comment": "torn\x00seam"}]}
    assert locs(problem(api.call("POST", "/v1/portal/returns", token, bad), 422)) == [["items", 0, "comment"]]
    bad = {"items": [{**line, "reason": "too_small\n"}]}
    assert locs(problem(api.call("POST", "/v1/portal/returns", token, bad), 422)) == [["items", 0, "reason"]]
    ok = api.ok("POST", "/v1/portal/returns", token, {"items": [{**line, "comment": "torn\nseam"}]}, 201)
    assert ok["items"][0]["comment"] == "torn\nseam"


def test_a_csv_order_number_with_a_line_break_is_reported_and_not_imported(api: Api) -> None:
    t = api.tenant()
    number = unique("CSV")
    header = (
        "order_number,email,currency,ordered_at,delivered_at,ship_name,ship_street,ship_house_number,"
        "ship_postal_code,ship_city,ship_country,line_item_id,sku,name,quantity,unit_price"
    )
    row = ",erika@example.com,EUR,2026-11-15,2026-11-20,Erika,Musterweg,5,10115,Berlin,DE,L1,{sku},Shirt,1,29.95"
    text = "\n".join(
        [
            header,
            f'"{number}-1\r\nBcc: x@example.com"' + row.format(sku="SHIRT"),
            f"{number}-2" + row.format(sku='"SHI\nRT"'),
            f"{number}-3" + row.format(sku="SHIRT"),
        ]
    )
    resp = upload(api, t["m_key"], text)
    assert resp.status_code == 202, resp.body
    report = api.ok("GET", f"/v1/orders/imports/{json.loads(resp.body)['id']}", t["m_key"])
    assert (report["imported"], report["failed"]) == (1, 2)
    assert sorted((e["row"], e["field"]) for e in report["errors"]) == [(2, "order_number"), (3, "sku")]
    store = container().store
    assert store.get_order(t["merchant"]["id"], f"{number}-1\r\nBcc: x@example.com") is None
    assert store.get_order(t["merchant"]["id"], f"{number}-2") is None
    assert store.get_order(t["merchant"]["id"], f"{number}-3") is not None


def test_a_shopify_order_with_a_line_break_in_its_number_is_422_naming_the_shops_field(api: Api) -> None:
    t = shop_tenant(api)
    body = shopify_order_body()
    bad = {**body, "name": "#1001\r\nBcc: evil@example.com"}
    err = problem(shopify(api, t["mid"], "orders/create", bad, t["secret"]), 422)
    assert locs(err) == [["name"]]
    assert container().store.get_order(t["mid"], "1001\r\nBcc: evil@example.com") is None
    bad = {**body, "line_items": [{**body["line_items"][0], "sku": "SHIRT\r\nM"}]}
    err = problem(shopify(api, t["mid"], "orders/create", bad, t["secret"]), 422)
    assert locs(err) == [["line_items", 0, "sku"]]
    assert container().store.get_order(t["mid"], body["name"].lstrip("#")) is None


def test_a_shopify_order_with_line_breaks_in_free_text_is_taken_cleaned(api: Api) -> None:
    # names and address lines are the shop's free text: cleaned, the order is not refused over them
    t = shop_tenant(api)
    body = shopify_order_body()
    body["line_items"][0]["name"] = "Shirt\r\n- M"
    body["shipping_address"] = {**body["shipping_address"], "name": "Jon\nDoe", "address1": "Hauptstr.\u2028 5"}
    resp = shopify(api, t["mid"], "orders/create", body, t["secret"])
    assert resp.status_code == 200, resp.body
    order = container().store.get_order(t["mid"], body["name"].lstrip("#"))
    assert order is not None
    assert order.items[0].name == "Shirt - M"
    assert order.shipping_address.name == "Jon Doe"
    assert (order.shipping_address.street, order.shipping_address.house_number) == ("Hauptstr.", "5")


# ----- emails --------------------------------------------------------------------------------------------------
def test_a_stored_merchant_name_with_a_line_break_cannot_inject_mail_headers(aws: Any) -> None:
    from chalicelib.adapters.mail import SesMailer

    boto3.client("ses").verify_email_identity(EmailAddress="returns@boomerang.example")
    mailer = SesMailer("returns@boomerang.example")
    mailer.send("kim@example.com", "Shop\r\nBcc: evil@example.com: your return\u2028is registered", "Hello\n")
    from email import policy
    from email.parser import BytesParser

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    (sent,) = ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
    mail = BytesParser(policy=policy.default).parsebytes(sent.raw_data.encode())
    assert mail["Subject"] == "Shop Bcc: evil@example.com: your return is registered"
    assert mail["Bcc"] is None and set(sent.destinations) == {"kim@example.com"}
    assert [line for line in sent.raw_data.splitlines() if line.startswith("Subject:")] == [
        "Subject: Shop Bcc: evil@example.com: your return is registered"
    ]
