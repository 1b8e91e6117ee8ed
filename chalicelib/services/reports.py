"""Reports: counters maintained by an idempotent event consumer, read one Query per day (docs/reports.md).

Writing: `aggregate` turns one domain event (from functions/report_aggregator) into counter increments
(chalicelib/domain/reports.increments) and applies them with the event's marker in one transaction; `save_order`
saves an order together with the change of its sold quantities. Reading: each report sums the counters of the days
in [from, to]; its cost depends on the number of days, never on the number of returns.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from chalicelib.domain import reports as r
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.returns import Return, TimelineEntry
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.adapters.dynamodb.reports import ReportStore
    from chalicelib.bootstrap import Container
    from chalicelib.domain.orders import Order

#: How long an applied-event marker is kept: longer than any redelivery or replay (the bus archive keeps 30 days).
MARKER_TTL_SECONDS = 180 * 24 * 3600
MAX_DAYS = 366


def report_store(c: Container) -> ReportStore:
    def build() -> ReportStore:
        from chalicelib.adapters.dynamodb.reports import ReportStore

        c.store  # noqa: B018 - binds the models to the configured table
        return ReportStore()

    return c._get("reports", build)


# ----- writing ----------------------------------------------------------------------------------------------------
def facts(ret: Return, timeline: list[TimelineEntry]) -> r.ReturnFacts:
    """The return as the increments see it: its items and the first time it reached each status."""
    milestones: dict[str, datetime] = {}
    for entry in timeline:
        status = entry.data.get("status")
        if (
            entry.type.startswith("return.")
            and isinstance(status, str)
            and (status not in milestones or entry.at < milestones[status])
        ):
            milestones[status] = entry.at
    milestones.setdefault("requested", ret.created_at)
    return r.ReturnFacts(
        return_id=ret.id,
        merchant_id=ret.merchant_id,
        carrier=ret.carrier,
        items=tuple(
            r.ItemFacts(
                sku=it.sku,
                reason=it.reason,
                quantity=it.quantity,
                received_quantity=it.received_quantity,
                grade=it.grade.value if it.grade else None,
                disposition=it.disposition.value if it.disposition else None,
                category=it.category,
            )
            for it in ret.items
        ),
        milestones=milestones,
    )


def aggregate(c: Container, event_type: str, detail: dict[str, Any]) -> str:
    """Add one domain event to the report counters, once per `event_id`. Returns `applied`, `duplicate` or
    `skipped:<why>`; raises on malformed events (the message goes to the DLQ after its retries).

    Items, reasons, grades and milestones are read from the return (its timeline is append-only and items, grades
    and dispositions no longer change once the return is completed or rejected). The return may have moved on since
    the event: what is read for an event is only what had happened by then (earlier milestones, the requested items,
    final grades), so a late or redelivered event adds the same counters."""
    if event_type not in r.EVENT_TYPES:
        return "skipped:not a report event"
    event_id = detail.get("event_id")
    merchant_id = detail.get("merchant_id")
    if not isinstance(event_id, str) or not event_id or not isinstance(merchant_id, str) or not merchant_id:
        raise ValueError(f"{event_type} event without an event_id or merchant_id")
    ret_facts = None
    if event_type in r.NEEDS_RETURN:
        return_id = detail.get("return_id")
        if not isinstance(return_id, str):
            raise ValueError(f"{event_type} event without a return_id")
        try:
            ret, timeline = c.store.get_return_with_timeline(return_id)
        except NotFound:
            logger.warning("report event for an unknown return", return_id=return_id, event_type=event_type)
            return "skipped:return not found"
        ret_facts = facts(ret, timeline)
    counters = r.increments(event_type, detail, ret_facts)
    if not counters:
        return "skipped:nothing to count"
    expires_at = c.now() + timedelta(seconds=MARKER_TTL_SECONDS)
    applied, duplicate = report_store(c).apply(event_id, merchant_id, counters, expires_at)
    logger.debug("report counters", event_type=event_type, event_id=event_id, applied=applied, duplicate=duplicate)
    return "applied" if applied else "duplicate"


def _ordered_lines(order: Order | None) -> list[tuple[datetime, str, int]]:
    if order is None:
        return []
    at = order.ordered_at
    when = at if isinstance(at, datetime) else r.parse_time(str(at))
    return [(when, it.sku, it.quantity) for it in order.items]


def save_order(c: Container, order: Order, existing: Order | None, claims: list[tuple[Any, Any]] | None = None) -> None:
    """Save an order (create or replace under the version read) and, in the same transaction, add the change of its
    sold quantities per SKU to the day it was ordered. The order's version condition makes this exactly once: a
    concurrent change cancels both (ConcurrentModification, the caller reads again and recomputes the delta).
    An order touching more counters than one transaction holds is saved first and counted after (best effort)."""
    from chalicelib.adapters.dynamodb.reports import PART_SIZE

    counters = r.sold_increments(_ordered_lines(existing), _ordered_lines(order))
    if not counters:
        c.store.save_order(order, c.now(), claims)
        return
    if len(counters) + len(claims or []) > PART_SIZE:
        c.store.save_order(order, c.now(), claims)
        event_id = f"ORDER#{order.merchant_id}#{order.order_number}#v{order.version}"
        expires_at = c.now() + timedelta(seconds=MARKER_TTL_SECONDS)
        report_store(c).apply(event_id, order.merchant_id, counters, expires_at)
        return
    report_store(c).save_order_with_sold(order, c.now(), counters, claims)


# ----- reading ----------------------------------------------------------------------------------------------------
def days(start: date, end: date) -> list[str]:
    if end < start:
        raise ValidationFailed.at(["to"], "must not be before 'from'")
    count = (end - start).days + 1
    if count > MAX_DAYS:
        raise ValidationFailed.at(["to"], f"at most {MAX_DAYS} days from 'from'")
    return [(start + timedelta(days=i)).isoformat() for i in range(count)]


def _sum(c: Container, merchant_id: str, start: date, end: date, prefix: str) -> dict[str, dict[str, int]]:
    store = report_store(c)
    total: dict[str, dict[str, int]] = {}
    for day in days(start, end):
        for sk, fields in store.day(merchant_id, day, prefix).items():
            target = total.setdefault(sk, {})
            for f, v in fields.items():
                target[f] = target.get(f, 0) + v
    return total


def _rate(returned: int, sold: int) -> float | None:
    return round(returned / sold, 4) if sold > 0 else None


def _money(units: int, currency: str) -> dict[str, str]:
    from chalicelib.domain.money import Money

    return Money(r.from_minor_units(units, currency), currency).to_dict()


def summary(c: Container, merchant_id: str, start: date, end: date) -> dict[str, Any]:
    """returns, items (units), sold (units ordered in the range), return_rate = items / sold (None: nothing sold);
    refunded: the currency with the largest refunded amount (None: nothing refunded), every currency in
    refunded_by_currency."""
    counters = _sum(c, merchant_id, start, end, r.SUMMARY)
    head = counters.get(r.SUMMARY, {})
    by_currency = sorted(
        ((sk[len(r.REFUNDED) :], fields.get("n", 0)) for sk, fields in counters.items() if sk.startswith(r.REFUNDED)),
    )
    refunded = [_money(units, cur) for cur, units in by_currency if units]
    top = max(((units, cur) for cur, units in by_currency if units), default=None, key=lambda t: (t[0], t[1]))
    items, sold = head.get("items", 0), head.get("sold", 0)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "returns": head.get("returns", 0),
        "items": items,
        "sold": sold,
        "return_rate": _rate(items, sold),
        "refunded": _money(top[0], top[1]) if top else None,
        "refunded_by_currency": refunded,
    }


#: How the reasons report can be broken down (`group_by`).
REASON_GROUPS = ("day", "week", "month", "sku", "category", "reason_category")


def _reason_rows(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Reason rows, most returned units first (then by code)."""
    return [{"reason": code, "count": n} for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n]


