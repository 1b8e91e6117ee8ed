"""Warehouse floor use cases: dispositions after grading, refurbishment work orders, restock sync,
unidentified parcels, the disposal register and the operator's billing counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chalicelib.adapters.shops.restock import ManualRestock, RestockRequest, RestockTarget, WebhookRestock
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConcurrentModification, NotFound, ValidationFailed
from chalicelib.domain.floor import UnidentifiedParcel, WorkOrder, billing_month
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.returns import Disposition, DomainEvent, Return, ReturnStatus, TimelineEntry
from chalicelib.domain.tenants import Merchant
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, commit
from chalicelib.services.tenants import WEBHOOK_SECRET

SYSTEM = "system:processing"
DISPOSALS = (Disposition.DISPOSE, Disposition.DONATE, Disposition.RECYCLE)


def apply_dispositions(c: Container, return_id: str) -> dict[str, Any]:
    """Workflow step after grading: restock, open work orders, register disposals; then sync restocks.

    One transaction per attempt (return, work orders, disposal records, billing counters); a retried task
    finds nothing left to apply and only finishes pending restock calls.
    """
    for _attempt in range(5):
        ret = c.store.get_return(return_id)
        if ret.status not in (ReturnStatus.COMPLETED, ReturnStatus.REJECTED, ReturnStatus.REFUNDED):
            return {"return_id": ret.id, "status": ret.status.value, "applied": 0}
        now = c.now()
        actions = ret.apply_dispositions(actor=SYSTEM, at=now)
        if not actions:
            break
        work_orders, disposals = [], []
        for action in actions:
            item = action.item
            if action.disposition == Disposition.REFURBISH:
                wo = WorkOrder(
                    id=new_id("wo"),
                    return_id=ret.id,
                    merchant_id=ret.merchant_id,
                    warehouse_id=ret.warehouse_id,
                    line_item_id=item.line_item_id,
                    sku=item.sku,
                    quantity=item.received_quantity or 0,
                    steps=item.steps or ["inspect", "repackage"],
                    created_at=now,
                )
                ret.work_order_opened(wo.id, item, actor=SYSTEM, at=now)
                work_orders.append(c.store.new_work_order(wo))
            elif action.disposition in DISPOSALS:
                disposals.append(c.store.disposal(ret, item.line_item_id, now))
        restocks = sum(1 for a in actions if a.disposition == Disposition.RESTOCK)
        billing = c.store.billing(ret.merchant_id, billing_month(now), restocks=restocks, disposals=len(disposals))
        try:
            commit(c, ret, extra=(*work_orders, *disposals), updates=(billing,) if restocks or disposals else ())
        except ConcurrentModification:
            continue
        logger.info("dispositions applied", return_id=ret.id, actions=len(actions), work_orders=len(work_orders))
        break
    else:
        raise ConcurrentModification(f"return {return_id} kept changing")
    ret = sync_restocks(c, return_id)
    return {"return_id": ret.id, "status": ret.status.value}


def _restock_target(c: Container, merchant: Merchant) -> RestockTarget:
    """The merchant's restock webhook (`restock_webhook_url`, signed with the webhook secret), whatever the refund
    target; without one restocks are recorded, not sent (the refund webhook carries refunds only)."""
    if merchant.refunds.restock_webhook_url:
        secret = c.secrets.get(merchant.id, WEBHOOK_SECRET)
        if secret:
            return WebhookRestock(c.http, merchant.refunds.restock_webhook_url, secret)
    return ManualRestock()


def sync_restocks(c: Container, return_id: str) -> Return:
    """Tell the merchant's restock target about every restocked item not yet synced (same key on a retry)."""
    ret = c.store.get_return(return_id)
    pending = [i for i in ret.items if i.restock_sync == "pending"]
    if not pending:
        return ret
    merchant = c.store.get_merchant(ret.merchant_id)
    target = _restock_target(c, merchant)
    for item in pending:
        target.restock(
            RestockRequest(
                merchant_id=ret.merchant_id,
                return_id=ret.id,
                order_number=ret.order_number,
                line_item_id=item.line_item_id,
                sku=item.sku,
                quantity=item.received_quantity or 0,
                idempotency_key=f"restock-{ret.id}-{item.line_item_id}",
            )
        )
    for _attempt in range(5):
        ret = c.store.get_return(return_id)
        now = c.now()
        for item in pending:
            if ret.item(item.line_item_id).restock_sync == "pending":
                ret.restock_synced(item.line_item_id, target.name, actor=SYSTEM, at=now)
        try:
            commit(c, ret)
        except ConcurrentModification:
            continue
        return ret
    raise ConcurrentModification(f"return {return_id} kept changing")


