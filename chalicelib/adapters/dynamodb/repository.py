"""DynamoDB repository: every read is a GetItem, BatchGetItem or Query; every multi-item write one transaction."""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.adapters.dynamodb.due import Due, due_keys
from chalicelib.adapters.dynamodb.keys import Marker, order_pk, parse_stored, return_pk, stored_time
from chalicelib.adapters.dynamodb.models import (
    ApiKeyRecord,
    BillingRecord,
    CounterRecord,
    DisposalRecord,
    ExportRecord,
    ImportRecord,
    MerchantRecord,
    OrderRecord,
    ParcelRecord,
    PointerRecord,
    RefundRecord,
    ReturnRecord,
    TimelineRecord,
    TrackingNumberClaimRecord,
    WarehouseRecord,
    WorkOrderRecord,
)
from chalicelib.adapters.dynamodb.outbox import bus_event, outbox_attributes
from chalicelib.adapters.dynamodb.privacy import PrivacyStore, retention_marker
from chalicelib.adapters.event_bus import BusEvent
from chalicelib.domain.addresses import Address
from chalicelib.domain.attempts import Claim, ClaimResult, CounterState
from chalicelib.domain.checklists import NO_CHECKLISTS, Checklists
from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification, Conflict, NotFound
from chalicelib.domain.exports import Export
from chalicelib.domain.floor import BILLING_COUNTERS, UnidentifiedParcel, WorkOrder
from chalicelib.domain.guidelines import DEFAULT_GUIDELINE, Guideline
from chalicelib.domain.orders import Delivery, Order, OrderItem, TrackingNumberTaken
from chalicelib.domain.return_index import facets as return_facets
from chalicelib.domain.returns import (
    Disposition,
    Grade,
    ItemStatus,
    RefundSummary,
    Return,
    ReturnItem,
    ReturnStatus,
    TimelineEntry,
)
from chalicelib.domain.routing import Routing
from chalicelib.domain.shop_orders import ShopOrderLink
from chalicelib.domain.sweeping import GRACE
from chalicelib.domain.tenants import Merchant, RefundSettings, ReturnPolicy, Warehouse
from chalicelib.domain.withdrawals import Withdrawal


def _parse_req(raw: str) -> datetime:
    value = parse_stored(raw)
    assert value is not None
    return value


#: Partitions per carrier of the tracking-poll markers (TRACKPOLL#<carrier>#<shard>): a stable hash of the return id.
TRACKPOLL_SHARDS = 8


def _tracking_poll_pk(carrier: str, return_id: str) -> str:
    return f"TRACKPOLL#{carrier}#{zlib.crc32(return_id.encode()) % TRACKPOLL_SHARDS}"


# ----- mapping ----------------------------------------------------------------------------------------------
def _item_to_json(it: ReturnItem) -> dict[str, Any]:
    return {
        "line_item_id": it.line_item_id,
        "sku": it.sku,
        "name": it.name,
        "quantity": it.quantity,
        "unit_price": str(it.unit_price),
        "reason": it.reason,
        "comment": it.comment,
        "tags": it.tags,
        "received_quantity": it.received_quantity,
        "checks": it.checks,
        "notes": it.notes,
        "photos": it.photos,
        "grade": it.grade.value if it.grade else None,
        "disposition": it.disposition.value if it.disposition else None,
        "clarify": it.clarify,
        "rule": it.rule,
        "steps": it.steps,
        "disposition_reason": it.disposition_reason,
        "status": it.status.value,
        "restock_sync": it.restock_sync,
        "received_sku": it.received_sku,
        "customer_photos": it.customer_photos,
        **({"category": it.category} if it.category else {}),
    }


def _item_from_json(d: dict[str, Any]) -> ReturnItem:
    return ReturnItem(
        line_item_id=d["line_item_id"],
        sku=d["sku"],
        name=d.get("name", ""),
        quantity=int(d["quantity"]),
        unit_price=Decimal(d["unit_price"]),
        reason=d["reason"],
        comment=d.get("comment"),
        tags=list(d.get("tags") or []),
        received_quantity=d.get("received_quantity"),
        checks=dict(d.get("checks") or {}),
        notes=d.get("notes"),
        photos=list(d.get("photos") or []),
        grade=Grade(d["grade"]) if d.get("grade") else None,
        disposition=Disposition(d["disposition"]) if d.get("disposition") else None,
        clarify=bool(d.get("clarify")),
        rule=d.get("rule"),
        status=ItemStatus(d.get("status", "expected")),
        steps=list(d.get("steps") or []),
        disposition_reason=d.get("disposition_reason"),
        restock_sync=d.get("restock_sync"),
        received_sku=d.get("received_sku"),
        customer_photos=list(d.get("customer_photos") or []),
        category=d.get("category"),
    )


def _return_to_record(ret: Return) -> ReturnRecord:
    updated = stored_time(ret.updated_at)
    rec = ReturnRecord(
        pk=return_pk(ret.id),
        sk="RETURN",
        merchant_id=ret.merchant_id,
        warehouse_id=ret.warehouse_id,
        order_number=ret.order_number,
        status=ret.status.value,
        created_at=stored_time(ret.created_at),
        updated_at=updated,
        currency=ret.currency,
        customer_country=ret.customer_country,
        locale=ret.locale,
        tracking_token=ret.tracking_token,
        carrier=ret.carrier,
        tracking_number=ret.tracking_number,
        label_key=ret.label_key,
        items=[_item_to_json(i) for i in ret.items],
        discrepancies=ret.discrepancies,
        parcel_photos=ret.parcel_photos,
        refund=(
            {
                "id": ret.refund.id,
                "status": ret.refund.status,
                "amount": str(ret.refund.amount),
                "currency": ret.refund.currency,
            }
            if ret.refund
            else None
        ),
        refunded_total=str(ret.refunded_total),
        feedback_task_token=ret.feedback_task_token,
        details={
            "method": ret.method,
            "notify_customer": ret.notify_customer,
            "customs": ret.customs,
            "withdrawal_id": ret.withdrawal_id,
            "label_expires_at": stored_time(ret.label_expires_at) if ret.label_expires_at else None,
            "carrier_exception": ret.carrier_exception,
            "carrier_reference": ret.carrier_reference,
            "refund_allocated": {k: str(v) for k, v in ret.refund_allocated.items()},
            "refund_shipping_allocated": str(ret.refund_shipping_allocated),
            "refund_quantities": ret.refund_quantities,
            "refund_method": ret.refund_method,
            "customer_email_key": ret.customer_email_key,
            "facets": return_facets(ret),
        },
        gsi1pk=f"MERCHANT#{ret.merchant_id}#STATUS#{ret.status.value}",
        gsi1sk=f"{updated}#{ret.id}",
        gsi3pk=f"MERCHANT#{ret.merchant_id}#RETURNS",
        gsi3sk=f"{updated}#{ret.id}",
    )
    if ret.tracking_number:
        rec.gsi2pk = f"TRACKING#{ret.tracking_number}"
        rec.gsi2sk = f"RETURN#{ret.id}"
    if ret.version is not None:
        rec.version = ret.version
    return rec


def _return_from_record(rec: ReturnRecord) -> Return:
    details = dict(rec.details or {})
    refund = None
    if rec.refund:
        refund = RefundSummary(
            id=rec.refund["id"],
            status=rec.refund["status"],
            amount=Decimal(rec.refund["amount"]),
            currency=rec.refund["currency"],
        )
    return Return(
        id=rec.pk.removeprefix("RETURN#"),
        merchant_id=rec.merchant_id,
        warehouse_id=rec.warehouse_id,
        order_number=rec.order_number,
        currency=rec.currency,
        customer_country=rec.customer_country,
        locale=rec.locale,
        status=ReturnStatus(rec.status),
        created_at=_parse_req(rec.created_at),
        updated_at=_parse_req(rec.updated_at),
        items=[_item_from_json(i) for i in rec.items],
        tracking_token=rec.tracking_token,
        carrier=rec.carrier,
        tracking_number=rec.tracking_number,
        label_key=rec.label_key,
        discrepancies=list(rec.discrepancies or []),
        parcel_photos=list(rec.parcel_photos or []),
        refund=refund,
        refunded_total=Decimal(rec.refunded_total or "0"),
        feedback_task_token=rec.feedback_task_token,
        method=details.get("method"),
        notify_customer=bool(details.get("notify_customer", True)),
        customs=details.get("customs"),
        withdrawal_id=details.get("withdrawal_id"),
        label_expires_at=parse_stored(details.get("label_expires_at")),
        carrier_exception=details.get("carrier_exception"),
        carrier_reference=details.get("carrier_reference"),
        refund_allocated={k: Decimal(v) for k, v in (details.get("refund_allocated") or {}).items()},
        refund_shipping_allocated=Decimal(details.get("refund_shipping_allocated") or "0"),
        refund_quantities={k: int(v) for k, v in (details.get("refund_quantities") or {}).items()},
        refund_method=details.get("refund_method") or "original",
        customer_email_key=details.get("customer_email_key"),
        indexed=list(details.get("facets") or []),
        version=rec.version,
    )


