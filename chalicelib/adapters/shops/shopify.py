"""Shopify refunds through the GraphQL Admin API (`refundCreate`).

A refund takes two calls: the order's transactions are read first, because Shopify refunds money against the
order's successful SALE/CAPTURE transactions (the parent), then `refundCreate` runs with the
``@idempotent(key:)`` directive set to our refund id (mandatory from API version 2026-04): a retry with the same
key returns the original refund instead of refunding twice. The refund's note starts with
``Boomerang refund <refund_id>`` so `find_refund` can recognise it in the order's refunds as well.

Restock mapping: ``restock`` -> RETURN (back to stock at `location_id`), ``refurbish`` and ``no_restock`` ->
NO_RESTOCK (a refurbished item reaches stock later, through its work order).

Failures: GraphQL ``THROTTLED`` and HTTP 429 are transient, with the wait Shopify implies (the query cost against
the bucket's restore rate) or states (Retry-After); 5xx, timeouts and connection errors are transient; 401/403 are
"shop credentials rejected"; `userErrors` are Shopify's final refusal, their messages kept.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import requests

from chalicelib.adapters.shops.base import (
    ShopError,
    ShopHttp,
    ShopRefundRequest,
    ShopRefundResult,
    carries_marker,
    json_body,
    money_string,
    parse_amount,
)

DISPLAY_NAME = "Shopify"
DEFAULT_API_VERSION = "2025-07"

#: Our restock choice -> Shopify's RefundLineItemRestockType.
RESTOCK_TYPES: dict[str, str] = {"restock": "RETURN", "refurbish": "NO_RESTOCK", "no_restock": "NO_RESTOCK"}

_MONEY = "presentmentMoney { amount currencyCode }"

ORDER_TRANSACTIONS_QUERY = f"""query OrderTransactions($id: ID!) {{
  order(id: $id) {{
    id
    presentmentCurrencyCode
    transactions {{
      id
      gateway
      kind
      status
      parentTransaction {{ id }}
      amountSet {{ {_MONEY} }}
    }}
  }}
}}"""

ORDER_REFUNDS_QUERY = f"""query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id
    refunds {{
      id
      note
      totalRefundedSet {{ {_MONEY} }}
      transactions(first: 10) {{ nodes {{ id kind status }} }}
    }}
  }}
}}"""

REFUND_CREATE_MUTATION = f"""mutation RefundCreate($input: RefundInput!, $idempotencyKey: String!) {{
  refundCreate(input: $input) @idempotent(key: $idempotencyKey) {{
    refund {{
      id
      note
      totalRefundedSet {{ {_MONEY} }}
      transactions(first: 10) {{ nodes {{ id kind status }} }}
    }}
    userErrors {{ field message }}
  }}
}}"""

_PARENT_KINDS = frozenset({"SALE", "CAPTURE"})
_COUNTED_REFUND_STATUSES = frozenset({"SUCCESS", "PENDING", "AWAITING_RESPONSE"})
_TRANSIENT_GRAPHQL_CODES = frozenset({"THROTTLED", "INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"})


def gid(kind: str, external_id: str) -> str:
    """A Shopify global id ("gid://shopify/Order/123") from a numeric id; a gid is kept as it is."""
    external_id = external_id.strip()
    if external_id.startswith("gid://"):
        return external_id
    if not external_id.isdigit():
        raise ShopError(f"{DISPLAY_NAME}: {kind} id {external_id!r} is not a Shopify id.")
    return f"gid://shopify/{kind}/{external_id}"


class ShopifyRefunds:
    """Refunds in one Shopify store (`shop_domain`, e.g. "example.myshopify.com") with an Admin API access token."""

    name = "shopify"

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        http: requests.Session,
        api_version: str = DEFAULT_API_VERSION,
    ) -> None:
        domain = shop_domain.strip().removeprefix("https://").rstrip("/")
        if not domain or "/" in domain:
            raise ShopError(f"{DISPLAY_NAME}: the shop domain {shop_domain!r} is not a domain name.")
        self.endpoint = f"https://{domain}/admin/api/{api_version}/graphql.json"
        self._token = access_token
        self._http = ShopHttp(http, shop=self.name, display_name=DISPLAY_NAME, secrets=(access_token,))

    # ----- ShopRefundTarget ----------------------------------------------------------------------------------
    def refund(self, request: ShopRefundRequest) -> ShopRefundResult:
        order_id = gid("Order", request.order_external_id)
        order = self._order(ORDER_TRANSACTIONS_QUERY, order_id)
        currency = order.get("presentmentCurrencyCode")
        if isinstance(currency, str) and currency.upper() != request.currency.upper():
            raise ShopError(
                f"{DISPLAY_NAME}: the order is in {currency}, the refund in {request.currency.upper()}; not sent."
            )
        variables = {"idempotencyKey": request.refund_id, "input": refund_input(request, order)}
        data = self._graphql(REFUND_CREATE_MUTATION, variables)
        payload = data.get("refundCreate")
        if not isinstance(payload, dict):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        messages = [e.get("message") for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if messages:
            text = "; ".join(str(m) for m in messages if m) or "the refund was not accepted"
            raise ShopError(self._http.mask(f"{DISPLAY_NAME} refused the refund: {text}"))
        refund = payload.get("refund")
        if not isinstance(refund, dict):
            # Neither a refund nor a reason: retrying with the same idempotency key is safe.
            raise ShopError(f"{DISPLAY_NAME} did not confirm the refund; please try again.", transient=True)
        return _result(refund, request.currency)

    def find_refund(self, request: ShopRefundRequest) -> ShopRefundResult | None:
        order = self._order(ORDER_REFUNDS_QUERY, gid("Order", request.order_external_id))
        for refund in order.get("refunds") or []:
            if isinstance(refund, dict) and carries_marker(refund.get("note"), request.refund_id):
                return _result(refund, request.currency)
        return None

    # ----- HTTP ----------------------------------------------------------------------------------------------
    def _order(self, query: str, order_id: str) -> dict[str, Any]:
        order = self._graphql(query, {"id": order_id}).get("order")
        if not isinstance(order, dict):
            raise ShopError(f"{DISPLAY_NAME}: order {order_id.rsplit('/', 1)[-1]} was not found in the shop.")
        return order

    def _graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = self._http.send(
            "POST",
            self.endpoint,
            describe_error=_describe_http_error,
            ok=(200,),
            headers={
                "X-Shopify-Access-Token": self._token,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            json={"query": query, "variables": variables},
        )
        body = json_body(response)
        if not isinstance(body, dict):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
        if errors:
            raise self._graphql_error(errors, body.get("extensions"))
        data = body.get("data")
        if not isinstance(data, dict):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        return data

    def _graphql_error(self, errors: list[dict[str, Any]], extensions: object) -> ShopError:
        codes = {str((e.get("extensions") or {}).get("code") or "") for e in errors}
        if "THROTTLED" in codes:
            return ShopError(
                f"{DISPLAY_NAME} is busy (query cost limit reached); please try again shortly.",
                transient=True,
                retry_after=throttle_wait(extensions),
            )
        if codes & _TRANSIENT_GRAPHQL_CODES:
            return ShopError(f"{DISPLAY_NAME} had a server error; please try again.", transient=True)
        if "ACCESS_DENIED" in codes:
            return ShopError(f"{DISPLAY_NAME}: the app lacks the permission to refund orders (ACCESS_DENIED).")
        text = "; ".join(str(e.get("message")) for e in errors if e.get("message")) or "the request was rejected"
        return ShopError(self._http.mask(f"{DISPLAY_NAME} refused the request: {text}"))


# ----- request and answer shapes --------------------------------------------------------------------------------
def refund_input(request: ShopRefundRequest, order: dict[str, Any]) -> dict[str, Any]:
    """The `RefundInput` for `request`, refunding against the order's parent transactions."""
    order_id = gid("Order", request.order_external_id)
    location_id = gid("Location", request.location_id) if request.location_id else None
    lines: list[dict[str, Any]] = []
    for line in request.lines:
        restock_type = RESTOCK_TYPES[line.restock]
        item: dict[str, Any] = {
            "lineItemId": gid("LineItem", line.external_line_id),
            "quantity": line.quantity,
            "restockType": restock_type,
        }
        if restock_type == "RETURN" and location_id:
            item["locationId"] = location_id
        lines.append(item)
    data: dict[str, Any] = {
        "orderId": order_id,
        "currency": request.currency.upper(),
        "note": request.shop_note,
        "notify": False,
        "refundLineItems": lines,
        "transactions": refund_transactions(request, order),
    }
    if request.shipping_amount > 0:
        data["shipping"] = {"amount": money_string(request.shipping_amount, request.currency)}
    return data


