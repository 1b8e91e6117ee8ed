"""Customs for international returns: when a parcel crosses a customs border, and what its declaration says.

Customs data is best effort: an item without an HS code, an origin or a weight falls back to the merchant's
default, then to a neutral value, and every fallback is reported as a warning. A return is never blocked
because customs data is missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import ValidationFailed

#: The 27 EU member states (ISO 3166-1 alpha-2; Greece is GR, not the EU's own EL). One customs union.
EU_COUNTRIES: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip

#: Categories of item on a CN 23; a return is always "returned_goods".
CATEGORIES: frozenset[str] = frozenset(
    {"gift", "documents", "commercial_sample", "returned_goods", "sale_of_goods", "other"}
)

#: Per-unit weight when neither the item nor the merchant knows one.
FALLBACK_WEIGHT_GRAMS = 500

_HS_CODE_DIGITS = range(6, 12)  # 6 (HS) to 11 digits (national tariff extensions)
_COUNTRY_CODE = re.compile(r"[A-Z]{2}")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_CENT = Decimal("0.01")

_T = TypeVar("_T")


def customs_required(customer_country: str, warehouse_country: str, *, domestic_countries: Iterable[str] = ()) -> bool:
    """Whether a return parcel crosses a customs border on its way from the customer to the warehouse.

    False if the customer's country is one of `domestic_countries` (a consolidation address there takes the
    parcel in domestically), if both countries are the same, or if both are in the EU; True otherwise.
    """
    customer = _country(customer_country)
    warehouse = _country(warehouse_country)
    if customer in {_country(c) for c in domestic_countries}:
        return False
    if customer == warehouse:
        return False
    return not (customer in EU_COUNTRIES and warehouse in EU_COUNTRIES)


@dataclass(frozen=True)
class CustomsDefaults:
    """A merchant's fallbacks for items whose own customs data is missing."""

    hs_code: str | None = None
    country_of_origin: str | None = None
    weight_grams: int | None = None  # per unit

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CustomsDefaults:
        data = data or {}
        hs_code = data.get("hs_code")
        origin = data.get("country_of_origin")
        weight = data.get("weight_grams")
        return cls(
            hs_code=str(hs_code) if hs_code not in (None, "") else None,
            country_of_origin=str(origin) if origin not in (None, "") else None,
            weight_grams=_int_or_none(weight),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "hs_code": self.hs_code,
            "country_of_origin": self.country_of_origin,
            "weight_grams": self.weight_grams,
        }


@dataclass(frozen=True)
class CustomsItem:
    """One returned line as customs sees it; the optional fields are per unit and may be missing."""

    sku: str
    description: str
    quantity: int
    unit_price: Decimal
    hs_code: str | None = None
    country_of_origin: str | None = None
    weight_grams: int | None = None  # per unit

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise ValidationFailed.at(["quantity"], f"{self.sku}: quantity must be at least 1")
        if not self.unit_price.is_finite() or self.unit_price < 0:
            raise ValidationFailed.at(["unit_price"], f"{self.sku}: unit price must be a non-negative amount")


@dataclass(frozen=True)
class CustomsLine:
    """One line of a customs declaration: weight and value are totals for the line."""

    sku: str
    description: str
    quantity: int
    hs_code: str  # digits only, or "" when unknown
    country_of_origin: str  # ISO alpha-2, or "" when unknown
    weight_grams: int  # per-unit weight x quantity
    value: Decimal  # unit price x quantity, 2 places

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "description": self.description,
            "quantity": self.quantity,
            "hs_code": self.hs_code,
            "country_of_origin": self.country_of_origin,
            "weight_grams": self.weight_grams,
            "value": str(self.value),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomsLine:
        return cls(
            sku=str(data["sku"]),
            description=str(data["description"]),
            quantity=int(data["quantity"]),
            hs_code=str(data["hs_code"]),
            country_of_origin=str(data["country_of_origin"]),
            weight_grams=int(data["weight_grams"]),
            value=Decimal(str(data["value"])),
        )


