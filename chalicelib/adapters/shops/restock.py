"""Restock targets: how a restocked item reaches the merchant's shop system.

Two targets stand behind the interface: `manual` (the merchant restocks by hand from the `item.restocked`
event/timeline; nothing is sent) and `webhook` (a signed POST to the merchant's restock webhook,
`restock_webhook_url`, never the refund webhook, with an Idempotency-Key so a retried call is harmless). The
session is the merchant session (chalicelib/adapters/outbound.py): no redirect, no forbidden address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.domain.signatures import boomerang_signature


class RestockTargetError(Exception):
    """The target did not confirm the restock (non-2xx, timeout): retried by the workflow by this name."""


@dataclass(frozen=True)
class RestockRequest:
    merchant_id: str
    return_id: str
    order_number: str
    line_item_id: str
    sku: str
    quantity: int
    idempotency_key: str


class RestockTarget(Protocol):
    name: str

    def restock(self, request: RestockRequest) -> None: ...


class ManualRestock:
    name = "manual"

    def restock(self, request: RestockRequest) -> None:
        return None


class WebhookRestock:
    name = "webhook"

    def __init__(self, http: Any, url: str, secret: str) -> None:
        self.http = http
        self.url = url
        self.secret = secret

    def restock(self, request: RestockRequest) -> None:
        body = json.dumps(
            {
                "type": "restock",
                "return_id": request.return_id,
                "order_number": request.order_number,
                "line_item_id": request.line_item_id,
                "sku": request.sku,
                "quantity": request.quantity,
            },
            separators=(",", ":"),
        ).encode()
        try:
            resp = self.http.post(
                self.url,
                data=body,
                timeout=10,
                allow_redirects=False,
                headers={
                    "Content-Type": "application/json",
                    "X-Boomerang-Signature": boomerang_signature(self.secret, body),
                    "Idempotency-Key": request.idempotency_key,
                    "User-Agent": "Boomerang-Restock/1",
                },
            )
        except Exception as exc:
            from chalicelib.adapters.outbound import failure_text

            raise RestockTargetError(failure_text(exc)) from None
        if not 200 <= resp.status_code < 300:
            raise RestockTargetError(f"HTTP {resp.status_code}")
