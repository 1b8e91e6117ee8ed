"""Customer portal and public track & trace."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.domain.tenants import Principal

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
    from chalicelib.services import auth

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
    from chalicelib.services import returns

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
    errors=(401, 403, 404, 409, 422, 503),
)
def create_return(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns

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
        method_id=body.method_id,
        refund_method=body.refund_method,
    )
    return returns.to_view(c, ret, timeline, audience="customer")


@endpoint(
    bp,
    "/v1/portal/methods",
    "GET",
    summary="The return methods offered for this order, with their fees",
    tag="portal",
    auth=CUSTOMER,
    response=s.MethodList,
    errors=(401, 403, 404),
)
def methods(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns

    p = _customer(call)
    assert p.order_number is not None
    return returns.portal_methods(container(), p.id, p.order_number, p.key_id)


@endpoint(
    bp,
    "/v1/portal/photos",
    "POST",
    summary="Upload a photo for a return reason (presigned POST)",
    tag="portal",
    auth=CUSTOMER,
    body=s.PortalPhotoIn,
    status=201,
    response=s.UploadOut,
    errors=(401, 403, 404, 422),
)
def photo_upload(call: Call) -> dict[str, Any]:
    from chalicelib.services import photos

    p = _customer(call)
    assert p.order_number is not None
    body: s.PortalPhotoIn = call.body
    return photos.customer_photo_upload(container(), p.id, p.order_number, body.line_item_id, body.content_type)


@endpoint(
    bp,
    "/v1/portal/returns/{return_id}/cancel",
    "POST",
    summary="Cancel a return before the parcel moves (the label is voided)",
    tag="portal",
    auth=CUSTOMER,
    body=s.CancelIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422, 503),
)
def cancel_return(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import cancellations, returns

    p = _customer(call)
    body: s.CancelIn = call.body
    c = container()
    cancellations.cancel_return(
        c, return_id, merchant_id=p.id, order_number=p.order_number, actor="customer", reason=body.reason
    )
    ret, timeline = returns.get_return(c, return_id, merchant_id=p.id, order_number=p.order_number)
    return returns.to_view(c, ret, timeline, audience="customer")


@endpoint(
    bp,
    "/v1/portal/merchants/{merchant_slug}/withdrawals",
    "POST",
    summary="Withdraw from the contract (EU online withdrawal function)",
    tag="portal",
    body=s.WithdrawalIn,
    status=201,
    response=s.WithdrawalOut,
    errors=(404, 422, 429),
)
def withdraw(call: Call, merchant_slug: str) -> dict[str, Any]:
    from chalicelib.services import withdrawals

    body: s.WithdrawalIn = call.body
    return withdrawals.declare_withdrawal(
        container(),
        slug=merchant_slug,
        order_number=body.order_number,
        email=body.email,
        name=body.name,
        items=[i.model_dump(exclude_none=True) for i in body.items] if body.items else None,
        client_ip=call.client_ip,
    )


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
    from chalicelib.services import returns

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
    from chalicelib.services import returns

    return returns.track(container(), tracking_token)