def _top_reasons(c: Container, merchant_id: str) -> dict[str, str]:
    """Every reason code of the merchant's current reason tree -> the code of its top-level reason."""
    merchant = c.store.get_merchant(merchant_id)
    return {reason.code: top.code for top in merchant.policy.reasons for reason in top.walk()}


def reasons(c: Container, merchant_id: str, start: date, end: date, group_by: str | None = None) -> dict[str, Any]:
    """Returned units per reason over the days, optionally broken down (`group_by`):
    - `day`, `week` (ISO), `month`: one group per period of the range, empty periods included, in time order;
    - `sku`, `category` (the order line's product category; `uncategorized` without one): most units first;
    - `reason_category`: the top-level reason of the merchant's current reason tree (a code no longer in the tree
      is its own group).
    One Query per day in every case."""
    if group_by is not None and group_by not in REASON_GROUPS:
        raise ValidationFailed.at(["group_by"], f"must be one of {', '.join(REASON_GROUPS)}")
    store = report_store(c)
    totals: dict[str, int] = {}
    groups: dict[str, dict[str, int]] = {}
    period = group_by if group_by in ("day", "week", "month") else None
    if period:  # every period of the range, also the empty ones
        for day in days(start, end):
            groups.setdefault(r.period_of(day, period), {})
    prefix = {"sku": r.REASON_BY_SKU, "category": r.REASON_BY_CATEGORY}.get(group_by or "", r.REASON)
    for day in days(start, end):
        for sk, fields in store.day(merchant_id, day, prefix).items():
            n = fields.get("n", 0)
            if prefix == r.REASON:
                key, reason = (r.period_of(day, period) if period else ""), sk[len(prefix) :]
            else:
                key, reason = r.split_pair(sk[len(prefix) :])
            totals[reason] = totals.get(reason, 0) + n
            if group_by is not None:
                target = groups.setdefault(key, {})
                target[reason] = target.get(reason, 0) + n
    if group_by == "reason_category":
        tops = _top_reasons(c, merchant_id)
        groups = {}
        for reason, n in totals.items():
            target = groups.setdefault(tops.get(reason, reason), {})
            target[reason] = n
    out: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat(), "items": _reason_rows(totals)}
    if group_by is None:
        return out
    sized = [(key, sum(v.values()), v) for key, v in groups.items()]
    if period:
        sized.sort(key=lambda g: g[0])
    else:
        sized = sorted((g for g in sized if g[1]), key=lambda g: (-g[1], g[0]))
    views = [{"key": key, "count": n, "items": _reason_rows(v)} for key, n, v in sized]
    out.update({"group_by": group_by, "groups": views})
    return out


