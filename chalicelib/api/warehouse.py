"""Warehouse API: scan, photos, inspection."""

from __future__ import annotations

from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container
from chalicelib.services import returns, warehouse

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
    c = container()
    ret = warehouse.receive_scan(c, _wid(call), call.body.barcode)
    ret, timeline = returns.get_return(c, ret.id, warehouse_id=_wid(call))
    return returns.to_view(c, ret, timeline, audience="warehouse")


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
    body: s.InspectionIn = call.body
    ret = warehouse.submit_inspection(
        container(),
        _wid(call),
        return_id,
        [i.model_dump() for i in body.items],
        [e.model_dump() for e in body.extra_items],
    )
    return {"return_id": ret.id, "status": ret.status.value, "discrepancies": ret.discrepancies}
