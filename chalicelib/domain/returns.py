"""The Return aggregate: statuses, the transition table, items, timeline and domain events.

Pure Python. Every state change goes through `Return._move`, which consults `TRANSITIONS`, appends a
timeline entry and records a domain event on it; the repository writes the entries, each with its event, in the
same transaction as the change, and the DynamoDB stream relays the events to the bus (the transactional outbox,
docs/adr/0005-transactional-outbox.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.money import Money, quantize

if TYPE_CHECKING:
    from chalicelib.domain.refunds import RefundAllocation


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    RECEIVED = "received"
    INSPECTED = "inspected"
    AWAITING_FEEDBACK = "awaiting_feedback"
    COMPLETED = "completed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"


S = ReturnStatus

#: The single source of truth for what may follow what.
TRANSITIONS: dict[ReturnStatus, frozenset[ReturnStatus]] = {
    S.REQUESTED: frozenset({S.LABEL_CREATED, S.CANCELLED}),
    S.LABEL_CREATED: frozenset({S.IN_TRANSIT, S.DELIVERED, S.RECEIVED, S.CANCELLED, S.EXPIRED}),
    S.IN_TRANSIT: frozenset({S.DELIVERED, S.RECEIVED}),
    S.DELIVERED: frozenset({S.RECEIVED}),
    S.RECEIVED: frozenset({S.INSPECTED}),
    S.INSPECTED: frozenset({S.AWAITING_FEEDBACK, S.COMPLETED}),
    S.AWAITING_FEEDBACK: frozenset({S.COMPLETED, S.REJECTED}),
    S.COMPLETED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}

#: Normalized carrier statuses that are problems with the shipment (flagged for the merchant, customer told).
CARRIER_EXCEPTIONS = frozenset({"failure", "return_to_sender", "lost"})

#: Order of the happy path; carrier events only ever move a return to a higher rank.
RANK: dict[ReturnStatus, int] = {
    S.REQUESTED: 0,
    S.LABEL_CREATED: 1,
    S.IN_TRANSIT: 2,
    S.DELIVERED: 3,
    S.RECEIVED: 4,
    S.INSPECTED: 5,
    S.AWAITING_FEEDBACK: 6,
    S.COMPLETED: 7,
    S.REFUNDED: 8,
    S.CANCELLED: 9,
    S.EXPIRED: 9,
    S.REJECTED: 9,
}


class Grade(StrEnum):
    A = "A"
    B = "B"
    C = "C"


class Disposition(StrEnum):
    RESTOCK = "restock"
    REFURBISH = "refurbish"
    DISPOSE = "dispose"
    DONATE = "donate"
    RECYCLE = "recycle"
    RETURN_TO_CUSTOMER = "return_to_customer"


class ItemStatus(StrEnum):
    EXPECTED = "expected"
    RECEIVED = "received"
    MISSING = "missing"
    GRADED = "graded"
    REFURBISHING = "refurbishing"
    RESTOCKED = "restocked"
    DISPOSED = "disposed"
    RETURNED_TO_CUSTOMER = "returned_to_customer"


@dataclass
class TimelineEntry:
    type: str
    at: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    # The domain event this entry announces (a milestone, `_record`); None for a plain note (`_note`). Written with
    # the entry: the entry is the event's outbox record.
    event: DomainEvent | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "at": iso(self.at), "actor": self.actor, **self.data}


@dataclass(frozen=True)
class DomainEvent:
    """A fact published on the event bus; `type` is the EventBridge detail-type (CONTRACT.md)."""

    type: str
    return_id: str
    merchant_id: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def detail(self) -> dict[str, Any]:
        return {"return_id": self.return_id, "merchant_id": self.merchant_id, "at": iso(self.at), **self.data}


def iso(at: datetime) -> str:
    """ISO 8601 in UTC with whole seconds, as the API shows times (`2026-11-26T10:00:00Z`)."""
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ReturnItem:
    line_item_id: str
    sku: str
    name: str
    quantity: int
    unit_price: Decimal
    reason: str
    comment: str | None = None
    tags: list[str] = field(default_factory=list)
    received_quantity: int | None = None
    checks: dict[str, Any] = field(default_factory=dict)
    notes: str | None = None
    photos: list[str] = field(default_factory=list)
    grade: Grade | None = None
    disposition: Disposition | None = None
    clarify: bool = False
    rule: dict[str, Any] | None = None
    steps: list[str] = field(default_factory=list)  # refurbishment steps of the rule that graded it
    disposition_reason: str | None = None  # why this disposition (rule, merchant comment, SLA default)
    status: ItemStatus = ItemStatus.EXPECTED
    restock_sync: str | None = None  # pending | done: the restock call to the merchant's shop target
    received_sku: str | None = None  # what was in the parcel, when the warehouse saw another article
    customer_photos: list[str] = field(default_factory=list)  # uploaded by the customer with the reason
    category: str | None = None  # the order line's product category, when the shop gave one

    def refundable_quantity(self) -> int:
        """Accepted quantity: what arrived, once graded; nothing for items going back to the customer."""
        if self.grade is None or self.disposition == Disposition.RETURN_TO_CUSTOMER:
            return 0
        return self.received_quantity or 0


@dataclass(frozen=True)
class DispositionAction:
    disposition: Disposition
    item: ReturnItem


@dataclass
class RefundSummary:
    id: str
    status: str  # pending | succeeded | failed
    amount: Decimal
    currency: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "amount": Money(self.amount, self.currency).to_dict()}


@dataclass
class Return:
    id: str
    merchant_id: str
    warehouse_id: str
    order_number: str
    currency: str
    customer_country: str
    locale: str
    status: ReturnStatus
    created_at: datetime
    updated_at: datetime
    items: list[ReturnItem]
    tracking_token: str
    carrier: str | None = None
    tracking_number: str | None = None
    label_key: str | None = None
    discrepancies: list[dict[str, Any]] = field(default_factory=list)
    parcel_photos: list[str] = field(default_factory=list)
    refund: RefundSummary | None = None
    refunded_total: Decimal = Decimal("0")
    feedback_task_token: str | None = None
    # How the parcel travels: {id, type, carrier, fee: {amount, currency}, deduct_from_refund} (portal depth)
    method: dict[str, Any] | None = None
    notify_customer: bool = True  # emails to the customer at each milestone
    customs: dict[str, Any] | None = None  # {required, declaration_key?, warnings: [..]} for international returns
    withdrawal_id: str | None = None  # the EU withdrawal declaration this return follows
    label_expires_at: datetime | None = None
    # The carrier reported a problem (failure, return_to_sender, lost): {status, at, detail?, resolved_at?}
    carrier_exception: dict[str, Any] | None = None
    carrier_reference: str | None = None  # the carrier's own id for the label (to void it)
    # Refund shares held by this return's pending and succeeded refunds (domain/refunds.py allocates them).
    refund_allocated: dict[str, Decimal] = field(default_factory=dict)  # line_item_id -> amount
    refund_shipping_allocated: Decimal = Decimal(0)
    refund_quantities: dict[str, int] = field(default_factory=dict)  # units handed to the shop per line
    refund_method: str = "original"  # original (money back) | store_credit (the customer chose a gift card)
    customer_email_key: str | None = None  # the order's email hashed (return_index.email_key): a list filter
    indexed: list[str] = field(default_factory=list)  # the list facets saved last (the repository keeps them)
    version: int | None = None
    # Written with the next save (each entry with its domain event, if any), then cleared by the repository.
    new_timeline: list[TimelineEntry] = field(default_factory=list)

    # ----- construction -------------------------------------------------------------------------------
    @classmethod
    def request(
        cls,
        *,
        return_id: str,
        merchant_id: str,
        warehouse_id: str,
        order_number: str,
        currency: str,
        customer_country: str,
        locale: str,
        items: list[ReturnItem],
        tracking_token: str,
        actor: str,
        at: datetime,
    ) -> Return:
        if not items:
            raise ValidationFailed.at(["items"], "a return needs at least one item")
        ret = cls(
            id=return_id,
            merchant_id=merchant_id,
            warehouse_id=warehouse_id,
            order_number=order_number,
            currency=currency,
            customer_country=customer_country,
            locale=locale,
            status=S.REQUESTED,
            created_at=at,
            updated_at=at,
            items=items,
            tracking_token=tracking_token,
        )
        ret._record("return.requested", actor, at, status=S.REQUESTED.value)
        return ret

    # ----- helpers ------------------------------------------------------------------------------------
    def item(self, line_item_id: str) -> ReturnItem:
        for it in self.items:
            if it.line_item_id == line_item_id:
                return it
        raise KeyError(line_item_id)

    def can_move_to(self, target: ReturnStatus) -> bool:
        return target in TRANSITIONS[self.status]

    @property
    def events(self) -> list[DomainEvent]:
        """The domain events recorded since the last save, in order (each rides on its timeline entry)."""
        return [e.event for e in self.new_timeline if e.event is not None]

    def _record(self, type_: str, actor: str, at: datetime, **data: Any) -> None:
        """A timeline entry that is also a domain event (published on the bus once the change is committed)."""
        event = DomainEvent(
            type=type_,
            return_id=self.id,
            merchant_id=self.merchant_id,
            at=at,
            data={"status": self.status.value, **data},
        )
        self.new_timeline.append(TimelineEntry(type=type_, at=at, actor=actor, data=data, event=event))

    def _note(self, type_: str, actor: str, at: datetime, **data: Any) -> None:
        """A timeline entry that is not a milestone event."""
        self.new_timeline.append(TimelineEntry(type=type_, at=at, actor=actor, data=data))

    def _move(self, target: ReturnStatus, actor: str, at: datetime, **data: Any) -> None:
        if not self.can_move_to(target):
            raise InvalidTransition(self.status.value, target.value)
        self.status = target
        self.updated_at = max(self.updated_at, at)
        self._record(f"return.{target.value}", actor, at, status=target.value, **data)

    # ----- commands -----------------------------------------------------------------------------------
    def attach_label(
        self, *, carrier: str, tracking_number: str, label_key: str | None, actor: str, at: datetime, **data: Any
    ) -> None:
        """The label exists (label_key None: a pre-printed label that came with the order)."""
        self.carrier = carrier
        self.tracking_number = tracking_number
        self.label_key = label_key
        self._move(S.LABEL_CREATED, actor, at, carrier=carrier, tracking_number=tracking_number, **data)

    def note_customs_warning(self, warning: str, *, actor: str, at: datetime) -> None:
        """Customs data was missing and filled in from defaults: recorded, never blocking."""
        self._note("customs.warning", actor, at, warning=warning)

    def cancel(self, *, actor: str, at: datetime, reason: str | None = None) -> None:
        """By the customer or customer service, before the parcel moves (the label is then voided)."""
        if self.status not in (S.REQUESTED, S.LABEL_CREATED):
            raise InvalidTransition(
                self.status.value,
                S.CANCELLED.value,
                detail=f"a '{self.status.value}' return cannot be cancelled: only before the parcel is on its way",
            )
        self._move(S.CANCELLED, actor, at, **({"reason": reason} if reason else {}))

    def expire(self, *, actor: str, at: datetime) -> bool:
        """The label was not used within the merchant's label validity. False if the parcel moved meanwhile."""
        if self.status != S.LABEL_CREATED or self.label_expires_at is None or at < self.label_expires_at:
            return False
        self._move(S.EXPIRED, actor, at, label_expired_at=iso(self.label_expires_at))
        return True

    def apply_carrier_status(
        self,
        *,
        target: ReturnStatus | None,
        provider: str,
        carrier_status: str,
        occurred_at: datetime,
        actor: str,
        at: datetime,
        detail: str | None = None,
        normalized: str | None = None,
    ) -> bool:
        """Record a carrier checkpoint; move forward if it advances the return. Returns whether status moved.

        Carrier events arrive late, duplicated and out of order: a checkpoint is always recorded on the
        timeline (at the carrier's time), but the status only ever moves to a higher rank. A carrier exception
        (`normalized` failure, return_to_sender or lost) flags the return for the merchant and raises a
        `carrier.exception` event once per exception status while the return has not reached the warehouse.
        """
        if normalized in CARRIER_EXCEPTIONS and RANK[self.status] < RANK[S.RECEIVED]:
            current = self.carrier_exception
            if not current or current.get("status") != normalized or current.get("resolved_at"):
                self.carrier_exception = {
                    "status": normalized,
                    "at": iso(occurred_at),
                    **({"detail": detail} if detail else {}),
                }
                self._record(
                    "carrier.exception",
                    actor,
                    occurred_at,
                    provider=provider,
                    carrier_status=normalized,
                    **({"detail": detail} if detail else {}),
                )
        last_change = self.updated_at
        self._note(
            "carrier.checkpoint",
            actor,
            occurred_at,
            provider=provider,
            carrier_status=carrier_status,
            **({"detail": detail} if detail else {}),
        )
        self.updated_at = max(self.updated_at, at)
        if target is None or RANK[target] <= RANK[self.status] or not self.can_move_to(target):
            return False
        # The milestone happened at the carrier's time, but never before what we had already recorded (carrier
        # clocks run behind; EasyPost times have whole seconds): milestones stay in order.
        self._move(target, actor, max(occurred_at, last_change))
        self.updated_at = max(self.updated_at, at)
        if (
            self.carrier_exception
            and not self.carrier_exception.get("resolved_at")
            and occurred_at >= datetime.fromisoformat(self.carrier_exception["at"].replace("Z", "+00:00"))
        ):
            self.carrier_exception["resolved_at"] = iso(occurred_at)  # the parcel moved on after the problem
        return True

    def receive(self, *, actor: str, at: datetime, barcode: str) -> bool:
        """Warehouse scan. A second scan is harmless (returns False, nothing recorded)."""
        if self.status == S.REJECTED or (RANK[self.status] >= RANK[S.RECEIVED] and RANK[self.status] < 9):
            return False  # already in the warehouse: scanning it again changes nothing
        self._move(S.RECEIVED, actor, at, barcode=barcode)
        for it in self.items:
            it.status = ItemStatus.RECEIVED
        return True

    def record_inspection(
        self,
        *,
        lines: list[dict[str, Any]],
        extra_items: list[dict[str, Any]],
        actor: str,
        at: datetime,
    ) -> None:
        """Per-item received quantity, checks, notes and photos; discrepancies from expected vs received."""
        if not self.can_move_to(S.INSPECTED):
            raise InvalidTransition(self.status.value, S.INSPECTED.value)
        seen: set[str] = set()
        for idx, line in enumerate(lines):
            lid = line["line_item_id"]
            try:
                item = self.item(lid)
            except KeyError:
                raise ValidationFailed.at(["items", idx, "line_item_id"], f"'{lid}' is not an item of this return")
            if lid in seen:
                raise ValidationFailed.at(["items", idx, "line_item_id"], f"'{lid}' is listed twice")
            seen.add(lid)
            received = int(line["received_quantity"])
            if received > item.quantity:
                # More than expected of a known line counts as an extra item, not as more refund.
                extra_items = [*extra_items, {"sku": item.sku, "quantity": received - item.quantity}]
                received = item.quantity
            item.received_quantity = received
            received_sku = line.get("received_sku")
            item.received_sku = received_sku if received_sku and received_sku != item.sku else None
            item.checks = dict(line.get("checks") or {})
            item.notes = line.get("notes")
            item.photos = list(dict.fromkeys([*item.photos, *(line.get("photos") or [])]))
            item.status = ItemStatus.RECEIVED if received > 0 else ItemStatus.MISSING
        discrepancies: list[dict[str, Any]] = []
        for item in self.items:
            if item.line_item_id not in seen:
                item.received_quantity = 0
                item.status = ItemStatus.MISSING
            if (item.received_quantity or 0) < item.quantity:
                discrepancies.append(
                    {
                        "type": "missing",
                        "line_item_id": item.line_item_id,
                        "sku": item.sku,
                        "expected": item.quantity,
                        "received": item.received_quantity or 0,
                    }
                )
        for item in self.items:
            if item.received_sku:
                discrepancies.append(
                    {
                        "type": "wrong_item",
                        "line_item_id": item.line_item_id,
                        "expected_sku": item.sku,
                        "received_sku": item.received_sku,
                    }
                )
        for extra in extra_items:
            discrepancies.append({"type": "extra_item", "sku": extra["sku"], "quantity": int(extra["quantity"])})
        if all((it.received_quantity or 0) == 0 for it in self.items) and not extra_items:
            discrepancies.append({"type": "empty_box"})
        self.discrepancies = discrepancies
        self._move(S.INSPECTED, actor, at, discrepancies=len(discrepancies))

    def grade_items(self, results: dict[str, dict[str, Any]], *, actor: str, at: datetime) -> None:
        """Apply classification results: {line_item_id: {grade, disposition, clarify, rule}}; then decide
        between awaiting_feedback (a clarify rule or a discrepancy) and completed."""
        if self.status != S.INSPECTED:
            raise InvalidTransition(self.status.value, "graded")
        for item in self.items:
            res = results.get(item.line_item_id)
            if res is None or (item.received_quantity or 0) == 0:
                continue
            item.grade = Grade(res["grade"])
            item.disposition = Disposition(res["disposition"])
            item.clarify = bool(res.get("clarify"))
            item.rule = res.get("rule")
            item.steps = list(res.get("steps") or [])
            rule_name = (item.rule or {}).get("name", "default")
            item.disposition_reason = f"guideline rule '{rule_name}'"
            item.status = ItemStatus.GRADED
            self._record(
                "item.graded",
                actor,
                at,
                line_item_id=item.line_item_id,
                grade=item.grade.value,
                disposition=item.disposition.value,
                clarify=item.clarify,
                rule=item.rule,
            )
        if self.needs_feedback():
            self._move(
                S.AWAITING_FEEDBACK,
                actor,
                at,
                reasons=[
                    *(["clarify"] if any(i.clarify for i in self.items) else []),
                    *(["discrepancy"] if self.discrepancies else []),
                ],
            )
        else:
            self._move(S.COMPLETED, actor, at)

    def needs_feedback(self) -> bool:
        return bool(self.discrepancies) or any(i.clarify for i in self.items)

    def resolve_feedback(
        self,
        *,
        decision: str,
        overrides: list[dict[str, Any]],
        comment: str | None,
        actor: str,
        at: datetime,
    ) -> None:
        if self.status != S.AWAITING_FEEDBACK:
            raise InvalidTransition(
                self.status.value,
                "completed" if decision == "approve" else "rejected",
                detail=f"the return is '{self.status.value}', not awaiting feedback",
            )
        for idx, ov in enumerate(overrides):
            try:
                item = self.item(ov["line_item_id"])
            except KeyError:
                raise ValidationFailed.at(
                    ["items", idx, "line_item_id"], f"'{ov['line_item_id']}' is not an item of this return"
                )
            if ov.get("grade"):
                item.grade = Grade(ov["grade"])
            if ov.get("disposition"):
                item.disposition = Disposition(ov["disposition"])
                item.disposition_reason = f"merchant feedback: {comment}" if comment else "merchant feedback"
        self._note(
            "feedback.received",
            actor,
            at,
            decision=decision,
            **({"comment": comment} if comment else {}),
            **({"items": overrides} if overrides else {}),
        )
        overridden = {ov["line_item_id"] for ov in overrides if ov.get("disposition")}
        for item in self.items:
            item.clarify = False
            if decision == "reject" and item.line_item_id not in overridden and (item.received_quantity or 0) > 0:
                item.disposition = Disposition.RETURN_TO_CUSTOMER
                item.disposition_reason = f"rejected by the merchant: {comment}" if comment else "rejected"
                if item.grade is None:
                    item.grade = Grade.C
        if decision == "approve":
            self._move(S.COMPLETED, actor, at, decision="approve")
        else:
            self._move(S.REJECTED, actor, at, decision="reject")

    def apply_default_after_timeout(self, default: dict[str, str], *, actor: str, at: datetime) -> None:
        """Feedback SLA ran out: clarify items take the guideline's default grade and disposition."""
        if self.status != S.AWAITING_FEEDBACK:
            return
        for item in self.items:
            if item.clarify:
                item.grade = Grade(default["grade"])
                item.disposition = Disposition(default["disposition"])
                item.disposition_reason = "no merchant feedback within the SLA: guideline default"
                item.clarify = False
        self._note("feedback.timed_out", actor, at, default=default)
        self._move(S.COMPLETED, actor, at, decision="default")

    # ----- dispositions ---------------------------------------------------------------------------------
    def apply_dispositions(self, *, actor: str, at: datetime) -> list[DispositionAction]:
        """Carry out each graded item's disposition once (completed or rejected returns).

        restock -> restocked (the shop sync follows); refurbish -> a work order, item refurbishing;
        dispose/donate/recycle -> disposed, with its reason for the disposal register;
        return_to_customer -> returned_to_customer. Items already handled are skipped (idempotent).
        """
        if self.status not in (S.COMPLETED, S.REJECTED, S.REFUNDED):
            raise InvalidTransition(self.status.value, "dispositions applied")
        actions: list[DispositionAction] = []
        for item in self.items:
            if item.status != ItemStatus.GRADED or item.disposition is None:
                continue
            data = {"line_item_id": item.line_item_id, "sku": item.sku, "quantity": item.received_quantity or 0}
            if item.disposition == Disposition.RESTOCK:
                item.status = ItemStatus.RESTOCKED
                item.restock_sync = "pending"
                self._record("item.restocked", actor, at, **data)
            elif item.disposition == Disposition.REFURBISH:
                item.status = ItemStatus.REFURBISHING
            elif item.disposition == Disposition.RETURN_TO_CUSTOMER:
                item.status = ItemStatus.RETURNED_TO_CUSTOMER
                self._note("item.returned_to_customer", actor, at, **data)
            else:
                item.status = ItemStatus.DISPOSED
                self._record(
                    "item.disposed",
                    actor,
                    at,
                    disposition=item.disposition.value,
                    reason=item.disposition_reason or "",
                    **data,
                )
            actions.append(DispositionAction(item.disposition, item))
        return actions

    def work_order_opened(self, work_order_id: str, item: ReturnItem, *, actor: str, at: datetime) -> None:
        self._record(
            "work_order.opened",
            actor,
            at,
            work_order_id=work_order_id,
            line_item_id=item.line_item_id,
            steps=item.steps,
        )

    def refurbished(self, line_item_id: str, work_order_id: str, minutes: int, *, actor: str, at: datetime) -> None:
        """A work order was completed: the item is restocked (its shop sync follows)."""
        item = self.item(line_item_id)
        if item.status != ItemStatus.REFURBISHING:
            raise InvalidTransition(
                item.status.value,
                ItemStatus.RESTOCKED.value,
                detail=f"item '{line_item_id}' is '{item.status.value}', not refurbishing",
            )
        item.status = ItemStatus.RESTOCKED
        item.restock_sync = "pending"
        self.updated_at = max(self.updated_at, at)
        self._record(
            "work_order.completed", actor, at, work_order_id=work_order_id, line_item_id=line_item_id, minutes=minutes
        )
        self._record(
            "item.restocked", actor, at, line_item_id=line_item_id, sku=item.sku, quantity=item.received_quantity or 0
        )

    def restock_synced(self, line_item_id: str, target: str, *, actor: str, at: datetime) -> None:
        item = self.item(line_item_id)
        item.restock_sync = "done"
        self.updated_at = max(self.updated_at, at)
        self._note("item.restock_synced", actor, at, line_item_id=line_item_id, target=target)

    # ----- photos -------------------------------------------------------------------------------------
    def record_photo(self, key: str, line_item_id: str | None, *, actor: str, at: datetime) -> bool:
        """A checked image uploaded for an item (or the parcel). Idempotent: False if already recorded."""
        photos = self.item(line_item_id).photos if line_item_id else self.parcel_photos
        if key in photos:
            return False
        photos.append(key)
        self.updated_at = max(self.updated_at, at)
        self._note("photo.added", actor, at, key=key, **({"line_item_id": line_item_id} if line_item_id else {}))
        return True

    def reject_photo(self, key: str, reason: str, *, actor: str, at: datetime) -> None:
        """An upload that is not an image: forget it wherever it was referenced."""
        for photos in [self.parcel_photos, *(i.photos for i in self.items)]:
            if key in photos:
                photos.remove(key)
        self.updated_at = max(self.updated_at, at)
        self._note("photo.rejected", actor, at, key=key, reason=reason)

    # ----- money --------------------------------------------------------------------------------------
    def accepted_value(self) -> Decimal:
        total = sum((it.unit_price * it.refundable_quantity() for it in self.items), Decimal("0"))
        return quantize(total, self.currency)

    def refund_reserved(self) -> Decimal:
        """What this return's pending and succeeded refunds hold."""
        return sum(self.refund_allocated.values(), Decimal(0)) + self.refund_shipping_allocated

    def request_refund(
        self,
        *,
        refund_id: str,
        amount: Decimal,
        allocation: RefundAllocation,
        breakdown: dict[str, Any] | None,
        reason: str | None,
        actor: str,
        at: datetime,
        credit: Decimal | None = None,
    ) -> None:
        """A refund of `amount` starts: its allocation is held until it fails. The timeline keeps the breakdown
        (deductions and fees with their reasons) so the merchant sees how the amount came about."""
        if self.status not in (S.COMPLETED, S.REFUNDED):
            raise InvalidTransition(
                self.status.value, "refund", detail=f"a '{self.status.value}' return cannot be refunded"
            )
        if allocation.total != amount:
            raise ValueError("the allocation does not add up to the amount")
        for line_item_id, share in allocation.lines.items():
            self.refund_allocated[line_item_id] = self.refund_allocated.get(line_item_id, Decimal(0)) + share
        for line_item_id, units in allocation.quantities.items():
            self.refund_quantities[line_item_id] = self.refund_quantities.get(line_item_id, 0) + units
        self.refund_shipping_allocated += allocation.shipping
        self.refund = RefundSummary(id=refund_id, status="pending", amount=amount, currency=self.currency)
        self._record(
            "refund.requested",
            actor,
            at,
            refund_id=refund_id,
            amount=Money(amount, self.currency).to_dict(),
            method=self.refund_method,
            **({"store_credit": Money(credit, self.currency).to_dict()} if credit is not None else {}),
            **({"reason": reason} if reason else {}),
            **({"breakdown": breakdown} if breakdown else {}),
        )

    def refund_succeeded(self, *, refund_id: str, amount: Decimal, actor: str, at: datetime) -> None:
        self.refunded_total += amount
        self.refund = RefundSummary(id=refund_id, status="succeeded", amount=amount, currency=self.currency)
        self._record("refund.succeeded", actor, at, refund_id=refund_id, amount=Money(amount, self.currency).to_dict())
        if self.status == S.COMPLETED:
            self._move(S.REFUNDED, actor, at, refund_id=refund_id)

    def refund_failed(
        self,
        *,
        refund_id: str,
        amount: Decimal,
        allocation: RefundAllocation,
        error: str,
        actor: str,
        at: datetime,
        release: bool = True,
    ) -> None:
        """The refund did not reach the shop: its share is free again for a new click. `release=False`: whether
        it reached the shop is unknown (it could not be asked); the share stays held until that is settled."""
        self.refund = RefundSummary(id=refund_id, status="failed", amount=amount, currency=self.currency)
        self._record(
            "refund.failed", actor, at, refund_id=refund_id, error=error, **({} if release else {"unconfirmed": True})
        )
        if release:
            self._release_refund(allocation)

    def refund_released(self, *, refund_id: str, allocation: RefundAllocation, actor: str, at: datetime) -> None:
        """An unconfirmed refund turned out never to have reached the shop: its share is free again."""
        self._release_refund(allocation)
        self._note("refund.released", actor, at, refund_id=refund_id)

    def _release_refund(self, allocation: RefundAllocation) -> None:
        for line_item_id, share in allocation.lines.items():
            left = self.refund_allocated.get(line_item_id, Decimal(0)) - share
            self.refund_allocated[line_item_id] = max(Decimal(0), left)
        for line_item_id, units in allocation.quantities.items():
            self.refund_quantities[line_item_id] = max(0, self.refund_quantities.get(line_item_id, 0) - units)
        self.refund_shipping_allocated = max(Decimal(0), self.refund_shipping_allocated - allocation.shipping)

    def milestones(self, timeline: list[TimelineEntry]) -> list[dict[str, str]]:
        """Status milestones for track & trace, in lifecycle order (no personal data)."""
        entries = [e for e in timeline if e.type.startswith("return.") and "status" in e.data]
        entries.sort(key=lambda e: (RANK[ReturnStatus(e.data["status"])], e.at))
        return [{"status": e.data["status"], "at": iso(e.at)} for e in entries]