def _timeline_record(pk: str, seq: int, e: TimelineEntry) -> TimelineRecord:
    """An entry's record; an entry that is a domain event carries it (the outbox: written in the transaction of the
    change, published by the stream's consumer)."""
    sk = f"TL#{stored_time(e.at)}#{seq:03d}{secrets.token_hex(4)}"
    rec = TimelineRecord(pk=pk, sk=sk, type=e.type, at=stored_time(e.at), actor=e.actor, data=e.data)
    if e.event is not None:
        for name, value in outbox_attributes(e.event).items():
            setattr(rec, name, value)
    return rec


def _timeline_from_record(rec: TimelineRecord) -> TimelineEntry:
    return TimelineEntry(type=rec.type, at=_parse_req(rec.at), actor=rec.actor, data=dict(rec.data or {}))


def _order_to_record(order: Order, now: datetime) -> OrderRecord:
    rec = OrderRecord(
        pk=order_pk(order.merchant_id, order.order_number),
        sk="ORDER",
        merchant_id=order.merchant_id,
        order_number=order.order_number,
        email=order.email,
        currency=order.currency,
        ordered_at=stored_time(order.ordered_at),
        delivered_at=stored_time(order.delivered_at) if order.delivered_at else None,
        locale=order.locale,
        shipping_address=order.shipping_address.to_dict(),
        items=[
            {
                "line_item_id": i.line_item_id,
                "sku": i.sku,
                "name": i.name,
                "quantity": i.quantity,
                "unit_price": str(i.unit_price),
                "tags": i.tags,
                "delivered_at": stored_time(i.delivered_at) if i.delivered_at else None,
                "returned_quantity": i.returned_quantity,
                **(
                    {"deliveries": [[d.quantity, stored_time(d.delivered_at), d.ref] for d in i.deliveries]}
                    if i.deliveries
                    else {}
                ),
                **({"paid_total": str(i.paid_total)} if i.paid_total is not None else {}),
                **({"category": i.category} if i.category else {}),
                **i.extra,
            }
            for i in order.items
        ],
        return_tracking_numbers=order.return_tracking_numbers,
        details={
            "used_return_tracking_numbers": order.used_return_tracking_numbers,
            "open_withdrawal_id": order.open_withdrawal_id,
            "external_id": order.external_id,
            "source": order.source,
            "shipping_paid": str(order.shipping_paid),
            "refunded": {k: str(v) for k, v in order.refunded.items()},
            "shipping_refunded": str(order.shipping_refunded),
        },
        updated_at=stored_time(now),
    )
    if order.version is not None:
        rec.version = order.version
    return rec


_ORDER_ITEM_KEYS = {
    "line_item_id",
    "sku",
    "name",
    "quantity",
    "unit_price",
    "tags",
    "delivered_at",
    "returned_quantity",
    "deliveries",
    "paid_total",
    "category",
}


def _order_from_record(rec: OrderRecord) -> Order:
    return Order(
        merchant_id=rec.merchant_id,
        order_number=rec.order_number,
        email=rec.email,
        currency=rec.currency,
        ordered_at=_parse_req(rec.ordered_at),
        delivered_at=parse_stored(rec.delivered_at),
        locale=rec.locale,
        shipping_address=Address.from_dict(rec.shipping_address),
        items=[
            OrderItem(
                line_item_id=i["line_item_id"],
                sku=i["sku"],
                name=i.get("name", ""),
                quantity=int(i["quantity"]),
                unit_price=Decimal(i["unit_price"]),
                tags=list(i.get("tags") or []),
                delivered_at=parse_stored(i.get("delivered_at")),
                returned_quantity=int(i.get("returned_quantity") or 0),
                extra={k: v for k, v in i.items() if k not in _ORDER_ITEM_KEYS},
                deliveries=[
                    Delivery(int(piece[0]), _parse_req(piece[1]), piece[2] if len(piece) > 2 else None)
                    for piece in i.get("deliveries") or []
                ],
                paid_total=Decimal(i["paid_total"]) if i.get("paid_total") is not None else None,
                category=i.get("category"),
            )
            for i in rec.items
        ],
        return_tracking_numbers=list(rec.return_tracking_numbers or []),
        used_return_tracking_numbers=list((rec.details or {}).get("used_return_tracking_numbers") or []),
        open_withdrawal_id=(rec.details or {}).get("open_withdrawal_id"),
        external_id=(rec.details or {}).get("external_id"),
        source=(rec.details or {}).get("source") or "api",
        shipping_paid=Decimal((rec.details or {}).get("shipping_paid") or "0"),
        refunded={k: Decimal(v) for k, v in ((rec.details or {}).get("refunded") or {}).items()},
        shipping_refunded=Decimal((rec.details or {}).get("shipping_refunded") or "0"),
        version=rec.version,
    )


def _merchant_from_record(rec: MerchantRecord) -> Merchant:
    return Merchant(
        id=rec.pk.removeprefix("MERCHANT#"),
        name=rec.name,
        slug=rec.slug,
        warehouse_id=rec.warehouse_id,
        created_at=_parse_req(rec.created_at),
        contact_email=rec.contact_email,
        locale=rec.locale,
        policy=ReturnPolicy.from_dict(rec.policy),
        guideline=Guideline.from_dict(rec.guideline) if rec.guideline else DEFAULT_GUIDELINE,
        checklists=Checklists.from_dict(rec.checklists) if rec.checklists else NO_CHECKLISTS,
        refunds=RefundSettings.from_dict(rec.refunds),
        shop=dict(rec.shop) if rec.shop else None,
    )


def _warehouse_from_record(rec: WarehouseRecord) -> Warehouse:
    return Warehouse(
        id=rec.pk.removeprefix("WAREHOUSE#"),
        name=rec.name,
        address=Address.from_dict(rec.address),
        created_at=_parse_req(rec.created_at),
        routing=Routing.from_dict(rec.routing),
    )


def _ack_sk(withdrawal_id: str) -> str:
    """The acknowledgement of a withdrawal, beside it in the order's partition."""
    return f"WITHDRAWALACK#{withdrawal_id}"


def _withdrawal_record(w: Withdrawal) -> PointerRecord:
    return PointerRecord(
        pk=order_pk(w.merchant_id, w.order_number),
        sk=f"WITHDRAWAL#{w.id}",
        data=w.to_dict(),
        created_at=stored_time(w.received_at),
    )


@dataclass(frozen=True)
class Update:
    """An UpdateItem inside the aggregate's transaction (counters, conditional status changes)."""

    record: Any
    actions: list[Any]
    condition: Any = None


def _check_cancellation(exc: TransactWriteError, marker_indexes: set[int]) -> None:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    for idx, reason in enumerate(reasons):
        if reason is not None and reason.code == "ConditionalCheckFailed":
            if idx in marker_indexes:
                raise AlreadyApplied("already applied") from None
            raise ConcurrentModification("the record changed concurrently; retry") from None
    if exc.cause_response_code == "TransactionConflict" or any(
        r is not None and r.code == "TransactionConflict" for r in reasons
    ):
        raise ConcurrentModification("the record changed concurrently; retry") from None
    raise exc


# ----- the warehouse floor: work orders, parcels, disposals, billing ------------------------------------------
def _work_order_to_record(wo: WorkOrder) -> WorkOrderRecord:
    return WorkOrderRecord(
        pk=f"WORKORDER#{wo.id}",
        sk="WORKORDER",
        return_id=wo.return_id,
        merchant_id=wo.merchant_id,
        warehouse_id=wo.warehouse_id,
        line_item_id=wo.line_item_id,
        sku=wo.sku,
        quantity=wo.quantity,
        steps=wo.steps,
        status=wo.status,
        minutes=wo.minutes,
        notes=wo.notes,
        created_at=stored_time(wo.created_at),
        completed_at=stored_time(wo.completed_at) if wo.completed_at else None,
        gsi1pk=f"WAREHOUSE#{wo.warehouse_id}#WORKORDERS#{wo.status}",
        gsi1sk=f"{stored_time(wo.created_at)}#{wo.id}",
    )


def _work_order_from_record(rec: WorkOrderRecord) -> WorkOrder:
    return WorkOrder(
        id=rec.pk.removeprefix("WORKORDER#"),
        return_id=rec.return_id,
        merchant_id=rec.merchant_id,
        warehouse_id=rec.warehouse_id,
        line_item_id=rec.line_item_id,
        sku=rec.sku,
        quantity=int(rec.quantity),
        steps=list(rec.steps or []),
        created_at=_parse_req(rec.created_at),
        status=rec.status,
        minutes=int(rec.minutes) if rec.minutes is not None else None,
        notes=rec.notes,
        completed_at=parse_stored(rec.completed_at),
    )


def _parcel_to_record(p: UnidentifiedParcel) -> ParcelRecord:
    return ParcelRecord(
        pk=f"PARCEL#{p.id}",
        sk="PARCEL",
        warehouse_id=p.warehouse_id,
        barcode=p.barcode,
        status=p.status,
        notes=p.notes,
        sender=p.sender,
        photos=p.photos,
        return_id=p.return_id,
        created_at=stored_time(p.created_at),
        matched_at=stored_time(p.matched_at) if p.matched_at else None,
        gsi1pk=f"WAREHOUSE#{p.warehouse_id}#PARCELS#{p.status}",
        gsi1sk=f"{stored_time(p.created_at)}#{p.id}",
        merchant_id=p.merchant_id,
        gsi2pk=_parcel_merchant_pk(p.merchant_id, p.status) if p.merchant_id else None,
        gsi2sk=f"{stored_time(p.created_at)}#{p.id}" if p.merchant_id else None,
    )


