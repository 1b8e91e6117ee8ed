"""Warehouse processing depth: dispositions, work orders, disposal register, billing, identification, parcels."""

from __future__ import annotations

import json
import time
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.domain.signatures import boomerang_signature
from tests.support import OPERATOR_KEY, Api, inspect, received_return, wait_for_status
from tests.workflow.conftest import RefundTarget

GUIDE = {
    "rules": [
        {"name": "stained", "when": "checks.stains == true", "grade": "C", "disposition": "donate"},
        {
            "name": "worn",
            "when": "checks.worn == true",
            "grade": "B",
            "disposition": "refurbish",
            "steps": ["steam", "fold", "repackage"],
        },
    ],
    "default": {"grade": "A", "disposition": "restock"},
}
THREE = [
    {"line_item_id": "L1", "sku": "TEE", "name": "Tee", "quantity": 1, "unit_price": "20.00"},
    {"line_item_id": "L2", "sku": "DRESS", "name": "Dress", "quantity": 1, "unit_price": "80.00"},
    {"line_item_id": "L3", "sku": "SOCKS", "name": "Socks", "quantity": 1, "unit_price": "5.00"},
]


def three_item_return(api: Api, t: dict[str, Any]) -> dict[str, Any]:
    order = api.order(t["m_key"], items=THREE)
    ret = api.create_return(
        t,
        order=order,
        lines=[{"line_item_id": lid, "quantity": 1, "reason": "too_small"} for lid in ("L1", "L2", "L3")],
    )
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(
        api,
        t,
        ret,
        [
            {"line_item_id": "L1", "received_quantity": 1, "checks": {"stains": False, "worn": False}},
            {"line_item_id": "L2", "received_quantity": 1, "checks": {"stains": False, "worn": True}},
            {"line_item_id": "L3", "received_quantity": 1, "checks": {"stains": True}},
        ],
    )
    return ret


def wait_items(api: Api, key: str, rid: str, want: dict[str, str], timeout: float = 30) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        ret = api.ok("GET", f"/v1/returns/{rid}", key)
        got = {i["line_item_id"]: i["status"] for i in ret["items"]}
        if all(got.get(k) == v for k, v in want.items()):
            return ret
        assert time.time() < deadline, got
        time.sleep(0.2)


def month() -> str:
    return time.strftime("%Y-%m", time.gmtime())


def test_dispositions_work_orders_disposal_register_and_billing(api: Api) -> None:
    # Given a guideline that restocks, refurbishes and donates, and a return with one item for each
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], GUIDE)
    ret = three_item_return(api, t)
    # When processing completes, each disposition is carried out
    done = wait_items(api, t["m_key"], ret["id"], {"L1": "restocked", "L2": "refurbishing", "L3": "disposed"})
    assert done["status"] == "completed"
    types = [e["type"] for e in done["timeline"]]
    assert types.count("item.restocked") == 1 and "work_order.opened" in types and "item.disposed" in types
    # Then the warehouse sees a work order with the rule's steps
    orders = api.ok("GET", "/v1/warehouse/work-orders?status=open", t["wh_key"])["items"]
    assert [(w["return_id"], w["line_item_id"], w["steps"]) for w in orders] == [
        (ret["id"], "L2", ["steam", "fold", "repackage"])
    ]
    # And the merchant's disposal register names the item, the disposition and why
    today = time.strftime("%Y-%m-%d", time.gmtime())
    register = api.ok("GET", f"/v1/reports/disposals?from={today}&to={today}", t["m_key"])["items"]
    assert [(d["line_item_id"], d["sku"], d["grade"], d["disposition"]) for d in register] == [
        ("L3", "SOCKS", "C", "donate")
    ]
    assert "stained" in register[0]["reason"]
    # When the work order is completed
    wo = orders[0]
    out = api.ok("POST", f"/v1/warehouse/work-orders/{wo['id']}/complete", t["wh_key"], {"minutes": 12})
    assert out["status"] == "completed" and out["minutes"] == 12
    # Then the item is restocked and the operator can bill for all of it
    after = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert {i["line_item_id"]: i["status"] for i in after["items"]}["L2"] == "restocked"
    bill = api.ok("GET", f"/v1/admin/billing?merchant_id={t['merchant']['id']}&month={month()}", OPERATOR_KEY)
    assert bill == {
        "merchant_id": t["merchant"]["id"],
        "month": month(),
        "receipts": 1,
        "inspections": 1,
        "photos": 0,
        "refurbishment_minutes": 12,
        "restocks": 2,
        "disposals": 1,
    }
    # And a second completion, or another warehouse, cannot touch it
    resp = api.call("POST", f"/v1/warehouse/work-orders/{wo['id']}/complete", t["wh_key"], {"minutes": 5})
    assert resp.status_code == 409
    other = api.tenant()
    resp = api.call("POST", f"/v1/warehouse/work-orders/{wo['id']}/complete", other["wh_key"], {"minutes": 5})
    assert resp.status_code == 404
    assert api.ok("GET", "/v1/warehouse/work-orders", other["wh_key"])["items"] == []
    assert api.ok("GET", f"/v1/reports/disposals?from={today}&to={today}", other["m_key"])["items"] == []


