"""Carrier webhooks: verify the provider's signature over the raw body, then queue; nothing else.
Shop order webhooks (Shopify, WooCommerce): verify the merchant's signature, then take the order (order_intake)."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container

bp = Blueprint(__name__)


def _accept(call: Call, provider: str) -> dict[str, Any]:
    from chalicelib.services import tracking

    header = tracking.RECEIVERS[provider].header
    tracking.accept_webhook(container(), provider, call.request.raw_body or b"", call.header(header))
    return {"status": "accepted"}


@endpoint(
    bp,
    "/v1/webhooks/easypost",
    "POST",
    summary="EasyPost tracker.updated (X-Hmac-Signature)",
    tag="webhooks",
    raw_body=True,
    errors=(400, 401),
)
def easypost(call: Call) -> dict[str, Any]:
    return _accept(call, "easypost")


@endpoint(
    bp,
    "/v1/webhooks/shippo",
    "POST",
    summary="Shippo track_updated (Shippo-Auth-Signature: t=<unix time>,v1=<hex HMAC>; older than 300 s is stale)",
    tag="webhooks",
    raw_body=True,
    errors=(400, 401),
)
def shippo(call: Call) -> dict[str, Any]:
    return _accept(call, "shippo")


@endpoint(
    bp,
    "/v1/webhooks/aftership",
    "POST",
    summary="AfterShip tracking_update (aftership-hmac-sha256: base64 HMAC)",
    tag="webhooks",
    raw_body=True,
    errors=(400, 401),
)
def aftership(call: Call) -> dict[str, Any]:
    return _accept(call, "aftership")


@endpoint(
    bp,
    "/v1/webhooks/sendcloud",
    "POST",
    summary="Sendcloud parcel_status_changed (Sendcloud-Signature: hex HMAC)",
    tag="webhooks",
    raw_body=True,
    errors=(400, 401),
)
def sendcloud(call: Call) -> dict[str, Any]:
    return _accept(call, "sendcloud")


# ----- shop order webhooks (per merchant; the merchant's webhook secret from PUT /v1/settings/shop) ---------------
@endpoint(
    bp,
    "/v1/webhooks/shopify/{merchant_id}",
    "POST",
    summary=(
        "Shopify order webhooks (X-Shopify-Hmac-SHA256: base64 HMAC; topics orders/create, orders/updated, "
        "fulfillments/create, fulfillments/update, fulfillment_events/create; deduplicated on X-Shopify-Webhook-Id)"
    ),
    tag="webhooks",
    raw_body=True,
    response=s.ShopWebhookOut,
    errors=(400, 401, 422),
)
def shopify_orders(call: Call, merchant_id: str) -> dict[str, Any]:
    from chalicelib.services import order_intake

    return order_intake.receive_shopify(
        container(), merchant_id, call.request.raw_body or b"", call.header, s.validate_order
    )


@endpoint(
    bp,
    "/v1/webhooks/woocommerce/{merchant_id}",
    "POST",
    summary=(
        "WooCommerce order webhooks (X-WC-Webhook-Signature: base64 HMAC; topics order.created, order.updated; "
        "the unsigned creation ping `webhook_id=<n>` is answered 200)"
    ),
    tag="webhooks",
    raw_body=True,
    response=s.ShopWebhookOut,
    errors=(400, 401, 422),
)
def woocommerce_orders(call: Call, merchant_id: str) -> dict[str, Any]:
    from chalicelib.services import order_intake

    return order_intake.receive_woocommerce(
        container(), merchant_id, call.request.raw_body or b"", call.header, s.validate_order
    )