def refund_transactions(request: ShopRefundRequest, order: dict[str, Any]) -> list[dict[str, Any]]:
    """REFUND transactions for `request.amount`, spread over the successful SALE/CAPTURE transactions in order,
    each taking at most what is still refundable on it (its amount less the refunds already made against it)."""
    currency = request.currency.upper()
    transactions = [t for t in order.get("transactions") or [] if isinstance(t, dict)]
    refunded: dict[str, Decimal] = {}
    for t in transactions:
        parent = (t.get("parentTransaction") or {}).get("id")
        if t.get("kind") == "REFUND" and t.get("status") in _COUNTED_REFUND_STATUSES and parent:
            refunded[parent] = refunded.get(parent, Decimal(0)) + _presentment_amount(t.get("amountSet"))
    remaining = Decimal(money_string(request.amount, currency))
    result: list[dict[str, Any]] = []
    for t in transactions:
        if remaining <= 0:
            break
        if t.get("kind") not in _PARENT_KINDS or t.get("status") != "SUCCESS":
            continue
        available = _presentment_amount(t.get("amountSet")) - refunded.get(str(t.get("id")), Decimal(0))
        share = min(available, remaining)
        if share <= 0:
            continue
        result.append(
            {
                "orderId": gid("Order", request.order_external_id),
                "parentId": t.get("id"),
                "gateway": t.get("gateway"),
                "kind": "REFUND",
                "amount": money_string(share, currency),
            }
        )
        remaining -= share
    if remaining > 0:
        raise ShopError(
            f"{DISPLAY_NAME}: the order has no successful payment left to refund "
            f"{money_string(remaining, currency)} {currency} against; not sent."
        )
    return result