def test_restocks_reach_their_own_webhook_signed_and_once(api: Api, refund_target: RefundTarget) -> None:
    # Given refunds to one webhook and restock syncs to another (issue 13: the refund webhook carries refunds only)
    restock_target = RefundTarget()
    try:
        t = api.tenant()
        api.ok(
            "PUT",
            "/v1/settings/refunds",
            t["m_key"],
            {
                "target": "webhook",
                "auto_refund": False,
                "webhook_url": refund_target.url,
                "restock_webhook_url": restock_target.url,
                "webhook_secret": "restock-secret-0123456789",
            },
        )
        # When an item is restocked
        ret = received_return(api, t)
        inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}])
        wait_items(api, t["m_key"], ret["id"], {"L1": "restocked"})
        deadline = time.time() + 10
        while not restock_target.restocks:
            assert time.time() < deadline
            time.sleep(0.1)
        # Then the restock target got it, signed, once; the refund webhook heard nothing
        sent = restock_target.restocks[0]
        body = json.loads(sent["body"])
        assert body["type"] == "restock" and body["sku"] == "SHIRT-M" and body["quantity"] == 1
        assert sent["headers"]["Idempotency-Key"] == f"restock-{ret['id']}-L1"
        assert sent["headers"]["X-Boomerang-Signature"] == boomerang_signature(
            "restock-secret-0123456789", sent["body"]
        )
        while not any(
            e["type"] == "item.restock_synced"
            for e in api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["timeline"]
        ):
            assert time.time() < deadline, "the restock was sent but never recorded as synced"
            time.sleep(0.1)
        assert len(restock_target.restocks) == 1 and restock_target.requests == []
        assert refund_target.restocks == [] and refund_target.requests == []
    finally:
        restock_target.close()


def test_without_a_restock_webhook_no_restock_reaches_the_refund_webhook(api: Api, refund_target: RefundTarget) -> None:
    # Given refunds to a webhook and no restock webhook
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {
            "target": "webhook",
            "auto_refund": False,
            "webhook_url": refund_target.url,
            "webhook_secret": "restock-secret-0123456789",
        },
    )
    # When an item is restocked
    ret = received_return(api, t)
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}])
    wait_items(api, t["m_key"], ret["id"], {"L1": "restocked"})
    deadline = time.time() + 10
    while not any(
        e["type"] == "item.restock_synced" for e in api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["timeline"]
    ):
        assert time.time() < deadline, "the restock was never recorded"
        time.sleep(0.1)
    # Then it is recorded as a manual restock and nothing was posted to the refund webhook
    assert refund_target.restocks == [] and refund_target.requests == []


def test_the_label_qr_code_and_the_return_id_identify_the_parcel(api: Api) -> None:
    t = api.tenant()
    by_qr = api.create_return(t)
    qr = f"BMR1:{by_qr['id']}:{by_qr['tracking_number']}"
    assert api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": qr})["status"] == "received"
    by_id = api.create_return(t, order=api.order(t["m_key"]))
    assert api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": by_id["id"]})["status"] == "received"
    # another warehouse's QR code is not ours
    other = api.tenant()
    third = api.create_return(t, order=api.order(t["m_key"]))
    resp = api.call(
        "POST", "/v1/warehouse/scans", other["wh_key"], {"barcode": f"BMR1:{third['id']}:{third['tracking_number']}"}
    )
    assert resp.status_code == 404


