"""Carrier webhooks: verify the provider's signature over the raw body, then queue; nothing else."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.services import tracking

bp = Blueprint(__name__)


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
    tracking.accept_easypost_webhook(container(), call.request.raw_body or b"", call.header("X-Hmac-Signature"))
    return {"status": "accepted"}
