"""Money: Decimal amounts in a currency, rounded per the currency's minor unit."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from chalicelib.domain.errors import ValidationFailed

_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "CLP", "ISK", "VND"})


def minor_exponent(currency: str) -> int:
    return 0 if currency in _ZERO_DECIMAL_CURRENCIES else 2


def quantize(amount: Decimal, currency: str) -> Decimal:
    exp = Decimal(1).scaleb(-minor_exponent(currency))
    return amount.quantize(exp, rounding=ROUND_HALF_UP)


def parse_amount(raw: str, loc: list[str | int]) -> Decimal:
    """A decimal string from a request; never a float."""
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError):
        raise ValidationFailed.at(loc, 'must be a decimal string such as "49.95"')
    if not value.is_finite() or value < 0:
        raise ValidationFailed.at(loc, "must be a non-negative decimal")
    return value


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def to_dict(self) -> dict[str, str]:
        return {"amount": str(quantize(self.amount, self.currency)), "currency": self.currency}
