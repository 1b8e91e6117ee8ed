"""Warehouse API: scan, photos, inspection."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container

bp = Blueprint(__name__)
WAREHOUSE = ("warehouse",)


def _wid(call: Call) -> str:
    assert call.principal is not None
    return call.principal.id


@endpoint(
    bp,
    "/v1/warehouse/scans",
    "POST",
    summary="Identify a parcel by its label and receive it",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.ScanIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422),
)
def scan(call: Call) -> dict[str, Any]:
    from chalicelib.services import returns, warehouse

    c = container()
    body: s.ScanIn = call.body
    ret = warehouse.receive_scan(
        c,
        _wid(call),
        body.barcode,
        notes=body.notes,
        sender=body.sender.model_dump(exclude_none=True) if body.sender else None,
    )
    ret, timeline = returns.get_return(c, ret.id, warehouse_id=_wid(call))
    return returns.to_view(c, ret, timeline, audience="warehouse")


@endpoint(
    bp,
    "/v1/warehouse/returns/{return_id}/checklist",
    "GET",
    summary="The checklist questions for each item of a return",
    tag="warehouse",
    auth=WAREHOUSE,
    errors=(401, 403, 404),
)
def checklist(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import warehouse

    return warehouse.checklist(container(), _wid(call), return_id)


@endpoint(
    bp,
    "/v1/warehouse/returns/{return_id}/photos",
    "POST",
    summary="Presigned upload for a photo",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.PhotoIn,
    status=201,
    response=s.UploadOut,
    errors=(401, 403, 404, 422),
)
def photo(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import warehouse

    body: s.PhotoIn = call.body
    return warehouse.photo_upload(container(), _wid(call), return_id, body.content_type, body.line_item_id)


@endpoint(
    bp,
    "/v1/warehouse/returns/{return_id}/inspection",
    "POST",
    summary="Submit the inspection",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.InspectionIn,
    status=202,
    errors=(401, 403, 404, 409, 422),
)
def inspection(call: Call, return_id: str) -> dict[str, Any]:
    from chalicelib.services import warehouse

    body: s.InspectionIn = call.body
    ret = warehouse.submit_inspection(
        container(),
        _wid(call),
        return_id,
        [i.model_dump() for i in body.items],
        [e.model_dump() for e in body.extra_items],
    )
    return {"return_id": ret.id, "status": ret.status.value, "discrepancies": ret.discrepancies}


@endpoint(
    bp,
    "/v1/warehouse/work-orders",
    "GET",
    summary="Refurbishment work orders of this warehouse",
    tag="warehouse",
    auth=WAREHOUSE,
    query=s.WorkOrdersQuery,
    errors=(401, 403),
)
def work_orders(call: Call) -> dict[str, Any]:
    from chalicelib.services import floor

    items = floor.list_work_orders(container(), _wid(call), call.query.status)
    return {"items": [floor.work_order_view(w) for w in items], "next_cursor": None}


@endpoint(
    bp,
    "/v1/warehouse/work-orders/{work_order_id}/complete",
    "POST",
    summary="Complete a work order (records minutes, restocks the item)",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.WorkOrderCompleteIn,
    errors=(401, 403, 404, 409, 422),
)
def complete_work_order(call: Call, work_order_id: str) -> dict[str, Any]:
    from chalicelib.services import floor

    body: s.WorkOrderCompleteIn = call.body
    wo = floor.complete_work_order(container(), _wid(call), work_order_id, body.minutes, body.notes)
    return floor.work_order_view(wo)


@endpoint(
    bp,
    "/v1/warehouse/unidentified-parcels",
    "GET",
    summary="Parcels that matched no return",
    tag="warehouse",
    auth=WAREHOUSE,
    query=s.ParcelsQuery,
    errors=(401, 403),
)
def unidentified_parcels(call: Call) -> dict[str, Any]:
    from chalicelib.services import floor

    items = floor.list_parcels(container(), _wid(call), call.query.status)
    return {"items": [floor.parcel_view(container(), p) for p in items], "next_cursor": None}


@endpoint(
    bp,
    "/v1/warehouse/unidentified-parcels/{parcel_id}/match",
    "POST",
    summary="Match an unidentified parcel to a return (receives it)",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.ParcelMatchIn,
    response=s.ReturnOut,
    errors=(401, 403, 404, 409, 422),
)
def match_parcel(call: Call, parcel_id: str) -> dict[str, Any]:
    from chalicelib.services import floor, returns

    c = container()
    ret = floor.match_parcel(c, _wid(call), parcel_id, call.body.return_id)
    ret, timeline = returns.get_return(c, ret.id, warehouse_id=_wid(call))
    return returns.to_view(c, ret, timeline, audience="warehouse")


@endpoint(
    bp,
    "/v1/warehouse/unidentified-parcels/{parcel_id}/assign",
    "POST",
    summary="Ask a merchant to identify a parcel (they see it in their attention view and can match it)",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.ParcelAssignIn,
    errors=(401, 403, 404, 409, 422),
)
def assign_parcel(call: Call, parcel_id: str) -> dict[str, Any]:
    from chalicelib.services import floor

    c = container()
    return floor.parcel_view(c, floor.assign_parcel(c, _wid(call), parcel_id, call.body.merchant_id))


@endpoint(
    bp,
    "/v1/warehouse/unidentified-parcels/{parcel_id}/photos",
    "POST",
    summary="Presigned upload for a photo of an unidentified parcel",
    tag="warehouse",
    auth=WAREHOUSE,
    body=s.PhotoIn,
    status=201,
    response=s.UploadOut,
    errors=(401, 403, 404, 422),
)
def parcel_photo(call: Call, parcel_id: str) -> dict[str, Any]:
    from chalicelib.services import floor

    return floor.parcel_photo_upload(container(), _wid(call), parcel_id, call.body.content_type)
