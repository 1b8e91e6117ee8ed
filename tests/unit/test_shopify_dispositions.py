"""The warehouse's verdict on a Shopify return (GraphQL Admin API `Order.returns`, `reverseFulfillmentOrderDispose`)
against recorded HTTP.

Every recorded answer follows a shape Shopify documents: `Order.returns` (a ReturnConnection with `nodes` and
`pageInfo`), `Return.status` (ReturnStatus) and `Return.reverseFulfillmentOrders`, `ReverseFulfillmentOrder.status`
(ReverseFulfillmentOrderStatus) and `lineItems`, `ReverseFulfillmentOrderLineItem` (`id`, `totalQuantity`,
`dispositions { type quantity }`, `fulfillmentLineItem { lineItem { id } }`), `ReverseFulfillmentOrderDisposePayload`
(`reverseFulfillmentOrderLineItems`, `userErrors` of `ReturnUserError` with `code`/`field`/`message`), the THROTTLED
error with `extensions.cost`. No test touches the network: `responses` answers, and a request nobody recorded fails
the test. As `responses` repeats the last answer recorded for a URL, "no mutation" is asserted by counting calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from chalicelib.adapters.shops.base import DISPOSITION_TYPES, DispositionLine, DispositionResult, ShopError
from chalicelib.adapters.shops.shopify import (
    DEFAULT_API_VERSION,
    GRADE_DISPOSITIONS,
    MISSING_DISPOSITION,
    ORDER_RETURNS_QUERY,
    RETURNS_PAGE,
    REVERSE_FULFILLMENT_LINE_ITEMS_PAGE,
    REVERSE_FULFILLMENT_ORDER_DISPOSE_MUTATION,
    REVERSE_FULFILLMENT_ORDERS_PAGE,
    ShopifyRefunds,
)

SHOP_DOMAIN = "boomerang-test.myshopify.com"
SHOPIFY_URL = f"https://{SHOP_DOMAIN}/admin/api/{DEFAULT_API_VERSION}/graphql.json"
SHOPIFY_TOKEN = "shpat_3c9f1e7d2b8a4c6e"

ORDER = "5001"
ORDER_GID = f"gid://shopify/Order/{ORDER}"
LOCATION = "66001"
LOCATION_GID = f"gid://shopify/Location/{LOCATION}"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def shopify() -> ShopifyRefunds:
    return ShopifyRefunds(SHOP_DOMAIN, SHOPIFY_TOKEN, requests.Session())


def body_of(call: Any) -> dict[str, Any]:
    raw = call.request.body
    data = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    assert isinstance(data, dict)
    return data


def rfo_line_gid(n: int) -> str:
    return f"gid://shopify/ReverseFulfillmentOrderLineItem/{n}"


def rfo_line(n: int, line: str, total: int, *dispositions: tuple[str, int]) -> dict[str, Any]:
    """A ReverseFulfillmentOrderLineItem returning `total` units of the order's line item `line`."""
    return {
        "id": rfo_line_gid(n),
        "totalQuantity": total,
        "dispositions": [{"type": kind, "quantity": quantity} for kind, quantity in dispositions],
        "fulfillmentLineItem": {"lineItem": {"id": f"gid://shopify/LineItem/{line}"}},
    }


def rfo(n: int, *lines: dict[str, Any], status: str = "OPEN", more: bool = False) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ReverseFulfillmentOrder/{n}",
        "status": status,
        "lineItems": {"pageInfo": {"hasNextPage": more}, "nodes": list(lines)},
    }


def a_return(n: int, *rfos: dict[str, Any], status: str = "OPEN", more: bool = False) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/Return/{n}",
        "status": status,
        "reverseFulfillmentOrders": {"pageInfo": {"hasNextPage": more}, "nodes": list(rfos)},
    }


def order_returns(*returns: dict[str, Any], more: bool = False) -> dict[str, Any]:
    return {
        "data": {"order": {"id": ORDER_GID, "returns": {"pageInfo": {"hasNextPage": more}, "nodes": list(returns)}}}
    }


def disposed_answer(*items: dict[str, Any], user_errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "data": {
            "reverseFulfillmentOrderDispose": {
                "reverseFulfillmentOrderLineItems": None if user_errors else list(items),
                "userErrors": user_errors or [],
            }
        }
    }


def cost_extensions(requested: int, available: float, restore: float) -> dict[str, Any]:
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": None,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": available, "restoreRate": restore},
        }
    }


def throttled(requested: int = 660, available: float = 10.0, restore: float = 100.0) -> dict[str, Any]:
    return {
        "errors": [
            {
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }
        ],
        "extensions": cost_extensions(requested, available, restore),
    }


