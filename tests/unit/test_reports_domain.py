"""Report increments per event type, histogram buckets and percentiles (chalicelib/domain/reports.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import reports as r
from infrastructure import definitions as d

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def facts(**milestones: datetime) -> r.ReturnFacts:
    return r.ReturnFacts(
        return_id="r1",
        merchant_id="m1",
        carrier="dhl",
        items=(
            r.ItemFacts(
                "SHIRT-M", "too_small", 2, received_quantity=2, grade="A", disposition="restock", category="tops"
            ),
            r.ItemFacts("JEANS-32", "damaged", 1, received_quantity=1, grade="C", disposition="dispose"),
            r.ItemFacts("CAP", "too_small", 1, received_quantity=0),
        ),
        milestones={"requested": T0, **milestones},
    )


def detail(at: datetime, **extra: object) -> dict[str, object]:
    return {"return_id": "r1", "merchant_id": "m1", "event_id": "e1", "at": at.isoformat(), **extra}


@pytest.mark.parametrize(
    ("hours", "bucket"),
    [(0, "1"), (-3, "1"), (1, "1"), (1.01, "2"), (24, "24"), (24.5, "36"), (720, "720"), (720.1, "inf"), (1e6, "inf")],
)
def test_a_duration_falls_in_the_first_bucket_whose_upper_bound_it_does_not_exceed(hours: float, bucket: str) -> None:
    assert r.bucket_of(hours) == bucket


def test_percentiles_are_the_upper_bound_where_the_cumulative_count_first_reaches_the_share() -> None:
    # Given 10 durations: 4 in <=1h, 1 in <=2h, 4 in <=24h, 1 in the open bucket
    buckets = {"1": 4, "2": 1, "24": 4, "inf": 1}
    # Then the median is 2 (5 of 10 reach 50%), p90 is 24 (9 of 10)
    assert r.percentile(buckets, 50) == 2.0
    assert r.percentile(buckets, 90) == 24.0
    assert r.percentile(buckets, 100) is None  # in the open bucket
    assert r.percentile({}, 50) is None
    assert r.percentile({"48": 1}, 50) == 48.0
    h = r.histogram(buckets)
    assert h["count"] == 10 and h["median_hours"] == 2.0 and h["p90_hours"] == 24.0
    assert [b["le_hours"] for b in h["buckets"]] == [*map(float, r.BUCKET_BOUNDS_HOURS), None]  # type: ignore[index]


def test_percentile_equals_a_brute_force_over_sorted_durations() -> None:
    durations = [0.5, 3, 3, 7, 11, 13, 30, 100, 100, 800, 2, 5]
    buckets: dict[str, int] = {}
    for h in durations:
        buckets[r.bucket_of(h)] = buckets.get(r.bucket_of(h), 0) + 1
    ordered = sorted(durations)
    for pct in (50, 90):
        # the smallest k with k/n >= pct%: the k-th duration's bucket bound
        k = next(k for k in range(1, len(ordered) + 1) if k * 100 >= pct * len(ordered))
        bound = r.bucket_of(ordered[k - 1])
        assert r.percentile(buckets, pct) == (None if bound == "inf" else float(bound))


def test_a_requested_return_counts_returns_items_reasons_and_skus_on_its_day() -> None:
    got = r.increments("return.requested", detail(T0), facts())
    assert got == {
        ("2026-03-01", "SUMMARY"): {"returns": 1, "items": 4},
        ("2026-03-01", "REASON#too_small"): {"n": 3},
        ("2026-03-01", "REASON#damaged"): {"n": 1},
        ("2026-03-01", "SKU#SHIRT-M"): {"returned": 2},
        ("2026-03-01", "SKU#JEANS-32"): {"returned": 1},
        ("2026-03-01", "SKU#CAP"): {"returned": 1},
        ("2026-03-01", "RSKU#7:SHIRT-M#too_small"): {"n": 2},
        ("2026-03-01", "RSKU#8:JEANS-32#damaged"): {"n": 1},
        ("2026-03-01", "RSKU#3:CAP#too_small"): {"n": 1},
        ("2026-03-01", "RCAT#4:tops#too_small"): {"n": 2},
        ("2026-03-01", "RCAT#13:uncategorized#damaged"): {"n": 1},
        ("2026-03-01", "RCAT#13:uncategorized#too_small"): {"n": 1},
    }


def test_days_are_utc_days() -> None:
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    got = r.increments("return.requested", detail(late), facts())
    assert {day for day, _ in got} == {"2026-03-01"}


def test_received_counts_requested_to_received_and_transit_when_no_delivery_was_reported() -> None:
    at = T0 + timedelta(hours=30)
    got = r.increments("return.received", detail(at), facts(in_transit=T0 + timedelta(hours=5), received=at))
    assert got == {
        ("2026-03-03", "PT#requested_received#36"): {"n": 1},
        ("2026-03-03", "TRANSIT#dhl#36"): {"n": 1},  # 25 h from in_transit
    }
    # a reported delivery already counted the transit
    got = r.increments(
        "return.received", detail(at), facts(label_created=T0, delivered=T0 + timedelta(hours=1), received=at)
    )
    assert got == {("2026-03-03", "PT#requested_received#36"): {"n": 1}}


def test_delivery_counts_transit_from_label_created_when_never_in_transit() -> None:
    at = T0 + timedelta(hours=50)
    got = r.increments("return.delivered", detail(at), facts(label_created=T0 + timedelta(hours=1)))
    assert got == {("2026-03-04", "TRANSIT#dhl#72"): {"n": 1}}
    assert r.increments("return.delivered", detail(at), facts()) == {}  # no start: nothing to measure


def test_completion_counts_grades_and_dispositions_of_received_units_and_the_stage() -> None:
    received = T0 + timedelta(hours=10)
    at = received + timedelta(hours=3)
    got = r.increments("return.completed", detail(at), facts(received=received))
    assert got == {
        ("2026-03-02", "GRADE#A"): {"n": 2},
        ("2026-03-02", "GRADE#C"): {"n": 1},
        ("2026-03-02", "GRADE#DISPOSITION#restock"): {"n": 2},
        ("2026-03-02", "GRADE#DISPOSITION#dispose"): {"n": 1},
        ("2026-03-02", "PT#received_completed#4"): {"n": 1},
    }
    rejected = r.increments("return.rejected", detail(at), facts(received=received))
    assert "PT#received_completed#4" not in {sk for _, sk in rejected}
    assert ("2026-03-02", "GRADE#A") in rejected


def test_refunded_counts_two_stages_and_refund_succeeded_the_amount_in_minor_units() -> None:
    completed = T0 + timedelta(hours=100)
    at = completed + timedelta(hours=0.5)
    got = r.increments("return.refunded", detail(at), facts(completed=completed))
    assert got == {
        ("2026-03-06", "PT#completed_refunded#1"): {"n": 1},
        ("2026-03-06", "PT#requested_refunded#120"): {"n": 1},
    }
    money = r.increments("refund.succeeded", detail(at, amount={"amount": "59.90", "currency": "EUR"}), None)
    assert money == {("2026-03-06", "SUMMARY#REFUNDED#EUR"): {"n": 5990}}
    yen = r.increments("refund.succeeded", detail(at, amount={"amount": "1200", "currency": "JPY"}), None)
    assert yen == {("2026-03-06", "SUMMARY#REFUNDED#JPY"): {"n": 1200}}
    assert r.from_minor_units(5990, "EUR") == r.from_minor_units(599, "EUR") * 10


def test_events_that_need_the_return_refuse_without_it_and_others_count_nothing() -> None:
    with pytest.raises(ValueError):
        r.increments("return.requested", detail(T0), None)
    assert r.increments("item.graded", detail(T0), None) == {}


def test_sold_increments_are_the_delta_per_sku_in_the_ordered_day() -> None:
    day1, day2 = T0, T0 + timedelta(days=1)
    assert r.sold_increments([], [(day1, "A", 2), (day1, "B", 1)]) == {
        ("2026-03-01", "SKU#A"): {"sold": 2},
        ("2026-03-01", "SKU#B"): {"sold": 1},
        ("2026-03-01", "SUMMARY"): {"sold": 3},
    }
    assert r.sold_increments([(day1, "A", 2)], [(day1, "A", 2)]) == {}  # unchanged: nothing
    assert r.sold_increments([(day1, "A", 2)], [(day1, "A", 5)]) == {
        ("2026-03-01", "SKU#A"): {"sold": 3},
        ("2026-03-01", "SUMMARY"): {"sold": 3},
    }
    moved = r.sold_increments([(day1, "A", 2)], [(day2, "A", 2)])
    assert moved[("2026-03-01", "SKU#A")] == {"sold": -2} and moved[("2026-03-02", "SKU#A")] == {"sold": 2}


def test_the_rule_routes_exactly_the_events_the_reports_count() -> None:
    assert set(d.REPORT_EVENTS.detail_types) == set(r.EVENT_TYPES)
    assert d.REPORT_EVENTS.queue.consumer == "report_aggregator"
    (fn,) = [f for f in d.FUNCTIONS if f.name == "report_aggregator"]
    assert fn.needs == d.READ_WRITE  # counters and markers: no deletes, no other service


@pytest.mark.parametrize(("first", "second"), [("SHIRT-M", "too_small"), ("A#B", "x#y"), ("", "r"), ("9:x#", "#")])
def test_a_pair_key_gives_back_both_codes_whatever_they_hold(first: str, second: str) -> None:
    assert r.split_pair(r.pair_key(first, second)) == (first, second)


@pytest.mark.parametrize(
    ("day", "period", "key"),
    [
        ("2026-11-26", "day", "2026-11-26"),
        ("2026-11-26", "month", "2026-11"),
        ("2026-11-26", "week", "2026-W48"),
        ("2027-01-01", "week", "2026-W53"),  # ISO weeks: the first days of a year can belong to the last year's
        ("2024-12-30", "week", "2025-W01"),
    ],
)
def test_a_day_belongs_to_its_iso_week_and_month(day: str, period: str, key: str) -> None:
    assert r.period_of(day, period) == key