def throttle_wait(extensions: object) -> float | None:
    """Seconds until the query's cost is back in the bucket, from the answer's `extensions.cost`."""
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None
    status = cost.get("throttleStatus") or {}
    try:
        requested = float(cost["requestedQueryCost"])
        available = float(status["currentlyAvailable"])
        restore_rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if restore_rate <= 0:
        return None
    return max(0.0, math.ceil((requested - available) / restore_rate * 100) / 100)


def _presentment_amount(money_bag: object) -> Decimal:
    money = (money_bag or {}).get("presentmentMoney") if isinstance(money_bag, dict) else None
    amount = money.get("amount") if isinstance(money, dict) else None
    return parse_amount(amount, display_name=DISPLAY_NAME)


def _result(refund: dict[str, Any], currency: str) -> ShopRefundResult:
    money = (refund.get("totalRefundedSet") or {}).get("presentmentMoney") or {}
    statuses = sorted(
        {
            str(n.get("status"))
            for n in ((refund.get("transactions") or {}).get("nodes") or [])
            if isinstance(n, dict) and n.get("status")
        }
    )
    return ShopRefundResult(
        shop_refund_id=str(refund.get("id")),
        amount=parse_amount(money.get("amount"), display_name=DISPLAY_NAME),
        currency=str(money.get("currencyCode") or currency.upper()),
        raw_status=",".join(statuses) or "CREATED",
    )


def _describe_http_error(response: requests.Response) -> str | None:
    body = json_body(response)
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, str):
            return errors
        if isinstance(errors, list):
            texts = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
            return "; ".join(texts) or None
    return None