def test_unmatched_parcels_are_kept_and_can_be_matched_later(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    resp = api.call(
        "POST",
        "/v1/warehouse/scans",
        t["wh_key"],
        {"barcode": "UNREADABLE-123", "notes": "label torn", "sender": {"name": "E. M.", "address": "Berlin"}},
    )
    assert resp.status_code == 404
    problem = json.loads(resp.body)
    parcel_id = problem["unidentified_parcel_id"]
    listed = api.ok("GET", "/v1/warehouse/unidentified-parcels", t["wh_key"])["items"]
    assert [(p["id"], p["barcode"], p["notes"], p["status"]) for p in listed] == [
        (parcel_id, "UNREADABLE-123", "label torn", "open")
    ]
    # another warehouse neither sees nor matches it
    other = api.tenant()
    assert api.ok("GET", "/v1/warehouse/unidentified-parcels", other["wh_key"])["items"] == []
    assert (
        api.call(
            "POST", f"/v1/warehouse/unidentified-parcels/{parcel_id}/match", other["wh_key"], {"return_id": ret["id"]}
        ).status_code
        == 404
    )
    # matching receives the return
    received = api.ok(
        "POST", f"/v1/warehouse/unidentified-parcels/{parcel_id}/match", t["wh_key"], {"return_id": ret["id"]}
    )
    assert received["status"] == "received"
    assert api.ok("GET", "/v1/warehouse/unidentified-parcels", t["wh_key"])["items"] == []
    matched = api.ok("GET", "/v1/warehouse/unidentified-parcels?status=matched", t["wh_key"])["items"]
    assert matched[0]["return_id"] == ret["id"]
    again = api.call(
        "POST", f"/v1/warehouse/unidentified-parcels/{parcel_id}/match", t["wh_key"], {"return_id": ret["id"]}
    )
    assert again.status_code == 409


def test_a_parcel_the_warehouse_assigns_is_the_merchants_to_identify(api: Api) -> None:
    # Given a parcel nobody could identify at goods-in, and a second merchant of the same warehouse
    t = api.tenant()
    neighbour = api.merchant(t["warehouse"]["id"])
    ret = api.create_return(t)
    resp = api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "SMUDGED-77", "notes": "our tape"})
    parcel_id = json.loads(resp.body)["unidentified_parcel_id"]
    parcels = f"/v1/warehouse/unidentified-parcels/{parcel_id}"
    # Nobody is asked yet
    assert api.ok("GET", "/v1/attention", t["m_key"])["counts"]["unidentified_parcel"] == 0
    # A merchant the warehouse does not serve cannot be asked (422 naming the field); nor one that does not exist
    stranger = api.tenant()
    for merchant_id in (stranger["merchant"]["id"], "mer_nope"):
        bad = api.call("POST", f"{parcels}/assign", t["wh_key"], {"merchant_id": merchant_id})
        assert bad.status_code == 422 and json.loads(bad.body)["errors"][0]["loc"][-1] == "merchant_id"
    # When the warehouse thinks it is the first merchant's
    view = api.ok("POST", f"{parcels}/assign", t["wh_key"], {"merchant_id": t["merchant"]["id"]})
    assert view["merchant_id"] == t["merchant"]["id"] and view["status"] == "open"
    # Then that merchant sees it among what needs them, and in their parcels with what the warehouse noted
    attention = api.ok("GET", "/v1/attention", t["m_key"])
    assert attention["counts"]["unidentified_parcel"] == 1
    (entry,) = [i for i in attention["items"] if i["kind"] == "unidentified_parcel"]
    assert entry["parcel_id"] == parcel_id and "SMUDGED-77" in entry["detail"]
    (mine,) = api.ok("GET", "/v1/parcels", t["m_key"])["items"]
    assert (mine["id"], mine["notes"]) == (parcel_id, "our tape")
    # And the neighbour sees nothing of it, and cannot match it (404)
    assert api.ok("GET", "/v1/parcels", neighbour["api_key"])["items"] == []
    assert api.ok("GET", "/v1/attention", neighbour["api_key"])["counts"]["unidentified_parcel"] == 0
    body = {"return_id": ret["id"]}
    assert api.call("POST", f"/v1/parcels/{parcel_id}/match", neighbour["api_key"], body).status_code == 404
    # The merchant cannot match it to another merchant's return (422 naming the field)
    other_ret = api.create_return(stranger)
    bad = api.call("POST", f"/v1/parcels/{parcel_id}/match", t["m_key"], {"return_id": other_ret["id"]})
    assert bad.status_code == 422 and json.loads(bad.body)["errors"][0]["loc"][-1] == "return_id"
    # When the merchant says which return it is, the return is received, and the parcel leaves their view
    received = api.ok("POST", f"/v1/parcels/{parcel_id}/match", t["m_key"], body)
    assert received["status"] == "received"
    assert any(e["type"] == "return.received" for e in received["timeline"])
    assert api.ok("GET", "/v1/attention", t["m_key"])["counts"]["unidentified_parcel"] == 0
    assert api.ok("GET", "/v1/parcels", t["m_key"])["items"] == []
    assert api.ok("GET", "/v1/parcels?status=matched", t["m_key"])["items"][0]["return_id"] == ret["id"]
    # And a matched parcel can be neither matched again nor reassigned (409)
    assert api.call("POST", f"/v1/parcels/{parcel_id}/match", t["m_key"], body).status_code == 409
    again = api.call("POST", f"{parcels}/assign", t["wh_key"], {"merchant_id": t["merchant"]["id"]})
    assert again.status_code == 409


