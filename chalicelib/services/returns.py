"""Return creation (portal and customer service), reading, listing, track & trace."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest
from chalicelib.bootstrap import Container
from chalicelib.domain.customs import CustomsDeclaration, CustomsItem, customs_lines
from chalicelib.domain.errors import ConcurrentModification, NotFound, Unavailable, ValidationFailed
from chalicelib.domain.identifiers import new_id, new_token
from chalicelib.domain.methods import PREPRINTED, MethodOption, choose_method, offered_methods
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order, OrderItem, eligibility
from chalicelib.domain.photos import thumbnail_key
from chalicelib.domain.return_index import ATTENTION_KINDS, ReturnFilter, email_key, feedback_sla_left
from chalicelib.domain.return_index import attention as return_attention
from chalicelib.domain.returns import Return, ReturnItem, ReturnStatus, TimelineEntry, iso
from chalicelib.domain.tenants import Merchant, Reason, Warehouse
from chalicelib.observability import logger
from chalicelib.services.common import check_tenant
from chalicelib.services.photos import check_customer_photos

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


def _reason_view(r: Reason) -> dict[str, Any]:
    return r.to_dict()


def portal_order(c: Container, merchant_id: str, order_number: str) -> dict[str, Any]:
    merchant, order, _ = c.store.load_for_return_creation(merchant_id, order_number)
    if order is None:
        raise NotFound("order not found")
    now = c.now()
    items = []
    for it in order.items:
        el = eligibility(order, it, merchant.policy, now)
        delivered_qty, last_delivery = it.delivered(order.delivered_at)
        entry: dict[str, Any] = {
            "line_item_id": it.line_item_id,
            "sku": it.sku,
            "name": it.name,
            "quantity": it.quantity,
            "delivered_quantity": delivered_qty,
            "returnable_quantity": el.returnable_quantity,
            "returnable": el.returnable,
        }
        if el.reason:
            entry["not_returnable_reason"] = el.reason
        elif last_delivery is not None:
            window = merchant.policy.window_days_for(it.tags)
            entry["returnable_until"] = iso(last_delivery + timedelta(days=window))
        items.append(entry)
    return {
        "order_number": order.order_number,
        "items": items,
        "reasons": [_reason_view(r) for r in merchant.policy.reasons],
        "refund_options": refund_options(merchant),
    }


def refund_options(merchant: Merchant) -> list[dict[str, Any]]:
    """How the customer may be refunded: money back, and store credit (with the merchant's bonus) when offered."""
    options: list[dict[str, Any]] = [{"type": "original"}]
    if merchant.refunds.store_credit:
        options.append({"type": "store_credit", "bonus_percent": str(merchant.refunds.store_credit_bonus_percent)})
    return options


def _context(
    c: Container, merchant_id: str, order_number: str, warehouse_id: str | None
) -> tuple[Merchant, Order, Warehouse]:
    merchant, order, warehouse = c.store.load_for_return_creation(merchant_id, order_number, warehouse_id)
    if order is None:
        raise NotFound(f"order '{order_number}' not found")
    if warehouse is None or warehouse.id != merchant.warehouse_id:
        warehouse = c.store.get_warehouse(merchant.warehouse_id)
    return merchant, order, warehouse


def _options(c: Container, merchant: Merchant, order: Order, warehouse: Warehouse) -> list[MethodOption]:
    return offered_methods(
        routing=warehouse.routing,
        policy=merchant.policy,
        customer_country=order.shipping_address.country,
        warehouse_address=warehouse.address,
        currency=order.currency,
        carrier_methods=c.carrier_methods(),
        has_preprinted_label=order.free_return_tracking_number() is not None,
    )


def portal_methods(c: Container, merchant_id: str, order_number: str, warehouse_id: str | None) -> dict[str, Any]:
    """The return methods this customer may choose, with their fees (before any label exists)."""
    merchant, order, warehouse = _context(c, merchant_id, order_number, warehouse_id)
    return {"items": [o.to_dict() for o in _options(c, merchant, order, warehouse)]}


def _validate_lines(
    merchant: Merchant, order: Order, lines: list[dict[str, Any]], c: Container, *, actor: str
) -> list[ReturnItem]:
    """Every problem of every line at once, each naming its field (422); quantities are reserved on `order`."""
    now = c.now()
    policy = merchant.policy
    seen: set[str] = set()
    items: list[ReturnItem] = []
    errors: list[dict[str, Any]] = []
    for idx, line in enumerate(lines):
        lid = line["line_item_id"]
        loc: list[Any] = ["items", idx]
        order_item = order.item(lid)
        if order_item is None:
            errors.append({"loc": [*loc, "line_item_id"], "msg": f"'{lid}' is not a line of this order"})
            continue
        if lid in seen:
            errors.append({"loc": [*loc, "line_item_id"], "msg": f"'{lid}' is listed twice"})
            continue
        seen.add(lid)
        el = eligibility(order, order_item, policy, now)
        if not el.returnable:
            errors.append({"loc": [*loc, "line_item_id"], "msg": f"not returnable: {el.reason}"})
            continue
        reason = policy.find_reason(line["reason"])
        if reason is None:
            leaves = sorted(r.code for top in policy.reasons for r in top.walk() if not r.children)
            errors.append({"loc": [*loc, "reason"], "msg": f"unknown reason; one of: {', '.join(leaves)}"})
            continue
        if reason.children:
            options = ", ".join(ch.code for ch in reason.children)
            errors.append({"loc": [*loc, "reason"], "msg": f"choose a more specific reason: one of {options}"})
            continue
        if reason.excludes_item:
            msg = reason.message or f"items returned for the reason '{reason.label}' cannot be taken back"
            errors.append({"loc": [*loc, "reason"], "msg": msg})
            continue
        if reason.comment_required and not (line.get("comment") or "").strip():
            errors.append({"loc": [*loc, "comment"], "msg": f"please describe the problem ('{reason.label}')"})
            continue
        photos = list(line.get("photos") or [])
        if reason.photo_required and not photos and actor == "customer":
            errors.append({"loc": [*loc, "photos"], "msg": f"a photo is required for '{reason.label}'"})
            continue
        photo_errors = check_customer_photos(c, merchant.id, order.order_number, lid, photos)
        if photo_errors:
            errors.extend({"loc": [*loc, "photos", i], "msg": msg} for i, msg in photo_errors)
            continue
        if line["quantity"] > el.returnable_quantity:
            errors.append({"loc": [*loc, "quantity"], "msg": f"at most {el.returnable_quantity} can be returned"})
            continue
        order.reserve(lid, line["quantity"], policy, now)
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
                customer_photos=photos,
                category=order_item.category,
            )
        )
    if errors:
        raise ValidationFailed("some items cannot be returned", errors)
    return items


