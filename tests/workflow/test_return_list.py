"""The live returns list: filters served by the list index (one Query on the most selective facet, one BatchGetItem),
the index kept in step with each change, tenant isolation, and the needs-attention view."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.bootstrap import container
from tests.support import Api, inspect, unique, wait_for_status


def listed(api: Api, key: str, **params: str) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    ids: list[str] = []
    cursor = None
    while True:
        path = f"/v1/returns?{query}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.ok("GET", path, key)
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def order(api: Api, key: str, email: str, *lines: tuple[str, str]) -> dict[str, Any]:
    return api.order(
        key,
        email=email,
        items=[
            {"line_item_id": lid, "sku": sku, "name": sku, "quantity": 2, "unit_price": "10.00"} for lid, sku in lines
        ],
    )


def test_filters_find_exactly_the_matching_returns_of_this_merchant(api: Api) -> None:
    t, other = api.tenant(), api.tenant()
    a = api.create_return(
        t,
        [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}],
        order(api, t["m_key"], "Anna@Example.com", ("L1", "SHIRT")),
    )
    b = api.create_return(
        t,
        [
            {"line_item_id": "L1", "quantity": 1, "reason": "too_large"},
            {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
        ],
        order(api, t["m_key"], "ben@example.com", ("L1", "SHIRT"), ("L2", "CAP")),
    )
    c = api.create_return(
        t,
        [{"line_item_id": "L1", "quantity": 2, "reason": "too_large"}],
        order(api, t["m_key"], "ben@example.com", ("L1", "JEANS")),
    )
    # the other merchant sells the same SKU with the same reasons
    api.create_return(
        other,
        [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}],
        order(api, other["m_key"], "anna@example.com", ("L1", "SHIRT")),
    )
    key = t["m_key"]
    assert set(listed(api, key, sku="SHIRT")) == {a["id"], b["id"]}
    assert set(listed(api, key, reason="too_small")) == {a["id"], b["id"]}
    assert set(listed(api, key, sku="SHIRT", reason="too_large")) == {b["id"]}
    assert set(listed(api, key, email="anna%40example.com")) == {a["id"]}  # case does not matter
    assert set(listed(api, key, email="ben%40example.com")) == {b["id"], c["id"]}
    assert listed(api, key, order_number=c["order_number"]) == [c["id"]]
    assert set(listed(api, key, carrier="sandbox", status="label_created")) == {a["id"], b["id"], c["id"]}
    assert listed(api, key, carrier="dhl_de") == []
    assert listed(api, key, sku="SHIRT", created_from="2000-01-01T00:00:00Z") == [b["id"], a["id"]]  # newest first
    assert listed(api, key, sku="SHIRT", created_to="2000-01-01T00:00:00Z") == []
    bad = api.call("GET", "/v1/returns?grade=D", key)
    assert bad.status_code == 422 and json.loads(bad.body)["errors"][0]["loc"] == ["grade"]


def test_the_index_follows_grading_and_problems(api: Api) -> None:
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/guidelines",
        t["m_key"],
        {
            "rules": [
                {
                    "name": "damaged",
                    "when": "checks.damaged == true",
                    "grade": "B",
                    "disposition": "refurbish",
                    "clarify": True,
                }
            ],
            "default": {"grade": "A", "disposition": "restock"},
            "feedback_sla_hours": 48,
        },
    )
    ret = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": True}}])
    wait_for_status(api, t["m_key"], ret["id"], "awaiting_feedback")
    key = t["m_key"]
    assert listed(api, key, grade="B") == [ret["id"]]
    assert listed(api, key, grade="A") == []
    assert listed(api, key, attention="awaiting_feedback") == [ret["id"]]
    view = api.ok("GET", "/v1/attention", key)
    assert view["counts"]["awaiting_feedback"] == 1
    (entry,) = view["items"]
    assert entry["return_id"] == ret["id"] and entry["kind"] == "awaiting_feedback"
    assert (
        -0.1 <= entry["sla_left_hours"] <= 0.1
    )  # the tests' feedback timeout is one minute (FEEDBACK_TIMEOUT_SECONDS)
    # the merchant approves with another grade: the index moves with the return
    api.ok(
        "POST",
        f"/v1/returns/{ret['id']}/feedback",
        key,
        {"decision": "approve", "items": [{"line_item_id": "L1", "grade": "A", "disposition": "restock"}]},
    )
    wait_for_status(api, key, ret["id"], "completed")
    assert listed(api, key, grade="A") == [ret["id"]]
    assert listed(api, key, grade="B") == []
    assert api.ok("GET", "/v1/attention", key)["counts"]["awaiting_feedback"] == 0
    # a carrier problem needs attention until it is resolved
    store = container().store
    stored = store.get_return(ret["id"])
    stored.carrier_exception = {"status": "lost", "at": "2026-11-26T10:00:00Z"}
    store.save_return(stored)
    assert listed(api, key, attention="carrier_exception") == [ret["id"]]
    stored = store.get_return(ret["id"])
    stored.carrier_exception = {**(stored.carrier_exception or {}), "resolved_at": "2026-11-26T11:00:00Z"}
    store.save_return(stored)
    assert listed(api, key, attention="carrier_exception") == []


def test_another_merchant_never_sees_a_return_through_any_filter(api: Api) -> None:
    t, other = api.tenant(), api.tenant()
    sku = unique("SKU")
    ret = api.create_return(
        t,
        [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}],
        order(api, t["m_key"], "x@example.com", ("L1", sku)),
    )
    for params in ({"sku": sku}, {"order_number": ret["order_number"]}, {"email": "x%40example.com"}):
        assert listed(api, other["m_key"], **params) == []
        assert listed(api, t["m_key"], **params) == [ret["id"]]


def test_a_save_that_moves_index_items_still_tells_a_duplicate_from_a_conflict(api: Api) -> None:
    """DynamoDB reports a cancelled transaction item by item, in request order, and the index's deletes go first:
    a repeated marker must still read as 'already applied' and a stale version as 'changed concurrently'."""
    import pytest

    from chalicelib.adapters.dynamodb.keys import Marker, return_pk
    from chalicelib.domain.errors import AlreadyApplied, ConcurrentModification

    t = api.tenant()
    ret = api.create_return(t)
    store = container().store
    fresh, stale = store.get_return(ret["id"]), store.get_return(ret["id"])
    marker = Marker(pk=return_pk(ret["id"]), sk="TESTMARK#1", data={})
    fresh.carrier_exception = {"status": "lost", "at": "2026-11-26T10:00:00Z"}  # adds a facet
    store.save_return(fresh, markers=(marker,))
    again = store.get_return(ret["id"])
    again.carrier_exception = None  # drops that facet: a delete in the transaction
    with pytest.raises(AlreadyApplied):
        store.save_return(again, markers=(marker,))
    stale.carrier_exception = None
    stale.carrier = "other"  # facets change: puts and deletes, on a stale version
    with pytest.raises(ConcurrentModification):
        store.save_return(stale, markers=(Marker(pk=return_pk(ret["id"]), sk="TESTMARK#2", data={}),))
