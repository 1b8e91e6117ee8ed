"""Reports end to end in moto: returns created and processed through the API (state machines running) -> their domain
events through the outbox and the bus to the reports queue -> the report aggregator -> the report endpoints. Every
figure is compared with a brute-force recount over the same returns read back through the API (percentiles over the
same histogram buckets), also after every event was delivered twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.domain import reports as r
from infrastructure import definitions as d
from local.lambda_router import call_handler
from tests.support import Api, drain_outbox, inspect, sqs_event, wait_for_status

GUIDELINES = {
    "rules": [
        {"name": "damaged", "when": "checks.damaged == true", "grade": "C", "disposition": "dispose"},
        {"name": "worn", "when": "checks.worn == true", "grade": "B", "disposition": "refurbish"},
    ],
    "default": {"grade": "A", "disposition": "restock"},
}
TODAY = datetime.now(UTC).date()
RANGE = f"from={(TODAY - timedelta(days=1)).isoformat()}&to={(TODAY + timedelta(days=1)).isoformat()}"
REPORTS = ("summary", "reasons", "skus", "processing-times", "grades", "carriers")
REASON_GROUPS = ("day", "week", "month", "sku", "category", "reason_category")
CATEGORIES = {"SHIRT-M": "tops", "JEANS-32": "bottoms", "SOCKS": "underwear"}  # CAP-RED has none
#: The merchant's reason tree: the fit reasons under one top-level reason (the reason category)
REASON_TREE = [
    {
        "code": "fit",
        "label": "Fit",
        "children": [{"code": "too_small", "label": "Too small"}, {"code": "too_large", "label": "Too large"}],
    },
    {"code": "damaged", "label": "Arrived damaged"},
    {"code": "not_as_described", "label": "Not as described"},
    {"code": "changed_mind", "label": "Changed my mind"},
]


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def order(api: Api, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return api.order(key, items=items, ordered_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))


def line(line_item_id: str, sku: str, quantity: int, price: str = "20.00") -> dict[str, Any]:
    item = {"line_item_id": line_item_id, "sku": sku, "name": sku, "quantity": quantity, "unit_price": price}
    category = CATEGORIES.get(sku)
    return {**item, "category": category} if category else item


def deliver_reports(aws: Any, times: int = 1) -> int:
    """Relay the outbox to the bus, then hand every message of the reports queue to the aggregator `times` times
    (a redelivery each extra time) before deleting it. Returns the number of messages."""
    drain_outbox(aws)
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.REPORTS_QUEUE.name]
    total = 0
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return total
        for _ in range(times):
            result = call_handler("report_aggregator", sqs_event(msgs))
            assert result["batchItemFailures"] == []
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        total += len(msgs)


def reports(api: Api, key: str) -> dict[str, Any]:
    got = {name: api.ok("GET", f"/v1/reports/{name}?{RANGE}", key) for name in REPORTS}
    for group in REASON_GROUPS:
        got[f"reasons-by-{group}"] = api.ok("GET", f"/v1/reports/reasons?{RANGE}&group_by={group}", key)
    return got


def periods(period: str) -> list[str]:
    """The periods of RANGE, in order (the days of RANGE are TODAY - 1 .. TODAY + 1)."""
    keys = [r.period_of((TODAY + timedelta(days=i)).isoformat(), period) for i in (-1, 0, 1)]
    return list(dict.fromkeys(keys))


def recount(api: Api, key: str, returns: list[dict[str, Any]], orders: list[dict[str, Any]]) -> dict[str, Any]:
    """The reports computed the slow way, from the returns and orders themselves."""
    rets = [api.ok("GET", f"/v1/returns/{x['id']}", key) for x in returns]
    sold = Counter[str]()
    for o in orders:
        for it in o["items"]:
            sold[it["sku"]] += it["quantity"]
    reasons, returned, grades, dispositions = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
    by: dict[str, dict[str, Counter[str]]] = {g: {} for g in REASON_GROUPS}
    top = {child["code"]: parent["code"] for parent in REASON_TREE for child in parent.get("children", [])}
    refunded = Decimal(0)
    stages: dict[str, Counter[str]] = {s: Counter() for s, _, _ in r.STAGES}
    transit: dict[str, Counter[str]] = {}
    for ret in rets:
        first: dict[str, datetime] = {}
        for e in sorted(ret["timeline"], key=lambda e: e["at"]):
            if e["type"].startswith("return.") and "status" in e:
                first.setdefault(e["status"], r.parse_time(e["at"]))
            if e["type"] == "refund.succeeded":
                refunded += Decimal(e["amount"]["amount"])
        for it in ret["items"]:
            reasons[it["reason"]] += it["quantity"]
            day = r.parse_time(ret["created_at"]).date().isoformat()
            keys = {
                "day": day,
                "week": r.period_of(day, "week"),
                "month": r.period_of(day, "month"),
                "sku": it["sku"],
                "category": it["category"] or "uncategorized",
                "reason_category": top.get(it["reason"], it["reason"]),
            }
            for group, group_key in keys.items():
                by[group].setdefault(group_key, Counter())[it["reason"]] += it["quantity"]
            returned[it["sku"]] += it["quantity"]
            if ret["status"] in ("completed", "refunded", "rejected") and it.get("received_quantity"):
                if it.get("grade"):
                    grades[it["grade"]] += it["received_quantity"]
                if it.get("disposition"):
                    dispositions[it["disposition"]] += it["received_quantity"]
        for stage, start, end in r.STAGES:
            if start in first and end in first:
                stages[stage][r.bucket_of(r.hours_between(first[start], first[end]))] += 1
        begin = first.get("in_transit") or first.get("label_created")
        arrived = first.get("delivered") or first.get("received")
        if begin and arrived and ret["carrier"]:
            transit.setdefault(ret["carrier"], Counter())[r.bucket_of(r.hours_between(begin, arrived))] += 1
    items = sum(reasons.values())
    total_sold = sum(sold.values())
    return {
        "summary": {
            "returns": len(rets),
            "items": items,
            "sold": total_sold,
            "return_rate": round(items / total_sold, 4),
            "refunded": {"amount": f"{refunded:.2f}", "currency": "EUR"},
        },
        "reasons": sorted(reasons.items()),
        "reasons_by": {
            group: [(key, sum(c.values()), sorted(c.items())) for key, c in groups.items()]
            for group, groups in by.items()
        },
        "skus": sorted(
            (sku, returned[sku], sold[sku], round(returned[sku] / sold[sku], 4) if sold[sku] else None)
            for sku in set(sold) | set(returned)
        ),
        "grades": {g: grades.get(g, 0) for g in ("A", "B", "C")},
        "dispositions": dict(dispositions),
        "stages": {s: r.histogram(c) for s, c in stages.items()},
        "carriers": {name: r.histogram(c) for name, c in transit.items()},
    }


def assert_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    s = got["summary"]
    assert {k: s[k] for k in ("returns", "items", "sold", "return_rate", "refunded")} == want["summary"]
    assert s["refunded_by_currency"] == [want["summary"]["refunded"]]
    assert sorted((x["reason"], x["count"]) for x in got["reasons"]["items"]) == want["reasons"]
    for group in REASON_GROUPS:
        report = got[f"reasons-by-{group}"]
        assert report["group_by"] == group
        assert sorted((x["reason"], x["count"]) for x in report["items"]) == want["reasons"]
        groups = [
            (g["key"], g["count"], sorted((x["reason"], x["count"]) for x in g["items"])) for g in report["groups"]
        ]
        expected = want["reasons_by"][group]
        if group in ("day", "week", "month"):  # every period of the range, in order, the empty ones too
            found = {key: (n, rows) for key, n, rows in expected}
            assert groups == [(key, *found.get(key, (0, []))) for key in periods(group)]
        else:  # most units first
            assert sorted(groups) == sorted(expected)
            assert [n for _, n, _ in groups] == sorted((n for _, n, _ in groups), reverse=True)
    assert sorted((x["sku"], x["returned"], x["sold"], x["return_rate"]) for x in got["skus"]["items"]) == want["skus"]
    assert {x["grade"]: x["count"] for x in got["grades"]["grades"]} == want["grades"]
    assert {x["disposition"]: x["count"] for x in got["grades"]["dispositions"]} == want["dispositions"]
    assert got["processing-times"]["stages"] == want["stages"]
    carriers = {x["carrier"]: {k: v for k, v in x.items() if k != "carrier"} for x in got["carriers"]["items"]}
    assert carriers == want["carriers"]


def test_report_figures_equal_a_recount_of_the_returns_even_when_every_event_arrives_twice(api: Api, aws: Any) -> None:
    # Given a merchant grading by checks, refunding automatically, with three orders
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], GUIDELINES)
    api.ok("PUT", "/v1/settings/policy", t["m_key"], {"return_window_days": 30, "reasons": REASON_TREE})
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], {"target": "manual", "auto_refund": True})
    orders = [
        order(api, t["m_key"], [line("L1", "SHIRT-M", 3), line("L2", "JEANS-32", 1, "79.00")]),
        order(api, t["m_key"], [line("L1", "SHIRT-M", 2), line("L2", "CAP-RED", 4, "9.95")]),
        order(api, t["m_key"], [line("L1", "SOCKS", 5, "4.50")]),
    ]
    # When customers return with varied reasons, and the warehouse grades them A, B and C
    plans = [
        (orders[0], [("L1", 2, "too_small"), ("L2", 1, "damaged")], {"L2": {"damaged": True}}),
        (orders[1], [("L1", 1, "too_large"), ("L2", 3, "not_as_described")], {"L2": {"worn": True}}),
        (orders[2], [("L1", 2, "too_small")], {}),
        (orders[0], [("L1", 1, "changed_mind")], None),  # requested only: never arrives
    ]
    returns = []
    for o, lines, checks in plans:
        ret = api.create_return(
            t, order=o, lines=[{"line_item_id": li, "quantity": q, "reason": why} for li, q, why in lines]
        )
        returns.append(ret)
        if checks is None:
            continue
        api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
        inspect(
            api,
            t,
            ret,
            [{"line_item_id": li, "received_quantity": q, "checks": checks.get(li, {})} for li, q, _ in lines],
        )
    for ret in returns[:3]:
        wait_for_status(api, t["m_key"], ret["id"], "refunded")
    # ... and every event reaches the aggregator twice
    assert deliver_reports(aws, times=2) > 0
    # Then every report equals the recount
    want = recount(api, t["m_key"], returns, orders)
    got = reports(api, t["m_key"])
    assert_equal(got, want)
    assert got["summary"]["returns"] == 4 and got["grades"]["grades"] == [
        {"grade": "A", "count": 5},
        {"grade": "B", "count": 3},
        {"grade": "C", "count": 1},
    ]
    assert got["processing-times"]["stages"]["requested_refunded"]["count"] == 3
    fit = next(g for g in got["reasons-by-reason_category"]["groups"] if g["key"] == "fit")
    assert fit == {
        "key": "fit",
        "count": 5,
        "items": [{"reason": "too_small", "count": 4}, {"reason": "too_large", "count": 1}],
    }
    assert {g["key"] for g in got["reasons-by-category"]["groups"]} == {"tops", "bottoms", "underwear", "uncategorized"}
    # When the outbox is relayed again, nothing new arrives and the figures stay
    assert deliver_reports(aws) == 0
    assert reports(api, t["m_key"]) == got
    # And another merchant sees nothing of these
    other = api.tenant()
    empty = reports(api, other["m_key"])
    assert empty["summary"]["returns"] == 0 and empty["summary"]["refunded"] is None
    assert empty["summary"]["return_rate"] is None
    assert empty["reasons"]["items"] == [] and empty["skus"]["items"] == [] and empty["carriers"]["items"] == []
    assert all(s["count"] == 0 for s in empty["processing-times"]["stages"].values())
    assert all(g["count"] == 0 for g in empty["grades"]["grades"])


def test_an_order_update_counts_only_the_change_of_its_sold_quantities(api: Api, aws: Any) -> None:
    # Given an order of 3 shirts
    t = api.tenant()
    o = order(api, t["m_key"], [line("L1", "SHIRT-M", 3)])
    # When it is sent again unchanged, then with 5 shirts and a cap
    api.ok("POST", "/v1/orders", t["m_key"], o, 200)
    api.ok("POST", "/v1/orders", t["m_key"], {**o, "items": [line("L1", "SHIRT-M", 5), line("L2", "CAP", 1)]}, 200)
    # Then 5 shirts and a cap were sold, not 3 + 3 + 5
    skus = api.ok("GET", f"/v1/reports/skus?{RANGE}", t["m_key"])["items"]
    assert {x["sku"]: x["sold"] for x in skus} == {"SHIRT-M": 5, "CAP": 1}
    assert api.ok("GET", f"/v1/reports/summary?{RANGE}", t["m_key"])["sold"] == 6


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("from=2025-01-01&to=2026-01-02", "to"),
        ("to=2026-01-02", "from"),
        ("from=yesterday&to=2026-01-02", "from"),
        ("from=2026-01-01&to=2026-01-02&group_by=colour", "group_by"),
    ],
)
def test_a_bad_range_is_a_422_naming_the_field(api: Api, aws: Any, query: str, field: str) -> None:
    t = api.tenant()
    report = "reasons" if "group_by" in query else "summary"
    resp = api.call("GET", f"/v1/reports/{report}?{query}", t["m_key"])
    assert resp.status_code == 422, resp.body
    import json

    assert field in [e["loc"][-1] for e in json.loads(resp.body)["errors"]]


def test_reports_need_a_merchant_key(api: Api, aws: Any) -> None:
    assert api.call("GET", f"/v1/reports/summary?{RANGE}").status_code == 401
    wh = api.warehouse()
    assert api.call("GET", f"/v1/reports/summary?{RANGE}", wh["api_key"]).status_code == 403
