"""`make bench`: cold start against a baseline, DynamoDB calls per operation over one lifecycle, no Scan anywhere,
classification cost, the customer portal (DynamoDB calls per portal operation, create-return latency against
`GET /v1/health` in the same run), tracking ingestion (webhook events per second through the SQS consumer against
plain PutItems per second in the same run), and refunds (DynamoDB calls and shop calls per refund, click to settled,
for every refund target and the shops' failure paths).

Prints the tables and the acceptance checks, writes everything to .local/bench-results.json, and exits 1 if a
check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import env

if TYPE_CHECKING:
    from bench.counter import DynamoCallCounter
    from bench.refunds import CaseResult, ShopCall

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".local" / "bench-results.json"
COLD_START_LIMIT = 1.5  # the API app may import in at most 1.5x the baseline's time
CLASSIFY_LIMIT = 5.0  # CEL classification may cost at most 5x the same rules as Python lambdas
PORTAL_RETURN = "POST /v1/portal/returns"
PORTAL_RETURN_LIMIT = 3
PORTAL_READ_LIMIT = 3  # portal order, methods: at most 3 DynamoDB calls each
# portal session (services/auth.verify_customer): the attempt's claim on its counters (TransactWriteItems), the slug
# (GetItem), merchant + order (BatchGetItem), the claim given back because the pair was right (TransactWriteItems)
PORTAL_SESSION_LIMIT = 4
# Refunds (chalicelib/services/refunds.py), DynamoDB calls per request / task invocation, from the code:
# the click (issue_refund): the API key (GetItem, services/auth.authenticate), the Idempotency-Key marker (GetItem),
# the return (GetItem), merchant + order (one BatchGetItem, load_for_return_creation), then one TransactWriteItems
# (return, timeline, marker, refund record, the order's reservation, outbox event). Starting the state machine is not
# DynamoDB.
REFUND_CLICK_LIMIT = 5
# send_refund, an attempt that fails: the refund (GetItem), its attempt counter (UpdateItem), for the target the return,
# the merchant (webhook, shop) and the order (shop) (GetItem each), the attempt's error (UpdateItem).
REFUND_FAILED_ATTEMPT_LIMIT = 6
# send_refund, the attempt that settles: the same up to the target's answer (2 + 3), then record_refund_result's one
# TransactWriteItems (return, refund record, REFUNDDONE marker), with the refund and return as the attempt read them.
REFUND_SETTLING_ATTEMPT_LIMIT = 6
# refund_failed, the refund unconfirmed (the shop cannot be asked): the refund (GetItem), asking the shop (return,
# merchant, order), one TransactWriteItems; the email reuses the merchant. (A definitive failure adds the order's
# GetItem to release its share: 6; that path is not run here.)
REFUND_FAILED_TASK_LIMIT = 5
# reconcile_refund, the refund found: the refund (GetItem), the check counter (UpdateItem), asking the shop (return,
# merchant, order), the refund again (its counter moved), one TransactWriteItems. (A release adds the order: 8.)
REFUND_RECONCILE_LIMIT = 7


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.0f}"


def _table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right or set()
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return "\n".join([fmt(headers), "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ops(counter: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "-"


def _scope_table(counter: DynamoCallCounter, statuses: dict[str, set[int]], names: list[str]) -> dict[str, Any]:
    """Print one row per scope (calls per invocation, by DynamoDB operation); return the same for the JSON file."""
    rows = []
    scopes: dict[str, Any] = {}
    for name in names:
        st = counter.stats[name]
        totals = st.totals
        lo, hi = min(totals), max(totals)
        per = f"{lo}" if lo == hi else f"{lo}-{hi}"
        uniform = all(c == st.per_invocation[0] for c in st.per_invocation)
        breakdown = _ops(st.per_invocation[0]) if uniform else f"in all {st.invocations}: {_ops(st.operations)}"
        status = ",".join(str(s) for s in sorted(statuses.get(name, set())))
        rows.append([name, status, str(st.invocations), per, str(sum(totals)), breakdown])
        scopes[name] = {
            "invocations": st.invocations,
            "http_status": sorted(statuses.get(name, set())),
            "calls_per_invocation": totals,
            "operations_per_invocation": [dict(c) for c in st.per_invocation],
        }
    print(
        _table(
            ["operation", "http", "n", "calls each", "total", "DynamoDB operations (each)"],
            rows,
            right={2, 3, 4},
        )
    )
    return scopes


# ----- (a) cold start ----------------------------------------------------------------------------------------------
def cold_start(rounds: int, profile: bool, checks: list[Check]) -> dict[str, Any]:
    from bench import coldstart

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    results = coldstart.measure(rounds)
    load_after = os.getloadavg()[0]
    base = results[coldstart.BASELINE].median
    base_cpu = results[coldstart.BASELINE].cpu_median
    rows = []
    for module, r in results.items():
        ratio = r.median / base
        verdict = ""
        if module == coldstart.API:
            verdict = "PASS" if ratio <= COLD_START_LIMIT else "FAIL"
        elif module != coldstart.BASELINE and ratio > COLD_START_LIMIT:
            verdict = f"(> {COLD_START_LIMIT}x)"
        rows.append(
            [
                module,
                _ms(r.median),
                _ms(min(r.samples)),
                _ms(max(r.samples)),
                f"{ratio:5.2f}x",
                _ms(r.cpu_median),
                f"{r.cpu_median / base_cpu:5.2f}x",
                _ms(r.process_median),
                verdict,
            ]
        )
    elapsed = time.perf_counter() - started
    print(f"\n(a) Cold start: import time in a fresh interpreter, {rounds} interleaved rounds ({elapsed:.0f} s)")
    print("    wall time decides; CPU time (less disturbed by other processes) and the whole process are for context")
    cpus = os.cpu_count() or 1
    if max(load_before, load_after) > cpus:
        print(
            f"    NOTE: the machine was busy (load {load_before:.1f} -> {load_after:.1f} on {cpus} CPUs): "
            "wall times are noisy, compare the CPU column or re-run"
        )
    print(
        _table(
            ["entry point", "median ms", "min", "max", "vs baseline", "cpu ms", "cpu vs base", "process ms", "check"],
            rows,
            right={1, 2, 3, 4, 5, 6, 7},
        )
    )
    api = results[coldstart.API]
    ratio = api.median / base
    checks.append(
        Check(
            f"API app cold start <= {COLD_START_LIMIT}x baseline",
            ratio <= COLD_START_LIMIT,
            f"{api.median * 1000:.0f} ms vs baseline {base * 1000:.0f} ms = {ratio:.2f}x",
        )
    )
    out: dict[str, Any] = {
        "rounds": rounds,
        "baseline": coldstart.BASELINE,
        "limit_ratio": COLD_START_LIMIT,
        "load_average": [load_before, load_after],
        "targets": {
            m: {
                "median_s": r.median,
                "ratio_to_baseline": r.median / base,
                "samples_s": r.samples,
                "cpu_median_s": r.cpu_median,
                "cpu_ratio_to_baseline": r.cpu_median / base_cpu,
                "cpu_samples_s": r.cpu_samples,
                "process_median_s": r.process_median,
            }
            for m, r in results.items()
        },
    }
    if profile or ratio > COLD_START_LIMIT:
        out["import_profile"] = import_profile(coldstart.API)
    return out


def import_profile(module: str) -> dict[str, Any]:
    from bench import coldstart

    p = coldstart.profile_imports(module)
    print(
        f"\n    What `import {module}` loads beyond the baseline (-X importtime, best of {p.runs}): {p.total_ms:.0f} ms"
    )
    heavy = [h for h in p.third_party if h.milliseconds >= 5][:15]
    print("    third-party packages, by the first-party module whose import pulls them in (cumulative ms):")
    print(
        "\n".join(
            "      " + line
            for line in _table(
                ["imported by", "package", "ms"],
                [[h.importer, h.imported, f"{h.milliseconds:.0f}"] for h in heavy],
                {2},
            ).splitlines()
        )
    )
    own = [h for h in p.first_party_self if h.milliseconds >= 5][:12]
    print("    first-party modules by their own (self) import time, i.e. module-level code (ms):")
    print(
        "\n".join(
            "      " + line
            for line in _table(
                ["module", "imported by", "self ms"],
                [[h.imported, h.importer, f"{h.milliseconds:.0f}"] for h in own],
                {2},
            ).splitlines()
        )
    )
    return {
        "module": module,
        "total_ms": p.total_ms,
        "third_party": [h.__dict__ for h in p.third_party],
        "first_party_self": [h.__dict__ for h in p.first_party_self],
    }


# ----- (b) + (c) DynamoDB calls over one lifecycle -----------------------------------------------------------------
def dynamodb(checks: list[Check]) -> dict[str, Any]:
    from bench.counter import UNATTRIBUTED
    from bench.lifecycle import run_lifecycle

    result = run_lifecycle()
    counter = result.counter
    print(f"\n(b) DynamoDB requests per operation over one full lifecycle ({result.seconds:.0f} s)")
    for s in result.steps:
        print(f"    - {s}")

    def sort_key(name: str) -> int:
        return 2 if name == UNATTRIBUTED else 1 if name.startswith("lambda ") else 0

    names = sorted(counter.stats, key=sort_key)  # stable: API in order of first use, then Lambdas
    scopes = _scope_table(counter, result.statuses, names)
    by_op = counter.by_operation()
    attempts = counter.attempts
    print(f"    all DynamoDB requests: {sum(by_op.values())} ({_ops(by_op)})")
    print(
        f"    cross-check, HTTP attempts seen by botocore's endpoint: {sum(attempts.values())}"
        + (" (equal: no retries, nothing bypassed the counter)" if attempts == by_op else f" ({_ops(attempts)})")
    )

    checks.append(
        Check(
            "lifecycle ran to the end (refunded)",
            result.error is None,
            "ok" if result.error is None else result.error.strip().splitlines()[-1],
        )
    )
    if result.error:
        print(
            "\n    LIFECYCLE FAILED (counts above are partial):\n"
            + "\n".join("      " + x for x in result.error.splitlines())
        )
    portal = counter.stats.get(PORTAL_RETURN)
    worst = max(portal.totals) if portal else None
    checks.append(
        Check(
            f"{PORTAL_RETURN} <= {PORTAL_RETURN_LIMIT} DynamoDB calls",
            worst is not None and worst <= PORTAL_RETURN_LIMIT,
            f"{worst} calls ({_ops(portal.per_invocation[0])})" if portal else "not measured",
        )
    )
    scans = counter.scopes_with("Scan")
    checks.append(
        Check(
            "no Scan during the lifecycle (API + functions)",
            not scans and result.error is None,
            f"{sum(scans.values())} Scan"
            + (f" in {dict(scans)}" if scans else "")
            + ("" if result.error is None else " (run incomplete)"),
        )
    )
    return {
        "seconds": result.seconds,
        "error": result.error,
        "steps": result.steps,
        "scopes": scopes,
        "by_operation": dict(by_op),
        "http_attempts_by_operation": dict(attempts),
        "scan_count": sum(scans.values()),
        "scan_scopes": dict(scans),
    }


def static_scan(checks: list[Check]) -> list[dict[str, Any]]:
    from bench.static import DEFAULT_DIRS, find_scans

    findings = find_scans(ROOT)
    print(f"\n(c) Static check for Scan in {', '.join(d + '/' for d in DEFAULT_DIRS)}: {len(findings)} finding(s)")
    for f in findings:
        print(f"    {f.path}:{f.line}: {f.text}")
    checks.append(
        Check('no .scan( / "Scan" in chalicelib/ and functions/', not findings, f"{len(findings)} finding(s)")
    )
    return [f.__dict__ for f in findings]


# ----- (e) + (f) the customer portal ---------------------------------------------------------------------------
def portal(requests: int, checks: list[Check]) -> dict[str, Any]:
    from bench import portal as p

    load_before = os.getloadavg()[0]
    r = p.run_portal(requests)
    load_after = os.getloadavg()[0]
    print(f"\n(e) Portal: DynamoDB requests per portal operation ({r.seconds - r.latency_seconds:.0f} s)")
    for step in r.steps:
        print(f"    - {step}")
    scopes = _scope_table(r.counter, r.statuses, r.portal_scopes())

    print(f"\n(f) Portal: create-return latency against the floor of the stack ({r.latency_seconds:.0f} s)")
    print(f"    - {r.latency_plan}")
    print(
        "    in-process against moto (each return writes its PDF label to moto's S3); compare the ratios. The heap "
        "built before timing is frozen (gc.freeze)"
    )
    cpus = os.cpu_count() or 1
    if max(load_before, load_after) > cpus:
        print(f"    NOTE: the machine was busy (load {load_before:.1f} -> {load_after:.1f} on {cpus} CPUs)")
    latency: dict[str, Any] = {"requests": requests, "load_average": [load_before, load_after], "kinds": {}}
    health = r.latency.get(p.HEALTH)
    if health is not None:
        floor = statistics.median(health.outside_moto)
        rows = []
        for kind, lat in r.latency.items():
            ours = statistics.median(lat.outside_moto)
            rows.append(
                [
                    kind,
                    str(len(lat.samples)),
                    f"{lat.median * 1000:.2f}",
                    f"{lat.p90 * 1000:.2f}",
                    f"{lat.median / health.median:.0f}x",
                    f"{statistics.median(lat.in_moto) * 1000:.2f}",
                    f"{ours * 1000:.2f}",
                    f"{ours / floor:.0f}x",
                    f"{lat.full_collections} ({lat.full_collection_seconds:.1f} s)",
                ]
            )
            latency["kinds"][kind] = {
                "n": len(lat.samples),
                "median_s": lat.median,
                "p90_s": lat.p90,
                "median_ratio_to_health": lat.median / health.median,
                "median_in_moto_s": statistics.median(lat.in_moto),
                "median_outside_moto_s": ours,
                "outside_moto_ratio_to_health": ours / floor,
                "full_gc_collections": lat.full_collections,
                "full_gc_seconds": lat.full_collection_seconds,
                "samples_s": list(lat.samples),
                "in_moto_s": list(lat.in_moto),
            }
        print(
            _table(
                [
                    "request",
                    "n",
                    "median ms",
                    "p90 ms",
                    "vs health",
                    "in moto ms",
                    "outside moto ms",
                    "vs health",
                    "full GCs (time)",
                ],
                rows,
                right={1, 2, 3, 4, 5, 6, 7, 8},
            )
        )
        create, service = r.latency[p.CREATE], r.latency[p.SERVICE]
        http_ms = (create.median - service.median) * 1000
        print(
            f"    median(create) / median(health) = {create.median / health.median:.0f}x; "
            f"median(create) / median(service call) = {create.median / service.median:.2f}x: the HTTP layer (routing, "
            f"auth, validation, JSON) ~ {http_ms:.1f} ms of {create.median * 1000:.0f} ms"
            + (" (below this run's noise)" if http_ms <= 0 else "")
        )
        print(
            "    'in moto': moto answering the app's AWS requests in this thread (DynamoDB, S3, ...): the harness's "
            "cost; medians per column, so they need not add up"
        )
    for error in r.errors:
        print("\n    PORTAL BENCH FAILED:\n" + "\n".join("      " + x for x in error.splitlines()))
    checks.append(Check("portal bench ran to the end", not r.errors, "ok" if not r.errors else _last_line(r.errors)))

    def worst(name: str) -> tuple[int | None, str]:
        st = r.counter.stats.get(name)
        if st is None:
            return None, "not measured"
        top = max(range(st.invocations), key=lambda i: st.totals[i])
        return st.totals[top], f"{st.totals[top]} calls ({_ops(st.per_invocation[top])})"

    limits = [
        (p.CREATE + p.PLAIN, PORTAL_RETURN_LIMIT),
        (p.SESSION, PORTAL_SESSION_LIMIT),
        (p.ORDER, PORTAL_READ_LIMIT),
        (p.METHODS, PORTAL_READ_LIMIT),
    ]
    for name, limit in limits:
        calls, detail = worst(name)
        checks.append(Check(f"{name} <= {limit} DynamoDB calls", calls is not None and calls <= limit, detail))
    latency["plan"] = r.latency_plan
    return {"scopes": scopes, "steps": r.steps, "errors": r.errors, "seconds": r.seconds, "latency": latency}


def _last_line(errors: list[str]) -> str:
    return errors[-1].strip().splitlines()[-1]


# ----- (g) tracking ingestion ------------------------------------------------------------------------------------
def tracking(returns: int, rounds: int, checks: list[Check]) -> dict[str, Any]:
    from bench.tracking import DRAIN, PUT, run_tracking

    r = run_tracking(returns, rounds)
    print(f"\n(g) Tracking ingestion: webhook events through the SQS consumer vs plain PutItem ({r.seconds:.0f} s)")
    print(f"    - {r.plan}")
    print("    in-process against moto; medians over the rounds; 'in moto': moto answering in this thread")
    med = statistics.median
    drain_out = r.outside(r.drain_seconds, r.drain_in_moto)
    put_out = r.outside(r.put_seconds, r.put_in_moto)
    rows = []
    if r.drain_seconds and r.put_seconds:
        rows = [
            [
                f"{DRAIN} (events)",
                str(r.events),
                f"{med(r.drain_seconds):.2f}",
                f"{r.events_per_second:.0f}",
                f"{med(r.drain_in_moto):.2f}",
                f"{r.events_per_second_outside_moto:.0f}",
                f"{r.handler_events_per_second:.0f}",
            ],
            [
                f"{PUT} (items)",
                str(r.events),
                f"{med(r.put_seconds):.2f}",
                f"{r.items_per_second:.0f}",
                f"{med(r.put_in_moto):.2f}",
                f"{r.items_per_second_outside_moto:.0f}",
                "",
            ],
        ]
        print(
            _table(
                ["phase", "n", "median s", "per s", "in moto s", "per s outside moto", "per s in handler"],
                rows,
                right={1, 2, 3, 4, 5, 6},
            )
        )
        outside_ratio = (
            r.events_per_second_outside_moto / r.items_per_second_outside_moto if r.items_per_second_outside_moto else 0
        )
        share = med(r.drain_in_moto) / med(r.drain_seconds)
        print(
            f"    events/s / items/s = {r.ratio:.3f} (one event ~ {1 / r.ratio:.0f} PutItems); outside moto "
            f"{outside_ratio:.3f}; the drain spends {share:.0%} of its time in moto"
        )
    for error in r.errors:
        print("\n    TRACKING BENCH FAILED:\n" + "\n".join("      " + x for x in error.splitlines()))
    detail = (
        f"{r.rounds} rounds x {r.events} events, {r.batch_failures} failed records, {r.wrong_status} returns off status"
        if not r.errors
        else _last_line(r.errors)
    )
    checks.append(Check("tracking bench ran to the end, every event applied", r.ok, detail))
    return {
        "returns": r.returns,
        "rounds": r.rounds,
        "events_per_round": r.events,
        "plan": r.plan,
        "drain_seconds": r.drain_seconds,
        "drain_in_moto_seconds": r.drain_in_moto,
        "handler_seconds": r.handler_seconds,
        "put_seconds": r.put_seconds,
        "put_in_moto_seconds": r.put_in_moto,
        "drain_outside_moto_seconds": drain_out,
        "put_outside_moto_seconds": put_out,
        "events_per_second": r.events_per_second,
        "items_per_second": r.items_per_second,
        "ratio": r.ratio,
        "events_per_second_outside_moto": r.events_per_second_outside_moto,
        "items_per_second_outside_moto": r.items_per_second_outside_moto,
        "batch_failures": r.batch_failures,
        "wrong_status": r.wrong_status,
        "errors": r.errors,
        "seconds": r.seconds,
    }


# ----- (h) refunds: DynamoDB calls and shop calls per refund ---------------------------------------------------
def _invocations(per_invocation: list[Counter[str]]) -> tuple[str, str]:
    """(calls each, DynamoDB operations) of a scope's invocations; distinct patterns with their count."""
    totals = [sum(c.values()) for c in per_invocation]
    patterns: list[tuple[Counter[str], int]] = []
    for c in per_invocation:
        for i, (seen, n) in enumerate(patterns):
            if seen == c:
                patterns[i] = (seen, n + 1)
                break
        else:
            patterns.append((c, 1))
    lo, hi = min(totals), max(totals)
    each = ", ".join(str(t) for t in totals) if len(totals) <= 3 else str(lo) if lo == hi else f"{lo}-{hi}"
    if len(patterns) == 1:
        return each, _ops(patterns[0][0])
    return each, "; ".join(f"{n}x {sum(c.values())}: {_ops(c)}" for c, n in patterns)


