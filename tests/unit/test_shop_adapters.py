"""The shop refund adapters (Shopify GraphQL Admin API, WooCommerce REST API) against recorded HTTP.

Every recorded answer follows a shape the vendor documents (Shopify: `Order.transactions`, `Order.refunds`,
`RefundCreatePayload`, the THROTTLED error with `extensions.cost`; WooCommerce: the order refund resource and the
``{code, message, data: {status}}`` error). No test touches the network: `responses` answers, and a request nobody
recorded fails the test.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from chalicelib.adapters.shops.base import (
    ShopError,
    ShopRefundLine,
    ShopRefundRequest,
    ShopRefundTarget,
    carries_marker,
    money_string,
)
from chalicelib.adapters.shops.shopify import RESTOCK_TYPES, ShopifyRefunds
from chalicelib.adapters.shops.woocommerce import WooCommerceRefunds

SHOP_DOMAIN = "boomerang-test.myshopify.com"
SHOPIFY_URL = f"https://{SHOP_DOMAIN}/admin/api/2026-04/graphql.json"
SHOPIFY_TOKEN = "shpat_3c9f1e7d2b8a4c6e"
WOO_BASE = "https://shop.example.com"
WOO_KEY = "ck_5b1d9e8f7a6c4b3a2d1e"
WOO_SECRET = "cs_9e8d7c6b5a4f3e2d1c0b"
SECRETS = (SHOPIFY_TOKEN, WOO_KEY, WOO_SECRET)

ORDER = "5001"
ORDER_GID = f"gid://shopify/Order/{ORDER}"
AUTH_TX = "gid://shopify/OrderTransaction/7001"
CAPTURE_TX = "gid://shopify/OrderTransaction/7002"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def a_refund_id() -> str:
    return f"rf_{uuid.uuid4().hex[:12]}"


def a_request(**overrides: Any) -> ShopRefundRequest:
    fields: dict[str, Any] = {
        "refund_id": a_refund_id(),
        "order_external_id": ORDER,
        "currency": "EUR",
        "amount": Decimal("34.9"),
        "lines": (
            ShopRefundLine("801", 1, Decimal("19.95"), "restock"),
            ShopRefundLine("802", 2, Decimal("10"), "refurbish"),
        ),
        "note": "damaged in transit",
        "location_id": "66001",
        "shipping_amount": Decimal("4.95"),
    }
    fields.update(overrides)
    return ShopRefundRequest(**fields)


def body_of(call: Any) -> dict[str, Any]:
    raw = call.request.body
    data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    assert isinstance(data, dict)
    return data


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# ----- shared types -------------------------------------------------------------------------------------------
def test_refund_line_accepts_only_known_restock_choices() -> None:
    with pytest.raises(ValueError, match="restock"):
        ShopRefundLine("1", 1, Decimal(1), "return")
    with pytest.raises(ValueError, match="quantity"):
        ShopRefundLine("1", 0, Decimal(1), "restock")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [(Decimal("12.3"), "EUR", "12.30"), (Decimal("12.345"), "EUR", "12.35"), (Decimal("1200.4"), "JPY", "1200")],
)
def test_money_strings_carry_exactly_the_minor_units(amount: Decimal, currency: str, expected: str) -> None:
    assert money_string(amount, currency) == expected


def test_marker_matches_our_refund_only() -> None:
    assert carries_marker("Boomerang refund rf_1", "rf_1")
    assert carries_marker("Boomerang refund rf_1: damaged", "rf_1")
    assert not carries_marker("Boomerang refund rf_12", "rf_1")
    assert not carries_marker("Refund rf_1", "rf_1")
    assert not carries_marker(None, "rf_1")


def test_both_adapters_are_refund_targets() -> None:
    session = requests.Session()
    targets: list[ShopRefundTarget] = [
        ShopifyRefunds(SHOP_DOMAIN, SHOPIFY_TOKEN, session),
        WooCommerceRefunds(WOO_BASE, WOO_KEY, WOO_SECRET, session),
    ]
    assert all(callable(t.refund) and callable(t.find_refund) for t in targets)


# ----- Shopify ------------------------------------------------------------------------------------------------
def money_bag(amount: str, currency: str = "EUR") -> dict[str, Any]:
    return {"presentmentMoney": {"amount": amount, "currencyCode": currency}}


def transaction(
    tx_id: str,
    kind: str,
    amount: str,
    *,
    status: str = "SUCCESS",
    parent: str | None = None,
    gateway: str = "shopify_payments",
) -> dict[str, Any]:
    return {
        "id": tx_id,
        "gateway": gateway,
        "kind": kind,
        "status": status,
        "parentTransaction": {"id": parent} if parent else None,
        "amountSet": money_bag(amount),
    }


def cost_extensions(requested: int = 12, available: float = 1988.0, restore: float = 100.0) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": restore},
        }
    }


def order_transactions(*transactions: dict[str, Any], currency: str = "EUR") -> dict[str, Any]:
    # Order.transactions, as the GraphQL Admin API answers the OrderTransactions query.
    return {
        "data": {"order": {"id": ORDER_GID, "presentmentCurrencyCode": currency, "transactions": list(transactions)}},
        "extensions": cost_extensions(),
    }


def paid_order() -> dict[str, Any]:
    return order_transactions(
        transaction(AUTH_TX, "AUTHORIZATION", "59.90"),
        transaction(CAPTURE_TX, "CAPTURE", "59.90", parent=AUTH_TX),
    )


def shopify_refund(refund_id: str, amount: str, *, refund_gid: str = "gid://shopify/Refund/9001") -> dict[str, Any]:
    return {
        "id": refund_gid,
        "note": f"Boomerang refund {refund_id}: damaged in transit",
        "totalRefundedSet": money_bag(amount),
        "transactions": {
            "nodes": [{"id": "gid://shopify/OrderTransaction/7003", "kind": "REFUND", "status": "SUCCESS"}]
        },
    }


def refund_created(refund: dict[str, Any]) -> dict[str, Any]:
    # RefundCreatePayload: refund + userErrors.
    return {"data": {"refundCreate": {"refund": refund, "userErrors": []}}, "extensions": cost_extensions()}


def shopify(session: requests.Session | None = None) -> ShopifyRefunds:
    return ShopifyRefunds(SHOP_DOMAIN, SHOPIFY_TOKEN, session or requests.Session())


def test_shopify_refund_reads_the_transactions_then_creates_the_refund_idempotently(
    rsps: responses.RequestsMock,
) -> None:
    # Given a captured order and a refund of two lines plus shipping
    request = a_request()
    rsps.add(responses.POST, SHOPIFY_URL, json=paid_order())
    rsps.add(responses.POST, SHOPIFY_URL, json=refund_created(shopify_refund(request.refund_id, "34.90")))

    # When it is sent
    result = shopify().refund(request)

    # Then the order's transactions were read first, with the token header
    lookup, create = rsps.calls[0], rsps.calls[1]
    assert lookup.request.headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN
    assert "transactions" in body_of(lookup)["query"]
    assert body_of(lookup)["variables"] == {"id": ORDER_GID}
    # And refundCreate carries our refund id as the idempotency key
    sent = body_of(create)
    assert "refundCreate(input: $input) @idempotent(key: $idempotencyKey)" in sent["query"]
    assert sent["variables"]["idempotencyKey"] == request.refund_id
    refund_input = sent["variables"]["input"]
    assert refund_input["orderId"] == ORDER_GID
    assert refund_input["currency"] == "EUR"
    assert refund_input["note"] == f"Boomerang refund {request.refund_id}: damaged in transit"
    assert refund_input["notify"] is False
    assert refund_input["refundLineItems"] == [
        {
            "lineItemId": "gid://shopify/LineItem/801",
            "quantity": 1,
            "restockType": "RETURN",
            "locationId": "gid://shopify/Location/66001",
        },
        {"lineItemId": "gid://shopify/LineItem/802", "quantity": 2, "restockType": "NO_RESTOCK"},
    ]
    assert refund_input["shipping"] == {"amount": "4.95"}
    # And the money goes back against the successful capture, as a decimal string
    assert refund_input["transactions"] == [
        {
            "orderId": ORDER_GID,
            "parentId": CAPTURE_TX,
            "gateway": "shopify_payments",
            "kind": "REFUND",
            "amount": "34.90",
        }
    ]
    # And the result is Shopify's refund
    assert result.shop_refund_id == "gid://shopify/Refund/9001"
    assert result.amount == Decimal("34.90")
    assert result.currency == "EUR"
    assert result.raw_status == "SUCCESS"


@pytest.mark.parametrize(
    ("restock", "restock_type"), [("restock", "RETURN"), ("refurbish", "NO_RESTOCK"), ("no_restock", "NO_RESTOCK")]
)
def test_shopify_restock_mapping(rsps: responses.RequestsMock, restock: str, restock_type: str) -> None:
    request = a_request(lines=(ShopRefundLine("801", 1, Decimal("34.90"), restock),), shipping_amount=Decimal(0))
    rsps.add(responses.POST, SHOPIFY_URL, json=paid_order())
    rsps.add(responses.POST, SHOPIFY_URL, json=refund_created(shopify_refund(request.refund_id, "34.90")))

    shopify().refund(request)

    (line,) = body_of(rsps.calls[1])["variables"]["input"]["refundLineItems"]
    assert RESTOCK_TYPES[restock] == restock_type
    assert line["restockType"] == restock_type
    # a location only where stock goes back; no shipping key when no shipping is refunded
    assert ("locationId" in line) is (restock_type == "RETURN")
    assert "shipping" not in body_of(rsps.calls[1])["variables"]["input"]


def test_shopify_splits_the_refund_over_the_payments_left_to_refund(rsps: responses.RequestsMock) -> None:
    # Given a gift card sale (10.00, 4.00 of it already refunded) and a card sale (50.00), and a failed attempt
    gift, card, failed = (f"gid://shopify/OrderTransaction/{n}" for n in (11, 12, 13))
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_transactions(
            transaction(gift, "SALE", "10.00", gateway="gift_card"),
            transaction(failed, "SALE", "50.00", status="FAILURE"),
            transaction(card, "SALE", "50.00"),
            transaction("gid://shopify/OrderTransaction/14", "REFUND", "4.00", parent=gift, gateway="gift_card"),
        ),
    )
    request = a_request(amount=Decimal("20"))
    rsps.add(responses.POST, SHOPIFY_URL, json=refund_created(shopify_refund(request.refund_id, "20.00")))

    shopify().refund(request)

    transactions = body_of(rsps.calls[1])["variables"]["input"]["transactions"]
    assert [(t["parentId"], t["gateway"], t["amount"]) for t in transactions] == [
        (gift, "gift_card", "6.00"),
        (card, "shopify_payments", "14.00"),
    ]


def test_shopify_refuses_more_than_was_paid_without_creating_a_refund(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_transactions(transaction(CAPTURE_TX, "CAPTURE", "20.00")))

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request(amount=Decimal("34.90")))

    assert not err.value.transient
    assert "14.90 EUR" in err.value.detail
    assert len(rsps.calls) == 1


def test_shopify_refuses_a_refund_in_another_currency_than_the_order(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_transactions(transaction(CAPTURE_TX, "CAPTURE", "59.90"), currency="USD"),
    )

    with pytest.raises(ShopError, match="USD") as err:
        shopify().refund(a_request())

    assert not err.value.transient
    assert len(rsps.calls) == 1


def test_shopify_zero_decimal_currency_amounts_have_no_minor_units(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_transactions(transaction(CAPTURE_TX, "CAPTURE", "5000", gateway="shopify_payments"), currency="JPY"),
    )
    request = a_request(currency="JPY", amount=Decimal("1200"), shipping_amount=Decimal("300"))
    rsps.add(responses.POST, SHOPIFY_URL, json=refund_created(shopify_refund(request.refund_id, "1200")))

    shopify().refund(request)

    refund_input = body_of(rsps.calls[1])["variables"]["input"]
    assert refund_input["shipping"] == {"amount": "300"}
    assert refund_input["transactions"][0]["amount"] == "1200"


def test_shopify_unknown_order_is_final(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json={"data": {"order": None}, "extensions": cost_extensions()})

    with pytest.raises(ShopError, match="5001 was not found") as err:
        shopify().refund(a_request())

    assert not err.value.transient


def test_shopify_user_errors_are_a_final_refusal_with_the_messages(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=paid_order())
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={
            "data": {
                "refundCreate": {
                    "refund": None,
                    "userErrors": [
                        {
                            "field": ["refundLineItems", "0", "quantity"],
                            "message": "Quantity cannot refund more items than were purchased",
                        },
                        {"field": ["transactions"], "message": "Amount exceeds refundable amount"},
                    ],
                }
            }
        },
    )

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert not err.value.transient
    assert err.value.detail == (
        "Shopify refused the refund: Quantity cannot refund more items than were purchased; "
        "Amount exceeds refundable amount"
    )


def test_shopify_throttled_is_transient_with_the_wait_for_the_query_cost(rsps: responses.RequestsMock) -> None:
    # The GraphQL Admin API answers a throttled query with HTTP 200, errors[].extensions.code THROTTLED and the cost.
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={
            "errors": [
                {
                    "message": "Throttled",
                    "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
                }
            ],
            "extensions": cost_extensions(requested=152, available=27.0, restore=100.0),
        },
    )

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert err.value.transient
    assert err.value.retry_after == 1.25


def test_shopify_http_429_is_transient_and_honours_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"errors": "Exceeded 2 calls per second"},
        status=429,
        headers={"Retry-After": "2.0"},
    )

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert err.value.transient
    assert err.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_shopify_server_errors_are_transient(rsps: responses.RequestsMock, status: int) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=paid_order())
    rsps.add(responses.POST, SHOPIFY_URL, body="<html>oops</html>", status=status)

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert err.value.transient
    assert err.value.retry_after is None


@pytest.mark.parametrize(
    "failure", [requests.ReadTimeout("read timed out"), requests.ConnectTimeout(), requests.ConnectionError("reset")]
)
def test_shopify_timeouts_and_connection_errors_are_transient(rsps: responses.RequestsMock, failure: Exception) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, body=failure)

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert err.value.transient


@pytest.mark.parametrize("status", [401, 403])
def test_shopify_rejected_credentials_are_final_and_never_echo_the_token(
    rsps: responses.RequestsMock, status: int
) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={
            "errors": f"[API] Invalid API key or access token (unrecognized login or wrong password) {SHOPIFY_TOKEN}"
        },
        status=status,
    )

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert not err.value.transient
    assert "shop credentials rejected" in err.value.detail
    assert_no_secret(str(err.value))


def test_shopify_other_graphql_errors_are_final_and_masked(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={
            "errors": [
                {
                    "message": f"Field 'x' doesn't exist (token {SHOPIFY_TOKEN})",
                    "extensions": {"code": "undefinedField"},
                }
            ]
        },
    )

    with pytest.raises(ShopError) as err:
        shopify().refund(a_request())

    assert not err.value.transient
    assert "Field 'x' doesn't exist" in err.value.detail
    assert_no_secret(err.value.detail)


def order_refunds(*refunds: dict[str, Any]) -> dict[str, Any]:
    # Order.refunds, as the GraphQL Admin API answers the OrderRefunds query.
    return {"data": {"order": {"id": ORDER_GID, "refunds": list(refunds)}}, "extensions": cost_extensions()}


def test_shopify_find_refund_finds_ours_by_the_note(rsps: responses.RequestsMock) -> None:
    request = a_request()
    other = shopify_refund("rf_other", "5.00", refund_gid="gid://shopify/Refund/8001")
    longer = shopify_refund(f"{request.refund_id}9", "6.00", refund_gid="gid://shopify/Refund/8002")
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_refunds({**other, "note": None}, longer, shopify_refund(request.refund_id, "34.90")),
    )

    found = shopify().find_refund(request)

    assert body_of(rsps.calls[0])["variables"] == {"id": ORDER_GID}
    assert "refunds" in body_of(rsps.calls[0])["query"]
    assert found is not None
    assert found.shop_refund_id == "gid://shopify/Refund/9001"
    assert found.amount == Decimal("34.90")
    assert found.currency == "EUR"


def test_shopify_find_refund_is_none_when_the_order_has_no_refund_of_ours(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_refunds(shopify_refund("rf_other", "5.00")))

    assert shopify().find_refund(a_request()) is None


# ----- WooCommerce --------------------------------------------------------------------------------------------
WOO_REFUNDS = f"{WOO_BASE}/wp-json/wc/v3/orders/{ORDER}/refunds"


def woo() -> WooCommerceRefunds:
    return WooCommerceRefunds(WOO_BASE, WOO_KEY, WOO_SECRET, requests.Session())


def woo_refund(
    refund_id: str | None, amount: str, *, shop_id: int = 731, refunded_payment: bool = True
) -> dict[str, Any]:
    # The order refund resource (GET/POST /wp-json/wc/v3/orders/<id>/refunds).
    return {
        "id": shop_id,
        "date_created": "2025-09-01T10:15:00",
        "date_created_gmt": "2025-09-01T08:15:00",
        "amount": amount,
        "reason": f"Boomerang refund {refund_id}: damaged in transit" if refund_id else "goodwill",
        "refunded_by": 1,
        "refunded_payment": refunded_payment,
        "meta_data": [],
        "line_items": [],
        "shipping_lines": [],
        "tax_lines": [],
        "fee_lines": [],
    }


def woo_error(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "data": {"status": status}}


def test_woocommerce_refund_checks_for_ours_then_posts_the_documented_body(rsps: responses.RequestsMock) -> None:
    # Given an order with no refund of ours yet
    request = a_request()
    rsps.add(responses.GET, WOO_REFUNDS, json=[woo_refund(None, "3.00", shop_id=700)])
    rsps.add(responses.POST, WOO_REFUNDS, json=woo_refund(request.refund_id, "34.90"), status=201)

    # When it is sent
    result = woo().refund(request)

    # Then it looked for an earlier one first, one page of 100
    lookup, create = rsps.calls[0], rsps.calls[1]
    assert parse_qs(urlsplit(lookup.request.url).query) == {"per_page": ["100"], "page": ["1"]}
    # And posted with HTTP Basic over https
    expected_auth = "Basic " + base64.b64encode(f"{WOO_KEY}:{WOO_SECRET}".encode()).decode()
    assert create.request.headers["Authorization"] == expected_auth
    assert create.request.url.startswith("https://")
    # And the body has every documented field, money as strings with two decimals
    assert body_of(create) == {
        "amount": "34.90",
        "reason": f"Boomerang refund {request.refund_id}: damaged in transit",
        "line_items": [
            {"id": 801, "quantity": 1, "refund_total": "19.95", "refund_tax": []},
            {"id": 802, "quantity": 2, "refund_total": "10.00", "refund_tax": []},
        ],
        "api_refund": True,
        "api_restock": True,
    }
    assert result.shop_refund_id == "731"
    assert result.amount == Decimal("34.90")
    assert result.currency == "EUR"
    assert result.raw_status == "payment_refunded"


def test_woocommerce_restocks_only_when_a_line_is_restocked(rsps: responses.RequestsMock) -> None:
    request = a_request(
        note=None,
        lines=(
            ShopRefundLine("801", 1, Decimal("10"), "refurbish"),
            ShopRefundLine("802", 1, Decimal("5"), "no_restock"),
        ),
    )
    rsps.add(responses.GET, WOO_REFUNDS, json=[])
    rsps.add(responses.POST, WOO_REFUNDS, json=woo_refund(request.refund_id, "15.00"), status=201)

    woo().refund(request)

    sent = body_of(rsps.calls[1])
    assert sent["api_restock"] is False
    assert sent["reason"] == f"Boomerang refund {request.refund_id}"


def test_woocommerce_refund_whose_answer_was_lost_is_not_refunded_again(rsps: responses.RequestsMock) -> None:
    # Given the shop already holds our refund (the first answer never arrived); no POST is recorded
    request = a_request()
    rsps.add(responses.GET, WOO_REFUNDS, json=[woo_refund(request.refund_id, "34.90", shop_id=744)])

    result = woo().refund(request)

    assert result.shop_refund_id == "744"
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_woocommerce_find_refund_pages_through_the_refunds(rsps: responses.RequestsMock) -> None:
    request = a_request()
    others = [woo_refund(f"{request.refund_id}{n}", "1.00", shop_id=100 + n) for n in range(100)]
    rsps.add(responses.GET, WOO_REFUNDS, json=others)
    rsps.add(responses.GET, WOO_REFUNDS, json=[woo_refund(request.refund_id, "34.90", shop_id=900)])

    found = woo().find_refund(request)

    assert found is not None
    assert found.shop_refund_id == "900"
    assert parse_qs(urlsplit(rsps.calls[1].request.url).query)["page"] == ["2"]


def test_woocommerce_find_refund_is_none_without_ours(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, json=[woo_refund("rf_other", "5.00")])

    assert woo().find_refund(a_request()) is None


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (
            500,
            "woocommerce_rest_cannot_create_order_refund",
            "The payment gateway for this order does not support automatic refunds.",
        ),
        (400, "woocommerce_rest_invalid_order_refund", "Refund amount must be greater than zero."),
        (404, "woocommerce_rest_invalid_order_id", "Invalid order ID."),
    ],
)
def test_woocommerce_refusals_are_final_with_the_message(
    rsps: responses.RequestsMock, status: int, code: str, message: str
) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, json=[])
    rsps.add(responses.POST, WOO_REFUNDS, json=woo_error(code, message, status), status=status)

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert not err.value.transient
    assert err.value.detail == f"WooCommerce refused the refund: {message} ({code})"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, json.dumps(woo_error("internal_server_error", "There has been a critical error on this website.", 500))),
        (502, "<html>Bad gateway</html>"),
        (503, ""),
    ],
)
def test_woocommerce_server_errors_are_transient(rsps: responses.RequestsMock, status: int, body: str) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, json=[])
    rsps.add(responses.POST, WOO_REFUNDS, body=body, status=status)

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert err.value.transient


def test_woocommerce_429_is_transient_and_honours_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, body="", status=429, headers={"Retry-After": "30"})

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert err.value.transient
    assert err.value.retry_after == 30.0


def test_woocommerce_timeout_is_transient(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, json=[])
    rsps.add(responses.POST, WOO_REFUNDS, body=requests.ReadTimeout("read timed out"))

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert err.value.transient


def test_woocommerce_rejected_credentials_are_final_and_never_echo_key_or_secret(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.GET,
        WOO_REFUNDS,
        json=woo_error("woocommerce_rest_authentication_error", f"Consumer key {WOO_KEY} is invalid.", 401),
        status=401,
    )

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert not err.value.transient
    assert "shop credentials rejected" in err.value.detail
    assert_no_secret(str(err.value))


def test_woocommerce_refusal_messages_are_masked(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.GET, WOO_REFUNDS, json=[])
    rsps.add(
        responses.POST,
        WOO_REFUNDS,
        json=woo_error("woocommerce_rest_invalid_order_refund", f"bad request from {WOO_KEY}", 400),
        status=400,
    )

    with pytest.raises(ShopError) as err:
        woo().refund(a_request())

    assert "bad request from ***" in err.value.detail
    assert_no_secret(err.value.detail)


def test_woocommerce_needs_https_and_numeric_ids(rsps: responses.RequestsMock) -> None:
    with pytest.raises(ShopError, match="https"):
        WooCommerceRefunds("http://shop.example.com", WOO_KEY, WOO_SECRET, requests.Session())
    with pytest.raises(ShopError, match="not a WooCommerce id"):
        woo().refund(a_request(order_external_id="../users"))
    assert len(rsps.calls) == 0
