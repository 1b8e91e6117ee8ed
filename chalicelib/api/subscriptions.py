"""Merchant API: outbound webhook subscriptions and their deliveries (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from chalice.app import Blueprint, Response
from pydantic import Field, StringConstraints

from chalicelib.api.routing import Call, decode_cursor, encode_cursor, endpoint
from chalicelib.api.schemas import In, Out
from chalicelib.bootstrap import container

bp = Blueprint(__name__)
MERCHANT = ("merchant",)
TAG = "webhooks"


class SubscriptionIn(In):
    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
    # each checked against CONTRACT.md's event types (422 naming ["events", i]); ["*"] for all of them
    events: list[Annotated[str, StringConstraints(max_length=100)]] = Field(min_length=1, max_length=50)
    # the HMAC key of X-Boomerang-Signature: stored in SSM, never returned
    secret: Annotated[str, StringConstraints(min_length=16, max_length=256)]


class SubscriptionOut(Out):
    id: str
    url: str
    events: list[str]
    created_at: str


class SubscriptionList(Out):
    items: list[SubscriptionOut]
    next_cursor: str | None = None


class DeliveryOut(Out):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: str
    delivered_at: str | None = None
    next_attempt_at: str | None = None  # pending: when the next automatic attempt is due


class DeliveryList(Out):
    items: list[DeliveryOut]
    next_cursor: str | None = None


class DeliveriesQuery(In):
    cursor: Annotated[str, StringConstraints(max_length=2000)] | None = None
    limit: int = Field(default=50, ge=1, le=100)


def _mid(call: Call) -> str:
    assert call.principal is not None
    return call.principal.id


@endpoint(
    bp,
    "/v1/subscriptions",
    "POST",
    summary="Subscribe a URL to domain events (signed webhook deliveries)",
    tag=TAG,
    auth=MERCHANT,
    body=SubscriptionIn,
    status=201,
    response=SubscriptionOut,
    errors=(400, 401, 403, 422),
)
def create_subscription(call: Call) -> dict[str, Any]:
    from chalicelib.services import subscriptions

    b: SubscriptionIn = call.body
    return subscriptions.create_subscription(container(), _mid(call), b.url, b.events, b.secret).to_dict()


@endpoint(
    bp,
    "/v1/subscriptions",
    "GET",
    summary="List webhook subscriptions",
    tag=TAG,
    auth=MERCHANT,
    response=SubscriptionList,
    errors=(401, 403),
)
def list_subscriptions(call: Call) -> dict[str, Any]:
    from chalicelib.services import subscriptions

    subs = subscriptions.list_subscriptions(container(), _mid(call))
    return {"items": [s.to_dict() for s in subs], "next_cursor": None}


@endpoint(
    bp,
    "/v1/subscriptions/{subscription_id}",
    "DELETE",
    summary="Delete a webhook subscription",
    tag=TAG,
    auth=MERCHANT,
    status=204,
    errors=(401, 403, 404),
)
def delete_subscription(call: Call, subscription_id: str) -> Response:
    from chalicelib.services import subscriptions

    subscriptions.delete_subscription(container(), _mid(call), subscription_id)
    return Response(body="", status_code=204)


@endpoint(
    bp,
    "/v1/subscriptions/{subscription_id}/deliveries",
    "GET",
    summary="List a subscription's deliveries, newest first",
    tag=TAG,
    auth=MERCHANT,
    query=DeliveriesQuery,
    response=DeliveryList,
    errors=(401, 403, 404, 422),
)
def list_deliveries(call: Call, subscription_id: str) -> dict[str, Any]:
    from chalicelib.services import subscriptions

    q: DeliveriesQuery = call.query
    items, last = subscriptions.list_deliveries(
        container(), _mid(call), subscription_id, cursor=decode_cursor(q.cursor), limit=q.limit
    )
    return {"items": [d.to_dict() for d in items], "next_cursor": encode_cursor(last)}


@endpoint(
    bp,
    "/v1/subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver",
    "POST",
    summary="Queue one more attempt of a delivery (same payload, same event id)",
    tag=TAG,
    auth=MERCHANT,
    status=202,
    response=DeliveryOut,
    errors=(401, 403, 404),
)
def redeliver(call: Call, subscription_id: str, delivery_id: str) -> dict[str, Any]:
    from chalicelib.services import subscriptions

    return subscriptions.redeliver(container(), _mid(call), subscription_id, delivery_id).to_dict()