def test_wrong_item_asks_the_merchant_who_gets_an_email(api: Api) -> None:
    t = api.tenant()
    ret = received_return(api, t)
    inspect(
        api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "received_sku": "SOMETHING-ELSE", "checks": {}}]
    )
    waiting = wait_for_status(api, t["m_key"], ret["id"], "awaiting_feedback")
    assert {
        "type": "wrong_item",
        "line_item_id": "L1",
        "expected_sku": "SHIRT-M",
        "received_sku": "SOMETHING-ELSE",
    } in waiting["discrepancies"]
    deadline = time.time() + 10
    while not any(
        ret["id"] in m.raw_data and "ops@shop.example" in m.destinations[0]
        for m in ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages
        if hasattr(m, "raw_data")
    ):
        assert time.time() < deadline, "no feedback request email"
        time.sleep(0.1)


def test_guideline_dry_run_classifies_without_storing(api: Api) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], GUIDE)
    out = api.ok(
        "POST",
        "/v1/settings/guidelines/test",
        t["m_key"],
        {"item": {"sku": "X", "unit_price": 10}, "checks": {"worn": True}, "order": {"country": "DE"}},
    )
    assert (out["grade"], out["disposition"], out["clarify"], out["rule"]) == (
        "B",
        "refurbish",
        False,
        {"name": "worn", "index": 1},
    )
    assert out["steps"] == ["steam", "fold", "repackage"]
    trial = {**GUIDE, "rules": [{"name": "all C", "when": "true", "grade": "C", "disposition": "recycle"}]}
    out = api.ok(
        "POST", "/v1/settings/guidelines/test", t["m_key"], {"item": {"sku": "X"}, "checks": {}, "guideline": trial}
    )
    assert out["rule"]["name"] == "all C"
    # the saved guideline is unchanged by the trial
    out = api.ok("POST", "/v1/settings/guidelines/test", t["m_key"], {"item": {"sku": "X"}, "checks": {}})
    assert out["rule"]["name"] == "default"
    bad = api.call(
        "POST",
        "/v1/settings/guidelines/test",
        t["m_key"],
        {
            "item": {},
            "guideline": {
                **GUIDE,
                "rules": [{"name": "broken", "when": "checks.(", "grade": "A", "disposition": "restock"}],
            },
        },
    )
    assert bad.status_code == 422 and json.loads(bad.body)["errors"][0]["loc"] == ["rules", 0, "when"]


