"""Return creation (portal and customer service), reading, listing, track & trace."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import ConcurrentModification, NotFound, Unavailable, ValidationFailed
from chalicelib.domain.identifiers import new_id, new_token
from chalicelib.domain.orders import Order, eligibility
from chalicelib.domain.photos import thumbnail_key
from chalicelib.domain.returns import Return, ReturnItem, ReturnStatus, TimelineEntry, iso
from chalicelib.domain.tenants import Merchant
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant, publish

NEXT_STEP = {
    ReturnStatus.REQUESTED: "label_created",
    ReturnStatus.LABEL_CREATED: "in_transit",
    ReturnStatus.IN_TRANSIT: "delivered",
    ReturnStatus.DELIVERED: "received",
    ReturnStatus.RECEIVED: "inspected",
    ReturnStatus.INSPECTED: "completed",
    ReturnStatus.AWAITING_FEEDBACK: "completed",
    ReturnStatus.COMPLETED: "refunded",
}


def portal_order(c: Container, merchant_id: str, order_number: str) -> dict[str, Any]:
    merchant, order, _ = c.store.load_for_return_creation(merchant_id, order_number)
    if order is None:
        raise NotFound("order not found")
    now = c.now()
    items = []
    for it in order.items:
        el = eligibility(order, it, merchant.policy, now)
        entry: dict[str, Any] = {
            "line_item_id": it.line_item_id,
            "sku": it.sku,
            "name": it.name,
            "quantity": it.quantity,
            "returnable_quantity": el.returnable_quantity,
            "returnable": el.returnable,
        }
        if el.reason:
            entry["not_returnable_reason"] = el.reason
        items.append(entry)
    return {
        "order_number": order.order_number,
        "items": items,
        "reasons": [{"code": r.code, "label": r.label} for r in merchant.policy.reasons],
    }


def _validate_lines(merchant: Merchant, order: Order, lines: list[dict[str, Any]], c: Container) -> list[ReturnItem]:
    now = c.now()
    reasons = merchant.policy.reason_codes()
    seen: set[str] = set()
    items: list[ReturnItem] = []
    errors: list[dict[str, Any]] = []
    for idx, line in enumerate(lines):
        lid = line["line_item_id"]
        order_item = order.item(lid)
        if order_item is None:
            errors.append({"loc": ["items", idx, "line_item_id"], "msg": f"'{lid}' is not a line of this order"})
            continue
        if lid in seen:
            errors.append({"loc": ["items", idx, "line_item_id"], "msg": f"'{lid}' is listed twice"})
            continue
        seen.add(lid)
        el = eligibility(order, order_item, merchant.policy, now)
        if not el.returnable:
            errors.append({"loc": ["items", idx, "line_item_id"], "msg": f"not returnable: {el.reason}"})
            continue
        if line["quantity"] > el.returnable_quantity:
            errors.append(
                {
                    "loc": ["items", idx, "quantity"],
                    "msg": f"at most {el.returnable_quantity} can be returned",
                }
            )
            continue
        if line["reason"] not in reasons:
            errors.append(
                {
                    "loc": ["items", idx, "reason"],
                    "msg": f"unknown reason; one of: {', '.join(sorted(reasons))}",
                }
            )
            continue
        items.append(
            ReturnItem(
                line_item_id=lid,
                sku=order_item.sku,
                name=order_item.name,
                quantity=line["quantity"],
                unit_price=order_item.unit_price,
                reason=line["reason"],
                comment=line.get("comment"),
                tags=list(order_item.tags),
            )
        )
    if errors:
        raise ValidationFailed("some items cannot be returned", errors)
    return items


def request_return(
    c: Container,
    *,
    merchant_id: str,
    order_number: str,
    lines: list[dict[str, Any]],
    actor: str,
    warehouse_id: str | None = None,
) -> tuple[Return, list[TimelineEntry]]:
    """Validate the items, make the label, then write return + timeline + order quantities in one transaction.

    DynamoDB calls: one BatchGetItem (merchant, order, warehouse) and one TransactWriteItems.
    """
    label: Label | None = None
    label_key: str | None = None
    return_id = new_id("ret")
    for _attempt in range(3):
        merchant, order, warehouse = c.store.load_for_return_creation(merchant_id, order_number, warehouse_id)
        if order is None:
            raise NotFound(f"order '{order_number}' not found")
        if warehouse is None or warehouse.id != merchant.warehouse_id:
            warehouse = c.store.get_warehouse(merchant.warehouse_id)
        items = _validate_lines(merchant, order, lines, c)
        now = c.now()
        ret = Return.request(
            return_id=return_id,
            merchant_id=merchant.id,
            warehouse_id=warehouse.id,
            order_number=order.order_number,
            currency=order.currency,
            customer_country=order.shipping_address.country,
            locale=order.locale or merchant.locale,
            items=items,
            tracking_token=new_token(24),
            actor=actor,
            at=now,
        )
        if label is None:
            carrier = c.carrier("sandbox")
            try:
                label = carrier.create_label(
                    LabelRequest(
                        return_id=ret.id,
                        order_number=order.order_number,
                        merchant_name=merchant.name,
                        sender=order.shipping_address,
                        recipient=warehouse.address,
                    )
                )
            except CarrierError as exc:
                raise Unavailable(f"the carrier could not create a label: {exc.detail}") from None
            label_key = f"labels/{merchant.id}/{ret.id}.pdf"
            c.files.put(label_key, label.content, label.content_type)
        assert label_key is not None
        ret.attach_label(
            carrier=label.carrier,
            tracking_number=label.tracking_number,
            label_key=label_key,
            actor=actor,
            at=now,
        )
        for item in items:
            order_item = order.item(item.line_item_id)
            assert order_item is not None
            order_item.returned_quantity += item.quantity
        created = list(ret.new_timeline)
        try:
            c.store.create_return(ret, order, now)
        except ConcurrentModification:
            logger.info("order changed while creating a return; retrying", return_id=ret.id)
            continue
        except Exception:
            # Nothing of the return was written (one transaction); do not leave its label behind either.
            c.files.delete(label_key)
            raise
        publish(c, ret)
        logger.info("return created", return_id=ret.id, merchant_id=merchant.id, items=len(items))
        return ret, created
    if label_key:
        c.files.delete(label_key)
    raise ConcurrentModification("the order changed concurrently; retry")


def get_return(
    c: Container,
    return_id: str,
    *,
    merchant_id: str | None = None,
    warehouse_id: str | None = None,
    order_number: str | None = None,
) -> tuple[Return, list[TimelineEntry]]:
    ret, timeline = c.store.get_return_with_timeline(return_id)
    check_tenant(ret, merchant_id=merchant_id, warehouse_id=warehouse_id)
    if order_number is not None and ret.order_number != order_number:
        raise NotFound(f"return '{return_id}' not found")
    return ret, timeline


def track(c: Container, token: str) -> dict[str, Any]:
    return_id = c.store.return_id_for_tracking_token(token)
    if return_id is None:
        raise NotFound("unknown tracking link")
    ret, timeline = c.store.get_return_with_timeline(return_id)
    out: dict[str, Any] = {"status": ret.status.value, "milestones": ret.milestones(timeline)}
    if ret.status in NEXT_STEP:
        out["next_step"] = NEXT_STEP[ret.status]
    return out


def to_view(c: Container, ret: Return, timeline: list[TimelineEntry], *, audience: str) -> dict[str, Any]:
    """The Return response shape of CONTRACT.md. The customer view leaves out warehouse-internal details."""
    ttl = c.settings.label_url_ttl_seconds
    items = []
    for it in ret.items:
        view: dict[str, Any] = {
            "line_item_id": it.line_item_id,
            "sku": it.sku,
            "name": it.name,
            "quantity": it.quantity,
            "reason": it.reason,
            "comment": it.comment,
            "received_quantity": it.received_quantity,
            "grade": it.grade.value if it.grade else None,
            "disposition": it.disposition.value if it.disposition else None,
            "status": it.status.value,
            "unit_price": {"amount": str(it.unit_price), "currency": ret.currency},
            "photos": [] if audience == "customer" else photo_views(c, it.photos),
        }
        if audience != "customer":
            view.update({"checks": it.checks, "notes": it.notes, "clarify": it.clarify, "rule": it.rule})
        items.append(view)
    label = None
    if (ret.label_key and ret.status in (ReturnStatus.LABEL_CREATED, ReturnStatus.IN_TRANSIT)) or (
        ret.label_key and audience != "customer"
    ):
        label = {"url": c.files.presigned_get(ret.label_key, ttl), "content_type": "application/pdf"}
    entries = [e.to_dict() for e in sorted(timeline, key=lambda e: e.at)]
    if audience == "customer":
        entries = [
            {k: v for k, v in e.items() if k in ("type", "at", "status")}
            for e in entries
            if e["type"].startswith("return.")
        ]
    return {
        "id": ret.id,
        "merchant_id": ret.merchant_id,
        "order_number": ret.order_number,
        "status": ret.status.value,
        "created_at": iso(ret.created_at),
        "updated_at": iso(ret.updated_at),
        "carrier": ret.carrier,
        "tracking_number": ret.tracking_number,
        "tracking_token": ret.tracking_token,
        "tracking_url": f"{c.settings.public_base_url}/v1/track/{ret.tracking_token}",
        "label": label,
        "items": items,
        "discrepancies": ret.discrepancies,
        "parcel_photos": [] if audience == "customer" else photo_views(c, ret.parcel_photos),
        "timeline": entries,
        "refund": ret.refund.to_dict() if ret.refund else None,
    }


def photo_views(c: Container, keys: list[str]) -> list[dict[str, Any]]:
    """Photos as short-lived presigned GET URLs (the bucket is private), with their thumbnails."""
    ttl = c.settings.label_url_ttl_seconds
    return [
        {
            "key": k,
            "url": c.files.presigned_get(k, ttl),
            # HEIC/HEIF photos get no thumbnail (Pillow cannot decode them without a plugin)
            "thumbnail_url": None if k.endswith((".heic", ".heif")) else c.files.presigned_get(thumbnail_key(k), ttl),
        }
        for k in keys
    ]


def list_returns(
    c: Container,
    merchant_id: str,
    *,
    status: str | None,
    updated_since: Any,
    cursor: dict[str, Any] | None,
    limit: int,
) -> tuple[list[Return], dict[str, Any] | None]:
    return c.store.list_returns(merchant_id, status=status, updated_since=updated_since, cursor=cursor, limit=limit)
