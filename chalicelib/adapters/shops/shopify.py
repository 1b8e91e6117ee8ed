"""Shopify refunds through the GraphQL Admin API (`refundCreate`).

A refund takes two calls: the order's transactions are read first, because Shopify refunds money against the
order's successful SALE/CAPTURE transactions (the parent), then `refundCreate` runs with the
``@idempotent(key:)`` directive set to our refund id (mandatory from API version 2026-04): a retry with the same
key returns the original refund instead of refunding twice. The refund's note starts with
``Boomerang refund <refund_id>`` so `find_refund` can recognise it in the order's refunds as well.

Restock mapping: ``restock`` -> RETURN (back to stock at `location_id`), ``refurbish`` and ``no_restock`` ->
NO_RESTOCK (a refurbished item reaches stock later, through its work order).

Store credit is a Shopify gift card (`giftCardCreate`); see `ShopifyRefunds.create_gift_card` for how a retry is
kept from issuing a second card.

Where the merchant uses Shopify's own Returns, the warehouse's verdict is recorded on the return's reverse
fulfillment orders (`reverseFulfillmentOrderDispose`); see `ShopifyRefunds.dispose_returned_items`.

Failures: GraphQL ``THROTTLED`` and HTTP 429 are transient, with the wait Shopify implies (the query cost against
the bucket's restore rate) or states (Retry-After); 5xx, timeouts and connection errors are transient; 401/403 are
"shop credentials rejected"; `userErrors` are Shopify's final refusal, their messages kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests

from chalicelib.adapters.http import MASK, json_body
from chalicelib.adapters.shops.base import (
    DispositionLine,
    DispositionResult,
    GiftCardRequest,
    GiftCardResult,
    ShopError,
    ShopHttp,
    ShopRefundRequest,
    ShopRefundResult,
    carries_marker,
    money_string,
    parse_amount,
)

DISPLAY_NAME = "Shopify"
DEFAULT_API_VERSION = "2026-04"  # @idempotent on refundCreate: added in 2026-01, required from 2026-04

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

_GIFT_CARD = "id lastCharacters note initialValue { amount currencyCode }"

GIFT_CARD_CREATE_MUTATION = f"""mutation GiftCardCreate($input: GiftCardCreateInput!) {{
  giftCardCreate(input: $input) {{
    giftCard {{ {_GIFT_CARD} }}
    userErrors {{ code field message }}
  }}
}}"""

GIFT_CARDS_BY_CODE_QUERY = f"""query GiftCardsByCode($query: String!) {{
  giftCards(first: 5, query: $query) {{
    nodes {{ {_GIFT_CARD} }}
  }}
}}"""

SHOP_CURRENCY_QUERY = """query ShopCurrency {
  shop { currencyCode }
}"""

GIFT_CARD_ORDER_QUERY = """query GiftCardOrder($id: ID!) {
  shop { currencyCode }
  order(id: $id) { id customer { id } }
}"""

GIFT_CARD_CUSTOMER_QUERY = """query GiftCardCustomer($query: String!) {
  shop { currencyCode }
  customers(first: 1, query: $query) { nodes { id } }
}"""

_GIFT_CARD_PERMISSION = "issue gift cards"

#: Length of the gift card codes we derive (Shopify allows 8-20 letters a-z and digits 0-9).
GIFT_CARD_CODE_LENGTH = 20

_PARENT_KINDS = frozenset({"SALE", "CAPTURE"})
_COUNTED_REFUND_STATUSES = frozenset({"SUCCESS", "PENDING", "AWAITING_RESPONSE"})
_TRANSIENT_GRAPHQL_CODES = frozenset({"THROTTLED", "INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"})

#: Our grade -> Shopify's ReverseFulfillmentOrderDispositionType: A back to stock, B needs processing first (e.g.
#: refurbishment), C not restocked. An item that was expected but did not arrive is MISSING_DISPOSITION.
GRADE_DISPOSITIONS: dict[str, str] = {"A": "RESTOCKED", "B": "PROCESSING_REQUIRED", "C": "NOT_RESTOCKED"}
MISSING_DISPOSITION = "MISSING"

#: Page sizes of the one query that reads an order's returns. Shopify refuses a query whose requested cost exceeds
#: 1,000 points (MAX_COST_EXCEEDED) before running it, and nested connections multiply: a connection costs 2 plus
#: `first` times its node, each object 1 (shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits). A
#: reverse fulfillment order line item as read here costs about 4 (itself, its dispositions, fulfillmentLineItem,
#: lineItem), so 5 returns x 2 reverse fulfillment orders x 15 line items requests about 660 points (about 810 if
#: every disposition list were charged per line as well); 10 x 10 x 100 would request some 40,000 and be refused.
RETURNS_PAGE = 5
REVERSE_FULFILLMENT_ORDERS_PAGE = 2
REVERSE_FULFILLMENT_LINE_ITEMS_PAGE = 15

ORDER_RETURNS_QUERY = f"""query OrderReturns($id: ID!) {{
  order(id: $id) {{
    id
    returns(first: {RETURNS_PAGE}) {{
      pageInfo {{ hasNextPage }}
      nodes {{
        id
        status
        reverseFulfillmentOrders(first: {REVERSE_FULFILLMENT_ORDERS_PAGE}) {{
          pageInfo {{ hasNextPage }}
          nodes {{
            id
            status
            lineItems(first: {REVERSE_FULFILLMENT_LINE_ITEMS_PAGE}) {{
              pageInfo {{ hasNextPage }}
              nodes {{
                id
                totalQuantity
                dispositions {{ type quantity }}
                fulfillmentLineItem {{ lineItem {{ id }} }}
              }}
            }}
          }}
        }}
      }}
    }}
  }}
}}"""

REVERSE_FULFILLMENT_ORDER_DISPOSE_MUTATION = """mutation ReverseFulfillmentOrderDispose(
  $dispositionInputs: [ReverseFulfillmentOrderDisposeInput!]!
) {
  reverseFulfillmentOrderDispose(dispositionInputs: $dispositionInputs) {
    reverseFulfillmentOrderLineItems { id totalQuantity dispositions { type quantity } }
    userErrors { code field message }
  }
}"""

_RETURNS_PERMISSION = "read and dispose of returns (read_returns, write_returns)"
#: ReturnStatus values of a return that no longer takes dispositions: canceled, declined, completed.
_CLOSED_RETURN_STATUSES = frozenset({"CANCELED", "DECLINED", "CLOSED"})
#: ReverseFulfillmentOrderStatus values of a reverse fulfillment order that is canceled or completed.
_CLOSED_REVERSE_FULFILLMENT_STATUSES = frozenset({"CANCELED", "CLOSED"})


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
        *,
        gift_card_code_key: str | None = None,
    ) -> None:
        """`gift_card_code_key`: the secret gift card codes are derived from (see `gift_card_code`); it must stay
        the same for the shop's lifetime. Without it the access token is used, so rotating the token while a
        gift card's answer is lost would let its retry issue a second card."""
        domain = shop_domain.strip().removeprefix("https://").rstrip("/")
        if not domain or "/" in domain:
            raise ShopError(f"{DISPLAY_NAME}: the shop domain {shop_domain!r} is not a domain name.")
        self.endpoint = f"https://{domain}/admin/api/{api_version}/graphql.json"
        self._token = access_token
        self._code_key = gift_card_code_key or access_token
        secrets = (access_token, gift_card_code_key or "")
        self._http = ShopHttp(http, shop=self.name, display_name=DISPLAY_NAME, secrets=secrets)

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

    # ----- ShopGiftCardTarget --------------------------------------------------------------------------------
    def create_gift_card(self, request: GiftCardRequest) -> GiftCardResult:
        """A gift card worth `request.amount` in the shop's currency, noted ``Boomerang refund <refund_id>``,
        assigned to the order's customer (else to the customer with `customer_email`, when there is one).

        Safe to retry after a lost answer. `giftCardCreate` does not take the ``@idempotent(key:)`` directive that
        `refundCreate` does: Shopify's changelog "Adding idempotency for inventory adjustments and refund
        mutations" (effective 2026-01, made mandatory in 2026-04) lists the mutations that do, and gift cards are
        not among them; nor does any version document the directive before 2026-01. The card's code is what makes
        creation idempotent instead:

        - `GiftCardCreateInput.code` is ours to choose: "8-20 characters long and contain only letters (a-z) and
          numbers (0-9). It isn't case sensitive" (shopify.dev/docs/api/admin-graphql/2025-07/input-objects/
          GiftCardCreateInput). We send `gift_card_code(refund_id)`, an HMAC of the refund id: the same on every
          retry, unguessable without the key.
        - Codes are unique in a shop ("Each gift card has a unique code", REST Admin API GiftCard resource), and
          a taken one is refused with `GiftCardUserError` code ``TAKEN`` (enum `GiftCardErrorCode`): a retry
          after the first card was made cannot make another; it finds the first instead (`find_gift_card`).
        - The `giftCards` query's default search term covers the code ("a case-insensitive search of multiple
          fields in a document, including gift card codes", example ``query=a5bh6h64b329j4k7``,
          shopify.dev/docs/api/admin-graphql/2025-07/queries/giftCards). There is no search by note, so the
          note marker alone could not find the card again.

        The code is a bearer credential: it never appears in a log line, an error message or the result (only
        `lastCharacters` does). Telling the customer the code is left to Shopify's gift card notification; this
        adapter sends none. Scopes: ``write_gift_cards``, ``read_gift_cards``, ``read_orders`` (and
        ``read_customers`` when the customer is looked up by email).
        """
        code = self.gift_card_code(request.refund_id)
        with _code_masked(code):
            currency, customer_id = self._gift_card_context(request)
            if currency.upper() != request.currency.upper():
                raise ShopError(
                    f"{DISPLAY_NAME}: the shop issues gift cards in {currency.upper()}, the store credit is in "
                    f"{request.currency.upper()}; not sent."
                )
            data = self._gift_card_graphql(
                GIFT_CARD_CREATE_MUTATION, {"input": gift_card_input(request, code, customer_id)}
            )
            payload = data.get("giftCardCreate")
            if not isinstance(payload, dict):
                raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
            errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
            if any(_code_taken(e) for e in errors):
                existing = self._gift_card_by_code(code, request.currency)
                if existing is not None:
                    return existing
                # Ours by construction, but not (yet) in the search: Shopify's search may lag behind a creation.
                raise ShopError(
                    f"{DISPLAY_NAME}: the gift card for refund {request.refund_id} exists but could not be read "
                    "yet; please try again.",
                    transient=True,
                )
            if errors:
                raise ShopError(
                    self._http.mask(f"{DISPLAY_NAME} refused the gift card: {describe_user_errors(errors)}")
                )
            card = payload.get("giftCard")
            if not isinstance(card, dict):
                # Neither a card nor a reason: a retry sends the same code, so it cannot make a second card.
                raise ShopError(f"{DISPLAY_NAME} did not confirm the gift card; please try again.", transient=True)
            return _gift_card_result(card, request.currency)

    def find_gift_card(self, request: GiftCardRequest) -> GiftCardResult | None:
        """The gift card made for `request.refund_id`, or None when there is none (searched by its code)."""
        code = self.gift_card_code(request.refund_id)
        with _code_masked(code):
            return self._gift_card_by_code(code, request.currency)

    def gift_card_code(self, refund_id: str) -> str:
        """The code of the gift card for `refund_id`: 20 characters of base32 (a-z, 2-7) of an HMAC-SHA256 of
        the refund id, 100 bits that only the key's holder can compute. A bearer credential: never log it."""
        digest = hmac.new(self._code_key.encode(), f"boomerang gift card {refund_id}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").lower()[:GIFT_CARD_CODE_LENGTH]

    def _gift_card_by_code(self, code: str, currency: str) -> GiftCardResult | None:
        # The search may match other fields too; only a card ending in our code's last characters is ours. The
        # note is not required to carry the marker: a merchant may edit it (GiftCardUpdateInput.note).
        data = self._gift_card_graphql(GIFT_CARDS_BY_CODE_QUERY, {"query": code})
        cards = _object(data.get("giftCards")).get("nodes")
        if not isinstance(cards, list):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        for card in cards:
            last = card.get("lastCharacters") if isinstance(card, dict) else None
            if isinstance(last, str) and last and code.lower().endswith(last.lower()):
                return _gift_card_result(card, currency)
        return None

    def _gift_card_context(self, request: GiftCardRequest) -> tuple[str, str | None]:
        """The shop's currency (gift cards are issued in it: `initialValue` has no currency) and the customer to
        assign the card to, read in one query: the order's customer when the order is known, else the customer
        with `customer_email`, else nobody."""
        if request.order_external_id:
            order_id = gid("Order", request.order_external_id)
            data = self._gift_card_graphql(GIFT_CARD_ORDER_QUERY, {"id": order_id})
            order = data.get("order")
            if not isinstance(order, dict):
                raise ShopError(f"{DISPLAY_NAME}: order {order_id.rsplit('/', 1)[-1]} was not found in the shop.")
            customer_id = _object(order.get("customer")).get("id")
        elif request.customer_email and request.customer_email.strip():
            query = f"email:{_search_value(request.customer_email.strip())}"
            data = self._gift_card_graphql(GIFT_CARD_CUSTOMER_QUERY, {"query": query})
            nodes = _object(data.get("customers")).get("nodes")
            customer_id = _object(nodes[0]).get("id") if isinstance(nodes, list) and nodes else None
        else:
            data = self._gift_card_graphql(SHOP_CURRENCY_QUERY, {})
            customer_id = None
        currency = _object(data.get("shop")).get("currencyCode")
        if not isinstance(currency, str) or not currency:
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        return currency, customer_id if isinstance(customer_id, str) and customer_id else None

    # ----- Shopify Returns: dispositions ---------------------------------------------------------------------
    def dispose_returned_items(
        self, order_external_id: str, lines: Sequence[DispositionLine], location_id: str | None
    ) -> DispositionResult:
        """Records the warehouse's verdict (`GRADE_DISPOSITIONS`, or MISSING) on the order's Shopify return, for
        merchants who use Shopify's own Returns; `location_id` is the Shopify location restocked items go to.

        One query reads the order's returns with their reverse fulfillment orders and line items (`Order.returns`,
        `Return.reverseFulfillmentOrders`, `ReverseFulfillmentOrder.lineItems`); returns that are CANCELED,
        DECLINED or CLOSED (`ReturnStatus`) and reverse fulfillment orders that are CANCELED or CLOSED
        (`ReverseFulfillmentOrderStatus`) are left alone. Our lines are matched through the order's line item
        (`ReverseFulfillmentOrderLineItem.fulfillmentLineItem.lineItem`, ``gid://shopify/LineItem/<id>``). Then one
        `reverseFulfillmentOrderDispose` records what is still to record, or nothing is sent at all.

        Idempotent by construction, so safe to retry after a lost answer: Shopify keeps every disposition on the
        line item (`ReverseFulfillmentOrderLineItem.dispositions`), and what is sent is read from them afresh on
        every call. A line item never takes more than its `totalQuantity` less the quantities already disposed,
        and units already disposed with a line's disposition type count towards that line first. Hence pass the
        order's whole verdict so far on every call, not only what is new: a second call with the same lines finds
        everything recorded and sends no mutation. (Dispositions carry no note of who made them: units the
        merchant disposed by hand with the same type count as ours; this errs towards recording too little,
        never twice.)

        `DispositionResult.disposed` counts the lines this call recorded units for, `skipped` the lines with
        nothing (left) to record, among them lines whose item is in no open return. An order without a return
        in Shopify (or with only closed ones) gives ``DispositionResult(0, len(lines), False)`` and no mutation.

        Errors: RESTOCKED units without `location_id` are refused before anything is sent
        (`ReverseFulfillmentOrderDisposeInput.locationId` "is required when the disposition type is RESTOCKED");
        `userErrors` (`ReturnUserError`) are Shopify's final refusal, named by field; throttling and 5xx are
        transient as for refunds. Scopes: ``read_returns`` and ``write_returns`` (and ``read_orders``, which
        `fulfillmentLineItem` needs and refunds need anyway).
        """
        order_id = gid("Order", order_external_id)
        location = gid("Location", location_id) if location_id else None
        order = self._returns_graphql(ORDER_RETURNS_QUERY, {"id": order_id}).get("order")
        if not isinstance(order, dict):
            raise ShopError(f"{DISPLAY_NAME}: order {order_id.rsplit('/', 1)[-1]} was not found in the shop.")
        found, items, truncated = open_return_items(order)
        if not found:
            return DispositionResult(disposed=0, skipped=len(lines), shopify_return_found=False)
        plan = plan_dispositions(lines, items)
        if plan.unplaced and truncated:
            raise ShopError(
                f"{DISPLAY_NAME}: order {order_id.rsplit('/', 1)[-1]} has more returns or return lines than are "
                "read at once; record the verdict in Shopify's admin. Nothing was sent."
            )
        if not plan.quantities:
            return DispositionResult(disposed=0, skipped=plan.skipped, shopify_return_found=True)
        if location is None and any(kind == "RESTOCKED" for _, kind in plan.quantities):
            raise ShopError(
                f"{DISPLAY_NAME}: restocked items need a location (location_id) to go back to; nothing was sent."
            )
        inputs: list[dict[str, Any]] = []
        for (item_id, kind), quantity in plan.quantities.items():
            entry: dict[str, Any] = {
                "reverseFulfillmentOrderLineItemId": item_id,
                "quantity": quantity,
                "dispositionType": kind,
            }
            if location:
                entry["locationId"] = location
            inputs.append(entry)
        data = self._returns_graphql(REVERSE_FULFILLMENT_ORDER_DISPOSE_MUTATION, {"dispositionInputs": inputs})
        payload = data.get("reverseFulfillmentOrderDispose")
        if not isinstance(payload, dict):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            raise ShopError(
                self._http.mask(f"{DISPLAY_NAME} refused the disposition: {describe_return_errors(errors)}")
            )
        return DispositionResult(disposed=plan.disposed, skipped=plan.skipped, shopify_return_found=True)

    def _returns_graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return self._graphql(query, variables, subject="disposition", permission=_RETURNS_PERMISSION)

    # ----- HTTP ----------------------------------------------------------------------------------------------
    def _gift_card_graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        return self._graphql(query, variables, subject="gift card", permission=_GIFT_CARD_PERMISSION)

    def _order(self, query: str, order_id: str) -> dict[str, Any]:
        order = self._graphql(query, {"id": order_id}).get("order")
        if not isinstance(order, dict):
            raise ShopError(f"{DISPLAY_NAME}: order {order_id.rsplit('/', 1)[-1]} was not found in the shop.")
        return order

    def _graphql(
        self, query: str, variables: dict[str, Any], *, subject: str = "refund", permission: str = "refund orders"
    ) -> dict[str, Any]:
        """The answer's `data`; `subject` is what an HTTP refusal refuses, `permission` what ACCESS_DENIED lacks."""
        response = self._http.send(
            "POST",
            self.endpoint,
            describe_error=_describe_http_error,
            subject=subject,
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
            raise self._graphql_error(errors, body.get("extensions"), permission)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        return data

    def _graphql_error(self, errors: list[dict[str, Any]], extensions: object, permission: str) -> ShopError:
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
            return ShopError(f"{DISPLAY_NAME}: the app lacks the permission to {permission} (ACCESS_DENIED).")
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


def gift_card_input(request: GiftCardRequest, code: str, customer_id: str | None) -> dict[str, Any]:
    """The `GiftCardCreateInput` for `request`: the value as a decimal string, our code, the marked note."""
    data: dict[str, Any] = {
        "initialValue": money_string(request.amount, request.currency),
        "code": code,
        "note": request.shop_note,
    }
    if customer_id:
        data["customerId"] = customer_id
    return data


def describe_user_errors(errors: list[dict[str, Any]]) -> str:
    """`GiftCardUserError`s as "field: message" (the path without its leading "input"), joined with "; "."""
    texts: list[str] = []
    for error in errors:
        path = [str(part) for part in error.get("field") or [] if part is not None]
        if path and path[0] == "input":
            path = path[1:]
        message = str(error.get("message") or error.get("code") or "not accepted")
        texts.append(f"{'.'.join(path)}: {message}" if path else message)
    return "; ".join(texts) or "the gift card was not accepted"


@dataclass(frozen=True)
class OpenReturnItem:
    """A line item of an open reverse fulfillment order, as far as disposing it is concerned."""

    id: str  # the ReverseFulfillmentOrderLineItem's gid
    line_item_id: str  # the order's LineItem gid it returns
    remaining: int  # totalQuantity less every disposition so far
    disposed: dict[str, int]  # units disposed so far, by disposition type


@dataclass
class DispositionPlan:
    """What one `reverseFulfillmentOrderDispose` is to record, and how our lines fared."""

    #: (reverse fulfillment order line item gid, disposition type) -> units to dispose
    quantities: dict[tuple[str, str], int] = field(default_factory=dict)
    disposed: int = 0  # lines with units to record
    skipped: int = 0  # lines with nothing (left) to record
    unplaced: bool = False  # some units found no line item with room for them


def open_return_items(order: dict[str, Any]) -> tuple[bool, list[OpenReturnItem], bool]:
    """From an `ORDER_RETURNS_QUERY` answer: whether the order has a return that is not canceled, declined or
    closed; the line items of its open reverse fulfillment orders; and whether a page was cut off."""
    returns, truncated = _connection_nodes(order.get("returns"))
    found = False
    items: list[OpenReturnItem] = []
    for shop_return in returns:
        if shop_return.get("status") in _CLOSED_RETURN_STATUSES:
            continue
        found = True
        reverse_orders, more = _connection_nodes(shop_return.get("reverseFulfillmentOrders"))
        truncated = truncated or more
        for reverse_order in reverse_orders:
            if reverse_order.get("status") in _CLOSED_REVERSE_FULFILLMENT_STATUSES:
                continue
            nodes, more = _connection_nodes(reverse_order.get("lineItems"))
            truncated = truncated or more
            items.extend(item for item in map(_open_return_item, nodes) if item is not None)
    return found, items, truncated


def plan_dispositions(lines: Sequence[DispositionLine], items: Sequence[OpenReturnItem]) -> DispositionPlan:
    """The units still to record for `lines`: for each line, its quantity less the units already disposed with its
    type on the same order line item (consumed line by line), placed on the matching line items in the order read,
    none beyond a line item's `remaining`."""
    plan = DispositionPlan()
    already: dict[tuple[str, str], int] = {}
    for item in items:
        for kind, quantity in item.disposed.items():
            already[(item.line_item_id, kind)] = already.get((item.line_item_id, kind), 0) + quantity
    room = {item.id: item.remaining for item in items}
    for line in lines:
        line_item_id = gid("LineItem", line.external_line_id)
        key = (line_item_id, line.disposition_type)
        covered = min(already.get(key, 0), line.quantity)
        already[key] = already.get(key, 0) - covered
        need = line.quantity - covered
        placed = 0
        for item in items:
            if item.line_item_id != line_item_id:
                continue
            take = min(need - placed, room[item.id])
            if take > 0:
                target = (item.id, line.disposition_type)
                plan.quantities[target] = plan.quantities.get(target, 0) + take
                room[item.id] -= take
                placed += take
        if placed:
            plan.disposed += 1
        else:
            plan.skipped += 1
        if placed < need:
            plan.unplaced = True
    return plan


def describe_return_errors(errors: list[dict[str, Any]]) -> str:
    """`ReturnUserError`s as "field: message" (e.g. "dispositionInputs.0.locationId: ..."), joined with "; "."""
    texts: list[str] = []
    for error in errors:
        path = [str(part) for part in error.get("field") or [] if part is not None]
        message = str(error.get("message") or error.get("code") or "not accepted")
        texts.append(f"{'.'.join(path)}: {message}" if path else message)
    return "; ".join(texts) or "the disposition was not accepted"


def _connection_nodes(connection: object) -> tuple[list[dict[str, Any]], bool]:
    """A connection's nodes and whether it has a next page."""
    nodes = _object(connection).get("nodes")
    if not isinstance(nodes, list):
        raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
    more = _object(_object(connection).get("pageInfo")).get("hasNextPage") is True
    return [node for node in nodes if isinstance(node, dict)], more


def _open_return_item(node: dict[str, Any]) -> OpenReturnItem | None:
    """None when the item names no order line item (`fulfillmentLineItem` is nullable): nothing to match it by."""
    item_id = node.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
    total = _count(node.get("totalQuantity"))
    line_item_id = _object(_object(node.get("fulfillmentLineItem")).get("lineItem")).get("id")
    if not isinstance(line_item_id, str) or not line_item_id:
        return None
    disposed: dict[str, int] = {}
    for disposition in node.get("dispositions") or []:
        kind = _object(disposition).get("type")
        if not isinstance(kind, str):
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        disposed[kind] = disposed.get(kind, 0) + _count(_object(disposition).get("quantity"))
    return OpenReturnItem(item_id, line_item_id, max(0, total - sum(disposed.values())), disposed)


def _count(value: object) -> int:
    """A quantity from Shopify's answer (a non-negative Int)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
    return value


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


def _gift_card_result(card: dict[str, Any], currency: str) -> GiftCardResult:
    money = _object(card.get("initialValue"))
    last = card.get("lastCharacters")
    return GiftCardResult(
        shop_gift_card_id=str(card.get("id")),
        amount=parse_amount(money.get("amount"), display_name=DISPLAY_NAME),
        currency=str(money.get("currencyCode") or currency.upper()),
        last_characters=last if isinstance(last, str) and last else None,
    )


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _code_taken(error: dict[str, Any]) -> bool:
    """Whether a userError says the code is taken, i.e. the card of this refund was made by an earlier attempt."""
    field = [str(part) for part in error.get("field") or []]
    return error.get("code") == "TAKEN" and (not field or field[-1] == "code")


@contextmanager
def _code_masked(code: str) -> Iterator[None]:
    """Re-raises a ShopError with `code` masked (any case): Shopify may echo input values in its messages."""
    try:
        yield
    except ShopError as exc:
        detail = re.sub(re.escape(code), MASK, exc.detail, flags=re.IGNORECASE)
        if detail == exc.detail:
            raise
        raise ShopError(detail, exc.transient, exc.retry_after) from None


def _search_value(value: str) -> str:
    """`value` as one quoted term of Shopify's search syntax (backslash and double quote escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


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