def _shop_requests(calls: list[ShopCall]) -> str:
    """The shop's requests in order, runs of the same request and fault folded: `list_refunds[500] x6`."""
    runs: list[list[Any]] = []
    for call in calls:
        label = call.operation + ("" if call.fault == "ok" else f"[{call.fault}]")
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return ", ".join(label + (f" x{n}" if n > 1 else "") for label, n in runs) or "-"


def refunds(checks: list[Check]) -> dict[str, Any]:
    from bench.refunds import CLICK, TASKS, run_refunds

    r = run_refunds()
    print(f"\n(h) Refunds: DynamoDB calls and shop calls per refund, click to settled ({r.seconds:.0f} s)")
    for step in r.steps:
        print(f"    - {step} ({r.setup_seconds:.0f} s)")
    print(
        "    - then each refund alone: the click and every task of its refund state machine counted until the "
        f"execution ended; retries 1 s apart, {r.max_attempts} attempts at most"
    )
    for case in r.cases:
        print(f"      {case.scenario.name}: {case.scenario.plan}")
    rows = []
    for case in r.cases:
        first = True
        scopes = [(CLICK, [case.click] if case.click else [])] + [(f"lambda {t}", case.task(t)) for t in TASKS]
        for scope, invocations in scopes:
            if not invocations:
                continue
            each, breakdown = _invocations(invocations)
            total = sum(sum(c.values()) for c in invocations)
            rows.append(
                [case.scenario.name if first else "", scope, str(len(invocations)), each, str(total), breakdown]
            )
            first = False
    print(_table(["refund", "scope", "n", "calls each", "total", "DynamoDB operations (each)"], rows, right={2, 3, 4}))

    def bound(case: CaseResult) -> int:
        """The most a refund may cost by the design: the click, a failed attempt's cost per attempt but the last,
        the settling attempt's, and each later check (refund_failed, reconcile_refund)."""
        return (
            REFUND_CLICK_LIMIT
            + REFUND_FAILED_ATTEMPT_LIMIT * max(0, case.attempts - 1)
            + REFUND_SETTLING_ATTEMPT_LIMIT
            + REFUND_FAILED_TASK_LIMIT * len(case.task("refund_failed"))
            + REFUND_RECONCILE_LIMIT * len(case.task("reconcile_refund"))
        )

    def read_bound(case: CaseResult) -> int:
        """Shop reads a refund may cost: per attempt the adapter's own check before it creates (WooCommerce lists the
        order's refunds, Shopify reads its transactions), per attempt after the first the lookup for an earlier
        answer, one lookup per later check; Shopify reads the order's returns once after the refund (dispositions)."""
        checks_run = len(case.task("refund_failed")) + len(case.task("reconcile_refund"))
        return 2 * case.attempts - 1 + checks_run + (1 if case.scenario.target == "shopify" else 0)

    print("\n    per refund (DynamoDB end to end = the click + every task; shop: the requests it saw, in order)")
    rows = []
    for case in r.cases:
        click = sum(case.click.values())
        rows.append(
            [
                case.scenario.name,
                str(case.refund.get("status", "-")),
                str(case.attempts),
                str(click),
                str(case.dynamodb_total - click),
                str(case.dynamodb_total),
                str(bound(case)),
                str(len(case.shop_reads())) if case.scenario.shop else "-",
                str(len(case.shop_writes())),
                _shop_requests(case.shop_calls),
            ]
        )
    print(
        _table(
            [
                "refund",
                "status",
                "attempts",
                "click",
                "tasks",
                "end to end",
                "bound",
                "shop reads",
                "writes",
                "shop requests",
            ],
            rows,
            right={2, 3, 4, 5, 6, 7, 8},
        )
    )
    for error in r.errors:
        print("\n    REFUNDS BENCH FAILED:\n" + "\n".join("      " + x for x in error.splitlines()))

    measured = [c for c in r.cases if c.error is None]
    unexpected = {c.scenario.name: c.other_scopes for c in measured if c.other_scopes}
    checks.append(
        Check(
            "refunds bench ran to the end, nothing else counted meanwhile",
            not r.errors and len(measured) == len(r.cases) > 0 and not unexpected,
            f"{len(measured)} refunds" + (f"; other scopes {unexpected}" if unexpected else "")
            if not r.errors
            else _last_line(r.errors),
        )
    )
    # Correctness: every refund succeeded, after the attempts its fault script implies; exactly one refund reached the
    # shop (ours: marker, amount), and the shop saw one create (two where the first was answered 500, nothing applied).
    expected_attempts = {"500, then ok": 2, "lost, then found": 2, "unconfirmed, reconciled": r.max_attempts}
    wrong = [
        c.scenario.name
        for c in measured
        if c.refund.get("status") != "succeeded"
        or c.attempts != expected_attempts.get(c.scenario.case, 1)
        or (c.scenario.target != "manual" and (c.in_shop != 1 or c.in_shop_total != 1))
        or (c.scenario.target != "manual" and len(c.creates()) != c.scenario.expect_creates)
        or len(c.shop_writes()) != len(c.creates())
        or c.stray
    ]
    shop_cases = [c for c in measured if c.scenario.shop]
    checks.append(
        Check(
            "refunds: one refund in the shop per refund, one create (2 after a 500)",
            bool(shop_cases) and not wrong,
            f"{len(shop_cases)} shop refunds: creates "
            + ", ".join(str(len(c.creates())) for c in shop_cases)
            + (f"; wrong: {wrong}" if wrong else ""),
        )
    )
    worst_click = max((sum(c.click.values()) for c in measured), default=None)
    checks.append(
        Check(
            f"refund click <= {REFUND_CLICK_LIMIT} DynamoDB calls",
            worst_click is not None and worst_click <= REFUND_CLICK_LIMIT,
            f"{worst_click} calls ({_ops(measured[0].click)})" if measured else "not measured",
        )
    )
    task_limits = {
        "send_refund": REFUND_SETTLING_ATTEMPT_LIMIT,
        "refund_failed": REFUND_FAILED_TASK_LIMIT,
        "reconcile_refund": REFUND_RECONCILE_LIMIT,
    }
    worst = {t: max((sum(i.values()) for c in measured for i in c.task(t)), default=0) for t in TASKS}
    # a send_refund that did not settle the refund (an attempt count below the last) is a failed attempt
    failed_attempts = [sum(i.values()) for c in measured for i in c.task("send_refund")[: c.attempts - 1]]
    checks.append(
        Check(
            f"refund tasks: send_refund <= {REFUND_FAILED_ATTEMPT_LIMIT} (failed attempt) / "
            f"{REFUND_SETTLING_ATTEMPT_LIMIT}, refund_failed <= {REFUND_FAILED_TASK_LIMIT}, "
            f"reconcile_refund <= {REFUND_RECONCILE_LIMIT}",
            bool(measured)
            and all(worst[t] <= task_limits[t] for t in TASKS)
            and all(n <= REFUND_FAILED_ATTEMPT_LIMIT for n in failed_attempts),
            ", ".join(f"{t} {worst[t]}" for t in TASKS) + f"; failed attempts {max(failed_attempts, default=0)}",
        )
    )
    over = {c.scenario.name: (c.dynamodb_total, bound(c)) for c in measured if c.dynamodb_total > bound(c)}
    checks.append(
        Check(
            f"refund end to end <= click + {REFUND_FAILED_ATTEMPT_LIMIT} per failed attempt + "
            f"{REFUND_SETTLING_ATTEMPT_LIMIT} + {REFUND_FAILED_TASK_LIMIT} or {REFUND_RECONCILE_LIMIT} per check",
            bool(measured) and not over,
            ", ".join(f"{c.dynamodb_total}/{bound(c)}" for c in measured) + (f"; over: {over}" if over else ""),
        )
    )
    keyed = Counter(op for c in measured for op in c.counter.by_operation())
    checks.append(
        Check(
            "refunds read by key only (no Query, no Scan)",
            bool(measured) and not ({"Query", "Scan"} & set(keyed)),
            _ops(Counter({op: sum(c.counter.by_operation()[op] for c in measured) for op in keyed})),
        )
    )
    reads_over = {
        c.scenario.name: (len(c.shop_reads()), read_bound(c)) for c in shop_cases if len(c.shop_reads()) > read_bound(c)
    }
    checks.append(
        Check(
            "refund shop reads <= 2 per attempt - 1 + 1 per check (+1 Shopify dispositions)",
            bool(shop_cases) and not reads_over,
            ", ".join(f"{len(c.shop_reads())}/{read_bound(c)}" for c in shop_cases)
            + (f"; over: {reads_over}" if reads_over else ""),
        )
    )
    return {
        "seconds": r.seconds,
        "setup_seconds": r.setup_seconds,
        "max_attempts": r.max_attempts,
        "steps": r.steps,
        "errors": r.errors,
        "limits": {
            "click": REFUND_CLICK_LIMIT,
            "send_refund_failed_attempt": REFUND_FAILED_ATTEMPT_LIMIT,
            "send_refund_settling_attempt": REFUND_SETTLING_ATTEMPT_LIMIT,
            "refund_failed": REFUND_FAILED_TASK_LIMIT,
            "reconcile_refund": REFUND_RECONCILE_LIMIT,
        },
        "refunds": [
            {
                "target": c.scenario.target,
                "case": c.scenario.case,
                "plan": c.scenario.plan,
                "seconds": c.seconds,
                "error": c.error,
                "refund": {k: c.refund.get(k) for k in ("status", "attempts", "error", "execution")},
                "click": {
                    "calls": sum(c.click.values()),
                    "operations": dict(c.click),
                    "http_status": sorted(c.statuses.get(CLICK, set())),
                },
                "tasks": {
                    t: {
                        "invocations": len(c.task(t)),
                        "calls_per_invocation": [sum(i.values()) for i in c.task(t)],
                        "operations_per_invocation": [dict(i) for i in c.task(t)],
                    }
                    for t in TASKS
                    if c.task(t)
                },
                "dynamodb_total": c.dynamodb_total,
                "dynamodb_bound": bound(c),
                "dynamodb_by_operation": dict(c.counter.by_operation()),
                "http_attempts_by_operation": dict(c.counter.attempts),
                "shop": {
                    "reads": len(c.shop_reads()) if c.scenario.shop else None,
                    "reads_bound": read_bound(c) if c.scenario.shop else None,
                    "writes": len(c.shop_writes()),
                    "creates": len(c.creates()),
                    "refunds_in_shop": c.in_shop_total,
                    "requests": [call.__dict__ for call in c.shop_calls],
                    "stray": c.stray,
                },
            }
            for c in r.cases
        ],
    }


