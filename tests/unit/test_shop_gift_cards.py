"""Store credit as a Shopify gift card (GraphQL Admin API `giftCardCreate`, `giftCards`) against recorded HTTP.

Every recorded answer follows a shape Shopify documents for API version 2025-07: `GiftCardCreatePayload`
(`giftCard`, `userErrors` of `GiftCardUserError` with `code`/`field`/`message`), `GiftCard` (`id`,
`lastCharacters`, `note`, `initialValue` as MoneyV2), the `giftCards` connection's `nodes`, `Shop.currencyCode`,
the THROTTLED error with `extensions.cost`. No test touches the network: `responses` answers, and a request nobody
recorded fails the test.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import responses

from chalicelib.adapters.shops.base import GiftCardRequest, ShopError, ShopGiftCardTarget
from chalicelib.adapters.shops.shopify import ShopifyRefunds

SHOP_DOMAIN = "boomerang-test.myshopify.com"
SHOPIFY_URL = f"https://{SHOP_DOMAIN}/admin/api/2026-04/graphql.json"
SHOPIFY_TOKEN = "shpat_3c9f1e7d2b8a4c6e"
CODE_KEY = "gck_7d1e9a3b5c2f4e6a8b0c"

ORDER = "5001"
ORDER_GID = f"gid://shopify/Order/{ORDER}"
CUSTOMER_GID = "gid://shopify/Customer/42"
CARD_GID = "gid://shopify/GiftCard/9101"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def a_request(**overrides: Any) -> GiftCardRequest:
    fields: dict[str, Any] = {
        "refund_id": f"rf_{uuid.uuid4().hex[:12]}",
        "currency": "EUR",
        "amount": Decimal("27.5"),  # the refund (25.00) plus a 10 % bonus, computed by the caller
        "note": "store credit",
        "customer_email": "ada@example.com",
        "order_external_id": ORDER,
    }
    fields.update(overrides)
    return GiftCardRequest(**fields)


def shopify(key: str | None = CODE_KEY) -> ShopifyRefunds:
    return ShopifyRefunds(SHOP_DOMAIN, SHOPIFY_TOKEN, requests.Session(), gift_card_code_key=key)


def body_of(call: Any) -> dict[str, Any]:
    raw = call.request.body
    data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    assert isinstance(data, dict)
    return data


def cost_extensions(requested: int = 10, available: float = 1990.0, restore: float = 100.0) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": restore},
        }
    }


def order_context(currency: str = "EUR", customer: str | None = CUSTOMER_GID) -> dict[str, Any]:
    # Shop.currencyCode and Order.customer, as the GiftCardOrder query reads them.
    return {
        "data": {
            "shop": {"currencyCode": currency},
            "order": {"id": ORDER_GID, "customer": {"id": customer} if customer else None},
        },
        "extensions": cost_extensions(),
    }


def gift_card(refund_id: str, code: str, amount: str = "27.50", *, currency: str = "EUR") -> dict[str, Any]:
    # GiftCard: never the code itself, only its last four characters.
    return {
        "id": CARD_GID,
        "lastCharacters": code[-4:],
        "note": f"Boomerang refund {refund_id}: store credit",
        "initialValue": {"amount": amount, "currencyCode": currency},
    }


def created(card: dict[str, Any]) -> dict[str, Any]:
    # GiftCardCreatePayload: giftCard + userErrors.
    return {"data": {"giftCardCreate": {"giftCard": card, "userErrors": []}}, "extensions": cost_extensions()}


def refused(*errors: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"giftCardCreate": {"giftCard": None, "userErrors": list(errors)}}}


def code_taken() -> dict[str, Any]:
    return refused({"code": "TAKEN", "field": ["input", "code"], "message": "Code has already been taken"})


def search_result(*cards: dict[str, Any]) -> dict[str, Any]:
    # The giftCards connection, as the GiftCardsByCode query reads it.
    return {"data": {"giftCards": {"nodes": list(cards)}}, "extensions": cost_extensions()}


def assert_secret_free(text: str, code: str) -> None:
    for secret in (SHOPIFY_TOKEN, CODE_KEY, code, code.upper()):
        assert secret not in text


# ----- shared types ------------------------------------------------------------------------------------------
def test_a_gift_card_needs_a_positive_amount() -> None:
    with pytest.raises(ValueError, match="positive"):
        a_request(amount=Decimal(0))
    assert a_request(refund_id="rf_1", note=None).shop_note == "Boomerang refund rf_1"
    assert a_request(refund_id="rf_1", note=" bonus ").shop_note == "Boomerang refund rf_1: bonus"


def test_shopify_issues_gift_cards() -> None:
    target: ShopGiftCardTarget = shopify()
    assert callable(target.create_gift_card) and callable(target.find_gift_card)


def test_the_code_is_a_stable_secret_of_the_refund_within_shopifys_rules() -> None:
    # GiftCardCreateInput.code: 8-20 characters, letters a-z and digits 0-9.
    code = shopify().gift_card_code("rf_1")
    assert re.fullmatch(r"[a-z0-9]{20}", code)
    assert shopify().gift_card_code("rf_1") == code  # the same on every retry, in every process
    assert shopify().gift_card_code("rf_2") != code
    assert shopify(key="another key").gift_card_code("rf_1") != code  # nobody without the key can derive it
    assert shopify(key=None).gift_card_code("rf_1") != code  # falls back to the access token as the key


# ----- create ------------------------------------------------------------------------------------------------
def test_create_reads_the_shop_and_the_order_then_creates_the_card_with_the_documented_input(
    rsps: responses.RequestsMock,
) -> None:
    # Given a shop in EUR and an order with a customer
    request = a_request()
    adapter = shopify()
    code = adapter.gift_card_code(request.refund_id)
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, json=created(gift_card(request.refund_id, code)))

    # When the store credit is issued
    result = adapter.create_gift_card(request)

    # Then the shop's currency and the order's customer were read first, with the token header
    context, create = rsps.calls[0], rsps.calls[1]
    assert context.request.headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN
    assert "shop { currencyCode }" in body_of(context)["query"]
    assert "customer { id }" in body_of(context)["query"]
    assert body_of(context)["variables"] == {"id": ORDER_GID}
    # And giftCardCreate ran without the @idempotent directive (giftCardCreate does not document it)
    sent = body_of(create)
    assert "giftCardCreate(input: $input)" in sent["query"]
    assert "@idempotent" not in sent["query"]
    assert "userErrors { code field message }" in sent["query"]
    assert "giftCardCode" not in sent["query"]  # the code is never asked back
    # And the input carries the value as a decimal string, our code, the marked note and the customer
    card_input = sent["variables"]["input"]
    assert set(card_input) == {"initialValue", "code", "note", "customerId"}
    assert card_input["initialValue"] == "27.50"
    assert card_input["code"] == code
    assert card_input["note"] == f"Boomerang refund {request.refund_id}: store credit"
    assert card_input["customerId"] == CUSTOMER_GID
    # And the result is Shopify's card, with only the code's last characters
    assert result.shop_gift_card_id == CARD_GID
    assert result.amount == Decimal("27.50")
    assert result.currency == "EUR"
    assert result.last_characters == code[-4:]


def test_without_an_order_the_customer_is_looked_up_by_email(rsps: responses.RequestsMock) -> None:
    request = a_request(order_external_id=None, customer_email='ada"x@example.com', note=None)
    adapter = shopify()
    code = adapter.gift_card_code(request.refund_id)
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"data": {"shop": {"currencyCode": "EUR"}, "customers": {"nodes": [{"id": CUSTOMER_GID}]}}},
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=created(gift_card(request.refund_id, code)))

    adapter.create_gift_card(request)

    lookup = body_of(rsps.calls[0])
    assert "customers(first: 1, query: $query)" in lookup["query"]
    assert lookup["variables"] == {"query": 'email:"ada\\"x@example.com"'}
    card_input = body_of(rsps.calls[1])["variables"]["input"]
    assert card_input["customerId"] == CUSTOMER_GID
    assert card_input["note"] == f"Boomerang refund {request.refund_id}"


def test_a_guest_gets_an_unassigned_card(rsps: responses.RequestsMock) -> None:
    request = a_request(order_external_id=None, customer_email=None)
    adapter = shopify()
    rsps.add(responses.POST, SHOPIFY_URL, json={"data": {"shop": {"currencyCode": "EUR"}}})
    rsps.add(responses.POST, SHOPIFY_URL, json=created(gift_card(request.refund_id, adapter.gift_card_code("x"))))

    adapter.create_gift_card(request)

    assert body_of(rsps.calls[0])["variables"] == {}
    assert "customerId" not in body_of(rsps.calls[1])["variables"]["input"]


def test_an_order_without_a_customer_gives_an_unassigned_card(rsps: responses.RequestsMock) -> None:
    request = a_request()
    adapter = shopify()
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context(customer=None))
    rsps.add(responses.POST, SHOPIFY_URL, json=created(gift_card(request.refund_id, "abcd")))

    adapter.create_gift_card(request)

    assert "customerId" not in body_of(rsps.calls[1])["variables"]["input"]


def test_store_credit_in_another_currency_than_the_shops_is_refused_before_creating(
    rsps: responses.RequestsMock,
) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context(currency="USD"))

    with pytest.raises(ShopError, match="USD") as err:
        shopify().create_gift_card(a_request())

    assert not err.value.transient
    assert len(rsps.calls) == 1


def test_an_unknown_order_is_final(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json={"data": {"shop": {"currencyCode": "EUR"}, "order": None}})

    with pytest.raises(ShopError, match="5001 was not found") as err:
        shopify().create_gift_card(a_request())

    assert not err.value.transient


def test_user_errors_are_a_final_refusal_naming_the_field(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=refused(
            {"code": "GIFT_CARD_LIMIT_EXCEEDED", "field": ["input", "initialValue"], "message": "Value is too high"},
            {"code": "INVALID", "field": None, "message": "Customer is blocked"},
        ),
    )

    with pytest.raises(ShopError) as err:
        shopify().create_gift_card(a_request())

    assert not err.value.transient
    assert err.value.detail == "Shopify refused the gift card: initialValue: Value is too high; Customer is blocked"


def test_a_message_echoing_the_code_never_shows_it(rsps: responses.RequestsMock) -> None:
    request = a_request()
    adapter = shopify()
    code = adapter.gift_card_code(request.refund_id)
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=refused({"code": "INVALID", "field": ["input", "code"], "message": f"Code {code.upper()} is invalid"}),
    )

    with pytest.raises(ShopError) as err:
        adapter.create_gift_card(request)

    assert err.value.detail == "Shopify refused the gift card: code: Code *** is invalid"
    assert_secret_free(str(err.value), code)


def test_throttled_is_transient_with_the_wait_for_the_query_cost(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": cost_extensions(requested=10, available=5.0, restore=100.0),
        },
    )

    with pytest.raises(ShopError) as err:
        shopify().create_gift_card(a_request())

    assert err.value.transient
    assert err.value.retry_after == 0.05


def test_http_429_is_transient_and_honours_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"errors": "Exceeded 2 calls per second"},
        status=429,
        headers={"Retry-After": "2.0"},
    )

    with pytest.raises(ShopError) as err:
        shopify().create_gift_card(a_request())

    assert err.value.transient
    assert err.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(
    rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    request = a_request()
    adapter = shopify()
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, body="<html>oops</html>", status=status)

    with pytest.raises(ShopError) as err:
        adapter.create_gift_card(request)

    assert err.value.transient
    assert err.value.retry_after is None
    # And the failure is logged with the shop, method, status and path only: never the code or the token
    (record,) = [r for r in caplog.records if r.getMessage() == "shop request failed"]
    fields = {k: record.__dict__.get(k) for k in ("shop", "method", "path", "status")}
    assert fields == {"shop": "shopify", "method": "POST", "path": "/admin/api/2026-04/graphql.json", "status": status}
    assert_secret_free(repr(record.__dict__), adapter.gift_card_code(request.refund_id))


def test_http_refusals_name_the_gift_card_and_rejected_credentials_are_final(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json={"errors": f"[API] Invalid access token {SHOPIFY_TOKEN}"}, status=401)
    rsps.add(responses.POST, SHOPIFY_URL, json={"errors": "Not Found"}, status=404)

    with pytest.raises(ShopError) as rejected:
        shopify().create_gift_card(a_request())
    with pytest.raises(ShopError) as not_found:
        shopify().create_gift_card(a_request())

    assert not rejected.value.transient
    assert rejected.value.detail == "Shopify: shop credentials rejected (HTTP 401)."
    assert not_found.value.detail == "Shopify refused the gift card: Not Found"


def test_access_denied_names_the_gift_card_permission(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"errors": [{"message": "Access denied", "extensions": {"code": "ACCESS_DENIED"}}]},
    )

    with pytest.raises(ShopError, match=r"permission to issue gift cards \(ACCESS_DENIED\)"):
        shopify().create_gift_card(a_request())


def test_an_answer_with_neither_card_nor_reason_is_transient(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, json=refused())

    with pytest.raises(ShopError, match="did not confirm") as err:
        shopify().create_gift_card(a_request())

    assert err.value.transient


# ----- retries after a lost answer ----------------------------------------------------------------------------
def test_a_retry_after_a_lost_answer_returns_the_first_card_instead_of_a_second(
    rsps: responses.RequestsMock,
) -> None:
    # Given a first attempt whose answer was lost (Shopify made the card, we never heard)
    request = a_request()
    adapter = shopify()
    code = adapter.gift_card_code(request.refund_id)
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(ShopError) as lost:
        adapter.create_gift_card(request)
    assert lost.value.transient

    # When it is retried: Shopify refuses the code as taken, and the card is found by its code
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, json=code_taken())
    rsps.add(responses.POST, SHOPIFY_URL, json=search_result(gift_card(request.refund_id, code)))
    result = adapter.create_gift_card(request)

    # Then both attempts sent the same code, so Shopify could not make a second card
    first, second = body_of(rsps.calls[1]), body_of(rsps.calls[3])
    assert first["variables"]["input"]["code"] == second["variables"]["input"]["code"] == code
    # And the card of the first attempt is the result
    search = body_of(rsps.calls[4])
    assert "giftCards(first: 5, query: $query)" in search["query"]
    assert search["variables"] == {"query": code}
    assert result.shop_gift_card_id == CARD_GID
    assert result.amount == Decimal("27.50")
    assert result.last_characters == code[-4:]


def test_a_taken_code_whose_card_is_not_searchable_yet_is_transient(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_context())
    rsps.add(responses.POST, SHOPIFY_URL, json=code_taken())
    rsps.add(responses.POST, SHOPIFY_URL, json=search_result())

    with pytest.raises(ShopError, match="could not be read yet") as err:
        shopify().create_gift_card(a_request())

    assert err.value.transient


def test_find_finds_the_card_after_a_lost_answer(rsps: responses.RequestsMock) -> None:
    request = a_request()
    adapter = shopify()
    code = adapter.gift_card_code(request.refund_id)
    other = {**gift_card("rf_other", "zzzz9999"), "id": "gid://shopify/GiftCard/1"}
    rsps.add(responses.POST, SHOPIFY_URL, json=search_result(other, gift_card(request.refund_id, code)))

    found = adapter.find_gift_card(request)

    assert body_of(rsps.calls[0])["variables"] == {"query": code}
    assert found is not None
    assert found.shop_gift_card_id == CARD_GID
    assert found.amount == Decimal("27.50")
    assert found.currency == "EUR"
    assert found.last_characters == code[-4:]


def test_find_is_none_when_no_card_exists(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=search_result())

    assert shopify().find_gift_card(a_request()) is None


def test_find_ignores_cards_that_merely_match_the_search(rsps: responses.RequestsMock) -> None:
    request = a_request()
    rsps.add(responses.POST, SHOPIFY_URL, json=search_result(gift_card(request.refund_id, "not-ours-wxyz")))

    assert shopify().find_gift_card(request) is None