# ----- shared types ---------------------------------------------------------------------------------------------
def test_grades_map_to_shopify_disposition_types() -> None:
    assert GRADE_DISPOSITIONS == {"A": "RESTOCKED", "B": "PROCESSING_REQUIRED", "C": "NOT_RESTOCKED"}
    assert {*GRADE_DISPOSITIONS.values(), MISSING_DISPOSITION} == DISPOSITION_TYPES


def test_disposition_line_accepts_only_shopify_types_and_positive_quantities() -> None:
    with pytest.raises(ValueError, match="disposition_type"):
        DispositionLine("801", 1, "RETURN")
    with pytest.raises(ValueError, match="quantity"):
        DispositionLine("801", 0, "RESTOCKED")
    assert DispositionLine("801", 2, "MISSING").quantity == 2


def test_the_returns_query_stays_under_shopifys_single_query_cost_limit() -> None:
    # Connection: 2 + first x node (+1 for pageInfo); object: 1. A line item: itself, dispositions,
    # fulfillmentLineItem, lineItem, charged one more each to leave room for the estimate being off.
    line_item = 5
    line_items = 2 + 1 + REVERSE_FULFILLMENT_LINE_ITEMS_PAGE * line_item
    reverse_orders = 2 + 1 + REVERSE_FULFILLMENT_ORDERS_PAGE * (1 + line_items)
    returns = 2 + 1 + RETURNS_PAGE * (1 + reverse_orders)
    assert 1 + returns < 1000
    assert f"returns(first: {RETURNS_PAGE})" in ORDER_RETURNS_QUERY


# ----- the mutation -----------------------------------------------------------------------------------------------
def test_the_verdict_is_disposed_field_by_field(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1), rfo_line(102, "802", 3)))),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer(rfo_line(101, "801", 1, ("RESTOCKED", 1))))
    lines = [
        DispositionLine("801", 1, GRADE_DISPOSITIONS["A"]),
        DispositionLine("802", 1, GRADE_DISPOSITIONS["B"]),
        DispositionLine("802", 1, GRADE_DISPOSITIONS["C"]),
        DispositionLine("802", 1, MISSING_DISPOSITION),
    ]

    result = shopify().dispose_returned_items(ORDER, lines, LOCATION)

    assert result == DispositionResult(disposed=4, skipped=0, shopify_return_found=True)
    assert len(rsps.calls) == 2
    query, mutation = (body_of(call) for call in rsps.calls)
    assert query == {"query": ORDER_RETURNS_QUERY, "variables": {"id": ORDER_GID}}
    assert mutation["query"] == REVERSE_FULFILLMENT_ORDER_DISPOSE_MUTATION
    assert "reverseFulfillmentOrderDispose(dispositionInputs: $dispositionInputs)" in mutation["query"]
    assert mutation["variables"] == {
        "dispositionInputs": [
            {
                "reverseFulfillmentOrderLineItemId": rfo_line_gid(101),
                "quantity": 1,
                "dispositionType": "RESTOCKED",
                "locationId": LOCATION_GID,
            },
            {
                "reverseFulfillmentOrderLineItemId": rfo_line_gid(102),
                "quantity": 1,
                "dispositionType": "PROCESSING_REQUIRED",
                "locationId": LOCATION_GID,
            },
            {
                "reverseFulfillmentOrderLineItemId": rfo_line_gid(102),
                "quantity": 1,
                "dispositionType": "NOT_RESTOCKED",
                "locationId": LOCATION_GID,
            },
            {
                "reverseFulfillmentOrderLineItemId": rfo_line_gid(102),
                "quantity": 1,
                "dispositionType": "MISSING",
                "locationId": LOCATION_GID,
            },
        ]
    }
    for call in rsps.calls:
        assert call.request.headers["X-Shopify-Access-Token"] == SHOPIFY_TOKEN


def test_lines_of_one_type_on_one_item_are_sent_as_one_input(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 3)))))
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(
        ORDER, [DispositionLine("801", 1, "RESTOCKED"), DispositionLine("801", 2, "RESTOCKED")], LOCATION
    )

    assert result == DispositionResult(2, 0, True)
    assert body_of(rsps.calls[1])["variables"]["dispositionInputs"] == [
        {
            "reverseFulfillmentOrderLineItemId": rfo_line_gid(101),
            "quantity": 3,
            "dispositionType": "RESTOCKED",
            "locationId": LOCATION_GID,
        }
    ]


