"""Warehouse use cases: identify a parcel by its label, photos, inspection."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.checklists import Checklists, questions_for, validate_inspection
from chalicelib.domain.errors import ConcurrentModification, NotFound, UnidentifiedParcelError, ValidationFailed
from chalicelib.domain.floor import billing_month
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.photos import IMAGE_TYPES as PHOTO_TYPES
from chalicelib.domain.photos import photo_key
from chalicelib.domain.returns import Return, ReturnItem, ReturnStatus
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit
from chalicelib.services.floor import record_unidentified

IMAGE_TYPES = tuple(PHOTO_TYPES)


QR_PREFIX = "BMR1:"


def identify(c: Container, warehouse_id: str, barcode: str) -> Return | None:
    """What a return parcel carries, without a paper slip: the label's QR content (`BMR1:<return id>:<tracking>`),
    the return id, or the tracking number of the label (GSI); only returns of this warehouse's merchants."""
    barcode = barcode.strip()
    candidates: list[Return] = []
    return_id = None
    if barcode.startswith(QR_PREFIX):
        parts = barcode.split(":")
        return_id = parts[1] if len(parts) >= 2 else None
    elif barcode.startswith("ret_"):
        return_id = barcode
    if return_id:
        try:
            candidates = [c.store.get_return(return_id)]
        except NotFound:
            candidates = []
    else:
        candidates = c.store.find_returns_by_tracking_number(barcode)
    matches = [r for r in candidates if r.warehouse_id == warehouse_id]
    return matches[0] if matches else None


def receive_scan(
    c: Container, warehouse_id: str, barcode: str, *, notes: str | None = None, sender: dict[str, Any] | None = None
) -> Return:
    """A parcel scanned at goods-in. Unmatched parcels are recorded (never thrown away) and named in the 404."""
    found = identify(c, warehouse_id, barcode)
    if found is None:
        parcel = record_unidentified(c, warehouse_id, barcode.strip(), notes, sender)
        raise UnidentifiedParcelError(parcel.id)
    for _attempt in range(3):
        ret = c.store.get_return(found.id)
        now = c.now()
        if not ret.receive(actor=f"warehouse:{warehouse_id}", at=now, barcode=barcode.strip()):
            return ret  # a second scan is harmless
        try:
            commit(c, ret, updates=(c.store.billing(ret.merchant_id, billing_month(now), receipts=1),))
        except ConcurrentModification:
            continue
        logger.info("return received", return_id=ret.id)
        return ret
    raise ConcurrentModification("the return changed concurrently; retry")


def cel_item(item: ReturnItem) -> dict[str, Any]:
    """An item as guideline and checklist CEL expressions see it (`unit_price` a double)."""
    return {
        "sku": item.sku,
        "tags": item.tags,
        "unit_price": float(item.unit_price),
        "quantity": item.received_quantity or item.quantity,
        "reason": item.reason,
    }


def _log_skipped_checklists(merchant_id: str, checklists: Checklists) -> None:
    """A checklist stored before the cost budget existed and over it does not apply (domain/checklists.py)."""
    if checklists.skipped:
        logger.warning(
            "checklists over the cost budget do not apply",
            merchant_id=merchant_id,
            checklist_indexes=list(checklists.skipped),
            checklists_version=checklists.version,
        )


def checklist(c: Container, warehouse_id: str, return_id: str) -> dict[str, Any]:
    """The questions the floor must answer for each item of this return, from the merchant's checklists."""
    ret = c.store.get_return(return_id)
    check_tenant(ret, warehouse_id=warehouse_id)
    merchant = c.store.get_merchant(ret.merchant_id)
    _log_skipped_checklists(merchant.id, merchant.checklists)
    return {
        "return_id": ret.id,
        "checklists_version": merchant.checklists.version,
        "items": [
            {
                "line_item_id": i.line_item_id,
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "questions": [q.to_dict() for q in questions_for(merchant.checklists, cel_item(i))],
            }
            for i in ret.items
        ],
    }


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
        merchant = c.store.get_merchant(ret.merchant_id)
        _log_skipped_checklists(merchant.id, merchant.checklists)
        errors = validate_inspection(merchant.checklists, [(i.line_item_id, cel_item(i)) for i in ret.items], lines)
        if errors:
            raise ValidationFailed(f"the inspection breaks the checklist: {errors[0]['msg']}", errors)
        now = c.now()
        ret.record_inspection(lines=lines, extra_items=extra_items, actor=f"warehouse:{warehouse_id}", at=now)
        try:
            commit(c, ret, updates=(c.store.billing(ret.merchant_id, billing_month(now), inspections=1),))
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
