"""Header and key injection (issue 13, defect 5): control characters in identifiers and names are refused at every
edge (API, CSV import, shop webhooks); identifiers that become parts of S3 keys are encoded so `/` cannot change
the key's shape (Shopify's `gid://shopify/LineItem/1` works end to end); over-long path values are 404."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client
from PIL import Image

from app import app
from chalicelib.api.routing import ROUTES
from chalicelib.bootstrap import container
from tests.integration.test_order_intake import shop_tenant, shopify, shopify_order_body, upload
from tests.integration.test_photos import deliver, exists, put, uploaded
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


# ----- Shopify line item ids (gid://...) end to end ------------------------------------------------------------
REASONS = [
    {"code": "damaged", "label": "Arrived damaged", "photo_required": True},
    {"code": "too_small", "label": "Too small"},
]
CHECKLISTS = {
    "checklists": [
        {
            "name": "All",
            "applies_to": "true",
            "questions": [{"key": "damaged", "label": "Damage?", "type": "bool", "photo_required_when": [True]}],
        }
    ]
}


def test_a_gid_line_item_id_works_end_to_end_and_its_photos_are_checked(api: Api, aws: Any) -> None:
    # Given an order whose lines carry Shopify GraphQL ids, one of them ending like another's prefix
    t = api.tenant()
    api.ok("PUT", "/v1/settings/policy", t["m_key"], {"return_window_days": 30, "reasons": REASONS})
    api.ok("PUT", "/v1/settings/checklists", t["m_key"], CHECKLISTS)
    other = f"{GID}/x"
    items = [
        {"line_item_id": GID, "sku": "SHIRT-M", "name": "Shirt", "quantity": 1, "unit_price": "20.00"},
        {"line_item_id": other, "sku": "CAP", "name": "Cap", "quantity": 1, "unit_price": "10.00"},
    ]
    order = api.order(t["m_key"], items=items)
    token = api.session(t["slug"], order)
    assert set(i["line_item_id"] for i in api.ok("GET", "/v1/portal/order", token)["items"]) == {GID, other}

    # the required customer photo is still required for that line
    line = {"line_item_id": GID, "quantity": 1, "reason": "damaged"}
    err = problem(api.call("POST", "/v1/portal/returns", token, {"items": [line]}), 422)
    assert locs(err) == [["items", 0, "photos"]]
    # the upload key keeps the id in one segment: `/` cannot move the photo to another line
    up = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/jpeg", "line_item_id": GID}, 201)
    up_other = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/jpeg", "line_item_id": other}, 201)
    assert up["key"].count("/") == 4 and up_other["key"].count("/") == 4
    container().files.put(up["key"], jpeg(), "image/jpeg")
    container().files.put(up_other["key"], jpeg(), "image/jpeg")
    err = problem(
        api.call("POST", "/v1/portal/returns", token, {"items": [{**line, "photos": [up_other["key"]]}]}), 422
    )
    assert locs(err) == [["items", 0, "photos", 0]]  # the other line's photo
    ret = api.ok("POST", "/v1/portal/returns", token, {"items": [{**line, "photos": [up["key"]]}]}, 201)
    assert [i["line_item_id"] for i in ret["items"]] == [GID]
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})

    # warehouse photos of that line: a non-image is checked and deleted, an image is recorded on the line
    slot = lambda: api.ok(  # noqa: E731
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg", "line_item_id": GID},
        201,
    )["key"]
    bad_key, good_key = slot(), slot()
    assert bad_key.count("/") == 4
    put(aws, bad_key, b"%PDF-1.7\n" * 100, "image/jpeg")
    put(aws, good_key, jpeg(), "image/jpeg")
    assert deliver(uploaded(aws, [bad_key, good_key])) == {"batchItemFailures": []}
    assert not exists(aws, bad_key) and exists(aws, good_key)
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    (item,) = view["items"]
    assert [p["key"] for p in item["photos"]] == [good_key]
    assert [e["reason"] for e in view["timeline"] if e["type"] == "photo.rejected"] == ["not_an_image"]

    # inspection: the checklist's photo is required for that line, then the inspection goes through
    path = f"/v1/warehouse/returns/{ret['id']}/inspection"
    inspection = {"line_item_id": GID, "received_quantity": 1, "checks": {"damaged": True}}
    err = problem(api.call("POST", path, t["wh_key"], {"items": [inspection]}), 422)
    assert locs(err) == [["items", 0, "photos"]]
    api.ok("POST", path, t["wh_key"], {"items": [{**inspection, "photos": [good_key]}]}, 202)
    inspected = container().store.get_return(ret["id"])
    assert inspected.item(GID).photos == [good_key]


def test_a_slash_in_a_line_item_id_cannot_move_a_warehouse_photo_to_another_line(api: Api, aws: Any) -> None:
    # lines `A` and `A/B`: a photo of `A/B` must be recorded on `A/B`, never parsed as some other line
    t = api.tenant()
    items = [
        {"line_item_id": "A", "sku": "S1", "name": "One", "quantity": 1, "unit_price": "20.00"},
        {"line_item_id": "A/B", "sku": "S2", "name": "Two", "quantity": 1, "unit_price": "20.00"},
    ]
    order = api.order(t["m_key"], items=items)
    lines = [{"line_item_id": "A", "quantity": 1, "reason": "too_small"}, {**{"line_item_id": "A/B"}, "quantity": 1}]
    lines[1]["reason"] = "too_small"
    ret = api.create_return(t, lines=lines, order=order)
    key = api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg", "line_item_id": "A/B"},
        201,
    )["key"]
    put(aws, key, jpeg())
    assert deliver(uploaded(aws, [key])) == {"batchItemFailures": []}
    photos = {
        i["line_item_id"]: [p["key"] for p in i["photos"]]
        for i in api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["items"]
    }
    assert photos == {"A": [], "A/B": [key]}


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


# ----- over-long path values -----------------------------------------------------------------------------------
def _path_with(path: str, value: str) -> str:
    return re.sub(r"\{[a-z_]+\}", value, path)


def test_an_over_long_path_value_is_404_on_every_route(api: Api) -> None:
    t = api.tenant()
    long = "r" * 2100
    keys = {"merchant": t["m_key"], "warehouse": t["wh_key"], "operator": OPERATOR_KEY}
    routes = [r for r in ROUTES if "{" in r.path]
    assert len(routes) > 20
    for route in routes:
        key = next((keys[a] for a in route.auth if a in keys), None)
        resp = api.call(route.method, _path_with(route.path, long), key, body={})
        assert resp.status_code == 404, (route.method, route.path, resp.status_code, resp.body)
        assert resp.headers["Content-Type"] == "application/problem+json", route.path


def test_the_longest_legitimate_ids_are_not_refused(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    api.ok("GET", f"/v1/track/{ret['tracking_token']}")
    # a plausible but unknown 200-character value is an ordinary 404
    problem(api.call("GET", f"/v1/returns/{'r' * 200}", t["m_key"]), 404)


def test_an_over_long_idempotency_key_is_422_not_500(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    path = f"/v1/returns/{ret['id']}/refund"
    err = problem(api.call("POST", path, t["m_key"], {}, headers={"Idempotency-Key": "k" * 2100}), 422)
    assert locs(err) == [["headers", "Idempotency-Key"]]
    assert api.ok("GET", f"{path}s", t["m_key"])["items"] == []


@pytest.mark.parametrize("action", ["sessions", "withdrawals"])
def test_an_over_long_slug_with_a_valid_body_is_404_not_500(api: Api, action: str) -> None:
    # the portal's rate limiter wrote a counter keyed by the slug: DynamoDB refused the 2 KB key (a 500 before)
    body: dict[str, Any] = {"order_number": "ORD-1", "email": "erika@example.com"}
    if action == "withdrawals":
        body |= {"name": "Erika Mustermann", "confirm": True}
    resp = api.call("POST", f"/v1/portal/merchants/{'s' * 2100}/{action}", None, body)
    assert problem(resp, 404)["status"] == 404
