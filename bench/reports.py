"""Report cost against the number of returns: latency (in-process, median of N) and DynamoDB items read per report
over 30 days, for a merchant with 1,000 returns and one with 100,000, spread over the same 30 days.

The counters are seeded in bulk: synthetic returns (varied SKUs, reasons, grades, carriers and durations) go through
the aggregation function in memory (`chalicelib.domain.reports.increments`, the same as the consumer applies), the
totals are written with BatchWriteItem (`ReportStore.put_totals`). Then each report is asked N times through the
service the endpoint calls. A report reads one Query per day; its items are bounded by the dimensions (SKUs,
reasons, buckets), never by the returns: the ratio 100k / 1k stays near 1.

The environment (fake credentials, secrets) must be set before this module is imported: see `bench.env`.
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

SIZES = (1_000, 100_000)
DAYS = 30
SAMPLES = 7
SKUS = [f"SKU-{i:03d}" for i in range(40)]
REASONS = ["too_small", "too_large", "damaged", "not_as_described", "changed_mind", "late"]
CARRIERS = ["dhl", "ups"]
START = date(2026, 1, 1)
REPORTS = ("summary", "reasons", "skus", "processing-times", "grades", "carriers")


@dataclass
class ReportsResult:
    rows: list[list[str]] = field(default_factory=list)  # report, returns, median ms, items read, queries
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    seeded_items: dict[int, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def synthesize(returns: int, merchant_id: str, seed: int = 7) -> Any:
    """The counters of `returns` synthetic returns (and their orders), computed by the aggregation function."""
    from chalicelib.domain import reports as r

    rnd = random.Random(seed)
    total: r.Counters = {}
    for i in range(returns):
        t0 = datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(
            days=rnd.randrange(DAYS), hours=rnd.uniform(0, 20)
        )
        items = tuple(
            r.ItemFacts(
                sku=rnd.choice(SKUS),
                reason=rnd.choice(REASONS),
                quantity=(q := rnd.randint(1, 3)),
                received_quantity=q,
                grade=(g := rnd.choice("AABBC")),
                disposition={"A": "restock", "B": "refurbish", "C": "dispose"}[g],
            )
            for _ in range(rnd.randint(1, 3))
        )
        ms = {"requested": t0, "label_created": t0 + timedelta(minutes=5)}
        ms["in_transit"] = ms["label_created"] + timedelta(hours=rnd.expovariate(1 / 20))
        ms["delivered"] = ms["in_transit"] + timedelta(hours=rnd.expovariate(1 / 40))
        ms["received"] = ms["delivered"] + timedelta(hours=rnd.expovariate(1 / 10))
        ms["completed"] = ms["received"] + timedelta(hours=rnd.expovariate(1 / 30))
        ms["refunded"] = ms["completed"] + timedelta(hours=rnd.expovariate(1 / 5))
        facts = r.ReturnFacts(f"r{i}", merchant_id, rnd.choice(CARRIERS), items, ms)
        for status in ("requested", "delivered", "received", "completed", "refunded"):
            detail = {"merchant_id": merchant_id, "at": ms[status].isoformat()}
            r.merge(total, r.increments(f"return.{status}", detail, facts))
        amount = {"amount": f"{sum(it.quantity for it in items) * 19.95:.2f}", "currency": "EUR"}
        r.merge(total, r.increments("refund.succeeded", {"at": ms["refunded"].isoformat(), "amount": amount}, None))
        # the order each return came from: twice its quantities sold that day
        r.merge(total, r.sold_increments([], [(t0, it.sku, it.quantity * 2) for it in items]))
    return total


def run(samples: int = SAMPLES) -> ReportsResult:
    from bench.lifecycle import in_process_stack
    from chalicelib.bootstrap import container
    from chalicelib.services import reports as svc

    started = time.perf_counter()
    out = ReportsResult()
    calls = {
        "summary": svc.summary,
        "reasons": svc.reasons,
        "skus": svc.skus,
        "processing-times": svc.processing_times,
        "grades": svc.grades,
        "carriers": svc.carriers,
    }
    end = START + timedelta(days=DAYS - 1)
    measured: dict[tuple[str, int], tuple[float, int, int]] = {}
    from bench import fast_moto  # moto's whole-table walk per Query would otherwise be most of each report's time

    with fast_moto.installed(), in_process_stack():
        c = container()
        store = svc.report_store(c)
        for size in SIZES:  # both seeded first: both measured against the same table
            mid = f"bench-{size}"
            out.seeded_items[size] = store.put_totals(mid, synthesize(size, mid))
            out.figures[str(size)] = svc.summary(c, mid, START, end)
        for name in REPORTS:
            times: dict[int, list[float]] = {size: [] for size in SIZES}
            reads: dict[int, tuple[int, int]] = {}
            for _ in range(samples):  # the two sizes interleaved, so machine noise hits both alike
                for size in SIZES:
                    before_items, before_queries = store.items_read, store.queries
                    t = time.perf_counter()
                    calls[name](c, f"bench-{size}", START, end)
                    times[size].append(time.perf_counter() - t)
                    reads[size] = (store.items_read - before_items, store.queries - before_queries)
            for size in SIZES:
                measured[(name, size)] = (statistics.median(times[size]), *reads[size])
                ms, read, queries = measured[(name, size)]
                out.rows.append([name, f"{size:,}", f"{ms * 1000:.1f}", str(read), str(queries)])
    small, large = SIZES
    for name in REPORTS:
        t_small, read_small, q_small = measured[(name, small)]
        t_large, read_large, q_large = measured[(name, large)]
        ratio = t_large / t_small if t_small else float("inf")
        out.checks.append(
            (
                f"reports/{name}: 100x the returns, same queries and at most 2x the items and 3x the time",
                q_large == q_small == DAYS and read_large <= 2 * max(read_small, 1) and ratio <= 3,
                f"{q_small}/{q_large} queries, {read_small}/{read_large} items, time ratio {ratio:.2f}",
            )
        )
    returns_large = out.figures[str(large)]["returns"]
    out.checks.append(("reports count every seeded return", returns_large == large, f"{returns_large:,} returns"))
    out.seconds = time.perf_counter() - started
    return out


if __name__ == "__main__":  # pragma: no cover - `python -m bench.reports` for a quick look
    from bench import env

    env.apply()
    result = run()
    for row in result.rows:
        print("  ".join(row))
    for check in result.checks:
        print(check)


def report(checks: list[Any], check: Any) -> dict[str, Any]:
    """`make bench` section: prints the table, appends its checks (`check(name, passed, detail)`), returns figures."""
    r = run()
    print(
        f"\n(r) Reports: latency and DynamoDB items read, 1,000 vs 100,000 returns over {DAYS} days ({r.seconds:.0f} s)"
    )
    print("    in-process against moto (bench/fast_moto.py); median of", SAMPLES, "calls per report and size")
    table = [["report", "returns", "median ms", "items", "queries"], *r.rows]
    width = [max(len(x) for x in col) for col in zip(*table, strict=True)]
    for row in table:
        print(
            "    " + "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, width, strict=True)))
        )
    for name, passed, detail in r.checks:
        checks.append(check(name, passed, detail))
    return {"rows": r.rows, "seeded_items": r.seeded_items, "figures": r.figures, "seconds": r.seconds}