def _customs(
    merchant: Merchant, order: Order, ret: Return, option: MethodOption
) -> tuple[CustomsDeclaration, list[str]] | None:
    """The customs declaration of an international return; data the order lacks comes from the merchant's
    defaults, each with a warning."""
    if not option.customs_required:
        return None
    inputs = []
    for it in ret.items:
        extra = (order.item(it.line_item_id) or OrderItem("", "", "", 1, Decimal(0))).extra
        inputs.append(
            CustomsItem(
                sku=it.sku,
                description=it.name or it.sku,
                quantity=it.quantity,
                unit_price=it.unit_price,
                hs_code=extra.get("hs_code"),
                country_of_origin=extra.get("country_of_origin"),
                weight_grams=extra.get("weight_grams"),
            )
        )
    lines, warnings = customs_lines(inputs, merchant.policy.customs_defaults)
    return CustomsDeclaration(
        return_id=ret.id,
        reference=order.order_number,
        currency=order.currency,
        sender=order.shipping_address,
        recipient=option.recipient,
        lines=tuple(lines),
    ), warnings


@dataclass
class _Shipment:
    carrier: str
    tracking_number: str
    label_key: str | None
    customs_key: str | None
    pickup_date: str | None
    files: list[str]
    carrier_reference: str | None = None


