"""Shop orders without AWS: Shopify and WooCommerce payloads mapped to OrderIn, street/house number split, CSV
parsing with row errors, and the two shops' webhook signatures."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.api.schemas import validate_order
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.shop_orders import (
    Unusable,
    locale,
    missing_pieces,
    money,
    parse_orders_csv,
    shopify_fulfillment,
    shopify_fulfillment_event,
    shopify_order,
    split_street,
    validated,
    woocommerce_order,
)
from chalicelib.domain.signatures import (
    base64_hmac,
    verify_shopify,
    verify_woocommerce,
    woocommerce_key,
    woocommerce_signature,
)

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"


def shopify_payload(**extra: Any) -> dict[str, Any]:
    """A Shopify `orders/create` payload, REST-shaped as Shopify sends it (trimmed to the fields we read + noise)."""
    return {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "name": "#1001",
        "order_number": 1001,
        "email": "jon@example.com",
        "currency": "EUR",
        "created_at": "2026-11-15T11:00:00+01:00",
        "updated_at": "2026-11-15T11:00:05+01:00",
        "customer_locale": "de-DE",
        "taxes_included": True,
        "customer": {"id": 115310627314723954, "email": "jon@example.com", "first_name": "Jon", "last_name": "Doe"},
        "shipping_address": {
            "first_name": "Jon",
            "last_name": "Doe",
            "name": "Jon Doe",
            "address1": "Hauptstr. 5",
            "address2": None,
            "zip": "10115",
            "city": "Berlin",
            "country_code": "DE",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "variant_id": 808950810,
                "sku": "SHIRT-M",
                "title": "Shirt",
                "name": "Shirt - M",
                "quantity": 2,
                "price": "29.95",
                "total_discount": "0.00",
                "discount_allocations": [{"amount": "5.90", "discount_application_index": 0}],
                "requires_shipping": True,
                "grams": 200,
                "tax_lines": [{"price": "8.62", "rate": 0.19, "title": "MwSt"}],
            },
            {
                "id": 141249953214522974,
                "variant_id": 457924702,
                "sku": "",
                "title": "Socks",
                "name": "Socks",
                "quantity": 1,
                "price": "9.00",
                "total_discount": "0.00",
                "discount_allocations": [],
                "requires_shipping": True,
            },
            {
                "id": 555,
                "sku": "GIFT",
                "title": "Gift card",
                "name": "Gift card",
                "quantity": 1,
                "price": "50.00",
                "requires_shipping": False,
                "gift_card": True,
            },
        ],
        "shipping_lines": [{"price": "4.90", "discounted_price": "0.00", "title": "Standard"}],
        "fulfillments": [],
        **extra,
    }


# ----- Shopify -------------------------------------------------------------------------------------------------------
def test_a_shopify_order_maps_to_orderin() -> None:
    mapped = shopify_order(shopify_payload())
    data = validated(mapped, validate_order)
    assert data["order_number"] == "1001"  # `name` without "#": what the customer's email shows
    assert data["external_id"] == "820982911946154508"
    assert data["ordered_at"] == datetime(2026, 11, 15, 10, 0, tzinfo=UTC)
    assert data["locale"] == "de-DE"
    assert data["currency"] == "EUR"
    assert data["shipping_paid"] == "0.00"  # free shipping: the discounted price counts
    assert data["shipping_address"] == {
        "name": "Jon Doe",
        "street": "Hauptstr.",
        "house_number": "5",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
    }
    shirt, socks = data["items"]  # the gift card does not ship: left out
    assert shirt["line_item_id"] == shirt["external_id"] == "866550311766439020"
    assert (shirt["sku"], shirt["name"], shirt["quantity"], shirt["unit_price"]) == ("SHIRT-M", "Shirt - M", 2, "29.95")
    assert shirt["paid_total"] == "54.00"  # 2 x 29.95 - 5.90 (taxes included: not added again)
    assert shirt["weight_grams"] == 200
    assert socks["sku"] == "variant-457924702"  # no SKU in the shop: the variant id stands in
    assert mapped.shop_updated_at == datetime(2026, 11, 15, 10, 0, 5, tzinfo=UTC)
    assert mapped.delivered == []


def test_shopify_tax_added_on_top_is_part_of_what_was_paid() -> None:
    data = validated(shopify_order(shopify_payload(taxes_included=False)), validate_order)
    assert data["items"][0]["paid_total"] == "62.62"  # 59.90 - 5.90 + 8.62 tax


def test_shopify_discount_without_allocations_uses_total_discount() -> None:
    payload = shopify_payload()
    payload["line_items"][0]["discount_allocations"] = []
    payload["line_items"][0]["total_discount"] = "10.00"
    assert validated(shopify_order(payload), validate_order)["items"][0]["paid_total"] == "49.90"


def test_shopify_order_without_name_uses_order_number_and_line_without_variant_uses_line_id() -> None:
    payload = shopify_payload(name="")
    payload["line_items"][1]["variant_id"] = None
    data = validated(shopify_order(payload), validate_order)
    assert data["order_number"] == "1001"
    assert data["items"][1]["sku"] == "line-141249953214522974"


def test_shopify_removed_lines_are_left_out_but_shipped_pieces_stay() -> None:
    payload = shopify_payload()
    payload["line_items"][1]["quantity"] = 0  # a zero line
    payload["line_items"][0]["current_quantity"] = 0  # removed after one was shipped
    payload["fulfillments"] = [
        {"id": 1, "status": "success", "line_items": [{"id": 866550311766439020, "quantity": 1}]}
    ]
    data = validated(shopify_order(payload), validate_order)
    assert [(i["line_item_id"], i["quantity"]) for i in data["items"]] == [("866550311766439020", 1)]
    assert data["items"][0]["paid_total"] == "27.00"  # half of the line's 54.00


def test_shopify_delivered_fulfillments_in_the_order_are_delivery_pieces() -> None:
    payload = shopify_payload()
    payload["fulfillments"] = [
        {
            "id": 4711,
            "status": "success",
            "shipment_status": "delivered",
            "updated_at": "2026-11-18T09:30:00-05:00",
            "line_items": [{"id": 866550311766439020, "quantity": 2}],
        },
        {"id": 4712, "status": "success", "shipment_status": "in_transit", "line_items": [{"id": 1, "quantity": 1}]},
    ]
    mapped = shopify_order(payload)
    assert mapped.delivered == [("866550311766439020", 2, datetime(2026, 11, 18, 14, 30, tzinfo=UTC), "4711")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"email": None, "customer": None}, "email"),
        ({"shipping_address": None}, "address"),
        ({"line_items": []}, "ships"),
    ],
)
def test_shopify_orders_that_cannot_be_returned_are_unusable(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unusable) as caught:
        shopify_order(shopify_payload(**change))
    assert reason in caught.value.reason


def test_shopify_digital_order_with_billing_address_only_uses_it() -> None:
    payload = shopify_payload(
        shipping_address=None,
        billing_address={
            "name": "Jon Doe",
            "address1": "5 Main St",
            "zip": "10001",
            "city": "New York",
            "country_code": "US",
        },
    )
    data = validated(shopify_order(payload), validate_order)
    assert (data["shipping_address"]["street"], data["shipping_address"]["house_number"]) == ("Main St", "5")


def test_bad_shopify_data_is_a_422_naming_the_shops_field() -> None:
    payload = shopify_payload()
    payload["shipping_address"]["country_code"] = "Germany"
    with pytest.raises(ValidationFailed) as caught:
        validated(shopify_order(payload), validate_order)
    assert [e["loc"] for e in caught.value.errors] == [["shipping_address", "country_code"]]

    payload = shopify_payload()
    payload["line_items"][1]["price"] = "abc"
    with pytest.raises(ValidationFailed) as caught:
        shopify_order(payload)
    assert caught.value.errors[0]["loc"] == ["line_items", 1, "price"]

    with pytest.raises(ValidationFailed) as caught:
        validated(shopify_order(shopify_payload(currency="euro")), validate_order)
    assert caught.value.errors[0]["loc"] == ["currency"]

    with pytest.raises(ValidationFailed):
        shopify_order(shopify_payload(id=None))
    with pytest.raises(ValidationFailed):
        shopify_order([1, 2])


def test_shopify_fulfillment_and_event() -> None:
    f = shopify_fulfillment(
        {
            "id": 255858046,
            "order_id": 820982911946154508,
            "status": "success",
            "shipment_status": "delivered",
            "updated_at": "2026-11-20T10:00:00Z",
            "line_items": [{"id": 866550311766439020, "quantity": 1}, {"id": 141249953214522974, "quantity": 1}],
        }
    )
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert f.order_external_id == "820982911946154508" and f.delivered_at == at and not f.cancelled
    assert f.pieces() == [("866550311766439020", 1, at, "255858046"), ("141249953214522974", 1, at, "255858046")]
    open_f = shopify_fulfillment({"id": 1, "order_id": 2, "status": "success", "shipment_status": "in_transit"})
    assert open_f.delivered_at is None and open_f.pieces() == []
    ev = shopify_fulfillment_event(
        {
            "id": 9,
            "fulfillment_id": 255858046,
            "order_id": 820982911946154508,
            "status": "delivered",
            "happened_at": "2026-11-20T09:00:00+01:00",
        }
    )
    assert (ev.fulfillment_id, ev.status, ev.happened_at) == (
        "255858046",
        "delivered",
        datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
    )


def test_missing_pieces_keeps_the_first_report_of_a_fulfillment() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    pieces = [("L1", 1, at, "f1"), ("L2", 1, at, "f1"), ("L9", 1, at, "f1")]
    assert missing_pieces({"L1": ["f1"], "L2": [None]}, pieces) == [("L2", 1, at, "f1")]


# ----- WooCommerce ---------------------------------------------------------------------------------------------------
def woo_payload(**extra: Any) -> dict[str, Any]:
    """A WooCommerce REST v3 order, as `order.created` / `order.updated` deliver it (trimmed)."""
    return {
        "id": 727,
        "number": "727",
        "status": "processing",
        "currency": "EUR",
        "prices_include_tax": True,
        "date_created_gmt": "2026-11-15T10:00:00",
        "date_modified_gmt": "2026-11-15T10:00:10",
        "date_completed_gmt": None,
        "shipping_total": "4.20",
        "shipping_tax": "0.80",
        "billing": {"first_name": "Erika", "last_name": "Mustermann", "email": "erika@example.com", "country": "DE"},
        "shipping": {
            "first_name": "Erika",
            "last_name": "Mustermann",
            "company": "",
            "address_1": "Musterweg 5",
            "address_2": "",
            "city": "Köln",
            "postcode": "50667",
            "country": "DE",
        },
        "line_items": [
            {
                "id": 315,
                "name": "Woo Single #1",
                "product_id": 93,
                "variation_id": 0,
                "quantity": 2,
                "subtotal": "50.00",
                "subtotal_tax": "9.50",
                "total": "45.00",
                "total_tax": "8.55",
                "sku": "",
                "price": 22.5,
            }
        ],
        **extra,
    }


def test_a_woocommerce_order_maps_to_orderin() -> None:
    mapped = woocommerce_order(woo_payload())
    data = validated(mapped, validate_order)
    assert (data["order_number"], data["external_id"], data["email"]) == ("727", "727", "erika@example.com")
    assert data["ordered_at"] == datetime(2026, 11, 15, 10, 0, tzinfo=UTC)  # *_gmt carries no offset: UTC
    assert data["shipping_address"]["name"] == "Erika Mustermann"
    assert (data["shipping_address"]["street"], data["shipping_address"]["house_number"]) == ("Musterweg", "5")
    item = data["items"][0]
    assert (item["sku"], item["quantity"], item["unit_price"], item["paid_total"]) == (
        "product-93",
        2,
        "29.75",
        "53.55",
    )
    assert data["shipping_paid"] == "5.00"
    assert mapped.delivered == []


def test_a_completed_woocommerce_order_is_delivered_at_completion() -> None:
    mapped = woocommerce_order(woo_payload(status="completed", date_completed_gmt="2026-11-18T12:00:00"))
    assert mapped.delivered == [("315", 2, datetime(2026, 11, 18, 12, 0, tzinfo=UTC), "wc-completed")]


def test_woocommerce_without_shipping_address_uses_billing_and_legacy_payloads_are_named() -> None:
    payload = woo_payload(shipping={"address_1": "", "city": "", "country": ""})
    payload["billing"].update({"address_1": "Hauptstraße", "address_2": "12", "postcode": "80331", "city": "München"})
    data = validated(woocommerce_order(payload), validate_order)
    assert (data["shipping_address"]["street"], data["shipping_address"]["house_number"]) == ("Hauptstraße", "12")
    with pytest.raises(ValidationFailed) as caught:
        woocommerce_order({"order": woo_payload()})
    assert "v3" in caught.value.detail
    bad = woo_payload()
    bad["shipping"]["country"] = "Deutschland"
    with pytest.raises(ValidationFailed) as caught:
        validated(woocommerce_order(bad), validate_order)
    assert caught.value.errors[0]["loc"] == ["shipping", "country"]


# ----- addresses and small parsers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line1", "line2", "country", "street", "number"),
    [
        ("Hauptstr. 5", "", "DE", "Hauptstr.", "5"),
        ("Hauptstr.5", "", "DE", "Hauptstr.", "5"),
        ("Hauptstraße 5a", "", "DE", "Hauptstraße", "5a"),
        ("Am Markt 12-14", "", "DE", "Am Markt", "12-14"),
        ("Straße des 17. Juni 135", "", "DE", "Straße des 17. Juni", "135"),
        ("Hauptstraße", "5", "DE", "Hauptstraße", "5"),  # the number in the second line
        ("Musterweg 5", "Hinterhaus", "DE", "Musterweg, Hinterhaus", "5"),
        ("Calle Mayor, 5", "", "ES", "Calle Mayor", "5"),
        ("Kalverstraat 92 hs", "", "NL", "Kalverstraat", "92 hs"),
        ("5 Main St", "", "US", "Main St", "5"),
        ("5 Main St", "", "DE", "Main St", "5"),  # no trailing number: the leading one
        ("123 Route 66", "", "US", "Route 66", "123"),  # the country's custom decides
        ("221B Baker Street", "", "GB", "Baker Street", "221B"),
        ("12 rue de la Paix", "", "FR", "rue de la Paix", "12"),
        ("Main St", "Apt 4", "US", "Main St, Apt 4", ""),
        ("Straße des 17. Juni", "", "DE", "Straße des 17. Juni", ""),  # nothing to split
        ("", "Hauptstr. 5", "DE", "Hauptstr.", "5"),
    ],
)
def test_split_street(line1: str, line2: str, country: str, street: str, number: str) -> None:
    assert split_street(line1, line2, country) == (street, number)


def test_locale_and_money() -> None:
    assert [locale(v) for v in ("de", "de-DE", "en_US", "pt-br", "zh-Hant-TW", "", None, "deutsch")] == [
        "de",
        "de-DE",
        "en-US",
        "pt-BR",
        "zh-TW",
        None,
        None,
        None,
    ]
    assert [money(Decimal(v)) for v in ("29.95", "1E+1", "-3", "0.123456")] == ["29.95", "10", "0", "0.1235"]


# ----- CSV ---------------------------------------------------------------------------------------------------------
HEADER = (
    "order_number,email,currency,ordered_at,delivered_at,locale,ship_name,ship_street,ship_house_number,"
    "ship_postal_code,ship_city,ship_country,line_item_id,sku,name,quantity,unit_price,tags,paid_total,category"
)
GOOD = [
    "A-1,erika@example.com,EUR,2026-11-15T10:00:00Z,2026-11-20,de,Erika Mustermann,Musterweg,5,10115,Berlin,DE,"
    "L1,SHIRT-M,Shirt M,2,29.95,summer|sale,,tops",
    "A-1,,,,2026-11-20,,,,,,,,L2,JEANS-32,Jeans,1,79.00,,70.00,",
    "B-2,max@example.com,eur,2026-11-16T10:00:00Z,,,Max Muster,Hauptstr.,1,80331,München,de,L1,CAP,Cap,1,15.00,,,",
]


def parse(lines: list[str], max_rows: int = 100) -> Any:
    return parse_orders_csv("\n".join([HEADER, *lines]) + "\n", validate_order, max_rows=max_rows)


def test_csv_rows_become_orders() -> None:
    batch = parse(GOOD)
    assert batch.errors == [] and batch.rows == 3 and batch.failed == 0
    a, b = batch.valid
    assert a.order_number == "A-1" and a.rows == [2, 3]
    assert a.data is not None and b.data is not None
    assert [i["line_item_id"] for i in a.data["items"]] == ["L1", "L2"]
    assert a.data["items"][0]["tags"] == ["summer", "sale"]
    assert a.data["items"][0]["delivered_at"] == datetime(2026, 11, 20, tzinfo=UTC)  # a date alone: midnight UTC
    assert a.data["items"][1]["paid_total"] == "70.00"
    assert a.data["items"][0]["category"] == "tops" and a.data["items"][1].get("category") is None
    assert b.data["currency"] == "EUR" and b.data["shipping_address"]["country"] == "DE"  # upper-cased


def test_a_bad_row_fails_its_whole_order_and_is_named() -> None:
    bad = GOOD[1].replace(",1,79.00,", ",x,79.00,")
    batch = parse([GOOD[0], bad, GOOD[2]])
    assert [e.to_dict() for e in batch.errors] == [
        {
            "row": 3,
            "field": "quantity",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        }
    ]
    assert [o.order_number for o in batch.valid] == ["B-2"] and batch.failed == 1


def test_csv_order_level_conflicts_duplicates_and_bad_country() -> None:
    lines = [
        GOOD[0],
        GOOD[1].replace("A-1,,", "A-1,other@example.com,"),  # contradicts row 2
        GOOD[2].replace(",de,L1,", ",Bavaria,L1,"),
        GOOD[2].replace(
            "B-2,max@example.com,eur,2026-11-16T10:00:00Z,,,Max Muster,Hauptstr.,1,80331,München,de", "B-2,,,,,,,,,,,"
        ),
    ]
    batch = parse(lines)
    found = {(e.row, e.field) for e in batch.errors}
    assert (3, "email") in found  # differs from row 2
    assert (4, "ship_country") in found
    assert (5, "line_item_id") in found  # L1 twice in B-2
    assert batch.valid == [] and batch.failed == 2


def test_csv_file_level_problems_are_422() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_orders_csv("order_number,email\nA,b@c.de\n", validate_order, max_rows=10)
    assert ["header", "currency"] in [e["loc"] for e in caught.value.errors]
    with pytest.raises(ValidationFailed):
        parse_orders_csv("", validate_order, max_rows=10)
    with pytest.raises(ValidationFailed) as caught:
        parse(GOOD, max_rows=2)
    assert "at most 2" in caught.value.detail
    with pytest.raises(ValidationFailed):
        parse_orders_csv(HEADER + '\n"A-1,unterminated\n', validate_order, max_rows=10)


def test_csv_semicolons_decimal_commas_bom_blank_lines_and_unknown_columns() -> None:
    text = (
        "\ufeff" + HEADER.replace(",", ";") + ";note\n\n" + GOOD[0].replace(",", ";").replace("29.95", "29,95") + ";x\n"
    )
    batch = parse_orders_csv(text, validate_order, max_rows=10)
    assert batch.errors == [] and batch.ignored_columns == ["note"]
    assert batch.valid[0].rows == [3]  # the blank line is row 2
    assert batch.valid[0].data is not None and batch.valid[0].data["items"][0]["unit_price"] == "29.95"


def test_csv_error_locations_of_the_upsert_map_to_rows() -> None:
    order = parse(GOOD).valid[0]
    assert order.error_at(("items", 1, "quantity"), "already in returns").to_dict() == {
        "row": 3,
        "field": "quantity",
        "message": "already in returns",
    }
    assert order.error_at(("shipping_address", "city"), "x").field == "ship_city"
    assert order.error_at(("email",), "x").row == 2


# ----- signatures ----------------------------------------------------------------------------------------------------
def test_shop_signatures_are_base64_hmac_sha256_of_the_raw_body() -> None:
    # shared/vectors has no vendor vector for Shopify or WooCommerce (only the scheme): the digest is anchored on the
    # Sendcloud vendor vector (same HMAC, hex there), and checked against an independent computation.
    assert not list(VECTORS.glob("*shopify*")) and not list(VECTORS.glob("*woo*"))
    sendcloud_hex = "1eed4b3d41f4653ac64fd56f1bf1cbfd349e4482cbc11dff7134bd93e5da4b0a"
    expected = base64.b64encode(bytes.fromhex(sendcloud_hex)).decode()
    assert verify_shopify("secretkey", b'{"key": "value"}', expected)
    assert verify_woocommerce("secretkey", b'{"key": "value"}', expected)
    body = b'{"id":820982911946154508,"name":"#1001"}'
    independent = base64.b64encode(hmac.new(b"whsec", body, hashlib.sha256).digest()).decode()
    assert base64_hmac("whsec", body) == independent
    assert verify_shopify("whsec", body, independent)
    assert not verify_shopify("whsec", body + b" ", independent)  # other bytes
    assert not verify_shopify("other", body, independent)
    assert not verify_shopify("whsec", body, None) and not verify_shopify("whsec", body, "")


def test_woocommerce_keys_with_html_entities_like_wordpress() -> None:
    # WC_Webhook::generate_signature keys with wp_specialchars_decode($secret, ENT_QUOTES)
    assert woocommerce_key("a&amp;b&lt;c&#039;d&quot;") == "a&b<c'd\""
    assert woocommerce_key("&amp;lt;") == "&lt;"  # one pass, like strtr
    body = b'{"id":727}'
    assert woocommerce_signature("a&amp;b", body) == base64_hmac("a&b", body)
    assert verify_woocommerce("plain-secret", body, base64_hmac("plain-secret", body))


def test_payload_helpers_do_not_mutate_input() -> None:
    payload = shopify_payload()
    before = copy.deepcopy(payload)
    shopify_order(payload)
    assert payload == before


def test_the_csv_example_in_the_docs_gives_the_report_the_docs_show() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "shops.md").read_text()
    example = re.search(r"```csv\n(.*?)```", doc, re.DOTALL)
    shown = re.search(r"```json\n(.*?)```", doc, re.DOTALL)
    assert example and shown
    batch = parse_orders_csv(example.group(1), validate_order, max_rows=10)
    report = json.loads(shown.group(1).replace('"imp_..."', '""').replace('"..."', '""'))
    assert (batch.rows, len(batch.orders), len(batch.valid), batch.failed) == (
        report["rows"],
        report["orders"],
        report["imported"],
        report["failed"],
    )
    assert [e.to_dict() for e in batch.errors] == report["errors"]


def test_times_out_of_the_calendar_and_absurd_amounts_are_422_not_errors() -> None:
    with pytest.raises(ValidationFailed) as caught:
        shopify_order(shopify_payload(created_at="9999-12-31T23:59:59-05:00"))
    assert caught.value.errors[0]["loc"] == ["created_at"]
    payload = shopify_payload()
    payload["line_items"][0]["price"] = "1e999999"
    with pytest.raises(ValidationFailed) as caught:
        shopify_order(payload)
    assert caught.value.errors[0]["loc"] == ["line_items", 0, "price"]
    batch = parse([GOOD[0].replace("2026-11-15T10:00:00Z", "9999-12-31T23:59:59-05:00")])
    assert [(e.row, e.field) for e in batch.errors] == [(2, "ordered_at")] and batch.failed == 1
    assert (
        validate_order(
            {**validated(shopify_order(shopify_payload()), validate_order), "ordered_at": "9999-12-31T23:59:59-05:00"}
        )[0]
        is None
    )
