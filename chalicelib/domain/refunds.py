"""What a return may still refund, and how one refund is split over its lines: pure, no I/O.

The amount a return is entitled to comes from `refund_calc.calculate_refund` over its accepted items, with what the
customer paid per order line (discounts included) and what *other* returns of the order already took from each line
(pending refunds count; a failed one gives its share back). A refund is then allocated: the original shipping
first, then the lines in order, never more to a line than the calculation left it. The allocation is stored on the
refund, added to the return and to the order in the refund's own transaction, and taken back if the refund fails;
so across every return of an order a line is never refunded more than was paid for it.

Units are handed to the shop (for restocking there) with the first refund that gives a line money.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.money import Money
from chalicelib.domain.orders import Order
from chalicelib.domain.refund_calc import (
    LineInput,
    RefundBreakdown,
    RefundPolicy,
    calculate_refund,
    round_to_minor,
)
from chalicelib.domain.returns import Return

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RefundAllocation:
    """One refund's share per order line, of the original shipping, and the units it hands to the shop."""

    lines: Mapping[str, Decimal] = field(default_factory=dict)
    shipping: Decimal = ZERO
    quantities: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.lines.values(), ZERO) + self.shipping

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": {k: str(v) for k, v in self.lines.items()},
            "shipping": str(self.shipping),
            "quantities": dict(self.quantities),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RefundAllocation:
        data = data or {}
        return cls(
            lines={k: Decimal(v) for k, v in (data.get("lines") or {}).items()},
            shipping=Decimal(data.get("shipping") or "0"),
            quantities={k: int(v) for k, v in (data.get("quantities") or {}).items()},
        )


@dataclass(frozen=True)
class RefundPlan:
    breakdown: RefundBreakdown  # what the return is worth in all, fees and deductions applied
    reserved: Decimal  # already given to earlier refunds of this return (pending or succeeded)

    @property
    def refundable(self) -> Decimal:
        return max(ZERO, self.breakdown.total - self.reserved)


def whole_order_returned(ret: Return, order: Order) -> bool:
    """Every unit of the order is in returns, and this return lost none of its units at inspection: the
    customer sent everything back, so the original shipping may be refunded."""
    if any(i.returned_quantity < i.quantity for i in order.items):
        return False
    return all(i.refundable_quantity() >= i.quantity for i in ret.items)


def plan(ret: Return, order: Order | None, policy: RefundPolicy) -> RefundPlan:
    """The return's refund entitlement and what earlier refunds of it already hold."""
    lines: list[LineInput] = []
    for item in ret.items:
        qty = item.refundable_quantity()
        if qty <= 0:
            continue
        line = order.item(item.line_item_id) if order else None
        mine = ret.refund_allocated.get(item.line_item_id, ZERO)
        others = (order.refunded.get(item.line_item_id, ZERO) - mine) if order else ZERO
        lines.append(
            LineInput(
                line_item_id=item.line_item_id,
                unit_price=item.unit_price,
                accepted_quantity=qty,
                grade=item.grade.value if item.grade else None,
                paid_total=line.paid if line else item.unit_price * qty,
                ordered_quantity=max(line.quantity, qty) if line else qty,
                already_refunded=max(ZERO, others),
            )
        )
    method_fee = ZERO
    if ret.method and ret.method.get("deduct_from_refund"):
        method_fee = Decimal(ret.method["fee"]["amount"])
    shipping_paid = order.shipping_paid if order else ZERO
    shipping_others = (order.shipping_refunded - ret.refund_shipping_allocated) if order else ZERO
    breakdown = calculate_refund(
        lines,
        currency=ret.currency,
        policy=policy,
        method_fee=method_fee,
        original_shipping_paid=shipping_paid,
        shipping_already_refunded=max(ZERO, shipping_others),
        whole_order_returned=order is not None and bool(lines) and whole_order_returned(ret, order),
    )
    return RefundPlan(breakdown=breakdown, reserved=ret.refund_reserved())