def _ship(
    c: Container,
    *,
    ret: Return,
    order: Order,
    merchant: Merchant,
    option: MethodOption,
    declaration: CustomsDeclaration | None,
) -> _Shipment:
    """Make the label (first carrier of the route, then its fallbacks) and store it with the customs declaration.
    A pre-printed label needs nothing made: the order's next unused pre-printed tracking number is taken."""
    if option.type == PREPRINTED:
        number = order.free_return_tracking_number()
        if number is None:
            raise ValidationFailed.at(["method_id"], "no unused pre-printed return label is left for this order")
        order.used_return_tracking_numbers.append(number)
        return _Shipment(PREPRINTED, number, None, None, None, [])
    request = LabelRequest(
        return_id=ret.id,
        order_number=order.order_number,
        merchant_name=merchant.name,
        sender=order.shipping_address,
        recipient=option.recipient,
        method=option.type,
        customs=declaration,
        account=ret.warehouse_id,
        weight_grams=sum(line.weight_grams for line in declaration.lines) if declaration else None,
    )
    label: Label | None = None
    last_error: CarrierError | None = None
    for name in (option.carrier, *option.fallbacks):
        carrier = c.carrier(name)
        for _try in range(2):  # a transient failure is retried once, then the next carrier is asked
            try:
                label = carrier.create_label(request)
                break
            except CarrierError as exc:
                last_error = exc
                logger.warning("carrier failed to create a label", carrier=name, transient=exc.transient)
                if not exc.transient:
                    break
        if label is not None:
            break
    if label is None:
        assert last_error is not None
        raise Unavailable(f"no label could be made right now: {last_error.detail}")
    files = []
    label_key = f"labels/{merchant.id}/{ret.id}.pdf"
    c.files.put(label_key, label.content, label.content_type)
    files.append(label_key)
    customs_key = None
    if declaration is not None:
        from chalicelib.adapters.documents.cn23 import render_cn23

        customs_key = f"labels/{merchant.id}/{ret.id}-cn23.pdf"
        pdf = render_cn23(declaration, tracking_number=label.tracking_number, carrier=label.carrier, at=c.now())
        c.files.put(customs_key, pdf, "application/pdf")
        files.append(customs_key)
    pickup = label.pickup_date.isoformat() if label.pickup_date else None
    return _Shipment(
        label.carrier, label.tracking_number, label_key, customs_key, pickup, files, label.carrier_reference
    )