@dataclass(frozen=True)
class CustomsDeclaration:
    """What a CN 23 declares for one return parcel."""

    return_id: str
    reference: str  # the order number
    currency: str  # ISO 4217
    sender: Address  # the end customer
    recipient: Address  # the warehouse
    lines: tuple[CustomsLine, ...]
    category: str = "returned_goods"

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValidationFailed.at(["lines"], "a customs declaration needs at least one line")
        if not _CURRENCY_CODE.fullmatch(self.currency):
            raise ValidationFailed.at(["currency"], "must be an ISO 4217 code such as EUR")
        if self.category not in CATEGORIES:
            raise ValidationFailed.at(["category"], f"must be one of {', '.join(sorted(CATEGORIES))}")

    @property
    def total_value(self) -> Decimal:
        return sum((line.value for line in self.lines), Decimal("0.00"))

    @property
    def total_weight_grams(self) -> int:
        return sum(line.weight_grams for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "return_id": self.return_id,
            "reference": self.reference,
            "currency": self.currency,
            "category": self.category,
            "sender": self.sender.to_dict(),
            "recipient": self.recipient.to_dict(),
            "lines": [line.to_dict() for line in self.lines],
            "total_value": str(self.total_value),
            "total_weight_grams": self.total_weight_grams,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomsDeclaration:
        return cls(
            return_id=str(data["return_id"]),
            reference=str(data["reference"]),
            currency=str(data["currency"]),
            category=str(data.get("category") or "returned_goods"),
            sender=Address.from_dict(data["sender"]),
            recipient=Address.from_dict(data["recipient"]),
            lines=tuple(CustomsLine.from_dict(line) for line in data["lines"]),
        )


def customs_lines(items: Iterable[CustomsItem], defaults: CustomsDefaults) -> tuple[list[CustomsLine], list[str]]:
    """Declaration lines for `items`, and one warning per field that fell back.

    Each field comes from the item, else from the merchant's default, else a neutral fallback (no HS code, no
    origin, 500 g per unit). An HS code is reduced to its digits and must then have 6 to 11 of them; an origin is
    upper-cased and must be two letters; a weight must be positive. Anything else counts as missing.
    """
    default_hs_code = normalize_hs_code(defaults.hs_code)
    default_origin = normalize_country_of_origin(defaults.country_of_origin)
    default_weight = _positive(defaults.weight_grams)
    lines: list[CustomsLine] = []
    warnings: list[str] = []
    for item in items:
        hs_code = _resolve(
            item.sku, "hs_code", item.hs_code, normalize_hs_code(item.hs_code), default_hs_code, "", warnings
        )
        origin = _resolve(
            item.sku,
            "country_of_origin",
            item.country_of_origin,
            normalize_country_of_origin(item.country_of_origin),
            default_origin,
            "",
            warnings,
        )
        weight = _resolve(
            item.sku,
            "weight_grams",
            item.weight_grams,
            _positive(item.weight_grams),
            default_weight,
            FALLBACK_WEIGHT_GRAMS,
            warnings,
        )
        lines.append(
            CustomsLine(
                sku=item.sku,
                description=item.description,
                quantity=item.quantity,
                hs_code=hs_code,
                country_of_origin=origin,
                weight_grams=weight * item.quantity,
                value=(item.unit_price * item.quantity).quantize(_CENT, rounding=ROUND_HALF_UP),
            )
        )
    return lines, warnings


def normalize_hs_code(raw: str | None) -> str | None:
    """The digits of an HS / tariff code (``"6109.10 00"`` -> ``"61091000"``), or None if not 6-11 digits."""
    if raw is None:
        return None
    digits = "".join(c for c in str(raw) if c.isascii() and c.isdigit())
    return digits if len(digits) in _HS_CODE_DIGITS else None


def normalize_country_of_origin(raw: str | None) -> str | None:
    """An upper-cased ISO alpha-2 code, or None if `raw` is not two letters."""
    if raw is None:
        return None
    code = str(raw).strip().upper()
    return code if _COUNTRY_CODE.fullmatch(code) else None


def _resolve(
    sku: str,
    field: str,
    raw: object,
    own: _T | None,
    default: _T | None,
    fallback: _T,
    warnings: list[str],
) -> _T:
    if own is not None:
        return own
    problem = "missing" if raw is None or raw == "" else "invalid"
    if default is not None:
        warnings.append(f"{sku}: {field} {problem}, merchant default used")
        return default
    warnings.append(f"{sku}: {field} {problem}, no merchant default")
    return fallback


def _positive(grams: int | None) -> int | None:
    return grams if grams is not None and grams > 0 else None


def _country(code: str) -> str:
    return code.strip().upper()


def _int_or_none(raw: object) -> int | None:
    """Stored settings are read leniently: an unreadable weight is a missing one (customs_lines warns)."""
    if raw is None or raw == "" or isinstance(raw, bool):
        return None
    try:
        return int(str(raw))
    except ValueError:
        return None
