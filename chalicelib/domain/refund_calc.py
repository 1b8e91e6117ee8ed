"""Refund calculation: what a return's accepted items are worth to the customer, in Decimal, line by line.

Pure Python, no I/O. `calculate_refund` takes the accepted lines of one return (with what the customer paid for
each order line and what was refunded for it so far), the merchant's `RefundPolicy` and the return's fees, and
gives a `RefundBreakdown` whose every figure is rounded to the currency's minor unit (ROUND_HALF_UP, per line).

Guarantees (tested as properties in tests/unit/test_refund_calc.py):
- a line's amount never exceeds what was paid for those units, nor what is left of the order line's payment
  once earlier refunds are taken off; so over any sequence of returns an order line is never refunded more
  than was paid for it;
- fees never make the total negative (a fee larger than the lines is capped to what the lines leave);
- `total == sum(line amounts) - sum(fees) + shipping_refund`; for a line, `amount == gross - sum(deductions)`;
- floats are refused (TypeError): money is Decimal (or int) only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.money import minor_exponent

ZERO = Decimal(0)
_GRADES = frozenset({"A", "B", "C"})  # the grades of domain.returns.Grade (kept apart: tenants imports this module)
HUNDRED = Decimal(100)

#: ISO 4217 currencies with three decimals (money.py knows the zero-decimal ones).
_THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def currency_exponent(currency: str) -> int:
    """Number of decimals of the currency's minor unit (JPY 0, EUR 2, KWD 3)."""
    return 3 if currency in _THREE_DECIMAL_CURRENCIES else minor_exponent(currency)


