"""What a merchant can filter returns by, as index keys ("facets"): pure, no I/O.

Every return is listed under a set of facets (`all`, `status=received`, `sku=SHIRT-M`, `attention=refund_failed`,
...). The repository keeps one small index item per facet, sorted by the return's creation time, and writes the
difference between the facets it saved last and the facets now in the return's own transaction. A filtered list
is then one Query on the most selective facet asked for (a created-at range on its sort key), and the other
filters are checked on the returns that page fetched. Nothing scans.

A return with very many distinct SKUs or reasons is indexed under the first `MAX_FACETS` of them (a transaction
holds at most 100 items); the list still finds it through `all`, `status=` and `order=`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chalicelib.domain.emails import email_digest
from chalicelib.domain.returns import Return, ReturnStatus

MAX_FACETS = 40

#: Filter name -> facet prefix, most selective first: a list asks the index for the first one given.
SELECTIVITY = ("order_number", "email", "sku", "reason", "attention", "carrier", "grade", "status")
_PREFIX = {
    "order_number": "order",
    "email": "email",
    "sku": "sku",
    "reason": "reason",
    "attention": "attention",
    "carrier": "carrier",
    "grade": "grade",
    "status": "status",
}

#: Why a return needs the merchant: it waits for their feedback, a refund failed, the carrier reported a problem.
ATTENTION_KINDS = ("awaiting_feedback", "refund_failed", "carrier_exception")


def email_key(email: str) -> str:
    """A customer's email as an index key: a hash, so that the index holds no address."""
    return email_digest(email)[:32]


def attention(ret: Return) -> list[str]:
    out = []
    if ret.status == ReturnStatus.AWAITING_FEEDBACK:
        out.append("awaiting_feedback")
    if ret.refund is not None and ret.refund.status == "failed":
        out.append("refund_failed")
    if ret.carrier_exception and not ret.carrier_exception.get("resolved_at"):
        out.append("carrier_exception")
    return out


def facets(ret: Return) -> list[str]:
    """The return's facets, the fixed ones first; at most MAX_FACETS."""
    fixed = ["all", f"status={ret.status.value}", f"order={ret.order_number}"]
    if ret.customer_email_key:
        fixed.append(f"email={ret.customer_email_key}")
    if ret.carrier:
        fixed.append(f"carrier={ret.carrier}")
    fixed += [f"attention={kind}" for kind in attention(ret)]
    varying: list[str] = []
    for item in ret.items:
        varying.append(f"sku={item.sku}")
        varying.append(f"reason={item.reason}")
        if item.grade is not None:
            varying.append(f"grade={item.grade.value}")
    out = list(dict.fromkeys(fixed + sorted(set(varying), key=varying.index)))
    return out[:MAX_FACETS]


@dataclass(frozen=True)
class ReturnFilter:
    """A merchant's filters; None means any."""

    status: str | None = None
    carrier: str | None = None
    grade: str | None = None
    reason: str | None = None
    sku: str | None = None
    order_number: str | None = None
    email: str | None = None
    attention: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> ReturnFilter:
        return cls(**{k: query.get(k) for k in cls.__dataclass_fields__})

    def facet(self) -> str:
        """The index to ask: the most selective filter given, else every return."""
        for name in SELECTIVITY:
            value = getattr(self, name)
            if value:
                return f"{_PREFIX[name]}={email_key(value) if name == 'email' else value}"
        return "all"

    def matches(self, ret: Return) -> bool:
        """Every filter holds for `ret` (the facet asked for holds by construction, and is checked again: the
        index item may be a moment older than the return)."""
        wanted = set()
        for name in SELECTIVITY:
            value = getattr(self, name)
            if value:
                wanted.add(f"{_PREFIX[name]}={email_key(value) if name == 'email' else value}")
        have = set(facets_unbounded(ret))
        if not wanted <= have:
            return False
        if self.created_from and ret.created_at < self.created_from:
            return False
        return not (self.created_to and ret.created_at > self.created_to)


def facets_unbounded(ret: Return) -> Iterable[str]:
    """Like `facets`, without the cap (for checking filters on a fetched return)."""
    yield from facets(ret)
    for item in ret.items:
        yield f"sku={item.sku}"
        yield f"reason={item.reason}"
        if item.grade is not None:
            yield f"grade={item.grade.value}"


def feedback_sla_left(ret: Return, since: datetime, sla_hours: float, now: datetime) -> float:
    """Hours left before the feedback timeout applies the default (negative: overdue)."""
    return round((since + timedelta(hours=sla_hours) - now).total_seconds() / 3600, 1)