def _partition(pk: str, sk_prefix: str | None = None) -> Iterator[dict[str, Any]]:
    """The raw items of one partition (optionally those whose sort key starts with `sk_prefix`), strongly consistent,
    page after page."""
    condition, values = "pk = :pk", {":pk": {"S": pk}}
    if sk_prefix:
        condition, values = f"{condition} AND begins_with(sk, :prefix)", {**values, ":prefix": {"S": sk_prefix}}
    kwargs: dict[str, Any] = {}
    while True:
        page = _client().query(
            TableName=ReturnRecord.Meta.table_name,
            ConsistentRead=True,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            **kwargs,
        )
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _parcel_merchant_pk(merchant_id: str, status: str) -> str:
    return f"MERCHANT#{merchant_id}#PARCELS#{status}"


def _parcel_from_record(rec: ParcelRecord) -> UnidentifiedParcel:
    return UnidentifiedParcel(
        id=rec.pk.removeprefix("PARCEL#"),
        warehouse_id=rec.warehouse_id,
        barcode=rec.barcode,
        created_at=_parse_req(rec.created_at),
        status=rec.status,
        notes=rec.notes,
        sender=rec.sender,
        photos=[str(p) for p in rec.photos or []],
        return_id=rec.return_id,
        matched_at=parse_stored(rec.matched_at),
        merchant_id=rec.merchant_id,
    )