def test_a_line_returned_in_two_returns_is_spread_over_both(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(
            a_return(1, rfo(11, rfo_line(101, "801", 1, ("RESTOCKED", 1)))),  # an earlier unit, recorded already
            a_return(2, rfo(21, rfo_line(201, "801", 1))),
            a_return(3, rfo(31, rfo_line(301, "801", 1))),
        ),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(ORDER, [DispositionLine("801", 3, "RESTOCKED")], LOCATION)

    assert result == DispositionResult(1, 0, True)
    inputs = body_of(rsps.calls[1])["variables"]["dispositionInputs"]
    assert [(i["reverseFulfillmentOrderLineItemId"], i["quantity"]) for i in inputs] == [
        (rfo_line_gid(201), 1),
        (rfo_line_gid(301), 1),
    ]


def test_non_restocked_items_need_no_location(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 2)))))
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(
        ORDER, [DispositionLine("801", 1, "NOT_RESTOCKED"), DispositionLine("801", 1, "MISSING")], None
    )

    assert result == DispositionResult(2, 0, True)
    assert body_of(rsps.calls[1])["variables"]["dispositionInputs"] == [
        {"reverseFulfillmentOrderLineItemId": rfo_line_gid(101), "quantity": 1, "dispositionType": "NOT_RESTOCKED"},
        {"reverseFulfillmentOrderLineItemId": rfo_line_gid(101), "quantity": 1, "dispositionType": "MISSING"},
    ]


def test_restocked_items_without_a_location_are_refused_before_anything_is_sent(
    rsps: responses.RequestsMock,
) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1)))))

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], None)

    assert not err.value.transient
    assert "location_id" in err.value.detail
    assert len(rsps.calls) == 1


# ----- idempotency ----------------------------------------------------------------------------------------------
def test_an_already_partially_disposed_line_disposes_only_the_rest(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 3, ("RESTOCKED", 1))))),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(ORDER, [DispositionLine("801", 3, "RESTOCKED")], LOCATION)

    assert result == DispositionResult(1, 0, True)
    [only] = body_of(rsps.calls[1])["variables"]["dispositionInputs"]
    assert only["reverseFulfillmentOrderLineItemId"] == rfo_line_gid(101)
    assert only["quantity"] == 2


def test_units_disposed_otherwise_leave_only_the_rest_of_the_total(rsps: responses.RequestsMock) -> None:
    # Someone marked one unit NOT_RESTOCKED in Shopify: of our three RESTOCKED only two still fit the total.
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 3, ("NOT_RESTOCKED", 1))))),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(ORDER, [DispositionLine("801", 3, "RESTOCKED")], LOCATION)

    assert result == DispositionResult(1, 0, True)
    [only] = body_of(rsps.calls[1])["variables"]["dispositionInputs"]
    assert (only["quantity"], only["dispositionType"]) == (2, "RESTOCKED")


def test_a_second_call_after_everything_was_disposed_sends_no_mutation(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(
            a_return(
                1,
                rfo(
                    11,
                    rfo_line(101, "801", 1, ("RESTOCKED", 1)),
                    rfo_line(102, "802", 2, ("PROCESSING_REQUIRED", 1), ("NOT_RESTOCKED", 1)),
                ),
            )
        ),
    )
    lines = [
        DispositionLine("801", 1, "RESTOCKED"),
        DispositionLine("802", 1, "PROCESSING_REQUIRED"),
        DispositionLine("802", 1, "NOT_RESTOCKED"),
    ]

    result = shopify().dispose_returned_items(ORDER, lines, LOCATION)

    assert result == DispositionResult(disposed=0, skipped=3, shopify_return_found=True)
    assert len(rsps.calls) == 1


def test_a_retry_after_a_lost_answer_disposes_nothing_twice(rsps: responses.RequestsMock) -> None:
    # The first mutation went through but its answer was lost; the retry reads the dispositions it made.
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 2)))))
    rsps.add(responses.POST, SHOPIFY_URL, body=requests.ReadTimeout("read timed out"))
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 2, ("RESTOCKED", 1), ("NOT_RESTOCKED", 1))))),
    )
    lines = [DispositionLine("801", 1, "RESTOCKED"), DispositionLine("801", 1, "NOT_RESTOCKED")]
    adapter = shopify()

    with pytest.raises(ShopError) as err:
        adapter.dispose_returned_items(ORDER, lines, LOCATION)
    assert err.value.transient

    assert adapter.dispose_returned_items(ORDER, lines, LOCATION) == DispositionResult(0, 2, True)
    assert len(rsps.calls) == 3


def test_the_whole_verdict_again_records_only_what_is_new(rsps: responses.RequestsMock) -> None:
    # One unit was graded A and recorded; the second unit arrived later, graded C.
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 2, ("RESTOCKED", 1))))),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())

    result = shopify().dispose_returned_items(
        ORDER, [DispositionLine("801", 1, "RESTOCKED"), DispositionLine("801", 1, "NOT_RESTOCKED")], LOCATION
    )

    assert result == DispositionResult(disposed=1, skipped=1, shopify_return_found=True)
    [only] = body_of(rsps.calls[1])["variables"]["dispositionInputs"]
    assert (only["quantity"], only["dispositionType"]) == (1, "NOT_RESTOCKED")


