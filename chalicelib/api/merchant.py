"""Merchant API: settings, orders, returns, feedback, refunds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, decode_cursor, encode_cursor, endpoint, json_response
from chalicelib.bootstrap import container
from chalicelib.domain.return_index import ReturnFilter

bp = Blueprint(__name__)
MERCHANT = ("merchant",)


def _mid(call: Call) -> str:
    assert call.principal is not None
    return call.principal.id


@endpoint(
    bp,
    "/v1/settings/policy",
    "PUT",
    summary="Set the return policy",
    tag="settings",
    auth=MERCHANT,
    body=s.PolicyIn,
    errors=(401, 403, 422),
)
def put_policy(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    return tenants.put_policy(container(), _mid(call), call.body.model_dump()).to_dict()


@endpoint(
    bp,
    "/v1/settings/guidelines",
    "PUT",
    summary="Set the grading guidelines (CEL rules)",
    tag="settings",
    auth=MERCHANT,
    body=s.GuidelinesIn,
    errors=(401, 403, 422),
)
def put_guidelines(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    return tenants.put_guidelines(container(), _mid(call), call.body.model_dump()).to_dict()


@endpoint(
    bp,
    "/v1/settings/checklists",
    "PUT",
    summary="Set the inspection checklists (per product category)",
    tag="settings",
    auth=MERCHANT,
    body=s.ChecklistsIn,
    errors=(401, 403, 422),
)
def put_checklists(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    return tenants.put_checklists(container(), _mid(call), call.body.model_dump()).to_dict()


@endpoint(
    bp,
    "/v1/settings/templates",
    "GET",
    summary="Starter guidelines and checklists to copy",
    tag="settings",
    auth=MERCHANT,
    errors=(401, 403),
)
def templates(call: Call) -> dict[str, Any]:
    from chalicelib import templates as starter

    return {"items": [starter.load(name) for name in starter.names()], "next_cursor": None}


@endpoint(
    bp,
    "/v1/settings/guidelines/test",
    "POST",
    summary="Dry run: classify a sample without storing anything",
    tag="settings",
    auth=MERCHANT,
    body=s.GuidelineTestIn,
    errors=(401, 403, 422, 429),
)
def test_guidelines(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.GuidelineTestIn = call.body
    return tenants.dry_run(
        container(),
        _mid(call),
        body.model_dump(exclude={"guideline"}),
        body.guideline.model_dump() if body.guideline else None,
    )


@endpoint(
    bp,
    "/v1/settings/refunds",
    "PUT",
    summary="Set the refund target and automation",
    tag="settings",
    auth=MERCHANT,
    body=s.RefundSettingsIn,
    errors=(401, 403, 422),
)
def put_refund_settings(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.RefundSettingsIn = call.body
    if body.target == "webhook" and not body.webhook_url:
        from chalicelib.domain.errors import ValidationFailed

        raise ValidationFailed.at(["webhook_url"], "required when target is 'webhook'")
    return tenants.put_refund_settings(container(), _mid(call), body.model_dump(exclude_none=True)).to_dict()


@endpoint(
    bp,
    "/v1/settings/shop",
    "PUT",
    summary="Connect the shop system (Shopify or WooCommerce); secrets are stored encrypted, never returned",
    tag="settings",
    auth=MERCHANT,
    body=s.ShopIn,
    errors=(401, 403, 422),
)
def put_shop(call: Call) -> dict[str, Any]:
    from chalicelib.services import tenants

    body: s.ShopIn = call.body
    return tenants.put_shop(container(), _mid(call), body.root.model_dump(exclude_none=True))


@endpoint(
    bp,
    "/v1/orders",
    "POST",
    summary="Create or update an order (upsert by order_number)",
    tag="orders",
    auth=MERCHANT,
    body=s.OrderIn,
    status=201,
    errors=(401, 403, 409, 422),
)
def upsert_order(call: Call) -> Any:
    from chalicelib.services import orders

    order, created = orders.upsert_order(container(), _mid(call), call.body.model_dump())
    return json_response({"order_number": order.order_number, "items": len(order.items)}, 201 if created else 200)


@endpoint(
    bp,
    "/v1/returns",
    "GET",
    summary="List returns",
    tag="returns",
    auth=MERCHANT,
    query=s.ReturnsQuery,
    response=s.ReturnList,
    errors=(401, 403, 422),
)
def list_returns(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns

    q: s.ReturnsQuery = call.query
    c = container()
    items, last = returns.list_returns(
        c,
        _mid(call),
        status=q.status,
        updated_since=q.updated_since,
        cursor=decode_cursor(q.cursor),
        limit=q.limit,
        filters=ReturnFilter.from_query(q.model_dump()),
    )
    return {
        "items": [returns.to_view(c, r, [], audience="merchant") for r in items],
        "next_cursor": encode_cursor(last),
    }


@endpoint(
    bp,
    "/v1/attention",
    "GET",
    summary="What needs the merchant: feedback (SLA left), failed refunds, carrier problems, parcels to identify",
    tag="returns",
    auth=MERCHANT,
    response=s.AttentionOut,
    errors=(401, 403),
)
def needs_attention(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns

    return returns.attention(container(), _mid(call))


@endpoint(
    bp,
    "/v1/parcels",
    "GET",
    summary="Parcels the warehouse could not identify and thinks are yours (with photos and what the label said)",
    tag="returns",
    auth=MERCHANT,
    query=s.ParcelsQuery,
    errors=(401, 403),
)
def merchant_parcels(call: Call) -> dict[str, Any]:
    from chalicelib.services import floor

    c = container()
    items = floor.list_merchant_parcels(c, _mid(call), call.query.status)
    return {"items": [floor.parcel_view(c, p) for p in items], "next_cursor": None}


@endpoint(
    bp,
    "/v1/parcels/{parcel_id}/match",
    "POST",
    summary="Say which of your returns a parcel is (it is received, as a scan would)",
    tag="returns",
    auth=MERCHANT,
    body=s.ParcelMatchIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422),
)
def match_parcel(call: Call, parcel_id: str) -> dict[str, Any]:
    from chalicelib.services import floor, returns

    c = container()
    ret = floor.match_parcel(c, None, parcel_id, call.body.return_id, merchant_id=_mid(call))
    ret, timeline = returns.get_return(c, ret.id, merchant_id=_mid(call))
    return returns.to_view(c, ret, timeline, audience="merchant")


@endpoint(
    bp,
    "/v1/returns/{return_id}",
    "GET",
    summary="A return with its timeline",
    tag="returns",
    auth=MERCHANT,
    response=s.ReturnOut,
    errors=(401, 403, 404),
)
def get_return(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import returns

    c = container()
    ret, timeline = returns.get_return(c, return_id, merchant_id=_mid(call))
    return returns.to_view(c, ret, timeline, audience="merchant")


@endpoint(
    bp,
    "/v1/returns",
    "POST",
    summary="Create a return on a customer's behalf (customer service)",
    tag="returns",
    auth=MERCHANT,
    body=s.MerchantReturnIn,
    status=201,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422, 503),
)
def create_return(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns

    body: s.MerchantReturnIn = call.body
    c = container()
    ret, timeline = returns.request_return(
        c,
        merchant_id=_mid(call),
        order_number=body.order_number,
        lines=[i.model_dump() for i in body.items],
        actor=f"merchant:{_mid(call)}",
        method_id=body.method_id,
        notify_customer=body.notify_customer,
        refund_method=body.refund_method,
    )
    return returns.to_view(c, ret, timeline, audience="merchant")


@endpoint(
    bp,
    "/v1/returns/{return_id}/cancel",
    "POST",
    summary="Cancel a return before the parcel moves (the label is voided)",
    tag="returns",
    auth=MERCHANT,
    body=s.CancelIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422, 503),
)
def cancel_return(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import cancellations, returns

    body: s.CancelIn | None = call.body
    c = container()
    cancellations.cancel_return(
        c, return_id, merchant_id=_mid(call), actor=f"merchant:{_mid(call)}", reason=body.reason if body else None
    )
    ret, timeline = returns.get_return(c, return_id, merchant_id=_mid(call))
    return returns.to_view(c, ret, timeline, audience="merchant")


@endpoint(
    bp,
    "/v1/returns/{return_id}/feedback",
    "POST",
    summary="Answer a return awaiting feedback",
    tag="returns",
    auth=MERCHANT,
    body=s.FeedbackIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422),
)
def feedback(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import processing, returns

    body: s.FeedbackIn = call.body
    c = container()
    processing.resolve_feedback(
        c,
        _mid(call),
        return_id,
        body.decision,
        [i.model_dump(exclude_none=True) for i in body.items],
        body.comment,
    )
    ret, timeline = returns.get_return(c, return_id, merchant_id=_mid(call))
    return returns.to_view(c, ret, timeline, audience="merchant")


@endpoint(
    bp,
    "/v1/returns/{return_id}/refund",
    "POST",
    summary="Refund a return (one click)",
    tag="refunds",
    auth=MERCHANT,
    body=s.RefundIn,
    status=202,
    response=s.RefundAccepted,
    errors=(401, 403, 404, 409, 422),
)
def refund(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import refunds

    body: s.RefundIn = call.body
    result = refunds.issue_refund(
        container(),
        merchant_id=_mid(call),
        return_id=return_id,
        amount=Decimal(body.amount) if body.amount is not None else None,
        reason=body.reason,
        idempotency_key=call.idempotency_key(),
        actor=f"merchant:{_mid(call)}",
    )
    return {"refund_id": result.refund_id, "status": result.status}


@endpoint(
    bp,
    "/v1/returns/{return_id}/refunds",
    "GET",
    summary="Refund history of a return",
    tag="refunds",
    auth=MERCHANT,
    errors=(401, 403, 404),
)
def list_refunds(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import refunds

    return {"items": refunds.list_refunds(container(), _mid(call), return_id), "next_cursor": None}


@endpoint(
    bp,
    "/v1/reports/disposals",
    "GET",
    summary="Disposal register: what was disposed, donated or recycled",
    tag="reports",
    auth=MERCHANT,
    query=s.DateRangeQuery,
    errors=(401, 403, 422),
)
def disposals(call: Call) -> dict[str, Any]:
    from datetime import UTC, datetime, time

    from chalicelib.services import floor

    q: s.DateRangeQuery = call.query
    if q.to < q.from_:
        from chalicelib.domain.errors import ValidationFailed

        raise ValidationFailed.at(["to"], "must not be before 'from'")
    start = datetime.combine(q.from_, time.min, UTC)
    end = datetime.combine(q.to, time.max, UTC)
    return {"items": floor.disposals(container(), _mid(call), start, end), "next_cursor": None}


# ----- order imports (CSV) ----------------------------------------------------------------------------------------
@endpoint(
    bp,
    "/v1/orders/imports",
    "POST",
    summary=(
        "Import orders from a CSV file (text/csv, UTF-8, at most 2 MB and 5,000 rows; one row per order line). "
        "Processed within the request; the answer's id names the stored report"
    ),
    tag="orders",
    auth=MERCHANT,
    status=202,
    response=s.ImportAccepted,
    raw_body=True,
    errors=(401, 403, 413, 422),
    content_types=("text/csv",),
)
def import_orders(call: Call) -> Any:
    from chalicelib.api.problems import problem
    from chalicelib.services import order_intake

    raw = call.request.raw_body or b""
    if len(raw) > order_intake.MAX_CSV_BYTES:
        return problem(
            413,
            "Payload too large",
            f"at most {order_intake.MAX_CSV_BYTES // (1024 * 1024)} MB per import: split the file",
        )
    report = order_intake.import_orders_csv(container(), _mid(call), raw, s.validate_order)
    return {"id": report["id"], "status": report["status"]}


@endpoint(
    bp,
    "/v1/orders/imports/{import_id}",
    "GET",
    summary="The report of an order import: rows, imported and failed orders, and each bad row with its column",
    tag="orders",
    auth=MERCHANT,
    response=s.ImportReportOut,
    errors=(401, 403, 404),
)
def get_import(call: Call, import_id: str) -> dict[str, Any]:
    from chalicelib.services import order_intake

    return order_intake.get_import(container(), _mid(call), import_id)