def request_return(
    c: Container,
    *,
    merchant_id: str,
    order_number: str,
    lines: list[dict[str, Any]],
    actor: str,
    warehouse_id: str | None = None,
    method_id: str | None = None,
    notify_customer: bool = True,
    refund_method: str = "original",
) -> tuple[Return, list[TimelineEntry]]:
    """Validate the items and the method, make the label (and the customs declaration), then write return, timeline,
    the order's reserved quantities, the label's expiry marker and the link to a withdrawal in one transaction.

    DynamoDB calls: one BatchGetItem (merchant, order, warehouse) and one TransactWriteItems (plus one GetItem when
    the order has an open withdrawal declaration).
    """
    shipment: _Shipment | None = None
    return_id = new_id("ret")
    for _attempt in range(3):
        merchant, order, warehouse = _context(c, merchant_id, order_number, warehouse_id)
        if refund_method == "store_credit" and not merchant.refunds.store_credit:
            raise ValidationFailed.at(["refund_method"], "this shop does not offer store credit")
        items = _validate_lines(merchant, order, lines, c, actor=actor)
        options = _options(c, merchant, order, warehouse)
        option = choose_method(options, method_id)
        if option is None:
            offered = ", ".join(o.id for o in options) or "none for this country"
            raise ValidationFailed.at(["method_id"], f"not offered for this order; offered: {offered}")
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
        ret.method = option.to_dict()
        ret.notify_customer = notify_customer
        ret.refund_method = refund_method
        ret.customer_email_key = email_key(order.email)
        customs = _customs(merchant, order, ret, option)
        declaration, warnings = customs if customs else (None, [])
        if shipment is None:
            shipment = _ship(c, ret=ret, order=order, merchant=merchant, option=option, declaration=declaration)
        elif option.type == PREPRINTED:
            order.used_return_tracking_numbers.append(shipment.tracking_number)
        if shipment.pickup_date:
            ret.method["pickup_date"] = shipment.pickup_date  # the customer sees when the courier comes
        if declaration is not None:
            ret.customs = {
                "required": True,
                "declaration_key": shipment.customs_key,
                "warnings": warnings,
                "lines": [line.to_dict() for line in declaration.lines],
            }
            for warning in warnings:
                ret.note_customs_warning(warning, actor=actor, at=now)
        ret.attach_label(
            carrier=shipment.carrier,
            tracking_number=shipment.tracking_number,
            label_key=shipment.label_key,
            actor=actor,
            at=now,
            method=option.type,
            **({"pickup_date": shipment.pickup_date} if shipment.pickup_date else {}),
        )
        ret.carrier_reference = shipment.carrier_reference
        ret.label_expires_at = now + timedelta(days=merchant.policy.label_validity_days)
        extra: list[Any] = [c.store.expiry_marker(ret.id, ret.label_expires_at)]
        if getattr(c.carriers.get(shipment.carrier), "polls_tracking", False):  # no webhook: the poller asks
            extra.append(
                c.store.tracking_poll_marker(shipment.carrier, ret.id, shipment.tracking_number, ret.warehouse_id)
            )
        if order.open_withdrawal_id:
            withdrawal = c.store.get_withdrawal(merchant.id, order.order_number, order.open_withdrawal_id)
            withdrawal.return_ids.append(ret.id)
            ret.withdrawal_id = withdrawal.id
            order.open_withdrawal_id = None
            extra.append(c.store.link_withdrawal(withdrawal))
        created = list(ret.new_timeline)
        try:
            c.store.create_return(ret, order, now, extra=tuple(extra))
        except ConcurrentModification:
            logger.info("order changed while creating a return; retrying", return_id=ret.id)
            continue
        except Exception:
            # Nothing of the return was written (one transaction); do not leave its files behind either.
            for key in shipment.files:
                c.files.delete(key)
            raise
        logger.info("return created", return_id=ret.id, merchant_id=merchant.id, items=len(items), method=option.type)
        return ret, created
    if shipment:
        for key in shipment.files:
            c.files.delete(key)
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
            "customer_photos": [{"key": k, "url": c.files.presigned_get(k, ttl)} for k in it.customer_photos],
        }
        if audience != "customer":
            view.update({"checks": it.checks, "notes": it.notes, "clarify": it.clarify, "rule": it.rule})
            view["category"] = it.category
        items.append(view)
    label = None
    customs = None
    printable = ret.status in (ReturnStatus.LABEL_CREATED, ReturnStatus.IN_TRANSIT) or audience != "customer"
    if ret.label_key and printable:
        label = {"url": c.files.presigned_get(ret.label_key, ttl), "content_type": "application/pdf"}
    if ret.customs:
        key = ret.customs.get("declaration_key")
        customs = {
            "required": bool(ret.customs.get("required")),
            "declaration": (
                {"url": c.files.presigned_get(key, ttl), "content_type": "application/pdf"}
                if key and printable
                else None
            ),
        }
        if audience != "customer":
            customs.update({"lines": ret.customs.get("lines", []), "warnings": ret.customs.get("warnings", [])})
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
        "label_expires_at": iso(ret.label_expires_at) if ret.label_expires_at else None,
        "method": ret.method,
        "customs": customs,
        "withdrawal_id": ret.withdrawal_id,
        "carrier_exception": ret.carrier_exception,
        "items": items,
        "discrepancies": ret.discrepancies,
        "parcel_photos": [] if audience == "customer" else photo_views(c, ret.parcel_photos),
        "timeline": entries,
        "refund": ret.refund.to_dict() if ret.refund else None,
        "refund_method": ret.refund_method,
        "refunded": Money(ret.refunded_total, ret.currency).to_dict(),
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
    filters: ReturnFilter | None = None,
) -> tuple[list[Return], dict[str, Any] | None]:
    """A page of the merchant's returns. Status and `updated_since` alone use the status and updated-at indexes
    (newest change first, for incremental sync); any other filter asks the list index for its most selective
    facet (newest created first) and checks the rest on the page's returns: a page may hold fewer than `limit`
    returns and still have a next cursor. Two DynamoDB calls per page: one Query, one BatchGetItem."""
    simple = filters is None or filters == ReturnFilter(status=filters.status)
    if simple:
        return c.store.list_returns(merchant_id, status=status, updated_since=updated_since, cursor=cursor, limit=limit)
    assert filters is not None
    page, last = c.store.query_index(
        merchant_id,
        filters.facet(),
        created_from=filters.created_from,
        created_to=filters.created_to,
        cursor=cursor,
        limit=limit,
    )
    found = c.store.get_returns([rid for rid, _ in page]) if page else []
    kept = [
        r
        for r in found
        if r.merchant_id == merchant_id
        and filters.matches(r)
        and (updated_since is None or r.updated_at >= updated_since)
    ]
    return kept, last