# ----- which returns count ------------------------------------------------------------------------------------
def test_no_shopify_return_means_no_mutation(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns())
    lines = [DispositionLine("801", 1, "RESTOCKED"), DispositionLine("802", 1, "NOT_RESTOCKED")]

    result = shopify().dispose_returned_items(ORDER, lines, LOCATION)

    assert result == DispositionResult(disposed=0, skipped=2, shopify_return_found=False)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", ["CANCELED", "DECLINED", "CLOSED"])
def test_canceled_declined_and_closed_returns_are_left_alone(rsps: responses.RequestsMock, status: str) -> None:
    rsps.add(
        responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1)), status=status))
    )

    result = shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert result == DispositionResult(0, 1, False)
    assert len(rsps.calls) == 1


def test_closed_reverse_fulfillment_orders_and_unknown_lines_are_skipped(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(
            a_return(
                1,
                rfo(11, rfo_line(101, "801", 1), status="CANCELED"),
                rfo(12, rfo_line(102, "802", 1)),
            ),
            a_return(2, rfo(21, rfo_line(201, "803", 1), status="CLOSED")),
        ),
    )
    rsps.add(responses.POST, SHOPIFY_URL, json=disposed_answer())
    lines = [
        DispositionLine("801", 1, "RESTOCKED"),  # only in a canceled reverse fulfillment order
        DispositionLine("802", 1, "RESTOCKED"),
        DispositionLine("803", 1, "RESTOCKED"),  # only in a completed one
        DispositionLine("999", 1, "RESTOCKED"),  # in no return at all
    ]

    result = shopify().dispose_returned_items(ORDER, lines, LOCATION)

    assert result == DispositionResult(disposed=1, skipped=3, shopify_return_found=True)
    inputs = body_of(rsps.calls[1])["variables"]["dispositionInputs"]
    assert [i["reverseFulfillmentOrderLineItemId"] for i in inputs] == [rfo_line_gid(102)]


def test_a_cut_off_answer_with_unplaced_units_sends_nothing(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1), more=True))),
    )

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("802", 1, "RESTOCKED")], LOCATION)

    assert not err.value.transient
    assert "Nothing was sent" in err.value.detail
    assert len(rsps.calls) == 1


def test_an_unknown_order_is_a_final_error(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json={"data": {"order": None}})

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert not err.value.transient
    assert err.value.detail == f"Shopify: order {ORDER} was not found in the shop."


# ----- failures -----------------------------------------------------------------------------------------------
def test_user_errors_are_a_final_refusal_naming_the_field(rsps: responses.RequestsMock) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1)))))
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json=disposed_answer(
            user_errors=[
                {
                    "code": "INVALID",
                    "field": ["dispositionInputs", "0", "locationId"],
                    "message": "Location is not active",
                }
            ]
        ),
    )

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert not err.value.transient
    assert err.value.detail == (
        "Shopify refused the disposition: dispositionInputs.0.locationId: Location is not active"
    )
    assert SHOPIFY_TOKEN not in str(err.value)


@pytest.mark.parametrize("step", ["query", "mutation"])
def test_throttled_is_transient_with_the_wait_for_the_query_cost(rsps: responses.RequestsMock, step: str) -> None:
    if step == "mutation":
        rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1)))))
    rsps.add(responses.POST, SHOPIFY_URL, json=throttled(requested=660, available=10.0, restore=100.0))

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert err.value.transient
    assert err.value.retry_after == 6.5


def test_http_429_is_transient_and_honours_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"errors": "Exceeded 2 calls per second"},
        status=429,
        headers={"Retry-After": "2.0"},
    )

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert err.value.transient
    assert err.value.retry_after == 2.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_the_mutation_are_transient(rsps: responses.RequestsMock, status: int) -> None:
    rsps.add(responses.POST, SHOPIFY_URL, json=order_returns(a_return(1, rfo(11, rfo_line(101, "801", 1)))))
    rsps.add(responses.POST, SHOPIFY_URL, body="<html>oops</html>", status=status)

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert err.value.transient
    assert err.value.retry_after is None


def test_access_denied_names_the_returns_scopes(rsps: responses.RequestsMock) -> None:
    rsps.add(
        responses.POST,
        SHOPIFY_URL,
        json={"errors": [{"message": "Access denied for returns field.", "extensions": {"code": "ACCESS_DENIED"}}]},
    )

    with pytest.raises(ShopError) as err:
        shopify().dispose_returned_items(ORDER, [DispositionLine("801", 1, "RESTOCKED")], LOCATION)

    assert not err.value.transient
    assert "read_returns" in err.value.detail
    assert "write_returns" in err.value.detail