def choose_amount(plan_: RefundPlan, amount: Decimal | None, currency: str) -> Decimal:
    """The requested amount checked against what is refundable (422 naming `amount`), or all that is left."""
    refundable = plan_.refundable
    if amount is None:
        return refundable
    value = round_to_minor(amount, currency)
    if value != amount:
        raise ValidationFailed.at(["amount"], f"has more decimals than {currency} allows")
    if value <= 0:
        raise ValidationFailed.at(["amount"], "must be greater than zero")
    if value > refundable:
        raise ValidationFailed.at(
            ["amount"], f"at most {Money(refundable, currency).to_dict()['amount']} {currency} can still be refunded"
        )
    return value


def allocate(plan_: RefundPlan, ret: Return, amount: Decimal) -> RefundAllocation:
    """Split `amount` (at most `plan_.refundable`) over the original shipping, then the lines in order."""
    if amount > plan_.refundable:
        raise ValueError("amount exceeds what is refundable")
    left = amount
    shipping_room = max(ZERO, plan_.breakdown.shipping_refund - ret.refund_shipping_allocated)
    shipping = min(left, shipping_room)
    left -= shipping
    lines: dict[str, Decimal] = {}
    quantities: dict[str, int] = {}
    for line in plan_.breakdown.lines:
        if left <= 0:
            break
        room = max(ZERO, line.amount - ret.refund_allocated.get(line.line_item_id, ZERO))
        share = min(left, room)
        if share <= 0:
            continue
        lines[line.line_item_id] = share
        left -= share
        unsent = line.quantity - ret.refund_quantities.get(line.line_item_id, 0)
        if unsent > 0:
            quantities[line.line_item_id] = unsent
    if left > 0:  # cannot happen while amount <= refundable; guards the invariant
        raise ValueError("allocation left money unassigned")
    return RefundAllocation(lines=lines, shipping=shipping, quantities=quantities)


def store_credit_value(amount: Decimal, bonus_percent: Decimal, currency: str) -> Decimal:
    """A store-credit refund's value: the refund plus the merchant's bonus, rounded to the currency's minor unit."""
    return round_to_minor(amount + amount * bonus_percent / HUNDRED, currency)


def reserve(order: Order, allocation: RefundAllocation) -> None:
    for line_item_id, amount in allocation.lines.items():
        order.refunded[line_item_id] = order.refunded.get(line_item_id, ZERO) + amount
    order.shipping_refunded += allocation.shipping


def release(order: Order, allocation: RefundAllocation) -> None:
    """A failed refund gives its share back to the order."""
    for line_item_id, amount in allocation.lines.items():
        order.refunded[line_item_id] = max(ZERO, order.refunded.get(line_item_id, ZERO) - amount)
    order.shipping_refunded = max(ZERO, order.shipping_refunded - allocation.shipping)


@dataclass(frozen=True)
class RetryPolicy:
    """How a refund that the target did not confirm is tried again (the state machine waits as told)."""

    max_attempts: int = 6
    deadline_seconds: int = 300  # from the click: by then the refund is succeeded or failed
    base_seconds: int = 5  # waits 5, 10, 20, 40, 80 ...
    max_wait_seconds: int = 80
    attempt_seconds: int = 60  # what one attempt may take at most (three shop requests of 3 + 15 s)

    def next_wait(self, attempts_made: int, elapsed_seconds: float, retry_after: float | None) -> int | None:
        """Seconds to wait before the next attempt, or None to give up: attempts used up, or the wait (at
        least what the shop asked for with Retry-After) and one more attempt would pass the deadline."""
        if attempts_made >= self.max_attempts:
            return None
        wait = min(self.max_wait_seconds, self.base_seconds * 2 ** max(0, attempts_made - 1))
        if retry_after is not None:
            wait = max(wait, math.ceil(retry_after))
        if elapsed_seconds + wait + self.attempt_seconds > self.deadline_seconds:
            return None
        return int(wait)
