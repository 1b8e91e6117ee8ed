"""Expensive guideline and checklist expressions through the API (issue 13, defect 2).

Refused with 422 naming the rule at PUT guidelines, PUT checklists and the dry run; the dry run is rate-limited per
merchant; a rule stored before the estimate existed never runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from tests.support import Api
from tests.support.expressions import EVIL, nested

DEFAULT = {"grade": "A", "disposition": "restock"}
QUESTION = {"key": "ok", "label": "OK?", "type": "bool"}


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def rules_with_evil_at_3(when: str) -> list[dict[str, Any]]:
    rules = [
        {"name": f"ok {i}", "when": "checks.damaged == true", "grade": "B", "disposition": "refurbish"}
        for i in range(3)
    ]
    return [*rules, {"name": "evil", "when": when, "grade": "C", "disposition": "dispose"}]


def assert_too_expensive(resp: Any, loc: list[Any]) -> None:
    assert resp.status_code == 422, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = json.loads(resp.body)
    assert [e["loc"] for e in body["errors"]] == [loc]
    assert "evil" in body["errors"][0]["msg"] and "too expensive" in body["errors"][0]["msg"]


def test_put_guidelines_refuses_five_nested_comprehensions_naming_the_rule(api: Api) -> None:
    t = api.tenant()
    resp = api.call(
        "PUT", "/v1/settings/guidelines", t["m_key"], {"rules": rules_with_evil_at_3(EVIL["all"]), "default": DEFAULT}
    )
    assert_too_expensive(resp, ["rules", 3, "when"])
    # nothing was stored: the saved guideline is still the default one
    out = api.ok("POST", "/v1/settings/guidelines/test", t["m_key"], {"item": {}, "checks": {"damaged": True}})
    assert out["rule"]["name"] == "default"


def test_put_checklists_refuses_five_nested_comprehensions_naming_the_checklist(api: Api) -> None:
    t = api.tenant()
    doc = {
        "checklists": [
            {"name": "fine", "applies_to": "'apparel' in item.tags", "questions": [QUESTION]},
            {"name": "evil", "applies_to": EVIL["exists"], "questions": [QUESTION]},
        ]
    }
    assert_too_expensive(api.call("PUT", "/v1/settings/checklists", t["m_key"], doc), ["checklists", 1, "applies_to"])


@pytest.mark.parametrize("name", ["exists", "all false", "item tags", "all"])
def test_the_dry_run_refuses_five_nested_comprehensions_before_running_them(api: Api, name: str) -> None:
    t = api.tenant()
    body = {
        "item": {"tags": ["a"]},
        "checks": {},
        "guideline": {"rules": rules_with_evil_at_3(EVIL[name]), "default": DEFAULT},
    }
    assert_too_expensive(api.call("POST", "/v1/settings/guidelines/test", t["m_key"], body), ["rules", 3, "when"])


def test_the_dry_run_of_a_saved_guideline_over_the_budget_is_refused(api: Api) -> None:
    # Given a guideline saved before the estimate existed (written to the store directly)
    t = api.tenant()
    guideline = {"rules": rules_with_evil_at_3(EVIL["exists"]), "default": DEFAULT, "version": 3}
    bootstrap.container().store.update_merchant_settings(t["merchant"]["id"], guideline=guideline)
    resp = api.call("POST", "/v1/settings/guidelines/test", t["m_key"], {"item": {}, "checks": {}})
    assert_too_expensive(resp, ["rules", 3, "when"])


def test_a_stored_checklist_over_the_budget_does_not_apply_at_the_checklist_endpoint(api: Api) -> None:
    # Given checklists saved before the estimate existed (the expensive one would apply: all over no tags is true)
    t = api.tenant()
    checklists = {
        "checklists": [
            {"name": "evil", "applies_to": nested("all", "false", over="item.tags"), "questions": [QUESTION]},
            {"name": "fine", "applies_to": "true", "questions": [{**QUESTION, "key": "fine"}]},
        ],
        "version": 2,
    }
    bootstrap.container().store.update_merchant_settings(t["merchant"]["id"], checklists=checklists)
    order = api.order(
        t["m_key"], items=[{"line_item_id": "L1", "sku": "TEE", "name": "Tee", "quantity": 1, "unit_price": "20.00"}]
    )
    ret = api.create_return(t, order=order, lines=[{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    out = api.ok("GET", f"/v1/warehouse/returns/{ret['id']}/checklist", t["wh_key"])
    assert [q["key"] for q in out["items"][0]["questions"]] == ["fine"]


def test_the_dry_run_is_rate_limited_per_merchant(api: Api) -> None:
    # Given a clock inside one minute (the window), well before its end
    start = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)
    now = [start]
    bootstrap.container().clock = lambda: now[0]
    t, other = api.tenant(), api.tenant()
    sample = {"item": {"sku": "X"}, "checks": {}}
    for _ in range(60):
        api.ok("POST", "/v1/settings/guidelines/test", t["m_key"], sample)
    # Then the 61st call in the window is 429 with a true Retry-After (the window ends at 10:01:00)
    now[0] = start + timedelta(seconds=10)
    resp = api.call("POST", "/v1/settings/guidelines/test", t["m_key"], sample)
    assert resp.status_code == 429, resp.body
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.headers["Retry-After"] == "45"
    assert json.loads(resp.body)["status"] == 429
    # another merchant is not affected, and the next window is open again
    api.ok("POST", "/v1/settings/guidelines/test", other["m_key"], sample)
    now[0] = start + timedelta(seconds=55)
    api.ok("POST", "/v1/settings/guidelines/test", t["m_key"], sample)
