"""Warehouse use cases: identify a parcel by its label, photos, inspection."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConcurrentModification, NotFound, ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.photos import IMAGE_TYPES as PHOTO_TYPES
from chalicelib.domain.photos import photo_key
from chalicelib.domain.returns import Return, ReturnStatus
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit

IMAGE_TYPES = tuple(PHOTO_TYPES)


def receive_scan(c: Container, warehouse_id: str, barcode: str) -> Return:
    barcode = barcode.strip()
    matches = [r for r in c.store.find_returns_by_tracking_number(barcode) if r.warehouse_id == warehouse_id]
    if not matches:
        raise NotFound("no return of this warehouse's merchants matches this barcode")
    for _attempt in range(3):
        ret = c.store.get_return(matches[0].id)
        if not ret.receive(actor=f"warehouse:{warehouse_id}", at=c.now(), barcode=barcode):
            return ret  # a second scan is harmless
        try:
            commit(c, ret)
        except ConcurrentModification:
            continue
        logger.info("return received", return_id=ret.id)
        return ret
    raise ConcurrentModification("the return changed concurrently; retry")


def photo_upload(
    c: Container, warehouse_id: str, return_id: str, content_type: str, line_item_id: str | None
) -> dict[str, Any]:
    if content_type not in IMAGE_TYPES:
        raise ValidationFailed.at(["content_type"], f"must be one of {', '.join(IMAGE_TYPES)}")
    ret = c.store.get_return(return_id)
    check_tenant(ret, warehouse_id=warehouse_id)
    if line_item_id is not None and line_item_id not in {i.line_item_id for i in ret.items}:
        raise ValidationFailed.at(["line_item_id"], f"'{line_item_id}' is not an item of this return")
    key = photo_key(ret.merchant_id, ret.id, line_item_id, new_id("ph"), content_type)
    upload = c.files.presigned_post(key, content_type, c.settings.photo_max_bytes, 900)
    return {"key": key, "upload": upload}


def submit_inspection(
    c: Container,
    warehouse_id: str,
    return_id: str,
    lines: list[dict[str, Any]],
    extra_items: list[dict[str, Any]],
) -> Return:
    for _attempt in range(3):
        ret = c.store.get_return(return_id)
        check_tenant(ret, warehouse_id=warehouse_id)
        if ret.status == ReturnStatus.INSPECTED:
            break  # a retried submission: (re)start the workflow below, idempotently
        prefix = f"photos/{ret.merchant_id}/{ret.id}/"
        for idx, line in enumerate(lines):
            for pidx, key in enumerate(line.get("photos") or []):
                if not key.startswith(prefix):
                    raise ValidationFailed.at(["items", idx, "photos", pidx], "not a photo of this return")
        ret.record_inspection(lines=lines, extra_items=extra_items, actor=f"warehouse:{warehouse_id}", at=c.now())
        try:
            commit(c, ret)
        except ConcurrentModification:
            continue
        break
    else:
        raise ConcurrentModification("the return changed concurrently; retry")
    payload: dict[str, Any] = {"return_id": ret.id}
    merchant = c.store.get_merchant(ret.merchant_id)
    payload["feedback_timeout_seconds"] = int(
        c.settings.feedback_timeout_seconds or merchant.guideline.feedback_sla_hours * 3600
    )
    c.workflows.start_processing(ret.id, payload)
    logger.info("inspection recorded; processing started", return_id=ret.id)
    return ret
