"""Exports (merchant): request a CSV export of returns, or a customer's access export (GDPR Art. 15, JSON), then
fetch its status and a download link."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container

bp = Blueprint(__name__)
MERCHANT = ("merchant",)
OPERATOR = ("operator",)


def _mid(call: Call) -> str:
    assert call.principal is not None
    return call.principal.id


def _bound(value: datetime | date, *, end: bool) -> datetime:
    """A datetime as given (UTC); a date: the start of that day, or for `to` its end (the whole day included)."""
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.max if end else time.min, UTC)


@endpoint(
    bp,
    "/v1/exports",
    "POST",
    summary=(
        "Export the returns created from `from` to `to` (at most 400 days) as CSV: one row per return (kind=returns) "
        "or per returned item (kind=items). Runs in the background; GET the export for its status and link"
    ),
    tag="exports",
    auth=MERCHANT,
    body=s.ExportIn,
    status=202,
    response=s.ExportAccepted,
    errors=(400, 401, 403, 422),
)
def request_export(call: Call) -> dict[str, Any]:
    from chalicelib.services import exports

    body: s.ExportIn = call.body
    return exports.request_export(
        container(), _mid(call), body.kind, _bound(body.from_, end=False), _bound(body.to, end=True)
    )


@endpoint(
    bp,
    "/v1/customers/export",
    "POST",
    summary=(
        "Export everything held about the customer with this email (GDPR Art. 15: orders, returns with comments, "
        "timelines and refunds, withdrawals, notifications sent, file keys) as one JSON document; runs in the "
        "background like the CSV exports: GET /v1/exports/{export_id} for its status and link. A customer the "
        "merchant holds nothing about gets a document with empty sections"
    ),
    tag="exports",
    auth=MERCHANT,
    body=s.CustomerExportIn,
    status=202,
    response=s.ExportAccepted,
    errors=(400, 401, 403, 422),
)
def request_customer_export(call: Call) -> dict[str, Any]:
    from chalicelib.services import exports

    body: s.CustomerExportIn = call.body
    return exports.request_customer_export(container(), _mid(call), body.email)


@endpoint(
    bp,
    "/v1/exports/{export_id}",
    "GET",
    summary="An export's status; when ready, its rows and a download link valid for 15 minutes (new on each GET)",
    tag="exports",
    auth=MERCHANT,
    response=s.ExportOut,
    errors=(401, 403, 404),
)
def get_export(call: Call, export_id: str) -> dict[str, Any]:
    from chalicelib.services import exports

    return exports.get_export(container(), _mid(call), export_id)


@endpoint(
    bp,
    "/v1/admin/customers/export",
    "POST",
    summary=(
        "The operator's customer access export (GDPR Art. 15) for one merchant's customer, as POST "
        "/v1/customers/export; read it with GET /v1/admin/merchants/{merchant_id}/exports/{export_id}"
    ),
    tag="operator",
    auth=OPERATOR,
    body=s.AdminCustomerExportIn,
    status=202,
    response=s.ExportAccepted,
    errors=(400, 401, 403, 422),
)
def admin_request_customer_export(call: Call) -> dict[str, Any]:
    from chalicelib.domain.errors import NotFound, ValidationFailed
    from chalicelib.services import exports

    body: s.AdminCustomerExportIn = call.body
    c = container()
    try:
        c.store.get_merchant(body.merchant_id)
    except NotFound:
        raise ValidationFailed.at(["merchant_id"], "no such merchant") from None
    return exports.request_customer_export(c, body.merchant_id, body.email)


@endpoint(
    bp,
    "/v1/admin/merchants/{merchant_id}/exports/{export_id}",
    "GET",
    summary="A merchant's export (as GET /v1/exports/{export_id}), for the operator",
    tag="operator",
    auth=OPERATOR,
    response=s.ExportOut,
    errors=(401, 403, 404),
)
def admin_get_export(call: Call, merchant_id: str, export_id: str) -> dict[str, Any]:
    from chalicelib.services import exports

    return exports.get_export(container(), merchant_id, export_id)