def attention(c: Container, merchant_id: str) -> dict[str, Any]:
    """What needs the merchant: returns awaiting their feedback (with the SLA left before the default applies),
    failed refunds, unresolved carrier exceptions, and parcels the warehouse could not identify and thinks are
    theirs (GET /v1/parcels shows them with photos); oldest first, at most 100 of each kind."""
    merchant = c.store.get_merchant(merchant_id)
    now = c.now()
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for kind in ATTENTION_KINDS:
        page, _ = c.store.query_index(
            merchant_id, f"attention={kind}", created_from=None, created_to=None, cursor=None, limit=100
        )
        since = dict(page)
        found = [r for r in (c.store.get_returns(list(since)) if since else []) if kind in return_attention(r)]
        counts[kind] = len(found)
        for ret in found:
            entry: dict[str, Any] = {
                "return_id": ret.id,
                "order_number": ret.order_number,
                "status": ret.status.value,
                "kind": kind,
                "since": iso(since[ret.id]),
            }
            if kind == "awaiting_feedback":
                sla = c.settings.feedback_timeout_seconds
                hours = sla / 3600 if sla else merchant.guideline.feedback_sla_hours
                entry["sla_left_hours"] = feedback_sla_left(ret, since[ret.id], hours, now)
            elif kind == "refund_failed" and ret.refund is not None:
                amount = Money(ret.refund.amount, ret.currency).to_dict()["amount"]
                entry["detail"] = f"refund {ret.refund.id} of {amount} {ret.currency}"
            elif kind == "carrier_exception" and ret.carrier_exception:
                entry["detail"] = str(ret.carrier_exception.get("status"))
            items.append(entry)
    parcels = c.store.list_merchant_parcels(merchant_id, "open")
    counts["unidentified_parcel"] = len(parcels)
    for p in parcels:
        detail = f"barcode {p.barcode}, {len(p.photos)} photo(s)"
        items.append({"kind": "unidentified_parcel", "parcel_id": p.id, "since": iso(p.created_at), "detail": detail})
    items.sort(key=lambda e: e["since"])
    return {"items": items, "counts": counts}