# ----- work orders ------------------------------------------------------------------------------------------
def list_work_orders(c: Container, warehouse_id: str, status: str) -> list[WorkOrder]:
    return c.store.list_work_orders(warehouse_id, status)


def complete_work_order(
    c: Container, warehouse_id: str, work_order_id: str, minutes: int, notes: str | None
) -> WorkOrder:
    for _attempt in range(5):
        wo = c.store.get_work_order(work_order_id)
        if wo.warehouse_id != warehouse_id:
            raise NotFound(f"work order '{work_order_id}' not found")
        now = c.now()
        wo.complete(minutes, notes, now)
        ret = c.store.get_return(wo.return_id)
        ret.refurbished(wo.line_item_id, wo.id, minutes, actor=f"warehouse:{warehouse_id}", at=now)
        billing = c.store.billing(wo.merchant_id, billing_month(now), refurbishment_minutes=minutes, restocks=1)
        try:
            commit(c, ret, updates=(c.store.complete_work_order(wo), billing))
        except ConcurrentModification:
            continue
        break
    else:
        raise ConcurrentModification("the work order changed concurrently; retry")
    try:
        sync_restocks(c, wo.return_id)
    except Exception:
        # Recorded as restocked; the shop sync stays `pending` on the item and is retried with the next sync.
        logger.exception("restock sync failed", return_id=wo.return_id, work_order_id=wo.id)
    return wo


def work_order_view(wo: WorkOrder) -> dict[str, Any]:
    from chalicelib.domain.returns import iso

    return {
        "id": wo.id,
        "return_id": wo.return_id,
        "line_item_id": wo.line_item_id,
        "sku": wo.sku,
        "quantity": wo.quantity,
        "steps": wo.steps,
        "status": wo.status,
        "minutes": wo.minutes,
        "notes": wo.notes,
        "created_at": iso(wo.created_at),
        "completed_at": iso(wo.completed_at) if wo.completed_at else None,
    }


# ----- unidentified parcels -----------------------------------------------------------------------------------
def record_unidentified(
    c: Container, warehouse_id: str, barcode: str, notes: str | None, sender: dict[str, Any] | None
) -> UnidentifiedParcel:
    parcel = UnidentifiedParcel(
        id=new_id("pcl"), warehouse_id=warehouse_id, barcode=barcode, created_at=c.now(), notes=notes, sender=sender
    )
    data = {"parcel_id": parcel.id, "warehouse_id": warehouse_id}
    event = DomainEvent(type="parcel.unidentified", return_id="", merchant_id="", at=parcel.created_at, data=data)
    actor = f"warehouse:{warehouse_id}"
    entry = TimelineEntry(type=event.type, at=parcel.created_at, actor=actor, data=data, event=event)
    c.store.create_parcel(parcel, entry)  # with its event, in one transaction (the outbox)
    logger.info("unidentified parcel recorded", parcel_id=parcel.id, warehouse_id=warehouse_id)
    return parcel


def parcel_photo_upload(c: Container, warehouse_id: str, parcel_id: str, content_type: str) -> dict[str, Any]:
    """A presigned POST for a photo of an unidentified parcel (checked by the photo processor on arrival)."""
    from chalicelib.domain.photos import IMAGE_TYPES, parcel_photo_key

    if content_type not in IMAGE_TYPES:
        raise ValidationFailed.at(["content_type"], f"must be one of {', '.join(IMAGE_TYPES)}")
    parcel = c.store.get_parcel(parcel_id)
    if parcel.warehouse_id != warehouse_id:
        raise NotFound(f"parcel '{parcel_id}' not found")
    key = parcel_photo_key(warehouse_id, parcel.id, new_id("ph"), content_type)
    return {"key": key, "upload": c.files.presigned_post(key, content_type, c.settings.photo_max_bytes, 900)}


