"""Customer portal and public track & trace."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.domain.tenants import Principal
from chalicelib.services import auth, returns

bp = Blueprint(__name__)
CUSTOMER = ("customer",)


def _customer(call: Call) -> Principal:
    assert call.principal is not None and call.principal.order_number is not None
    return call.principal


@endpoint(
    bp,
    "/v1/portal/merchants/{merchant_slug}/sessions",
    "POST",
    summary="Open a portal session",
    tag="portal",
    body=s.PortalSessionIn,
    status=201,
    response=s.TokenOut,
    errors=(404, 422, 429),
)
def open_session(call: Call, merchant_slug: str) -> dict[str, Any]:
    body: s.PortalSessionIn = call.body
    token = auth.open_portal_session(container(), merchant_slug, body.order_number, body.email, call.client_ip)
    return {"token": token}


@endpoint(
    bp,
    "/v1/portal/order",
    "GET",
    summary="The order with each item's eligibility",
    tag="portal",
    auth=CUSTOMER,
    response=s.PortalOrderOut,
    errors=(401, 403, 404),
)
def portal_order(call: Call) -> dict[str, Any]:
    p = _customer(call)
    assert p.order_number is not None
    return returns.portal_order(container(), p.id, p.order_number)


@endpoint(
    bp,
    "/v1/portal/returns",
    "POST",
    summary="Create a return with its label",
    tag="portal",
    auth=CUSTOMER,
    body=s.PortalReturnIn,
    status=201,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422),
)
def create_return(call: Call) -> dict[str, Any]:
    p = _customer(call)
    assert p.order_number is not None
    body: s.PortalReturnIn = call.body
    c = container()
    ret, timeline = returns.request_return(
        c,
        merchant_id=p.id,
        order_number=p.order_number,
        lines=[i.model_dump() for i in body.items],
        actor="customer",
        warehouse_id=p.key_id,
    )
    return returns.to_view(c, ret, timeline, audience="customer")


@endpoint(
    bp,
    "/v1/portal/returns/{return_id}",
    "GET",
    summary="A return (customer view)",
    tag="portal",
    auth=CUSTOMER,
    response=s.ReturnOut,
    errors=(401, 403, 404),
)
def get_return(call: Call, return_id: str) -> dict[str, Any]:
    p = _customer(call)
    c = container()
    ret, timeline = returns.get_return(c, return_id, merchant_id=p.id, order_number=p.order_number)
    return returns.to_view(c, ret, timeline, audience="customer")


@endpoint(
    bp,
    "/v1/track/{tracking_token}",
    "GET",
    summary="Track & trace (public, no personal data)",
    tag="portal",
    response=s.TrackOut,
    errors=(404,),
)
def track(call: Call, tracking_token: str) -> dict[str, Any]:
    return returns.track(container(), tracking_token)
