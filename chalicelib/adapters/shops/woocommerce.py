"""WooCommerce refunds through the REST API (``/wp-json/wc/v3/orders/<id>/refunds``), HTTP Basic over https.

WooCommerce has no idempotency key, so a refund is marked instead: its `reason` starts with
``Boomerang refund <refund_id>``, and `refund` first looks for a refund with that reason (`find_refund`) before
creating one. A refund whose answer was lost is therefore found, never made twice.

`api_refund` is true (the payment gateway pays the money back); `api_restock` is true when any line is to be
restocked now. WooCommerce answers a refusal as ``{code, message, data: {status}}``; a declined refund comes as
HTTP 500 with code ``woocommerce_rest_cannot_create_order_refund``, which is final (the message is kept), while
any other 5xx, 408/429, a timeout or a connection error is transient.
"""

from __future__ import annotations

from typing import Any

import requests

from chalicelib.adapters.http import json_body
from chalicelib.adapters.shops.base import (
    ShopError,
    ShopHttp,
    ShopRefundRequest,
    ShopRefundResult,
    carries_marker,
    money_string,
    parse_amount,
)
from chalicelib.domain.urls import url_error

DISPLAY_NAME = "WooCommerce"
API_PATH = "/wp-json/wc/v3"
PAGE_SIZE = 100  # the largest page WooCommerce serves
MAX_PAGES = 20


class WooCommerceRefunds:
    """Refunds in one WooCommerce store at `base_url` with a REST API consumer key and secret."""

    name = "woocommerce"

    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        http: requests.Session,
        *,
        local: bool = False,
    ) -> None:
        if url_error(base_url.strip(), local=local):
            # Basic auth sends the key and secret with every request: never over plain http (`make run`'s local
            # sinks, exactly http://127.0.0.1:<port>, aside).
            raise ShopError(f"{DISPLAY_NAME}: the store address must start with https://.")
        self.base_url = base_url.strip().rstrip("/")
        self._auth = (consumer_key, consumer_secret)
        self._http = ShopHttp(http, shop=self.name, display_name=DISPLAY_NAME, secrets=(consumer_key, consumer_secret))

    # ----- ShopRefundTarget ----------------------------------------------------------------------------------
    def refund(self, request: ShopRefundRequest) -> ShopRefundResult:
        existing = self.find_refund(request)
        if existing is not None:
            return existing
        response = self._http.send(
            "POST",
            self._refunds_url(request),
            describe_error=_describe_error,
            server_refusal=_declined,
            auth=self._auth,
            headers={"Accept": "application/json"},
            json=refund_body(request),
        )
        body = json_body(response)
        if not isinstance(body, dict) or "id" not in body:
            raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
        return _result(body, request.currency)

    def find_refund(self, request: ShopRefundRequest) -> ShopRefundResult | None:
        url = self._refunds_url(request)
        for page in range(1, MAX_PAGES + 1):
            response = self._http.send(
                "GET",
                url,
                describe_error=_describe_error,
                ok=(200,),
                auth=self._auth,
                headers={"Accept": "application/json"},
                params={"per_page": PAGE_SIZE, "page": page},
            )
            refunds = json_body(response)
            if not isinstance(refunds, list):
                raise ShopError(f"{DISPLAY_NAME} sent an answer that could not be read.", transient=True)
            for refund in refunds:
                if isinstance(refund, dict) and carries_marker(refund.get("reason"), request.refund_id):
                    return _result(refund, request.currency)
            if len(refunds) < PAGE_SIZE:
                return None
        raise ShopError(f"{DISPLAY_NAME}: the order has too many refunds to check; not sent.")

    def _refunds_url(self, request: ShopRefundRequest) -> str:
        return f"{self.base_url}{API_PATH}/orders/{_numeric_id(request.order_external_id, 'order')}/refunds"


def refund_body(request: ShopRefundRequest) -> dict[str, Any]:
    """The JSON body of `POST /orders/<id>/refunds`; amounts as strings with the currency's minor units."""
    return {
        "amount": money_string(request.amount, request.currency),
        "reason": request.shop_note,
        "line_items": [
            {
                "id": int(_numeric_id(line.external_line_id, "line item")),
                "quantity": line.quantity,
                "refund_total": money_string(line.amount, request.currency),
                "refund_tax": [],
            }
            for line in request.lines
        ],
        "api_refund": True,
        "api_restock": any(line.restock == "restock" for line in request.lines),
    }


def _numeric_id(raw: str, what: str) -> str:
    value = raw.strip()
    if not value.isdigit():
        raise ShopError(f"{DISPLAY_NAME}: {what} id {raw!r} is not a WooCommerce id.")
    return value


def _result(refund: dict[str, Any], currency: str) -> ShopRefundResult:
    return ShopRefundResult(
        shop_refund_id=str(refund.get("id")),
        amount=parse_amount(refund.get("amount"), display_name=DISPLAY_NAME),
        currency=currency.upper(),
        raw_status="payment_refunded" if refund.get("refunded_payment") else "recorded",
    )


def _describe_error(response: requests.Response) -> str | None:
    """WooCommerce's ``{code, message}`` as "message (code)"; None when the answer is not WooCommerce's."""
    body = json_body(response)
    if not isinstance(body, dict):
        return None
    code, message = body.get("code"), body.get("message")
    if not isinstance(code, str) or not code:
        return None
    return f"{message} ({code})" if isinstance(message, str) and message else code


def _declined(response: requests.Response) -> str | None:
    """A 5xx that is WooCommerce declining the refund (a ``woocommerce_rest_*`` code), not a crashed server."""
    body = json_body(response)
    code = body.get("code") if isinstance(body, dict) else None
    if isinstance(code, str) and code.startswith("woocommerce_rest_"):
        return _describe_error(response)
    return None