def list_parcels(c: Container, warehouse_id: str, status: str) -> list[UnidentifiedParcel]:
    return c.store.list_parcels(warehouse_id, status)


def assign_parcel(c: Container, warehouse_id: str, parcel_id: str, merchant_id: str) -> UnidentifiedParcel:
    """The merchant the warehouse thinks an open parcel is from (a packing slip, the branding): that merchant then
    sees it among what needs their attention, with its photos, and can match it to one of their returns."""
    parcel = c.store.get_parcel(parcel_id)
    if parcel.warehouse_id != warehouse_id:
        raise NotFound(f"parcel '{parcel_id}' not found")
    try:
        merchant = c.store.get_merchant(merchant_id)
    except NotFound:
        merchant = None
    if merchant is None or merchant.warehouse_id != warehouse_id:
        raise ValidationFailed.at(["merchant_id"], "no merchant of this warehouse has this id")
    parcel.assign(merchant_id)
    c.store.assign_parcel(parcel)
    logger.info("unidentified parcel assigned", parcel_id=parcel.id, merchant_id=merchant_id)
    return parcel


def list_merchant_parcels(c: Container, merchant_id: str, status: str) -> list[UnidentifiedParcel]:
    return c.store.list_merchant_parcels(merchant_id, status)


def match_parcel(
    c: Container, warehouse_id: str | None, parcel_id: str, return_id: str, *, merchant_id: str | None = None
) -> Return:
    """The parcel is this return's: it is received (as a scan would) with the parcel's photos. By the warehouse that
    holds it (any return of its merchants), or by the merchant it was assigned to (their own returns only)."""
    actor = f"warehouse:{warehouse_id}" if warehouse_id else f"merchant:{merchant_id}"
    for _attempt in range(5):
        parcel = c.store.get_parcel(parcel_id)
        if (warehouse_id is not None and parcel.warehouse_id != warehouse_id) or (
            merchant_id is not None and parcel.merchant_id != merchant_id
        ):
            raise NotFound(f"parcel '{parcel_id}' not found")
        try:
            ret = c.store.get_return(return_id)
            check_tenant(ret, warehouse_id=parcel.warehouse_id, merchant_id=merchant_id)
        except NotFound:
            whose = "your" if merchant_id else "this warehouse's merchants'"
            raise ValidationFailed.at(["return_id"], f"none of {whose} returns has this id") from None
        now = c.now()
        parcel.match(return_id, now)
        ret.receive(actor=actor, at=now, barcode=parcel.barcode)
        photos = sum(ret.record_photo(key, None, actor=actor, at=now) for key in parcel.photos)
        updates = [
            c.store.match_parcel(parcel),
            c.store.billing(ret.merchant_id, billing_month(now), receipts=1, photos=photos),
        ]
        try:
            commit(c, ret, updates=tuple(updates))
        except ConcurrentModification:
            continue
        return ret
    raise ConcurrentModification("the parcel changed concurrently; retry")


def parcel_view(c: Container, p: UnidentifiedParcel) -> dict[str, Any]:
    from chalicelib.domain.returns import iso
    from chalicelib.services.returns import photo_views

    return {
        "id": p.id,
        "barcode": p.barcode,
        "status": p.status,
        "notes": p.notes,
        "sender": p.sender,
        "photos": photo_views(c, p.photos),
        "return_id": p.return_id,
        "merchant_id": p.merchant_id,
        "created_at": iso(p.created_at),
        "matched_at": iso(p.matched_at) if p.matched_at else None,
    }


# ----- reports ------------------------------------------------------------------------------------------------
def disposals(c: Container, merchant_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return c.store.list_disposals(merchant_id, start, end)


def billing(c: Container, merchant_id: str, month: str) -> dict[str, Any]:
    c.store.get_merchant(merchant_id)  # 404 for an unknown merchant
    return {"merchant_id": merchant_id, "month": month, **c.store.get_billing(merchant_id, month)}
