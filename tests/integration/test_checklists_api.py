"""Checklists per merchant and product category: set, fetch per return, enforced on inspection; starter templates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chalice.test import Client

from app import app
from tests.support import Api

CHECKLISTS = {
    "checklists": [
        {
            "name": "Apparel",
            "applies_to": "'apparel' in item.tags",
            "questions": [
                {"key": "damaged", "label": "Damage visible?", "type": "bool", "photo_required_when": [True]},
                {
                    "key": "packaging",
                    "label": "Packaging",
                    "type": "enum",
                    "options": ["original", "damaged", "missing"],
                },
                {"key": "remarks", "label": "Remarks", "type": "text", "required": False},
            ],
        },
        {
            "name": "Expensive",
            "applies_to": "item.unit_price >= 50.0",
            "questions": [
                {"key": "serial_ok", "label": "Serial matches?", "type": "bool"},
            ],
        },
    ]
}
ITEMS = [
    {"line_item_id": "L1", "sku": "TEE", "name": "Tee", "quantity": 1, "unit_price": "20.00", "tags": ["apparel"]},
    {"line_item_id": "L2", "sku": "WATCH", "name": "Watch", "quantity": 1, "unit_price": "120.00"},
]


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def scanned(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/checklists", t["m_key"], CHECKLISTS)
    order = api.order(t["m_key"], items=ITEMS)
    ret = api.create_return(
        t,
        order=order,
        lines=[
            {"line_item_id": "L1", "quantity": 1, "reason": "too_small"},
            {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
        ],
    )
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    return t, ret


def test_checklists_that_do_not_compile_or_make_no_sense_are_422_naming_the_place(api: Api) -> None:
    t = api.tenant()
    bad = {
        "checklists": [
            {"name": "x", "applies_to": "item.tags.(", "questions": [{"key": "q", "label": "Q", "type": "enum"}]}
        ]
    }
    resp = api.call("PUT", "/v1/settings/checklists", t["m_key"], bad)
    assert resp.status_code == 422
    locs = [e["loc"] for e in json.loads(resp.body)["errors"]]
    assert ["checklists", 0, "applies_to"] in locs
    assert any(loc[:4] == ["checklists", 0, "questions", 0] for loc in locs)


def test_the_warehouse_gets_the_questions_that_apply_to_each_item(api: Api) -> None:
    t, ret = scanned(api)
    out = api.ok("GET", f"/v1/warehouse/returns/{ret['id']}/checklist", t["wh_key"])
    keys = {i["line_item_id"]: [q["key"] for q in i["questions"]] for i in out["items"]}
    assert keys == {"L1": ["damaged", "packaging", "remarks"], "L2": ["serial_ok"]}
    other = api.tenant()
    assert api.call("GET", f"/v1/warehouse/returns/{ret['id']}/checklist", other["wh_key"]).status_code == 404


def test_an_inspection_that_breaks_the_checklist_is_422_naming_item_and_question(api: Api) -> None:
    t, ret = scanned(api)
    resp = api.call(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/inspection",
        t["wh_key"],
        {
            "items": [
                {"line_item_id": "L1", "received_quantity": 1, "checks": {"damaged": True, "packaging": "shiny"}},
                {"line_item_id": "L2", "received_quantity": 1, "checks": {}},
            ]
        },
    )
    assert resp.status_code == 422, resp.body
    errors = json.loads(resp.body)["errors"]
    named = {(e["line_item_id"], e["question"]) for e in errors}
    assert named == {("L1", "damaged"), ("L1", "packaging"), ("L2", "serial_ok")}
    assert ["items", 0, "photos"] in [e["loc"] for e in errors]  # damage = yes needs a photo
    assert ["items", 1, "checks", "serial_ok"] in [e["loc"] for e in errors]
    # nothing was recorded
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "received"


def test_a_complete_inspection_passes(api: Api) -> None:
    t, ret = scanned(api)
    photo = api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg", "line_item_id": "L1"},
        201,
    )["key"]
    api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/inspection",
        t["wh_key"],
        {
            "items": [
                {
                    "line_item_id": "L1",
                    "received_quantity": 1,
                    "checks": {"damaged": True, "packaging": "original"},
                    "photos": [photo],
                },
                {"line_item_id": "L2", "received_quantity": 1, "checks": {"serial_ok": True}},
            ]
        },
        202,
    )


def test_a_missing_item_needs_no_answers(api: Api) -> None:
    t, ret = scanned(api)
    api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/inspection",
        t["wh_key"],
        {
            "items": [
                {"line_item_id": "L1", "received_quantity": 0},
                {"line_item_id": "L2", "received_quantity": 1, "checks": {"serial_ok": True}},
            ]
        },
        202,
    )


def test_starter_templates_can_be_copied_as_they_are(api: Api) -> None:
    t = api.tenant()
    templates = api.ok("GET", "/v1/settings/templates", t["m_key"])["items"]
    assert {x["name"] for x in templates} >= {"apparel", "shoes", "electronics", "cosmetics"}
    for template in templates:
        api.ok("PUT", "/v1/settings/guidelines", t["m_key"], template["guidelines"])
        api.ok("PUT", "/v1/settings/checklists", t["m_key"], template["checklists"])