def classification(checks: list[Check]) -> dict[str, Any]:
    from bench.classification import run

    print("\n(d) Classification: 1,000 items x 50-rule guideline, CEL (compiled once) vs the same rules in Python")
    r = run()
    print(
        _table(
            ["implementation", "us per item", "vs python"],
            [
                ["CEL, fields as scalar variables (used)", f"{r['cel_us_per_item']:.1f}", f"{r['ratio']:.2f}x"],
                [
                    "CEL, rules as written over maps",
                    f"{r['cel_maps_us_per_item']:.1f}",
                    f"{r['cel_maps_us_per_item'] / r['python_us_per_item']:.2f}x",
                ],
                ["plain Python lambdas", f"{r['python_us_per_item']:.1f}", "1.00x"],
            ],
            right={1, 2},
        )
    )
    print(
        f"    {r['matched_a_rule']} of {r['items']} items matched a rule; {r['compiled']} expressions compiled once, "
        f"{r['compiles_during_timing']} compiles while timing; median of {r['rounds']} interleaved rounds"
    )
    checks.append(
        Check(
            f"classification <= {CLASSIFY_LIMIT:g}x plain Python",
            r["ratio"] <= CLASSIFY_LIMIT and r["compiles_during_timing"] == 0,
            f"{r['cel_us_per_item']:.1f} us vs {r['python_us_per_item']:.1f} us per item = {r['ratio']:.2f}x",
        )
    )
    return r


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="cold-start samples per entry point (default 7)")
    parser.add_argument("--profile", action="store_true", help="profile the API's imports even when it passes")
    parser.add_argument("--skip-coldstart", action="store_true")
    parser.add_argument("--skip-lifecycle", action="store_true")
    parser.add_argument("--skip-portal", action="store_true")
    parser.add_argument(
        "--portal-requests", type=int, default=200, help="timed portal returns and health checks (default 200)"
    )
    parser.add_argument("--skip-tracking", action="store_true")
    parser.add_argument(
        "--tracking-returns", type=int, default=100, help="returns per tracking round, 1.5 events each (default 100)"
    )
    parser.add_argument("--tracking-rounds", type=int, default=3, help="tracking ingestion rounds (default 3)")
    parser.add_argument("--skip-refunds", action="store_true")
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument("--skip-reports", action="store_true")
    parser.add_argument(
        "--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)

    env.apply()
    started = time.perf_counter()
    checks: list[Check] = []
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    print(f"Boomerang bench - Python {results['python']}, {results['cpus']} CPUs")
    results["static_scan"] = static_scan(checks)
    if not args.skip_coldstart:  # before the lifecycle: no moto threads, nothing else in this process running
        results["cold_start"] = cold_start(args.rounds, args.profile, checks)
    if not args.skip_lifecycle:
        results["dynamodb"] = dynamodb(checks)
    results["classification"] = classification(checks)
    if not args.skip_portal:
        results["portal"] = portal(args.portal_requests, checks)
    if not args.skip_tracking:
        results["tracking"] = tracking(args.tracking_returns, args.tracking_rounds, checks)
    if not args.skip_refunds:
        results["refunds"] = refunds(checks)
    if not args.skip_exports:
        from bench.exports import report as exports_report

        results["exports"] = exports_report(checks, Check)
    if not args.skip_reports:
        from bench.reports import report as reports_report

        results["reports"] = reports_report(checks, Check)

    results["checks"] = [c.__dict__ for c in checks]
    results["seconds"] = time.perf_counter() - started
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")

    print(f"\nAcceptance ({results['seconds']:.0f} s; results in {args.json})")
    print(
        _table(["check", "", "measured"], [[c.name, "PASS" if c.passed else "FAIL", _short(c.detail)] for c in checks])
    )
    return 0 if all(c.passed for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