class FloorStore:
    """Mixin of DynamoStore: the warehouse floor's records."""

    @staticmethod
    def new_work_order(wo: WorkOrder) -> WorkOrderRecord:
        return _work_order_to_record(wo)

    @staticmethod
    def complete_work_order(wo: WorkOrder) -> Update:
        rec = _work_order_to_record(wo)
        assert wo.minutes is not None and rec.completed_at is not None
        actions = [
            WorkOrderRecord.status.set(wo.status),
            WorkOrderRecord.minutes.set(wo.minutes),
            WorkOrderRecord.completed_at.set(rec.completed_at),
            WorkOrderRecord.gsi1pk.set(rec.gsi1pk),
        ]
        if wo.notes:
            actions.append(WorkOrderRecord.notes.set(wo.notes))
        return Update(rec, actions=actions, condition=WorkOrderRecord.status == "open")

    @staticmethod
    def get_work_order(work_order_id: str) -> WorkOrder:
        try:
            return _work_order_from_record(
                WorkOrderRecord.get(f"WORKORDER#{work_order_id}", "WORKORDER", consistent_read=True)
            )
        except DoesNotExist:
            raise NotFound(f"work order '{work_order_id}' not found") from None

    @staticmethod
    def list_work_orders(warehouse_id: str, status: str, limit: int = 100) -> list[WorkOrder]:
        return [
            _work_order_from_record(r)
            for r in WorkOrderRecord.by_warehouse.query(f"WAREHOUSE#{warehouse_id}#WORKORDERS#{status}", limit=limit)
        ]

    @staticmethod
    def disposal(ret: Return, line_item_id: str, at: datetime) -> DisposalRecord:
        item = ret.item(line_item_id)
        return DisposalRecord(
            pk=return_pk(ret.id),
            sk=f"DISPOSAL#{line_item_id}",
            return_id=ret.id,
            merchant_id=ret.merchant_id,
            line_item_id=line_item_id,
            sku=item.sku,
            quantity=item.received_quantity or 0,
            grade=item.grade.value if item.grade else None,
            disposition=item.disposition.value if item.disposition else "dispose",
            reason=item.disposition_reason or "",
            photos=item.photos,
            at=stored_time(at),
            gsi1pk=f"MERCHANT#{ret.merchant_id}#DISPOSALS",
            gsi1sk=f"{stored_time(at)}#{ret.id}#{line_item_id}",
        )

    @staticmethod
    def list_disposals(merchant_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        out = []
        for r in DisposalRecord.by_merchant.query(
            f"MERCHANT#{merchant_id}#DISPOSALS",
            DisposalRecord.gsi1sk.between(stored_time(start), stored_time(end) + "~"),
        ):
            out.append(
                {
                    "return_id": r.return_id,
                    "line_item_id": r.line_item_id,
                    "sku": r.sku,
                    "quantity": int(r.quantity),
                    "grade": r.grade,
                    "disposition": r.disposition,
                    "reason": r.reason,
                    "photos": list(r.photos or []),
                    "at": r.at,
                }
            )
        return out

    @staticmethod
    def billing(merchant_id: str, month: str, **counts: int) -> Update:
        """Counters added in the same transaction as what they count (so retries cannot double them)."""
        unknown = set(counts) - set(BILLING_COUNTERS)
        assert not unknown, unknown
        rec = BillingRecord(pk=f"BILLING#{merchant_id}#{month}", sk="BILLING")
        return Update(rec, actions=[getattr(BillingRecord, k).add(v) for k, v in counts.items() if v])

    @staticmethod
    def get_billing(merchant_id: str, month: str) -> dict[str, int]:
        try:
            rec = BillingRecord.get(f"BILLING#{merchant_id}#{month}", "BILLING", consistent_read=True)
        except DoesNotExist:
            return dict.fromkeys(BILLING_COUNTERS, 0)
        return {k: int(getattr(rec, k) or 0) for k in BILLING_COUNTERS}

    @staticmethod
    def create_parcel(parcel: UnidentifiedParcel, entry: TimelineEntry) -> None:
        """The parcel and its first timeline entry (with its domain event: the outbox), in one transaction."""
        with TransactWrite(connection=_connection()) as tx:
            tx.save(_parcel_to_record(parcel), condition=ParcelRecord.pk.does_not_exist())
            tx.save(_timeline_record(f"PARCEL#{parcel.id}", 0, entry))

    @staticmethod
    def match_parcel(parcel: UnidentifiedParcel) -> Update:
        rec = _parcel_to_record(parcel)
        assert parcel.return_id is not None and rec.matched_at is not None
        return Update(
            rec,
            actions=[
                ParcelRecord.status.set(parcel.status),
                ParcelRecord.return_id.set(parcel.return_id),
                ParcelRecord.matched_at.set(rec.matched_at),
                ParcelRecord.gsi1pk.set(rec.gsi1pk),
                *([ParcelRecord.gsi2pk.set(rec.gsi2pk)] if rec.gsi2pk else []),
            ],
            condition=ParcelRecord.status == "open",
        )

    @staticmethod
    def assign_parcel(parcel: UnidentifiedParcel) -> None:
        """The merchant the warehouse thinks the (still open) parcel is from; ConcurrentModification when it was
        matched meanwhile."""
        rec = _parcel_to_record(parcel)
        try:
            rec.update(
                actions=[
                    ParcelRecord.merchant_id.set(rec.merchant_id),
                    ParcelRecord.gsi2pk.set(rec.gsi2pk),
                    ParcelRecord.gsi2sk.set(rec.gsi2sk),
                ],
                condition=ParcelRecord.pk.exists() & (ParcelRecord.status == "open"),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise ConcurrentModification("the parcel was matched meanwhile") from None
            raise

    @staticmethod
    def list_merchant_parcels(merchant_id: str, status: str, limit: int = 100) -> list[UnidentifiedParcel]:
        """Parcels assigned to the merchant, oldest first."""
        return [
            _parcel_from_record(r)
            for r in ParcelRecord.by_merchant.query(_parcel_merchant_pk(merchant_id, status), limit=limit)
        ]

    @staticmethod
    def add_parcel_photo(parcel_id: str, key: str) -> bool:
        """Append a checked photo to an open parcel once; False if it was recorded before."""
        try:
            ParcelRecord(pk=f"PARCEL#{parcel_id}", sk="PARCEL").update(
                actions=[ParcelRecord.photos.set((ParcelRecord.photos | []).append([key]))],
                condition=ParcelRecord.pk.exists() & ~ParcelRecord.photos.contains(key),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @staticmethod
    def get_parcel(parcel_id: str) -> UnidentifiedParcel:
        try:
            return _parcel_from_record(ParcelRecord.get(f"PARCEL#{parcel_id}", "PARCEL", consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"parcel '{parcel_id}' not found") from None

    @staticmethod
    def list_parcels(warehouse_id: str, status: str, limit: int = 100) -> list[UnidentifiedParcel]:
        return [
            _parcel_from_record(r)
            for r in ParcelRecord.by_warehouse.query(f"WAREHOUSE#{warehouse_id}#PARCELS#{status}", limit=limit)
        ]


class DynamoStore(FloorStore, PrivacyStore):
    """All persistence of the service, returning domain objects."""

    # ----- tenants ------------------------------------------------------------------------------------------
    def create_warehouse(self, wh: Warehouse, key_hash: str, key_id: str) -> None:
        with TransactWrite(connection=_connection()) as tx:
            tx.save(
                WarehouseRecord(
                    pk=f"WAREHOUSE#{wh.id}",
                    sk="WAREHOUSE",
                    name=wh.name,
                    address=wh.address.to_dict(),
                    created_at=stored_time(wh.created_at),
                ),
                condition=WarehouseRecord.pk.does_not_exist(),
            )
            for rec in self._key_records(key_hash, "warehouse", wh.id, key_id, wh.created_at):
                tx.save(rec, condition=PointerRecord.pk.does_not_exist())

    def create_merchant(self, m: Merchant, key_hash: str, key_id: str) -> None:
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(
                    PointerRecord(
                        pk=f"SLUG#{m.slug}",
                        sk="SLUG",
                        data={"merchant_id": m.id},
                        created_at=stored_time(m.created_at),
                    ),
                    condition=PointerRecord.pk.does_not_exist(),
                )
                tx.save(self._merchant_record(m), condition=MerchantRecord.pk.does_not_exist())
                for rec in self._key_records(key_hash, "merchant", m.id, key_id, m.created_at):
                    tx.save(rec, condition=PointerRecord.pk.does_not_exist())
        except TransactWriteError as exc:
            reasons = getattr(exc, "cancellation_reasons", None) or []
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                raise Conflict(f"the slug '{m.slug}' is taken") from None
            raise

    def _merchant_record(self, m: Merchant) -> MerchantRecord:
        rec = MerchantRecord(
            pk=f"MERCHANT#{m.id}",
            sk="MERCHANT",
            name=m.name,
            slug=m.slug,
            warehouse_id=m.warehouse_id,
            contact_email=m.contact_email,
            locale=m.locale,
            created_at=stored_time(m.created_at),
            policy=m.policy.to_dict(),
            guideline=m.guideline.to_dict(),
            checklists=m.checklists.to_dict(),
            refunds=m.refunds.to_dict(),
        )
        return rec

    @staticmethod
    def _key_records(
        key_hash: str, kind: str, principal_id: str, key_id: str, created_at: datetime | None = None
    ) -> list[Any]:
        """The key by its hash (what authentication reads; listed per principal through gsi1) and by its id (what
        revoking it needs)."""
        at = stored_time(created_at or datetime.now(UTC))
        return [
            ApiKeyRecord(
                pk=f"APIKEY#{key_hash}",
                sk="APIKEY",
                data={"kind": kind, "principal_id": principal_id, "key_id": key_id},
                created_at=at,
                gsi1pk=f"KEYS#{kind}#{principal_id}",
                gsi1sk=f"{at}#{key_id}",
            ),
            PointerRecord(
                pk=f"KEYID#{key_id}",
                sk="KEYID",
                data={"kind": kind, "principal_id": principal_id, "key_hash": key_hash},
                created_at=at,
            ),
        ]

    def add_api_key(self, key_hash: str, kind: str, principal_id: str, key_id: str) -> None:
        with TransactWrite(connection=_connection()) as tx:
            for rec in self._key_records(key_hash, kind, principal_id, key_id):
                tx.save(rec, condition=rec.__class__.pk.does_not_exist())

    def revoke_api_key(self, kind: str, principal_id: str, key_id: str) -> None:
        """Delete one of a principal's keys (both its items, in one transaction); another principal's key id, or
        an unknown one: NotFound."""
        try:
            rec = PointerRecord.get(f"KEYID#{key_id}", "KEYID", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"key '{key_id}' not found") from None
        data = dict(rec.data or {})
        if data.get("principal_id") != principal_id or data.get("kind") != kind:
            raise NotFound(f"key '{key_id}' not found")
        with TransactWrite(connection=_connection()) as tx:
            tx.delete(ApiKeyRecord(pk=f"APIKEY#{data['key_hash']}", sk="APIKEY"))
            tx.delete(PointerRecord(pk=f"KEYID#{key_id}", sk="KEYID"))

    def get_api_key(self, key_hash: str) -> dict[str, Any] | None:
        """kind, principal_id, key_id and last_used_at (a datetime or None) of a key, by its hash."""
        try:
            rec = ApiKeyRecord.get(f"APIKEY#{key_hash}", "APIKEY")
        except DoesNotExist:
            return None
        return {**dict(rec.data or {}), "last_used_at": parse_stored(rec.last_used_at)}

    def touch_api_key(self, key_hash: str, now: datetime, stale_before: datetime) -> bool:
        """Record that the key was used at `now`, unless a use since `stale_before` is already recorded (one
        conditional UpdateItem; a revoked key is not written back). False when there was nothing to do."""
        rec = ApiKeyRecord(pk=f"APIKEY#{key_hash}", sk="APIKEY")
        try:
            rec.update(
                actions=[ApiKeyRecord.last_used_at.set(stored_time(now))],
                condition=ApiKeyRecord.pk.exists()
                & (
                    ApiKeyRecord.last_used_at.does_not_exist() | (ApiKeyRecord.last_used_at < stored_time(stale_before))
                ),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def list_api_keys(
        self, kind: str, principal_id: str, *, limit: int, cursor: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """A principal's keys, oldest first: [{id, created_at, last_used_at}] (never the hash), and the next page's
        key. One Query on gsi1."""
        page = ApiKeyRecord.by_principal.query(f"KEYS#{kind}#{principal_id}", limit=limit, last_evaluated_key=cursor)
        items = [
            {
                "id": str((rec.data or {}).get("key_id")),
                "created_at": _parse_req(rec.created_at or ""),
                "last_used_at": parse_stored(rec.last_used_at),
            }
            for rec in page
        ]
        return items, page.last_evaluated_key

    def claim_tracking_numbers(
        self, warehouse_id: str, merchant_id: str, order_number: str, numbers: list[str], now: datetime
    ) -> list[tuple[Any, Any]]:
        """The items (with their conditions) that take pre-printed return tracking numbers in a warehouse for a
        merchant: to write in the same transaction as the order. A number another merchant holds fails its
        condition (`tracking_number_taken` names it)."""
        return [
            (
                TrackingNumberClaimRecord(
                    pk=f"RTN#{warehouse_id}#{number}",
                    sk="RTN",
                    merchant_id=merchant_id,
                    order_number=order_number,
                    created_at=stored_time(now),
                ),
                TrackingNumberClaimRecord.pk.does_not_exist() | (TrackingNumberClaimRecord.merchant_id == merchant_id),
            )
            for number in dict.fromkeys(numbers)
        ]

    def get_warehouse(self, warehouse_id: str) -> Warehouse:
        try:
            return _warehouse_from_record(WarehouseRecord.get(f"WAREHOUSE#{warehouse_id}", "WAREHOUSE"))
        except DoesNotExist:
            raise NotFound(f"warehouse '{warehouse_id}' not found") from None

    def get_merchant(self, merchant_id: str) -> Merchant:
        try:
            return _merchant_from_record(MerchantRecord.get(f"MERCHANT#{merchant_id}", "MERCHANT"))
        except DoesNotExist:
            raise NotFound(f"merchant '{merchant_id}' not found") from None

    def merchant_id_for_slug(self, slug: str) -> str | None:
        try:
            rec = PointerRecord.get(f"SLUG#{slug}", "SLUG")
        except DoesNotExist:
            return None
        return str((rec.data or {})["merchant_id"])

    def update_merchant_settings(
        self,
        merchant_id: str,
        *,
        policy: dict[str, Any] | None = None,
        guideline: dict[str, Any] | None = None,
        refunds: dict[str, Any] | None = None,
        checklists: dict[str, Any] | None = None,
        shop: dict[str, Any] | None = None,
    ) -> None:
        actions = []
        if shop is not None:
            actions.append(MerchantRecord.shop.set(shop))
        if checklists is not None:
            actions.append(MerchantRecord.checklists.set(checklists))
        if policy is not None:
            actions.append(MerchantRecord.policy.set(policy))
        if guideline is not None:
            actions.append(MerchantRecord.guideline.set(guideline))
        if refunds is not None:
            actions.append(MerchantRecord.refunds.set(refunds))
        if not actions:
            return
        try:
            MerchantRecord(pk=f"MERCHANT#{merchant_id}", sk="MERCHANT").update(
                actions=[*actions, MerchantRecord.settings_version.add(1)],
                condition=MerchantRecord.pk.exists(),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise NotFound(f"merchant '{merchant_id}' not found") from None
            raise

    def count_within(self, key: str, limit: int, expires_at: datetime) -> bool:
        """Count one call on the counter `key` (a RATELIMIT item) unless it already counts `limit`: True if counted.
        Check and count are one conditional UpdateItem, so parallel calls can never pass the limit together."""
        try:
            CounterRecord(pk=key, sk="RATELIMIT").update(
                actions=[CounterRecord.hits.add(1), CounterRecord.expires_at.set(expires_at)],
                condition=CounterRecord.hits.does_not_exist() | (CounterRecord.hits < limit),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ----- orders -------------------------------------------------------------------------------------------
    def get_order(self, merchant_id: str, order_number: str) -> Order | None:
        try:
            return _order_from_record(OrderRecord.get(order_pk(merchant_id, order_number), "ORDER"))
        except DoesNotExist:
            return None

    def save_order(self, order: Order, now: datetime, claims: list[tuple[Any, Any]] | None = None) -> None:
        """Insert (version None) or replace under the version read; with `claims` (claim_tracking_numbers) in one
        transaction: a number another merchant holds raises TrackingNumberTaken and nothing is written."""
        rec = _order_to_record(order, now)
        if claims:
            try:
                with TransactWrite(connection=_connection()) as tx:
                    tx.save(rec)
                    for claim, condition in claims:
                        tx.save(claim, condition=condition)
            except TransactWriteError as exc:
                raise_for_order_transaction(exc, claims, first_claim=1)
            order.version = rec.version
            return
        try:
            rec.save()
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise ConcurrentModification("the order changed concurrently; retry") from None
            raise
        order.version = rec.version

    def customer_order_link(
        self, merchant_id: str, email_key: str, order_number: str, now: datetime
    ) -> tuple[PointerRecord, None]:
        """The sparse customer -> orders index item (pk CUSTOMER#<merchant_id>#<email key>, sk ORDER#<order_number>),
        unconditional, to write in the order's own transaction (save_order's `claims`, after the tracking number
        claims): what a customer's access export and erasure find their orders by. The key is the address hashed
        (return_index.email_key); a reader checks the order's own email, so a link left by an order whose address
        changed since finds nothing."""
        link = PointerRecord(
            pk=_customer_pk(merchant_id, email_key),
            sk=f"ORDER#{order_number}",
            data={"order_number": order_number},
            created_at=stored_time(now),
        )
        return link, None

    def customer_order_numbers(self, merchant_id: str, email_key: str) -> list[str]:
        """The order numbers linked to a customer (customer_order_link): one Query, page after page."""
        return [
            str((PointerRecord.from_raw_data(raw).data or {})["order_number"])
            for raw in _partition(_customer_pk(merchant_id, email_key), "ORDER#")
        ]

    def get_orders(self, merchant_id: str, order_numbers: list[str]) -> list[Order]:
        """Orders by number, BatchGetItem 100 at a time, in the order asked; missing ones left out."""
        out: list[Order] = []
        for start in range(0, len(order_numbers), 100):
            numbers = order_numbers[start : start + 100]
            raw = _batch_get([(order_pk(merchant_id, n), "ORDER") for n in numbers])
            for n in numbers:
                item = raw.get((order_pk(merchant_id, n), "ORDER"))
                if item is not None:
                    out.append(_order_from_record(OrderRecord.from_raw_data(item)))
        return out

    def order_withdrawals(self, merchant_id: str, order_number: str) -> list[dict[str, Any]]:
        """The withdrawals declared for an order (from its partition), each with its acknowledgement's record
        (`acknowledgement`: sent_at / given_up_at, or {} while it is to be sent)."""
        withdrawals: dict[str, dict[str, Any]] = {}
        acks: dict[str, dict[str, Any]] = {}
        for raw in _partition(order_pk(merchant_id, order_number), "WITHDRAWAL"):
            rec = PointerRecord.from_raw_data(raw)
            if rec.sk.startswith("WITHDRAWAL#"):
                withdrawals[rec.sk.removeprefix("WITHDRAWAL#")] = dict(rec.data or {})
            elif rec.sk.startswith("WITHDRAWALACK#"):
                data = dict(rec.data or {})
                acks[rec.sk.removeprefix("WITHDRAWALACK#")] = {
                    k: v for k, v in data.items() if k in ("sent_at", "given_up_at")
                }
        return [{**w, "acknowledgement": acks.get(wid, {})} for wid, w in sorted(withdrawals.items())]

    def notifications_sent(self, return_id: str) -> list[dict[str, Any]]:
        """The customer emails recorded as sent for a return (services/notifications.py's markers, kept a while):
        [{event_type, at}]."""
        out = []
        for raw in _partition(f"NOTIFY#{return_id}"):
            data = dict(PointerRecord.from_raw_data(raw).data or {})
            out.append({"event_type": data.get("event_type") or raw["sk"]["S"], "at": data.get("at")})
        return out

    def load_for_return_creation(
        self, merchant_id: str, order_number: str, warehouse_id: str | None = None
    ) -> tuple[Merchant, Order | None, Warehouse | None]:
        """Merchant, order and (optionally) warehouse in one BatchGetItem."""
        keys: list[tuple[str, str]] = [
            (f"MERCHANT#{merchant_id}", "MERCHANT"),
            (order_pk(merchant_id, order_number), "ORDER"),
        ]
        if warehouse_id:
            keys.append((f"WAREHOUSE#{warehouse_id}", "WAREHOUSE"))
        raw = _batch_get(keys)
        merchant_raw = raw.get((f"MERCHANT#{merchant_id}", "MERCHANT"))
        if merchant_raw is None:
            raise NotFound(f"merchant '{merchant_id}' not found")
        merchant = _merchant_from_record(MerchantRecord.from_raw_data(merchant_raw))
        order_raw = raw.get((order_pk(merchant_id, order_number), "ORDER"))
        order = _order_from_record(OrderRecord.from_raw_data(order_raw)) if order_raw else None
        wh_raw = raw.get((f"WAREHOUSE#{warehouse_id}", "WAREHOUSE")) if warehouse_id else None
        warehouse = _warehouse_from_record(WarehouseRecord.from_raw_data(wh_raw)) if wh_raw else None
        return merchant, order, warehouse

    # ----- returns ------------------------------------------------------------------------------------------
    def create_return(self, ret: Return, order: Order, now: datetime, extra: tuple[Any, ...] = ()) -> None:
        """The return, its timeline, its tracking token, the order's reserved quantities and `extra` records (expiry
        marker, withdrawal link): one transaction."""
        try:
            with TransactWrite(connection=_connection()) as tx:
                for item in extra:
                    tx.save(item)
                tx.save(_return_to_record(ret), condition=ReturnRecord.pk.does_not_exist())
                tx.save(_order_to_record(order, now))
                tx.save(
                    PointerRecord(
                        pk=f"TRACKTOKEN#{ret.tracking_token}",
                        sk="TRACKTOKEN",
                        data={"return_id": ret.id},
                        created_at=stored_time(now),
                    ),
                    condition=PointerRecord.pk.does_not_exist(),
                )
                for rec in self._timeline_records(ret):
                    tx.save(rec)
                self._write_index(tx, ret)
        except TransactWriteError as exc:
            _check_cancellation(exc, set())
        ret.indexed = return_facets(ret)
        ret.version = 1
        order.version = (order.version or 0) + 1
        ret.new_timeline.clear()

    def save_return(
        self,
        ret: Return,
        markers: tuple[Marker, ...] = (),
        order: Order | None = None,
        now: datetime | None = None,
        extra: tuple[Any, ...] = (),
        updates: tuple[Update, ...] = (),
    ) -> None:
        """Write the return under its version, its new timeline entries and any markers, in one transaction.

        A marker that already exists raises AlreadyApplied (the same event was applied before); a version
        mismatch raises ConcurrentModification. Nothing is written in either case.
        """
        rec = _return_to_record(ret)
        marker_indexes: set[int] = set()
        # DynamoDB's cancellation reasons follow the request's item order, and PynamoDB sends the deletes (here: list
        # index items the return left) before the puts: a marker's index counts them first.
        idx = len(self._index_deletes(ret))
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(rec)
                idx += 1
                for m in markers:
                    expires = (
                        (datetime.now().astimezone() + timedelta(seconds=m.ttl_seconds)) if m.ttl_seconds else None
                    )
                    tx.save(
                        PointerRecord(
                            pk=m.pk, sk=m.sk, data=m.data, created_at=stored_time(ret.updated_at), expires_at=expires
                        ),
                        condition=PointerRecord.sk.does_not_exist(),
                    )
                    marker_indexes.add(idx)
                    idx += 1
                if order is not None:
                    tx.save(_order_to_record(order, now or ret.updated_at))
                    idx += 1
                for item in extra:
                    tx.save(item)
                    idx += 1
                for up in updates:
                    tx.update(up.record, actions=up.actions, condition=up.condition)
                    idx += 1
                ended = retention_marker(ret)
                if ended is not None:  # the retention period starts (services/privacy.py sweeps it)
                    tx.save(ended)
                for tl in self._timeline_records(ret):
                    tx.save(tl)
                self._write_index(tx, ret)
        except TransactWriteError as exc:
            _check_cancellation(exc, marker_indexes)
        ret.indexed = return_facets(ret)
        ret.version = rec.version
        ret.new_timeline.clear()

    @staticmethod
    def _index_deletes(ret: Return) -> list[str]:
        now = return_facets(ret)
        return [f for f in ret.indexed if f not in now]

    @classmethod
    def _write_index(cls, tx: TransactWrite, ret: Return) -> None:
        """The list index items that changed (return_index.py): new facets put, dropped ones deleted. A facet
        item's `since` is when the return entered it (e.g. since when it awaits feedback)."""
        now = return_facets(ret)
        sk = f"{stored_time(ret.created_at)}#{ret.id}"
        for facet in [f for f in now if f not in ret.indexed]:
            tx.save(PointerRecord(pk=_index_pk(ret.merchant_id, facet), sk=sk, created_at=stored_time(ret.updated_at)))
        for facet in cls._index_deletes(ret):
            tx.delete(PointerRecord(pk=_index_pk(ret.merchant_id, facet), sk=sk))

    def query_index(
        self,
        merchant_id: str,
        facet: str,
        *,
        created_from: datetime | None,
        created_to: datetime | None,
        cursor: dict[str, Any] | None,
        limit: int,
    ) -> tuple[list[tuple[str, datetime]], dict[str, Any] | None]:
        """One page of (return id, since) from a list facet, newest first, within a created-at range."""
        low = stored_time(created_from) if created_from else "0"
        high = (stored_time(created_to) if created_to else "9999") + "#~"
        result = PointerRecord.query(
            _index_pk(merchant_id, facet),
            PointerRecord.sk.between(low, high),
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=cursor,
        )
        page = [(rec.sk.rsplit("#", 1)[1], _parse_req(rec.created_at)) for rec in result]
        return page, result.last_evaluated_key

    def get_returns(self, return_ids: list[str]) -> list[Return]:
        """Returns by id in one BatchGetItem (up to 100), in the order asked; missing ones left out."""
        raw = _batch_get([(return_pk(rid), "RETURN") for rid in return_ids])
        out = []
        for rid in return_ids:
            item = raw.get((return_pk(rid), "RETURN"))
            if item is not None:
                out.append(_return_from_record(ReturnRecord.from_raw_data(item)))
        return out

    @staticmethod
    def _timeline_records(ret: Return) -> list[TimelineRecord]:
        return [_timeline_record(return_pk(ret.id), seq, e) for seq, e in enumerate(ret.new_timeline)]

    def get_return(self, return_id: str) -> Return:
        try:
            return _return_from_record(ReturnRecord.get(return_pk(return_id), "RETURN", consistent_read=True))
        except DoesNotExist:
            raise NotFound(f"return '{return_id}' not found") from None

    def get_return_with_timeline(self, return_id: str) -> tuple[Return, list[TimelineEntry]]:
        """One Query over the return's partition: the aggregate and its timeline."""
        ret: Return | None = None
        timeline: list[TimelineEntry] = []
        for raw in _partition(return_pk(return_id)):
            sk = raw["sk"]["S"]
            if sk == "RETURN":
                ret = _return_from_record(ReturnRecord.from_raw_data(raw))
            elif sk.startswith("TL#"):
                timeline.append(_timeline_from_record(TimelineRecord.from_raw_data(raw)))
        if ret is None:
            raise NotFound(f"return '{return_id}' not found")
        timeline.sort(key=lambda e: e.at)
        return ret, timeline

    def outbox_events(self, return_id: str) -> list[BusEvent]:
        """The domain events the return's timeline records hold (the outbox), oldest first, each with its event id:
        exactly what the stream relay put on the bus for them (for replays into idempotent consumers)."""
        events: list[tuple[str, BusEvent]] = []
        for raw in _partition(return_pk(return_id), "TL#"):
            event = bus_event({"eventName": "INSERT", "dynamodb": {"Keys": raw, "NewImage": raw}})
            if event is not None:
                events.append((raw["at"]["S"], event))
        return [event for _, event in sorted(events, key=lambda pair: pair[0])]

    def return_id_for_tracking_token(self, token: str) -> str | None:
        try:
            rec = PointerRecord.get(f"TRACKTOKEN#{token}", "TRACKTOKEN")
        except DoesNotExist:
            return None
        return str((rec.data or {})["return_id"])

    def find_returns_by_tracking_number(self, tracking_number: str) -> list[Return]:
        return [_return_from_record(r) for r in ReturnRecord.by_tracking_number.query(f"TRACKING#{tracking_number}")]

    def list_returns(
        self,
        merchant_id: str,
        *,
        status: str | None,
        updated_since: datetime | None,
        cursor: dict[str, Any] | None,
        limit: int,
    ) -> tuple[list[Return], dict[str, Any] | None]:
        if status:
            index: Any = ReturnRecord.by_merchant_status
            hash_key = f"MERCHANT#{merchant_id}#STATUS#{status}"
            range_attr: Any = ReturnRecord.gsi1sk
        else:
            index = ReturnRecord.by_merchant
            hash_key = f"MERCHANT#{merchant_id}#RETURNS"
            range_attr = ReturnRecord.gsi3sk
        cond = range_attr >= stored_time(updated_since) if updated_since else None
        result = index.query(
            hash_key,
            range_key_condition=cond,
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=cursor,
        )
        items = [_return_from_record(r) for r in result]
        return items, result.last_evaluated_key

    # ----- refunds ------------------------------------------------------------------------------------------
    def refund_record(
        self,
        ret: Return,
        *,
        refund_id: str,
        amount: Decimal,
        reason: str | None,
        target: str,
        now: datetime,
        items: list[dict[str, Any]],
        details: dict[str, Any] | None = None,
    ) -> RefundRecord:
        pk, sk = return_pk(ret.id), f"REFUND#{refund_id}"
        gsi4pk, gsi4sk = due_keys("refund", pk, sk, now + GRACE["refund"])  # leaves GSI4 once settled (the model)
        return RefundRecord(
            pk=pk,
            sk=sk,
            gsi4pk=gsi4pk,
            gsi4sk=gsi4sk,
            refund_id=refund_id,
            return_id=ret.id,
            merchant_id=ret.merchant_id,
            amount=str(amount),
            currency=ret.currency,
            status="pending",
            reason=reason,
            target=target,
            created_at=stored_time(now),
            updated_at=stored_time(now),
            attempts=0,
            items=items,
            details=details or {},
        )

    def get_refund(self, return_id: str, refund_id: str) -> RefundRecord:
        try:
            return RefundRecord.get(return_pk(return_id), f"REFUND#{refund_id}", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"refund '{refund_id}' not found") from None

    def refund_attempt(self, return_id: str, refund_id: str, now: datetime) -> RefundRecord:
        rec = RefundRecord(pk=return_pk(return_id), sk=f"REFUND#{refund_id}")
        rec.update(
            actions=[RefundRecord.attempts.add(1), RefundRecord.updated_at.set(stored_time(now))],
            condition=RefundRecord.pk.exists(),
        )
        return rec

    def refund_check(self, return_id: str, refund_id: str) -> int:
        """Count one more check of an unconfirmed refund; the new count."""
        rec = RefundRecord(pk=return_pk(return_id), sk=f"REFUND#{refund_id}")
        rec.update(actions=[RefundRecord.checks.add(1)], condition=RefundRecord.pk.exists())
        return int(rec.checks)

    def refund_attempt_failed(self, return_id: str, refund_id: str, error: str) -> None:
        """The last attempt's error, for the merchant's refund history while the refund is retried."""
        try:
            RefundRecord(pk=return_pk(return_id), sk=f"REFUND#{refund_id}").update(
                actions=[RefundRecord.error.set(error[:500])],
                condition=RefundRecord.pk.exists() & (RefundRecord.status == "pending"),
            )
        except UpdateError as exc:  # a failed condition: settled meanwhile, and its final error stands
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def list_refunds(self, return_id: str) -> list[RefundRecord]:
        return list(
            RefundRecord.query(return_pk(return_id), RefundRecord.sk.startswith("REFUND#"), consistent_read=True)
        )

    def set_routing(self, warehouse_id: str, routing: Routing) -> None:
        try:
            WarehouseRecord(pk=f"WAREHOUSE#{warehouse_id}", sk="WAREHOUSE").update(
                actions=[WarehouseRecord.routing.set(routing.to_dict())], condition=WarehouseRecord.pk.exists()
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise NotFound(f"warehouse '{warehouse_id}' not found") from None
            raise

    # ----- label expiry -----------------------------------------------------------------------------------
    @staticmethod
    def expiry_marker(return_id: str, due: datetime) -> PointerRecord:
        """Written with a return whose label can expire: one partition per due day, so a sweep reads only the
        days that are due (Query), never the table."""
        return PointerRecord(
            pk=f"EXPIRY#{due.astimezone(UTC).date().isoformat()}",
            sk=return_id,
            data={"due": stored_time(due)},
            created_at=stored_time(due),
        )

    def expiry_candidates(self, day: str) -> list[tuple[str, datetime]]:
        return [
            (rec.sk, _parse_req((rec.data or {})["due"]))
            for rec in PointerRecord.query(f"EXPIRY#{day}", consistent_read=True)
        ]

    def delete_expiry_marker(self, day: str, return_id: str) -> None:
        PointerRecord(pk=f"EXPIRY#{day}", sk=return_id).delete()

    # ----- tracking polls ---------------------------------------------------------------------------------
    @staticmethod
    def tracking_poll_marker(carrier: str, return_id: str, tracking_number: str, account: str | None) -> PointerRecord:
        """Written with a return whose carrier must be asked for tracking (no webhook): the poller Queries the
        carrier's TRACKPOLL_SHARDS partitions, never the table. Sharded so that no partition gets hot."""
        return PointerRecord(
            pk=_tracking_poll_pk(carrier, return_id),
            sk=return_id,
            data={"tracking_number": tracking_number, "account": account},
        )

    def tracking_poll_candidates(self, carrier: str) -> list[tuple[str, str, str | None]]:
        """(return id, tracking number, account) of every polled return of `carrier`, least recently polled first
        (never polled before all others), so a run that stops early is continued by the next one."""
        found: list[tuple[str, str, str, str | None]] = []
        for shard in range(TRACKPOLL_SHARDS):
            for rec in PointerRecord.query(f"TRACKPOLL#{carrier}#{shard}", consistent_read=True):
                data = dict(rec.data or {})
                found.append(
                    (str(data.get("polled_at") or ""), rec.sk, str(data["tracking_number"]), data.get("account"))
                )
        found.sort(key=lambda f: (f[0], f[1]))
        return [(return_id, number, account) for _, return_id, number, account in found]

    def tracking_polled(
        self, carrier: str, return_id: str, tracking_number: str, account: str | None, at: datetime
    ) -> None:
        """Note when the carrier was last asked (the order of `tracking_poll_candidates`). A marker deleted meanwhile
        stays deleted."""
        try:
            PointerRecord(
                pk=_tracking_poll_pk(carrier, return_id),
                sk=return_id,
                data={"tracking_number": tracking_number, "account": account, "polled_at": stored_time(at)},
            ).save(condition=PointerRecord.sk.exists())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def delete_tracking_poll(self, carrier: str, return_id: str) -> None:
        PointerRecord(pk=_tracking_poll_pk(carrier, return_id), sk=return_id).delete()

    # ----- withdrawals ------------------------------------------------------------------------------------
    def create_withdrawal(self, w: Withdrawal, order: Order, now: datetime) -> None:
        """The declaration, the order's pointer to it and its acknowledgement to send (in GSI4 until it is sent: the
        sweeper sends it if nobody else did), in one transaction (under the order's version)."""
        ack_pk, ack_sk = order_pk(w.merchant_id, w.order_number), _ack_sk(w.id)
        gsi4pk, gsi4sk = due_keys("acknowledgement", ack_pk, ack_sk, now + GRACE["acknowledgement"])
        ack = PointerRecord(
            pk=ack_pk,
            sk=ack_sk,
            data={"withdrawal_id": w.id, "merchant_id": w.merchant_id, "order_number": w.order_number},
            created_at=stored_time(now),
            gsi4pk=gsi4pk,
            gsi4sk=gsi4sk,
        )
        try:
            with TransactWrite(connection=_connection()) as tx:
                tx.save(_withdrawal_record(w), condition=PointerRecord.pk.does_not_exist())
                tx.save(ack, condition=PointerRecord.pk.does_not_exist())
                tx.save(_order_to_record(order, now))
        except TransactWriteError as exc:
            _check_cancellation(exc, set())
        order.version = (order.version or 0) + 1

    def acknowledgement_at(self, due: Due) -> dict[str, Any] | None:
        """The withdrawal acknowledgement a GSI4 entry points at (its data, with `due` = its due key now; None:
        gone)."""
        try:
            rec = PointerRecord.get(due.pk, due.sk, consistent_read=True)
        except DoesNotExist:
            return None
        return {**(rec.data or {}), "due": rec.gsi4sk}

    def acknowledgement_done(
        self, merchant_id: str, order_number: str, withdrawal_id: str, *, at: datetime, sent: bool
    ) -> None:
        """The acknowledgement was sent (or, `sent` False, given up on): it leaves GSI4, the time is kept."""
        rec = PointerRecord(pk=order_pk(merchant_id, order_number), sk=_ack_sk(withdrawal_id))
        data = {"withdrawal_id": withdrawal_id, "merchant_id": merchant_id, "order_number": order_number}
        data["sent_at" if sent else "given_up_at"] = stored_time(at)
        try:
            rec.update(
                actions=[PointerRecord.data.set(data), PointerRecord.gsi4pk.remove(), PointerRecord.gsi4sk.remove()],
                condition=PointerRecord.pk.exists() & PointerRecord.gsi4pk.exists(),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise  # else: recorded already (the API and the sweeper both sent it)

    def link_withdrawal(self, w: Withdrawal) -> PointerRecord:
        return _withdrawal_record(w)

    def get_withdrawal(self, merchant_id: str, order_number: str, withdrawal_id: str) -> Withdrawal:
        try:
            rec = PointerRecord.get(order_pk(merchant_id, order_number), f"WITHDRAWAL#{withdrawal_id}")
        except DoesNotExist:
            raise NotFound(f"withdrawal '{withdrawal_id}' not found") from None
        return Withdrawal.from_dict(dict(rec.data or {}))

    def get_marker(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            rec = PointerRecord.get(pk, sk, consistent_read=True)
        except DoesNotExist:
            return None
        return dict(rec.data or {})

    def claim_marker(self, pk: str, sk: str, data: dict[str, Any], ttl_seconds: int | None = None) -> bool:
        """Write a marker unless it exists: True if this call wrote it (the caller may now act once)."""
        expires = (datetime.now().astimezone() + timedelta(seconds=ttl_seconds)) if ttl_seconds else None
        try:
            PointerRecord(
                pk=pk, sk=sk, data=data, created_at=stored_time(datetime.now().astimezone()), expires_at=expires
            ).save(condition=PointerRecord.sk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_marker(self, pk: str, sk: str) -> None:
        """Undo claim_marker (the action it guarded failed and will be retried)."""
        PointerRecord(pk=pk, sk=sk).delete()

    # ----- rate limiting ------------------------------------------------------------------------------------
    def counters(self, keys: list[str]) -> dict[str, int]:
        raw = _batch_get([(k, "RATELIMIT") for k in keys])
        return {pk: int(item.get("hits", {}).get("N", "0")) for (pk, _), item in raw.items()}

    def increment(self, key: str, expires_at: datetime) -> None:
        CounterRecord(pk=key, sk="RATELIMIT").update(
            actions=[CounterRecord.hits.add(1), CounterRecord.expires_at.set(expires_at)]
        )

    # Portal attempts (domain/attempts.py): one item per counter, an entry per attempt let through (`<pool>_<id>`:
    # until, ms), the pool's entry count (`<pool>n`), per client on an order's counter its outstanding attempts
    # (`c_<client>`) and until when its latest counts (`t_<client>`); `expires_at` (TTL) after the latest entry.
    def claim_attempt(self, claims: list[Claim], now_ms: int, until_ms: int) -> ClaimResult:
        """Room for one attempt in every counter, or in none: one TransactWriteItems of conditional updates (each
        adds this attempt's entry only while its pool holds fewer entries than its limit). A counter without room
        comes back as read (ALL_OLD), for the caller to prune or to say when to come back."""
        table = ReturnRecord.Meta.table_name
        items = []
        for claim in claims:
            names = {"#e": f"{claim.pool}_{claim.entry}", "#n": f"{claim.pool}n", "#x": "expires_at"}
            values: dict[str, Any] = {
                ":u": {"N": str(until_ms)},
                ":one": {"N": "1"},
                ":lim": {"N": str(claim.limit)},
                ":ttl": {"N": str(until_ms // 1000 + 60)},
            }
            sets, adds = ["#e = :u", "#x = :ttl"], ["#n :one"]
            condition = "(attribute_not_exists(#n) OR #n < :lim)"
            if claim.client:
                names |= {"#c": f"c_{claim.client}", "#t": f"t_{claim.client}"}
                sets.append("#t = :u")
                if claim.client_must_be_new:
                    sets.append("#c = :one")
                    condition += " AND (attribute_not_exists(#c) OR #c <= :zero OR #t <= :now)"
                    values |= {":zero": {"N": "0"}, ":now": {"N": str(now_ms)}}
                else:
                    adds.append("#c :one")
            items.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": claim.key}, "sk": {"S": "RATELIMIT"}},
                        "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            )
        try:
            _client().transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            full = {
                claims[idx].key: _counter_state(reason.get("Item") or {})
                for idx, reason in enumerate(reasons)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if full:
                return ClaimResult(admitted=False, full=full)
            if any(reason.get("Code") == "TransactionConflict" for reason in reasons):
                return ClaimResult(admitted=False, contended=True)
            raise
        return ClaimResult(admitted=True)

    def release_attempt(self, claims: list[Claim]) -> None:
        """An attempt that succeeded stops counting: its entries removed (one TransactWriteItems; an entry already
        gone, pruned after its window, is skipped)."""
        table = ReturnRecord.Meta.table_name
        updates = []
        for claim in claims:
            names = {"#e": f"{claim.pool}_{claim.entry}", "#n": f"{claim.pool}n"}
            adds = ["#n :minus"]
            if claim.client:
                names["#c"] = f"c_{claim.client}"
                adds.append("#c :minus")
            updates.append(
                {
                    "TableName": table,
                    "Key": {"pk": {"S": claim.key}, "sk": {"S": "RATELIMIT"}},
                    "UpdateExpression": f"REMOVE #e ADD {', '.join(adds)}",
                    "ConditionExpression": "attribute_exists(#e)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {":minus": {"N": "-1"}},
                }
            )
        for _attempt in range(3):
            try:
                _client().transact_write_items(TransactItems=[{"Update": u} for u in updates])
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                if not any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
                    continue  # a concurrent writer: again
            for update in updates:  # some entry is gone: release the others one by one
                try:
                    _client().update_item(**update)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                        raise
            return
        raise ConcurrentModification("the attempt counters stayed contended")

    def prune_attempts(self, key: str, state: CounterState, now_ms: int) -> bool:
        """Remove what no longer counts from a counter (at most 60 entries and 20 clients per call, to keep the
        expression small), under the condition that each removed value still has stopped counting. False: nothing
        to remove, or a concurrent writer changed it (read it again by claiming)."""
        stale_entries, stale_clients = state.stale(now_ms)
        names: dict[str, str] = {}
        removes: list[str] = []
        conditions: list[str] = []
        adds: list[str] = []
        values: dict[str, Any] = {":now": {"N": str(now_ms)}}
        budget = 60
        for pool, entries in sorted(stale_entries.items()):
            taken = entries[:budget]
            budget -= len(taken)
            for entry in taken:
                ref = f"#a{len(names)}"
                names[ref] = f"{pool}_{entry}"
                removes.append(ref)
                conditions.append(f"{ref} <= :now")
            if taken:
                names[f"#n{pool}"] = f"{pool}n"
                values[f":d{pool}"] = {"N": str(-len(taken))}
                adds.append(f"#n{pool} :d{pool}")
        for client in stale_clients[:20]:
            c_ref, t_ref = f"#a{len(names)}", f"#a{len(names) + 1}"
            names |= {c_ref: f"c_{client}", t_ref: f"t_{client}"}
            removes += [c_ref, t_ref]
            conditions.append(f"{t_ref} <= :now")
        if not removes:
            return False
        expression = f"REMOVE {', '.join(removes)}" + (f" ADD {', '.join(adds)}" if adds else "")
        try:
            _client().update_item(
                TableName=ReturnRecord.Meta.table_name,
                Key={"pk": {"S": key}, "sk": {"S": "RATELIMIT"}},
                UpdateExpression=expression,
                ConditionExpression=" AND ".join(conditions),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ----- shop orders (webhooks) -------------------------------------------------------------------------
    @staticmethod
    def _shop_order_pk(merchant_id: str, platform: str, external_id: str) -> str:
        return f"SHOPORDER#{merchant_id}#{platform}#{external_id}"

    def get_shop_order(self, merchant_id: str, platform: str, external_id: str) -> ShopOrderLink | None:
        """Which order a shop's order id stands for (written when the shop's order webhook was taken)."""
        try:
            rec = PointerRecord.get(
                self._shop_order_pk(merchant_id, platform, external_id), "SHOPORDER", consistent_read=True
            )
        except DoesNotExist:
            return None
        data = dict(rec.data or {})
        return ShopOrderLink(str(data["order_number"]), parse_stored(data.get("shop_updated_at")))

    def put_shop_order(
        self, merchant_id: str, platform: str, external_id: str, order_number: str, shop_updated_at: datetime | None
    ) -> None:
        """Idempotent put, after the order's upsert."""
        PointerRecord(
            pk=self._shop_order_pk(merchant_id, platform, external_id),
            sk="SHOPORDER",
            data={
                "order_number": order_number,
                "shop_updated_at": stored_time(shop_updated_at) if shop_updated_at else None,
            },
            created_at=stored_time(datetime.now(UTC)),
        ).save()

    def put_shop_fulfillment(
        self, merchant_id: str, platform: str, external_id: str, fulfillment_id: str, lines: dict[str, int]
    ) -> None:
        """The lines of a shop's fulfillment (its later delivery events name only the fulfillment). Idempotent."""
        PointerRecord(
            pk=self._shop_order_pk(merchant_id, platform, external_id),
            sk=f"FULFILLMENT#{fulfillment_id}",
            data={"lines": lines},
            created_at=stored_time(datetime.now(UTC)),
        ).save()

    def get_shop_fulfillment(
        self, merchant_id: str, platform: str, external_id: str, fulfillment_id: str
    ) -> dict[str, int] | None:
        try:
            rec = PointerRecord.get(
                self._shop_order_pk(merchant_id, platform, external_id),
                f"FULFILLMENT#{fulfillment_id}",
                consistent_read=True,
            )
        except DoesNotExist:
            return None
        return {str(k): int(v) for k, v in dict((rec.data or {}).get("lines") or {}).items()}

    # ----- order imports ------------------------------------------------------------------------------------
    def save_import(
        self, merchant_id: str, import_id: str, report: dict[str, Any], created_at: datetime, keep_days: int
    ) -> None:
        ImportRecord(
            pk=f"IMPORT#{merchant_id}#{import_id}",
            sk="IMPORT",
            merchant_id=merchant_id,
            status=str(report["status"]),
            created_at=stored_time(created_at),
            report=report,
            expires_at=created_at + timedelta(days=keep_days),
        ).save()

    def get_import(self, merchant_id: str, import_id: str) -> dict[str, Any]:
        """The report of one of the merchant's imports; another merchant's (or an unknown) id: NotFound."""
        try:
            rec = ImportRecord.get(f"IMPORT#{merchant_id}#{import_id}", "IMPORT")
        except DoesNotExist:
            raise NotFound(f"import '{import_id}' not found") from None
        return dict(rec.report or {})

    # ----- exports ------------------------------------------------------------------------------------------------
    def save_export(
        self, export: Export, keep_days: int = 30, *, now: datetime | None = None, claimed: Due | None = None
    ) -> bool:
        """Write the export's record whole (one writer at a time: its SQS message). While it is pending it is in
        GSI4, due GRACE after `now` (the worker's run or the request). `claimed`: the sweeper's write, only if its
        claim still holds (False: the export moved on meanwhile)."""
        pk = f"EXPORT#{export.merchant_id}#{export.id}"
        gsi4pk, gsi4sk = (
            due_keys("export", pk, "EXPORT", (now or export.created_at) + GRACE["export"])
            if not export.done
            else (None, None)
        )
        rec = ExportRecord(
            pk=pk,
            sk="EXPORT",
            gsi4pk=gsi4pk,
            gsi4sk=gsi4sk,
            merchant_id=export.merchant_id,
            status=export.status,
            created_at=stored_time(export.created_at),
            details={
                "kind": export.kind,
                "format": export.format,
                "created_from": stored_time(export.created_from),
                "created_to": stored_time(export.created_to),
                "attempts": export.attempts,
                "upload_id": export.upload_id,
                "rows": export.rows,
                "size": export.size,
                "error": export.error,
                "completed_at": stored_time(export.completed_at) if export.completed_at else None,
                "subject": export.subject,
            },
            expires_at=export.created_at + timedelta(days=keep_days),
        )
        if claimed is None:
            rec.save()
            return True
        try:
            rec.save(condition=ExportRecord.gsi4sk == claimed.due_sk)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_export(self, merchant_id: str, export_id: str) -> Export:
        """One of the merchant's exports; another merchant's (or an unknown) id: NotFound."""
        try:
            rec = ExportRecord.get(f"EXPORT#{merchant_id}#{export_id}", "EXPORT", consistent_read=True)
        except DoesNotExist:
            raise NotFound(f"export '{export_id}' not found") from None
        d = dict(rec.details or {})
        return Export(
            id=export_id,
            merchant_id=rec.merchant_id,
            kind=d["kind"],
            format=d.get("format") or "csv",
            created_from=_parse_req(d["created_from"]),
            created_to=_parse_req(d["created_to"]),
            created_at=_parse_req(rec.created_at),
            status=rec.status,  # type: ignore[arg-type]
            attempts=int(d.get("attempts") or 0),
            upload_id=d.get("upload_id"),
            rows=d.get("rows"),
            size=d.get("size"),
            error=d.get("error"),
            completed_at=parse_stored(d.get("completed_at")),
            subject=d.get("subject"),
        )


def raise_for_order_transaction(exc: TransactWriteError, claims: list[tuple[Any, Any]], first_claim: int) -> None:
    """An order's transaction was cancelled: the order's version (item 0) -> ConcurrentModification; a claim's
    condition -> TrackingNumberTaken (its number); anything else as it was. Unconditional items among `claims` (the
    customer link) never fail a condition."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    failed = [i for i, r in enumerate(reasons) if r is not None and r.code == "ConditionalCheckFailed"]
    for i in failed:
        if first_claim <= i < first_claim + len(claims):
            raise TrackingNumberTaken(claims[i - first_claim][0].pk.split("#", 2)[2])
    if failed or any(r is not None and r.code == "TransactionConflict" for r in reasons):
        raise ConcurrentModification("the order changed concurrently; retry")
    raise exc


def _connection() -> Connection:
    """The models' own PynamoDB connection (one botocore client per process, like every other call here). A new
    `Connection()` per transaction would build a new botocore client each time (tens of milliseconds, and garbage)."""
    conn: Connection = ReturnRecord._get_connection().connection
    return conn


def _client() -> Any:
    """The botocore client PynamoDB uses (same region, endpoint and session), for raw multi-entity reads."""
    return ReturnRecord._get_connection().connection.client


def _customer_pk(merchant_id: str, email_key: str) -> str:
    return f"CUSTOMER#{merchant_id}#{email_key}"


def _index_pk(merchant_id: str, facet: str) -> str:
    return f"RIDX#{merchant_id}#{facet}"


def _counter_state(item: dict[str, Any]) -> CounterState:
    """An attempt counter item (raw attributes) as domain/attempts.CounterState."""
    state = CounterState()
    outstanding: dict[str, int] = {}
    until: dict[str, int] = {}
    for name, value in item.items():
        prefix, sep, rest = name.partition("_")
        if not sep or "N" not in value:
            continue
        number = int(Decimal(value["N"]))
        if prefix == "c":
            outstanding[rest] = number
        elif prefix == "t":
            until[rest] = number
        elif len(prefix) == 1:
            state.pools.setdefault(prefix, {})[rest] = number
    state.clients = {client: (outstanding.get(client, 0), at) for client, at in until.items()}
    return state


def _batch_get(keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """One BatchGetItem (plus retries of unprocessed keys only)."""
    table = ReturnRecord.Meta.table_name
    out: dict[tuple[str, str], dict[str, Any]] = {}
    request: list[dict[str, Any]] = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in dict.fromkeys(keys)]
    while request:
        resp = _client().batch_get_item(RequestItems={table: {"Keys": request, "ConsistentRead": True}})
        for raw in resp.get("Responses", {}).get(table, []):
            out[(raw["pk"]["S"], raw["sk"]["S"])] = raw
        request = resp.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    return out
