"""Operator-side tenants: warehouses and the merchants they serve, with each merchant's settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.addresses import Address
from chalicelib.domain.checklists import NO_CHECKLISTS, Checklists
from chalicelib.domain.customs import CustomsDefaults
from chalicelib.domain.guidelines import DEFAULT_GUIDELINE, Guideline
from chalicelib.domain.refund_calc import RefundPolicy
from chalicelib.domain.routing import DEFAULT_ROUTING, Routing


@dataclass
class Warehouse:
    id: str
    name: str
    address: Address
    created_at: datetime
    routing: Routing = field(default_factory=lambda: DEFAULT_ROUTING)


@dataclass(frozen=True)
class Reason:
    """A return reason; reasons nest (`children`), and the customer picks a leaf."""

    code: str
    label: str
    children: tuple[Reason, ...] = ()
    comment_required: bool = False
    photo_required: bool = False
    excludes_item: bool = False  # choosing it means the item cannot be returned (e.g. an opened hygiene item)
    message: str | None = None  # shown to the customer when the reason excludes the item

    def walk(self) -> Iterator[Reason]:
        yield self
        for child in self.children:
            yield from child.walk()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reason:
        return cls(
            code=data["code"],
            label=data["label"],
            children=tuple(cls.from_dict(c) for c in data.get("children") or []),
            comment_required=bool(data.get("comment_required", False)),
            photo_required=bool(data.get("photo_required", False)),
            excludes_item=bool(data.get("excludes_item", False)),
            message=data.get("message"),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "label": self.label}
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        for flag in ("comment_required", "photo_required", "excludes_item"):
            if getattr(self, flag):
                out[flag] = True
        if self.message:
            out["message"] = self.message
        return out


@dataclass
class ReturnPolicy:
    return_window_days: int = 30
    non_returnable_tags: list[str] = field(default_factory=list)
    non_returnable_skus: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(
        default_factory=lambda: [
            Reason("too_small", "Too small"),
            Reason("too_large", "Too large"),
            Reason("damaged", "Arrived damaged"),
            Reason("not_as_described", "Not as described"),
            Reason("changed_mind", "Changed my mind"),
        ]
    )
    window_overrides: list[dict[str, Any]] = field(default_factory=list)  # [{tag, days}]
    label_validity_days: int = 30
    fees: list[dict[str, Any]] = field(default_factory=list)  # [{method_type, countries?, amount, deduct_from_refund}]
    customs_defaults: CustomsDefaults = field(default_factory=CustomsDefaults)
    # Days after a return ended (completed, refunded, cancelled, expired, rejected) before the customer's personal
    # data in it is pseudonymised (services/privacy.py; 30..3650, three years unless the merchant says otherwise)
    retention_days: int = 1095

    def window_days_for(self, tags: list[str]) -> int:
        days = [o["days"] for o in self.window_overrides if o["tag"] in tags]
        return max(days) if days else self.return_window_days

    def reason_codes(self) -> set[str]:
        return {r.code for top in self.reasons for r in top.walk()}

    def find_reason(self, code: str) -> Reason | None:
        return next((r for top in self.reasons for r in top.walk() if r.code == code), None)

    def fee_for(self, method_type: str, country: str) -> dict[str, Any] | None:
        """The merchant's fee for a method in a country: a country-specific entry wins over a general one."""
        specific = [f for f in self.fees if f["method_type"] == method_type and country in (f.get("countries") or [])]
        general = [f for f in self.fees if f["method_type"] == method_type and not f.get("countries")]
        found = specific or general
        return found[0] if found else None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReturnPolicy:
        if not data:
            return cls()
        return cls(
            return_window_days=int(data["return_window_days"]),
            non_returnable_tags=list(data.get("non_returnable_tags") or []),
            non_returnable_skus=list(data.get("non_returnable_skus") or []),
            reasons=[Reason.from_dict(r) for r in data.get("reasons") or []] or cls().reasons,
            window_overrides=list(data.get("window_overrides") or []),
            label_validity_days=int(data.get("label_validity_days") or 30),
            fees=list(data.get("fees") or []),
            customs_defaults=CustomsDefaults.from_dict(data.get("customs_defaults")),
            retention_days=int(data.get("retention_days") or 1095),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "return_window_days": self.return_window_days,
            "non_returnable_tags": self.non_returnable_tags,
            "non_returnable_skus": self.non_returnable_skus,
            "reasons": [r.to_dict() for r in self.reasons],
            "window_overrides": self.window_overrides,
            "label_validity_days": self.label_validity_days,
            "fees": self.fees,
            "customs_defaults": self.customs_defaults.to_dict(),
            "retention_days": self.retention_days,
        }


@dataclass
class RefundSettings:
    target: str = "manual"  # manual | webhook | shop
    auto_refund: bool = False
    auto_refund_grades: list[str] = field(default_factory=lambda: ["A", "B", "C"])
    webhook_url: str | None = None  # refunds only
    restock_webhook_url: str | None = None  # restock syncs (signed with the same secret); none: not sent
    has_webhook_secret: bool = False
    policy: RefundPolicy = field(default_factory=RefundPolicy)  # deductions, fees, original shipping
    store_credit: bool = False  # customers may choose store credit (a Shopify gift card) instead of money back
    store_credit_bonus_percent: Decimal = Decimal(0)  # added to a store-credit refund to keep the revenue

    def covers(self, grades: set[str]) -> bool:
        """Whether an automatic refund may go out for items of these grades."""
        return self.auto_refund and grades.issubset(set(self.auto_refund_grades))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RefundSettings:
        """From stored settings or a validated request body; bad policy values raise ValidationFailed naming the
        field."""
        if not data:
            return cls()
        return cls(
            target=data.get("target", "manual"),
            auto_refund=bool(data.get("auto_refund", False)),
            auto_refund_grades=list(data.get("auto_refund_grades") or ["A", "B", "C"]),
            webhook_url=data.get("webhook_url"),
            restock_webhook_url=data.get("restock_webhook_url"),
            has_webhook_secret=bool(data.get("has_webhook_secret", False)),
            policy=RefundPolicy.from_dict(data.get("policy") or {}),
            store_credit=bool(data.get("store_credit", False)),
            store_credit_bonus_percent=Decimal(str(data.get("store_credit_bonus_percent") or "0")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "auto_refund": self.auto_refund,
            "auto_refund_grades": self.auto_refund_grades,
            "webhook_url": self.webhook_url,
            "restock_webhook_url": self.restock_webhook_url,
            "has_webhook_secret": self.has_webhook_secret,
            "policy": self.policy.to_dict(),
            "store_credit": self.store_credit,
            "store_credit_bonus_percent": str(self.store_credit_bonus_percent),
        }


@dataclass
class Merchant:
    id: str
    name: str
    slug: str
    warehouse_id: str
    created_at: datetime
    contact_email: str | None = None
    locale: str = "en"
    policy: ReturnPolicy = field(default_factory=ReturnPolicy)
    guideline: Guideline = DEFAULT_GUIDELINE
    checklists: Checklists = NO_CHECKLISTS
    refunds: RefundSettings = field(default_factory=RefundSettings)
    shop: dict[str, Any] | None = None  # {platform, shop_domain | base_url, location_id?}: no secrets


@dataclass
class Principal:
    """Who is calling: resolved from an API key or a portal token."""

    kind: str  # operator | merchant | warehouse | customer
    id: str
    key_id: str | None = None
    order_number: str | None = None  # customer sessions only

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}" if self.kind != "customer" else "customer"


def as_decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))
