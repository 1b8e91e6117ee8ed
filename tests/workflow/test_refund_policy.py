"""Refund amounts through the API: the merchant's policy (grade deductions, fees, original shipping), the breakdown
on the refund and the timeline, the checks on the refund settings, and the customer's store-credit choice."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support import Api, inspect, wait_for_status

SHOPIFY = {
    "platform": "shopify",
    "shop_domain": "demo-fashion.myshopify.com",
    "access_token": "shpat_0123456789abcdef",
    "webhook_secret": "whsec-shopify-0123456789",
}


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.body
    return json.loads(resp.body)


def settled(api: Api, key: str, rid: str, refund_id: str) -> dict[str, Any]:
    deadline = time.time() + 30
    while True:
        mine = next(r for r in api.ok("GET", f"/v1/returns/{rid}/refunds", key)["items"] if r["id"] == refund_id)
        if mine["status"] != "pending":
            return mine
        assert time.time() < deadline, mine
        time.sleep(0.2)


def graded_b(api: Api, t: dict[str, Any]) -> None:
    """Everything with a scratch is grade B (refurbish)."""
    api.ok(
        "PUT",
        "/v1/settings/guidelines",
        t["m_key"],
        {
            "rules": [
                {"name": "scratched", "when": "checks.scratched == true", "grade": "B", "disposition": "refurbish"}
            ],
            "default": {"grade": "A", "disposition": "restock"},
        },
    )


def test_refund_settings_are_checked_and_name_the_field(api: Api) -> None:
    t = api.tenant()
    base = {"target": "manual", "auto_refund": False}
    ok = api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {
            **base,
            "grade_deductions": {"B": "10", "C": "100"},
            "restocking_fee_percent": "5",
            "return_shipping_fee": "2.50",
        },
    )
    assert ok["policy"]["grade_deductions"] == {"B": "10", "C": "100"}
    assert ok["policy"]["return_shipping_fee"] == "2.50" and ok["store_credit"] is False
    err = problem(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**base, "restocking_fee_percent": "101"}), 422)
    assert err["errors"][0]["loc"] == ["restocking_fee_percent"]
    err = problem(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**base, "grade_deductions": {"D": "5"}}), 422)
    assert err["errors"][0]["loc"][0] == "grade_deductions"
    err = problem(api.call("PUT", "/v1/settings/refunds", t["m_key"], {"target": "shop", "auto_refund": False}), 422)
    assert err["errors"][0]["loc"] == ["target"]
    err = problem(api.call("PUT", "/v1/settings/refunds", t["m_key"], {**base, "store_credit": True}), 422)
    assert err["errors"][0]["loc"] == ["store_credit"]


def test_the_refund_follows_the_policy_and_explains_itself(api: Api) -> None:
    t = api.tenant()
    graded_b(api, t)
    api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {"target": "manual", "auto_refund": False, "grade_deductions": {"B": "10"}, "return_shipping_fee": "2.00"},
    )
    order = api.order(
        t["m_key"],
        items=[
            {
                "line_item_id": "L1",
                "sku": "SHIRT",
                "name": "Shirt",
                "quantity": 2,
                "unit_price": "30.00",
                "paid_total": "50.00",
            },
            {"line_item_id": "L2", "sku": "CAP", "name": "Cap", "quantity": 1, "unit_price": "20.00"},
        ],
        shipping_paid="4.95",
    )
    lines = [
        {"line_item_id": "L1", "quantity": 2, "reason": "too_small"},
        {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
    ]
    ret = api.create_return(t, lines=lines, order=order)
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(
        api,
        t,
        ret,
        [
            {"line_item_id": "L1", "received_quantity": 2, "checks": {"scratched": False}},
            {"line_item_id": "L2", "received_quantity": 1, "checks": {"scratched": True}},
        ],
    )
    wait_for_status(api, t["m_key"], ret["id"], "completed")
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202, headers={"Idempotency-Key": "c1"})
    mine = settled(api, t["m_key"], ret["id"], out["refund_id"])
    # L1: 2 x 30 = 60, but 50 was paid; L2: 20 less 10% for grade B; less the 2.00 fee; plus the shipping (all back)
    assert mine["status"] == "succeeded" and mine["amount"] == {"amount": "70.95", "currency": "EUR"}
    breakdown = mine["breakdown"]
    reasons = [d["reason"] for line in breakdown["lines"] for d in line["deductions"]]
    assert reasons == ["more than was paid for these units", "grade B: 10%"]
    assert breakdown["fees"] == [{"reason": "return shipping fee", "amount": "2.00"}]
    assert breakdown["shipping_refund"] == "4.95"
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    requested = next(e for e in view["timeline"] if e["type"] == "refund.requested")
    assert requested["breakdown"]["total"] == "70.95"
    assert view["status"] == "refunded" and view["refunded"] == {"amount": "70.95", "currency": "EUR"}
    assert problem(api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}), 409)


def test_the_customer_may_choose_store_credit_with_the_merchants_bonus(api: Api) -> None:
    t = api.tenant()
    api.ok("PUT", "/v1/settings/shop", t["m_key"], SHOPIFY)
    api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {"target": "manual", "auto_refund": False, "store_credit": True, "store_credit_bonus_percent": "10"},
    )
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    offered = api.ok("GET", "/v1/portal/order", token)["refund_options"]
    assert offered == [{"type": "original"}, {"type": "store_credit", "bonus_percent": "10"}]
    lines = [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}]
    ret = api.ok("POST", "/v1/portal/returns", token, {"items": lines, "refund_method": "store_credit"}, 201)
    assert ret["refund_method"] == "store_credit"
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 2, "checks": {}}])
    wait_for_status(api, t["m_key"], ret["id"], "completed")
    out = api.ok("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}, 202)
    mine = settled(api, t["m_key"], ret["id"], out["refund_id"])
    assert mine["kind"] == "store_credit"
    assert mine["amount"] == {"amount": "59.90", "currency": "EUR"}
    assert mine["store_credit"] == {"amount": "65.89", "currency": "EUR"}  # 59.90 + 10%


def test_store_credit_is_refused_where_the_merchant_does_not_offer_it(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    assert api.ok("GET", "/v1/portal/order", token)["refund_options"] == [{"type": "original"}]
    body = {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}], "refund_method": "store_credit"}
    err = problem(api.call("POST", "/v1/portal/returns", token, body), 422)
    assert err["errors"][0]["loc"] == ["refund_method"]