def skus(c: Container, merchant_id: str, start: date, end: date) -> dict[str, Any]:
    counters = _sum(c, merchant_id, start, end, r.SKU)
    rows = []
    for sk, f in counters.items():
        returned, sold = f.get("returned", 0), f.get("sold", 0)
        if returned or sold:
            rows.append(
                {"sku": sk[len(r.SKU) :], "returned": returned, "sold": sold, "return_rate": _rate(returned, sold)}
            )
    rows.sort(key=lambda row: (-int(str(row["returned"])), str(row["sku"])))
    return {"items": rows}


def _histograms(counters: dict[str, dict[str, int]], prefix: str) -> dict[str, dict[str, int]]:
    """{name: {bucket: count}} from sort keys <prefix><name>#<bucket>."""
    out: dict[str, dict[str, int]] = {}
    for sk, f in counters.items():
        name, _, bucket = sk[len(prefix) :].rpartition("#")
        out.setdefault(name, {})[bucket] = out.get(name, {}).get(bucket, 0) + f.get("n", 0)
    return out


def processing_times(c: Container, merchant_id: str, start: date, end: date) -> dict[str, Any]:
    hist = _histograms(_sum(c, merchant_id, start, end, r.PROCESSING), r.PROCESSING)
    return {"stages": {stage: r.histogram(hist.get(stage, {})) for stage, _, _ in r.STAGES}}


def carriers(c: Container, merchant_id: str, start: date, end: date) -> dict[str, Any]:
    hist = _histograms(_sum(c, merchant_id, start, end, r.TRANSIT), r.TRANSIT)
    return {"items": [{"carrier": name, **r.histogram(hist[name])} for name in sorted(hist)]}


def grades(c: Container, merchant_id: str, start: date, end: date) -> dict[str, Any]:
    counters = _sum(c, merchant_id, start, end, r.GRADE)
    by_grade: dict[str, int] = {}
    by_disposition: dict[str, int] = {}
    for sk, f in counters.items():
        if sk.startswith(r.DISPOSITION):
            by_disposition[sk[len(r.DISPOSITION) :]] = f.get("n", 0)
        else:
            by_grade[sk[len(r.GRADE) :]] = f.get("n", 0)
    return {
        "grades": [{"grade": g, "count": by_grade.get(g, 0)} for g in ("A", "B", "C")],
        "dispositions": [{"disposition": k, "count": v} for k, v in sorted(by_disposition.items()) if v],
    }