def round_to_minor(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half-up to the currency's minor unit."""
    return amount.quantize(Decimal(1).scaleb(-currency_exponent(currency)), rounding=ROUND_HALF_UP)


def _decimal(value: object, name: str) -> Decimal:
    """A finite, non-negative Decimal; ints are exact and accepted, floats (and bools) are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    result = Decimal(value)
    if not result.is_finite() or result < 0:
        raise ValueError(f"{name} must be a finite, non-negative amount")
    return result


def _percent(value: object, name: str) -> Decimal:
    result = _decimal(value, name)
    if result > HUNDRED:
        raise ValueError(f"{name} must be between 0 and 100")
    return result


def _count(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def _fmt_percent(value: Decimal) -> str:
    """10 -> "10", 12.50 -> "12.5": percentages as a person writes them in a reason."""
    return format(value.normalize(), "f")


# ----- policy -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RefundPolicy:
    """The merchant's rules for the refund amount (kept with the refund settings)."""

    grade_deductions: dict[str, Decimal] = field(default_factory=dict)  # grade -> % of the unit price kept back
    restocking_fee_percent: Decimal = ZERO  # of the accepted lines' amounts
    return_shipping_fee: Decimal = ZERO  # flat, per return
    refund_original_shipping_when_complete: bool = True

    def __post_init__(self) -> None:
        for grade, percent in self.grade_deductions.items():
            _percent(percent, f"grade_deductions[{grade}]")
        _percent(self.restocking_fee_percent, "restocking_fee_percent")
        _decimal(self.return_shipping_fee, "return_shipping_fee")
        if not isinstance(self.refund_original_shipping_when_complete, bool):
            raise TypeError("refund_original_shipping_when_complete must be a bool")

    def deduction_percent(self, grade: str | None) -> Decimal:
        if grade is None:
            return ZERO
        return Decimal(self.grade_deductions.get(grade, ZERO))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RefundPolicy:
        """From stored settings or a request body: amounts as decimal strings (ints accepted, floats refused).

        Bad values raise `ValidationFailed` naming the field. Unknown keys are ignored.
        """
        raw_grades = data.get("grade_deductions") or {}
        if not isinstance(raw_grades, Mapping):
            raise ValidationFailed.at(["grade_deductions"], "must be an object of grade to percentage")
        grades: dict[str, Decimal] = {}
        for grade, raw in raw_grades.items():
            if grade not in _GRADES:
                raise ValidationFailed.at(["grade_deductions", str(grade)], "must be one of A, B, C")
            grades[grade] = _parse_setting(raw, ["grade_deductions", grade], percent=True)
        complete = data.get("refund_original_shipping_when_complete", True)
        if not isinstance(complete, bool):
            raise ValidationFailed.at(["refund_original_shipping_when_complete"], "must be a boolean")
        return cls(
            grade_deductions=grades,
            restocking_fee_percent=_parse_setting(
                data.get("restocking_fee_percent", "0"), ["restocking_fee_percent"], percent=True
            ),
            return_shipping_fee=_parse_setting(data.get("return_shipping_fee", "0"), ["return_shipping_fee"]),
            refund_original_shipping_when_complete=complete,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "grade_deductions": {grade: str(percent) for grade, percent in sorted(self.grade_deductions.items())},
            "restocking_fee_percent": str(self.restocking_fee_percent),
            "return_shipping_fee": str(self.return_shipping_fee),
            "refund_original_shipping_when_complete": self.refund_original_shipping_when_complete,
        }


def _parse_setting(raw: object, loc: list[str | int], *, percent: bool = False) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        raise ValidationFailed.at(loc, 'must be a decimal string such as "10"')
    try:
        value = Decimal(raw.strip() if isinstance(raw, str) else raw)
    except ArithmeticError:
        raise ValidationFailed.at(loc, 'must be a decimal string such as "10"')
    if not value.is_finite() or value < 0:
        raise ValidationFailed.at(loc, "must be a non-negative decimal")
    if percent and value > HUNDRED:
        raise ValidationFailed.at(loc, "must be a percentage between 0 and 100")
    return value


# ----- inputs and results -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineInput:
    """One order line's accepted units in this return."""

    line_item_id: str
    unit_price: Decimal
    accepted_quantity: int
    grade: str | None
    paid_total: Decimal  # what the customer paid for this order line, all units
    ordered_quantity: int
    already_refunded: Decimal  # refunded for this order line by earlier refunds of the order

    def __post_init__(self) -> None:
        _decimal(self.unit_price, "unit_price")
        _decimal(self.paid_total, "paid_total")
        _decimal(self.already_refunded, "already_refunded")
        _count(self.ordered_quantity, "ordered_quantity", minimum=1)
        _count(self.accepted_quantity, "accepted_quantity", minimum=0)
        if self.accepted_quantity > self.ordered_quantity:
            raise ValueError(f"line {self.line_item_id}: more accepted than ordered")


@dataclass(frozen=True)
class Deduction:
    reason: str  # e.g. "grade B: 10%", "restocking fee: 5%"
    amount: Decimal

    def to_dict(self, currency: str) -> dict[str, str]:
        return {"reason": self.reason, "amount": str(round_to_minor(self.amount, currency))}


@dataclass(frozen=True)
class RefundLine:
    line_item_id: str
    quantity: int
    gross: Decimal  # unit price x quantity
    deductions: tuple[Deduction, ...]  # grade deduction, then any cap to what was paid
    amount: Decimal  # gross - sum(deductions)

    def to_dict(self, currency: str) -> dict[str, Any]:
        return {
            "line_item_id": self.line_item_id,
            "quantity": self.quantity,
            "gross": str(round_to_minor(self.gross, currency)),
            "deductions": [d.to_dict(currency) for d in self.deductions],
            "amount": str(round_to_minor(self.amount, currency)),
        }


@dataclass(frozen=True)
class RefundBreakdown:
    lines: tuple[RefundLine, ...]
    fees: tuple[Deduction, ...]
    shipping_refund: Decimal
    total: Decimal
    currency: str

    @property
    def lines_total(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lines": [line.to_dict(self.currency) for line in self.lines],
            "fees": [fee.to_dict(self.currency) for fee in self.fees],
            "shipping_refund": str(round_to_minor(self.shipping_refund, self.currency)),
            "total": str(round_to_minor(self.total, self.currency)),
            "currency": self.currency,
        }


# ----- calculation --------------------------------------------------------------------------------------------
def _refund_line(line: LineInput, currency: str, policy: RefundPolicy) -> RefundLine:
    exact_gross = line.unit_price * line.accepted_quantity
    gross = round_to_minor(exact_gross, currency)
    deductions: list[Deduction] = []
    percent = policy.deduction_percent(line.grade)
    grade_deduction = min(gross, round_to_minor(exact_gross * percent / HUNDRED, currency))
    if grade_deduction > 0:
        deductions.append(Deduction(f"grade {line.grade}: {_fmt_percent(percent)}%", grade_deduction))
    net = gross - sum((d.amount for d in deductions), ZERO)
    # What the customer paid for these units (a discounted line pays less than its unit price) ...
    paid_for_units = round_to_minor(line.paid_total * line.accepted_quantity / line.ordered_quantity, currency)
    if net > paid_for_units:
        deductions.append(Deduction("more than was paid for these units", net - paid_for_units))
        net = paid_for_units
    # ... and what is left of the line's payment after earlier refunds.
    left = max(ZERO, round_to_minor(line.paid_total - line.already_refunded, currency))
    if net > left:
        deductions.append(Deduction("already refunded for this line", net - left))
        net = left
    return RefundLine(line.line_item_id, line.accepted_quantity, gross, tuple(deductions), net)


def calculate_refund(
    lines: Sequence[LineInput],
    *,
    currency: str,
    policy: RefundPolicy,
    method_fee: Decimal = ZERO,
    original_shipping_paid: Decimal = ZERO,
    shipping_already_refunded: Decimal = ZERO,
    whole_order_returned: bool = False,
) -> RefundBreakdown:
    """The refund for one return's accepted lines.

    `method_fee` is the return method's fee when the merchant deducts it from the refund (0 otherwise).
    `whole_order_returned`: every unit of the order has now come back; the original shipping is then refunded
    (less what was already refunded of it) if the policy says so.
    """
    method_fee = _decimal(method_fee, "method_fee")
    original_shipping_paid = _decimal(original_shipping_paid, "original_shipping_paid")
    shipping_already_refunded = _decimal(shipping_already_refunded, "shipping_already_refunded")
    seen: set[str] = set()
    for line in lines:
        if not isinstance(line, LineInput):
            raise TypeError(f"lines must be LineInput, not {type(line).__name__}")
        if line.line_item_id in seen:
            raise ValueError(f"line {line.line_item_id} appears twice: one LineInput per order line")
        seen.add(line.line_item_id)

    refund_lines = tuple(_refund_line(line, currency, policy) for line in lines)
    lines_total = sum((line.amount for line in refund_lines), ZERO)

    fees: list[Deduction] = []
    remaining = lines_total
    candidates = (
        (
            f"restocking fee: {_fmt_percent(policy.restocking_fee_percent)}%",
            round_to_minor(lines_total * policy.restocking_fee_percent / HUNDRED, currency),
        ),
        ("return shipping fee", round_to_minor(policy.return_shipping_fee, currency)),
        ("return method fee", round_to_minor(method_fee, currency)),
    )
    for reason, wanted in candidates:
        amount = min(wanted, remaining)  # a fee never takes more than the lines leave
        if amount > 0:
            fees.append(Deduction(reason, amount))
            remaining -= amount

    shipping_refund = ZERO
    if whole_order_returned and policy.refund_original_shipping_when_complete:
        shipping_refund = max(ZERO, round_to_minor(original_shipping_paid - shipping_already_refunded, currency))

    return RefundBreakdown(
        lines=refund_lines,
        fees=tuple(fees),
        shipping_refund=shipping_refund,
        total=remaining + shipping_refund,
        currency=currency,
    )
