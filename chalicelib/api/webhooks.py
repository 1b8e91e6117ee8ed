"""Carrier webhooks: verify the provider's signature over the raw body, then queue; nothing else."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.services import tracking

bp = Blueprint(__name__)


def _accept(call: Call, provider: str) -> dict[str, Any]:
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