EACH_C = {
    "rules": [
        {"name": f"{d} it", "when": f"checks.fate == '{d}'", "grade": "C", "disposition": d}
        for d in ("dispose", "donate", "recycle")
    ],
    "default": {"grade": "A", "disposition": "restock"},
}


def test_each_c_disposition_lands_in_the_register(api: Api) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], EACH_C)
    order = api.order(t["m_key"], items=THREE)
    ret = api.create_return(
        t,
        order=order,
        lines=[{"line_item_id": lid, "quantity": 1, "reason": "too_small"} for lid in ("L1", "L2", "L3")],
    )
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(
        api,
        t,
        ret,
        [
            {"line_item_id": lid, "received_quantity": 1, "checks": {"fate": fate}}
            for lid, fate in (("L1", "dispose"), ("L2", "donate"), ("L3", "recycle"))
        ],
    )
    wait_items(api, t["m_key"], ret["id"], {"L1": "disposed", "L2": "disposed", "L3": "disposed"})
    today = time.strftime("%Y-%m-%d", time.gmtime())
    register = api.ok("GET", f"/v1/reports/disposals?from={today}&to={today}", t["m_key"])["items"]
    assert sorted((d["line_item_id"], d["disposition"], d["grade"]) for d in register) == [
        ("L1", "dispose", "C"),
        ("L2", "donate", "C"),
        ("L3", "recycle", "C"),
    ]
    assert all(d["reason"].startswith("guideline rule") for d in register)
    resp = api.call("GET", f"/v1/reports/disposals?from={today}&to=2000-01-01", t["m_key"])
    assert resp.status_code == 422


def recount(api: Api, t: dict[str, Any]) -> dict[str, int]:
    """The month's billing, counted again from every return's timeline (brute force)."""
    counts = dict.fromkeys(("receipts", "inspections", "photos", "refurbishment_minutes", "restocks", "disposals"), 0)
    for listed in api.ok("GET", "/v1/returns?limit=100", t["m_key"])["items"]:
        for e in api.ok("GET", f"/v1/returns/{listed['id']}", t["m_key"])["timeline"]:
            if not e["at"].startswith(month()):
                continue
            kind = e["type"]
            counts["receipts"] += kind == "return.received"
            counts["inspections"] += kind == "return.inspected"
            counts["photos"] += kind == "photo.added"
            counts["restocks"] += kind == "item.restocked"
            counts["disposals"] += kind == "item.disposed"
            counts["refurbishment_minutes"] += e.get("minutes", 0) if kind == "work_order.completed" else 0
    return counts


def test_billing_equals_a_recount_of_the_months_events(api: Api) -> None:
    # Given a month with a three-way return, a refurbishment, a parcel matched by hand and a double scan
    t = api.tenant()
    api.ok("PUT", "/v1/settings/guidelines", t["m_key"], GUIDE)
    first = three_item_return(api, t)
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": first["tracking_number"]})  # harmless again
    wait_items(api, t["m_key"], first["id"], {"L1": "restocked", "L2": "refurbishing", "L3": "disposed"})
    wo = api.ok("GET", "/v1/warehouse/work-orders", t["wh_key"])["items"][0]
    api.ok("POST", f"/v1/warehouse/work-orders/{wo['id']}/complete", t["wh_key"], {"minutes": 17})
    second = api.create_return(t)
    parcel = json.loads(api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "TORN"}).body)
    api.ok(
        "POST",
        f"/v1/warehouse/unidentified-parcels/{parcel['unidentified_parcel_id']}/match",
        t["wh_key"],
        {"return_id": second["id"]},
    )
    inspect(api, t, second, [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}])
    wait_items(api, t["m_key"], second["id"], {"L1": "restocked"})
    # Then the operator's counters equal a brute-force recount of the events
    bill = api.ok("GET", f"/v1/admin/billing?merchant_id={t['merchant']['id']}&month={month()}", OPERATOR_KEY)
    expected = recount(api, t)
    assert {k: bill[k] for k in expected} == expected
    assert expected == {
        "receipts": 2,
        "inspections": 2,
        "photos": 0,
        "refurbishment_minutes": 17,
        "restocks": 3,
        "disposals": 1,
    }
