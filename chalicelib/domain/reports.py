"""Report aggregates: what one domain event adds to a merchant's daily counters (pure; docs/reports.md).

A report is never computed from the returns: consumers add each event's increments to counter items
(merchant, UTC day, dimension), and a report sums the counters of the days asked. One event's increments go to the
day of the event (`detail.at`): a return counts on the day it was requested, a refund on the day it succeeded, a
processing time on the day its stage ended.

Durations are histograms over fixed buckets (`BUCKET_BOUNDS_HOURS`, upper bounds inclusive; the last is open).
Median and p90 come from the buckets, not from the raw times: the upper bound of the first bucket in which the
cumulative count reaches 50% (90%) of the total (`percentile`); `None` when that is the open bucket or when there is
nothing to count.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from chalicelib.domain.money import minor_exponent

#: Bucket upper bounds in hours (inclusive); a duration above the last lands in the open bucket "inf".
BUCKET_BOUNDS_HOURS: tuple[int, ...] = (1, 2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 504, 720)
BUCKETS: tuple[str, ...] = (*(str(b) for b in BUCKET_BOUNDS_HOURS), "inf")

#: Processing stages: (name, from milestone, to milestone). The counter is added on the `to` milestone's event.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("requested_received", "requested", "received"),
    ("received_completed", "received", "completed"),
    ("completed_refunded", "completed", "refunded"),
    ("requested_refunded", "requested", "refunded"),
)

#: The detail-types the aggregator consumes (infrastructure/definitions.REPORT_EVENTS routes exactly these).
EVENT_TYPES: tuple[str, ...] = (
    "return.requested",
    "return.delivered",
    "return.received",
    "return.completed",
    "return.rejected",
    "return.refunded",
    "refund.succeeded",
)
#: Of those, the ones whose increments need the return (items, milestones); refund.succeeded carries its amount.
NEEDS_RETURN: frozenset[str] = frozenset(EVENT_TYPES) - {"refund.succeeded"}

#: Counter fields a counter item may have (each added with DynamoDB ADD).
FIELDS: tuple[str, ...] = ("n", "returns", "items", "sold", "returned")

SUMMARY = "SUMMARY"
REFUNDED = "SUMMARY#REFUNDED#"  # + currency: amount in minor units (field n); shares SUMMARY's prefix (one Query)
REASON = "REASON#"
REASON_BY_SKU = "RSKU#"  # + pair_key(sku, reason)
REASON_BY_CATEGORY = "RCAT#"  # + pair_key(category or UNCATEGORIZED, reason)
UNCATEGORIZED = "uncategorized"
SKU = "SKU#"
GRADE = "GRADE#"
DISPOSITION = "GRADE#DISPOSITION#"  # grades and dispositions are read together (prefix GRADE#)
PROCESSING = "PT#"
TRANSIT = "TRANSIT#"

#: (day "YYYY-MM-DD", sort key) -> field -> amount to add
Counters = dict[tuple[str, str], dict[str, int]]


@dataclass(frozen=True)
class ItemFacts:
    sku: str
    reason: str
    quantity: int  # requested
    received_quantity: int | None = None
    grade: str | None = None
    disposition: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class ReturnFacts:
    """What the increments need of a return: its items and the first time it reached each status (timeline)."""

    return_id: str
    merchant_id: str
    carrier: str | None
    items: tuple[ItemFacts, ...]
    milestones: Mapping[str, datetime] = field(default_factory=dict)  # status -> first time reached


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def parse_time(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def bucket_of(hours: float) -> str:
    """The bucket a duration falls in: the first upper bound it does not exceed (negative durations: the first)."""
    for bound in BUCKET_BOUNDS_HOURS:
        if hours <= bound:
            return str(bound)
    return "inf"


def hours_between(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds() / 3600)


def percentile(buckets: Mapping[str, int], pct: int) -> float | None:
    """The upper bound (hours) of the first bucket where the cumulative count reaches `pct`% of the total.
    None: nothing counted, or the percentile lies in the open bucket."""
    total = sum(buckets.get(b, 0) for b in BUCKETS)
    if total <= 0:
        return None
    cumulative = 0
    for label in BUCKETS:
        cumulative += buckets.get(label, 0)
        if cumulative * 100 >= pct * total:
            return None if label == "inf" else float(label)
    return None  # pragma: no cover - the last bucket always reaches 100%


def histogram(buckets: Mapping[str, int]) -> dict[str, object]:
    """count, median_hours, p90_hours and every bucket (zeros included) in bound order."""
    return {
        "count": sum(buckets.get(b, 0) for b in BUCKETS),
        "median_hours": percentile(buckets, 50),
        "p90_hours": percentile(buckets, 90),
        "buckets": [{"le_hours": None if b == "inf" else float(b), "count": buckets.get(b, 0)} for b in BUCKETS],
    }


def minor_units(amount: str | Decimal, currency: str) -> int:
    return int((Decimal(amount) * (10 ** minor_exponent(currency))).to_integral_value())


def from_minor_units(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-minor_exponent(currency))


class _Acc:
    def __init__(self) -> None:
        self.counters: Counters = defaultdict(lambda: defaultdict(int))

    def add(self, day: str, sk: str, fld: str, amount: int) -> None:
        if amount:
            self.counters[(day, sk)][fld] += amount

    def result(self) -> Counters:
        out: Counters = {}
        for key, fields in self.counters.items():
            kept = {f: v for f, v in fields.items() if v}
            if kept:
                out[key] = kept
        return out


def increments(event_type: str, detail: Mapping[str, object], ret: ReturnFacts | None) -> Counters:
    """The counters one domain event adds (empty for events that change no report).

    `ret` is required for NEEDS_RETURN types (ValueError otherwise)."""
    at = parse_time(str(detail["at"]))
    day = _utc(at).date().isoformat()
    acc = _Acc()
    if event_type == "refund.succeeded":
        amount = detail.get("amount")
        if not isinstance(amount, Mapping):
            raise ValueError("refund.succeeded without an amount")
        currency = str(amount["currency"])
        acc.add(day, REFUNDED + currency, "n", minor_units(str(amount["amount"]), currency))
        return acc.result()
    if event_type not in NEEDS_RETURN:
        return {}
    if ret is None:
        raise ValueError(f"{event_type}: the return is needed")
    ms = ret.milestones
    if event_type == "return.requested":
        acc.add(day, SUMMARY, "returns", 1)
        for it in ret.items:
            acc.add(day, SUMMARY, "items", it.quantity)
            acc.add(day, REASON + it.reason, "n", it.quantity)
            acc.add(day, REASON_BY_SKU + pair_key(it.sku, it.reason), "n", it.quantity)
            acc.add(day, REASON_BY_CATEGORY + pair_key(it.category or UNCATEGORIZED, it.reason), "n", it.quantity)
            acc.add(day, SKU + it.sku, "returned", it.quantity)
    elif event_type == "return.delivered":
        _transit(acc, day, ret, at)
    elif event_type == "return.received":
        if "delivered" not in ms:  # no carrier delivery reported: the scan ends the transit
            _transit(acc, day, ret, at)
    elif event_type in ("return.completed", "return.rejected"):
        for it in ret.items:
            units = it.received_quantity or 0
            if it.grade and units:
                acc.add(day, GRADE + it.grade, "n", units)
            if it.disposition and units:
                acc.add(day, DISPOSITION + it.disposition, "n", units)
    for stage, start, end in STAGES:
        if f"return.{end}" == event_type and start in ms:
            acc.add(day, f"{PROCESSING}{stage}#{bucket_of(hours_between(ms[start], at))}", "n", 1)
    return acc.result()


def pair_key(first: str, second: str) -> str:
    """A sort-key part holding two free-text codes (either may contain '#'): `<len(first)>:<first>#<second>`."""
    return f"{len(first)}:{first}#{second}"


def split_pair(key: str) -> tuple[str, str]:
    """The inverse of pair_key."""
    length, _, rest = key.partition(":")
    size = int(length)
    return rest[:size], rest[size + 1 :]


def period_of(day: str, period: str) -> str:
    """The period a UTC day belongs to: the day itself, its ISO week (`2026-W48`) or its month (`2026-11`)."""
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    if period == "week":
        year, week, _ = date.fromisoformat(day).isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"unknown period {period!r}")


def _transit(acc: _Acc, day: str, ret: ReturnFacts, end: datetime) -> None:
    """Carrier transit: from the first in_transit (else label_created) milestone to this delivery or scan."""
    start = ret.milestones.get("in_transit") or ret.milestones.get("label_created")
    if start is None or not ret.carrier:
        return
    acc.add(day, f"{TRANSIT}{ret.carrier}#{bucket_of(hours_between(start, end))}", "n", 1)


def sold_increments(
    before: Iterable[tuple[datetime, str, int]], after: Iterable[tuple[datetime, str, int]]
) -> Counters:
    """Sold quantities an order upsert adds: (ordered_at, sku, quantity) lines after minus before, in the day of
    ordered_at (an order whose date changed moves its quantities between days)."""
    acc = _Acc()
    for sign, lines in ((-1, before), (1, after)):
        for ordered_at, sku, quantity in lines:
            day = _utc(ordered_at).date().isoformat()
            acc.add(day, SKU + sku, "sold", sign * quantity)
            acc.add(day, SUMMARY, "sold", sign * quantity)
    return acc.result()


def merge(into: Counters, more: Counters) -> Counters:
    """Add `more` into `into` (in memory: the bench seeds totals this way)."""
    for key, fields in more.items():
        target = into.setdefault(key, {})
        for fld, amount in fields.items():
            target[fld] = target.get(fld, 0) + amount
    return into
