"""The core API through the Chalice test client against moto: validation, auth, tenant isolation, portal rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from tests.support import ADDRESS, OPERATOR_KEY, Api, unique


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = json.loads(resp.body)
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def test_health_needs_no_auth(api: Api) -> None:
    assert api.ok("GET", "/v1/health") == {"status": "ok"}


def test_openapi_served_equals_the_committed_document(api: Api) -> None:
    served = api.ok("GET", "/v1/openapi.json")
    committed = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    assert served == committed, "run `make openapi` and commit docs/openapi.json"
    assert served["openapi"].startswith("3.1")
    assert "/v1/portal/returns" in served["paths"]


def test_missing_unknown_and_wrong_kind_of_credentials(api: Api) -> None:
    problem(api.call("POST", "/v1/admin/warehouses", None, {"name": "x", "address": ADDRESS}), 401)
    problem(api.call("POST", "/v1/admin/warehouses", "bmr_me_nope", {"name": "x", "address": ADDRESS}), 401)
    t = api.tenant()
    problem(api.call("POST", "/v1/admin/warehouses", t["m_key"], {"name": "x", "address": ADDRESS}), 403)
    problem(api.call("POST", "/v1/warehouse/scans", t["m_key"], {"barcode": "x"}), 403)


def test_malformed_json_is_400_and_validation_names_the_field(api: Api) -> None:
    resp = api.call("POST", "/v1/admin/warehouses", OPERATOR_KEY, raw=b"{not json")
    problem(resp, 400)
    body = problem(
        api.call(
            "POST", "/v1/admin/warehouses", OPERATOR_KEY, {"name": "x", "address": {**ADDRESS, "country": "Germany"}}
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["address", "country"]
    body = problem(api.call("POST", "/v1/admin/warehouses", OPERATOR_KEY, {"name": "x"}), 422)
    assert ["address"] in [e["loc"] for e in body["errors"]]
    body = problem(api.call("POST", "/v1/admin/warehouses", OPERATOR_KEY, []), 422)


def test_taken_slug_is_409_and_slug_format_422(api: Api) -> None:
    wh = api.warehouse()
    m = api.merchant(wh["id"])
    problem(
        api.call(
            "POST", "/v1/admin/merchants", OPERATOR_KEY, {"name": "n", "slug": m["slug"], "warehouse_id": wh["id"]}
        ),
        409,
    )
    body = problem(
        api.call(
            "POST", "/v1/admin/merchants", OPERATOR_KEY, {"name": "n", "slug": "No Caps", "warehouse_id": wh["id"]}
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["slug"]
    problem(
        api.call(
            "POST",
            "/v1/admin/merchants",
            OPERATOR_KEY,
            {"name": "n", "slug": unique("shop"), "warehouse_id": "wh_missing"},
        ),
        404,
    )


def test_api_keys_are_stored_hashed(api: Api, aws) -> None:
    t = api.tenant()
    table = boto3.resource("dynamodb").Table(aws.table_name)
    dump = json.dumps(table.scan()["Items"], default=str)  # test-only look at everything stored
    assert t["m_key"] not in dump and t["wh_key"] not in dump


def test_guideline_that_does_not_compile_names_the_rule(api: Api) -> None:
    t = api.tenant()
    body = problem(
        api.call(
            "PUT",
            "/v1/settings/guidelines",
            t["m_key"],
            {
                "rules": [
                    {"name": "ok", "when": "true", "grade": "A", "disposition": "restock"},
                    {"name": "bad", "when": "checks.damaged ==", "grade": "C", "disposition": "dispose"},
                ],
                "default": {"grade": "A", "disposition": "restock"},
            },
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["rules", 1, "when"]
    assert "bad" in body["errors"][0]["msg"]
    body = problem(
        api.call(
            "PUT",
            "/v1/settings/guidelines",
            t["m_key"],
            {
                "rules": [{"name": "x", "when": "true", "grade": "Z", "disposition": "restock"}],
                "default": {"grade": "A", "disposition": "restock"},
            },
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["rules", 0, "grade"]


def test_refund_settings_webhook_needs_a_url_and_the_secret_is_never_returned(api: Api) -> None:
    t = api.tenant()
    body = problem(
        api.call("PUT", "/v1/settings/refunds", t["m_key"], {"target": "webhook", "auto_refund": False}), 422
    )
    assert body["errors"][0]["loc"] == ["webhook_url"]
    out = api.ok(
        "PUT",
        "/v1/settings/refunds",
        t["m_key"],
        {
            "target": "webhook",
            "auto_refund": True,
            "webhook_url": "https://shop.example/refunds",
            "webhook_secret": "0123456789abcdef0123",
        },
    )
    assert "0123456789abcdef0123" not in json.dumps(out)
    assert out["has_webhook_secret"] is True


def test_order_upsert_creates_then_updates(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    resp = api.call("POST", "/v1/orders", t["m_key"], order)
    assert resp.status_code == 200
    bad = {**order, "items": [{**order["items"][0], "unit_price": "12,50"}]}
    body = problem(api.call("POST", "/v1/orders", t["m_key"], bad), 422)
    assert body["errors"][0]["loc"] == ["items", 0, "unit_price"]


def test_portal_session_wrong_pair_is_404_without_telling_which_half(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    a = problem(
        api.call(
            "POST",
            f"/v1/portal/merchants/{t['slug']}/sessions",
            None,
            {"order_number": order["order_number"], "email": "wrong@example.com"},
        ),
        404,
    )
    b = problem(
        api.call(
            "POST",
            f"/v1/portal/merchants/{t['slug']}/sessions",
            None,
            {"order_number": "NOPE", "email": order["email"]},
        ),
        404,
    )
    assert a["detail"] == b["detail"]
    # the email is matched case-insensitively
    api.ok(
        "POST",
        f"/v1/portal/merchants/{t['slug']}/sessions",
        None,
        {"order_number": order["order_number"], "email": order["email"].upper()},
        201,
    )


def test_portal_sessions_are_rate_limited_per_order(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    path = f"/v1/portal/merchants/{t['slug']}/sessions"
    for _ in range(10):
        problem(api.call("POST", path, None, {"order_number": order["order_number"], "email": "x@example.com"}), 404)
    resp = api.call("POST", path, None, {"order_number": order["order_number"], "email": order["email"]})
    problem(resp, 429)
    assert int(resp.headers["Retry-After"]) > 0


def test_portal_order_shows_eligibility(api: Api) -> None:
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/policy",
        t["m_key"],
        {
            "return_window_days": 30,
            "non_returnable_tags": ["final-sale"],
            "reasons": [{"code": "too_small", "label": "Too small"}],
        },
    )
    order = api.order(
        t["m_key"],
        items=[
            {"line_item_id": "L1", "sku": "A", "name": "A", "quantity": 2, "unit_price": "10.00"},
            {
                "line_item_id": "L2",
                "sku": "B",
                "name": "B",
                "quantity": 1,
                "unit_price": "10.00",
                "tags": ["final-sale"],
            },
            {
                "line_item_id": "L3",
                "sku": "C",
                "name": "C",
                "quantity": 1,
                "unit_price": "10.00",
                "delivered_at": "2020-01-01T00:00:00Z",
            },
        ],
    )
    token = api.session(t["slug"], order)
    view = api.ok("GET", "/v1/portal/order", token)
    by_line = {i["line_item_id"]: i for i in view["items"]}
    assert by_line["L1"]["returnable_quantity"] == 2 and by_line["L1"]["returnable"] is True
    assert by_line["L2"]["not_returnable_reason"] == "final_sale"
    assert by_line["L3"]["not_returnable_reason"] == "window_expired"
    assert view["reasons"] == [{"code": "too_small", "label": "Too small"}]


def test_portal_return_validation_names_each_bad_item(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    body = problem(
        api.call(
            "POST",
            "/v1/portal/returns",
            token,
            {
                "items": [
                    {"line_item_id": "L1", "quantity": 5, "reason": "too_small"},
                    {"line_item_id": "NOPE", "quantity": 1, "reason": "too_small"},
                    {"line_item_id": "L2", "quantity": 1, "reason": "bored"},
                ]
            },
        ),
        422,
    )
    assert [e["loc"] for e in body["errors"]] == [
        ["items", 0, "quantity"],
        ["items", 1, "line_item_id"],
        ["items", 2, "reason"],
    ]
    problem(api.call("POST", "/v1/portal/returns", token, {"items": []}), 422)


def test_quantities_already_returned_cannot_be_returned_again(api: Api) -> None:
    t = api.tenant()
    first = api.create_return(t, lines=[{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}])
    token = first["_token"]
    view = api.ok("GET", "/v1/portal/order", token)
    l1 = next(i for i in view["items"] if i["line_item_id"] == "L1")
    assert (l1["returnable_quantity"], l1["not_returnable_reason"]) == (0, "already_returned")
    problem(
        api.call(
            "POST",
            "/v1/portal/returns",
            token,
            {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]},
        ),
        422,
    )


def test_the_label_is_a_real_pdf_behind_a_short_lived_url(api: Api, aws) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    url = ret["label"]["url"]
    assert "X-Amz-Expires=900" in url and ret["label"]["content_type"] == "application/pdf"
    key = f"labels/{ret['merchant_id']}/{ret['id']}.pdf"
    pdf = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read()
    assert pdf.startswith(b"%PDF")


def test_track_and_trace_reveals_no_personal_data(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    token = ret["tracking_token"]
    assert len(token) >= 22  # >= 128 bits, url-safe base64
    out = api.ok("GET", f"/v1/track/{token}")
    assert [m["status"] for m in out["milestones"]] == ["requested", "label_created"]
    assert out["next_step"] == "in_transit"
    text = json.dumps(out)
    for pii in ("Erika", "Musterweg", "erika@example.com", ret["order_number"]):
        assert pii not in text
    problem(api.call("GET", "/v1/track/not-a-token"), 404)


def test_another_tenants_return_is_404_everywhere(api: Api) -> None:
    a, b = api.tenant(), api.tenant()
    ret = api.create_return(a)
    rid = ret["id"]
    problem(api.call("GET", f"/v1/returns/{rid}", b["m_key"]), 404)
    problem(api.call("POST", f"/v1/returns/{rid}/feedback", b["m_key"], {"decision": "approve"}), 404)
    problem(api.call("POST", f"/v1/returns/{rid}/refund", b["m_key"], {}), 404)
    problem(api.call("GET", f"/v1/returns/{rid}/refunds", b["m_key"]), 404)
    problem(api.call("POST", "/v1/warehouse/scans", b["wh_key"], {"barcode": ret["tracking_number"]}), 404)
    problem(api.call("POST", f"/v1/warehouse/returns/{rid}/photos", b["wh_key"], {"content_type": "image/jpeg"}), 404)
    problem(
        api.call(
            "POST",
            f"/v1/warehouse/returns/{rid}/inspection",
            b["wh_key"],
            {"items": [{"line_item_id": "L1", "received_quantity": 1}]},
        ),
        404,
    )
    other_order = api.order(b["m_key"])
    problem(api.call("GET", f"/v1/portal/returns/{rid}", api.session(b["slug"], other_order)), 404)
    assert api.ok("GET", "/v1/returns", b["m_key"])["items"] == []
    # and the owner sees it
    assert api.ok("GET", f"/v1/returns/{rid}", a["m_key"])["id"] == rid


def test_customer_sees_only_returns_of_their_own_order(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    other = api.order(t["m_key"])
    problem(api.call("GET", f"/v1/portal/returns/{ret['id']}", api.session(t["slug"], other)), 404)
    mine = api.ok("GET", f"/v1/portal/returns/{ret['id']}", ret["_token"])
    assert mine["status"] == "label_created"
    assert "checks" not in mine["items"][0]


def test_returns_list_filters_by_status_and_pages(api: Api) -> None:
    t = api.tenant()
    order = api.order(
        t["m_key"],
        items=[
            {"line_item_id": f"L{i}", "sku": f"S{i}", "name": "x", "quantity": 1, "unit_price": "5.00"}
            for i in range(3)
        ],
    )
    token = api.session(t["slug"], order)
    ids = [
        api.ok(
            "POST",
            "/v1/portal/returns",
            token,
            {"items": [{"line_item_id": f"L{i}", "quantity": 1, "reason": "too_small"}]},
            201,
        )["id"]
        for i in range(3)
    ]
    page1 = api.ok("GET", "/v1/returns?limit=2", t["m_key"])
    assert len(page1["items"]) == 2 and page1["next_cursor"]
    page2 = api.ok("GET", f"/v1/returns?limit=2&cursor={page1['next_cursor']}", t["m_key"])
    seen = [r["id"] for r in page1["items"] + page2["items"]]
    assert sorted(seen) == sorted(ids)
    assert len(api.ok("GET", "/v1/returns?status=label_created", t["m_key"])["items"]) == 3
    assert api.ok("GET", "/v1/returns?status=received", t["m_key"])["items"] == []
    problem(api.call("GET", "/v1/returns?status=bogus", t["m_key"]), 422)
    problem(api.call("GET", "/v1/returns?cursor=%%%", t["m_key"]), 422)
    problem(api.call("GET", "/v1/returns?limit=1000", t["m_key"]), 422)


def test_feedback_on_a_return_not_awaiting_it_is_409(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    problem(api.call("POST", f"/v1/returns/{ret['id']}/feedback", t["m_key"], {"decision": "approve"}), 409)
    problem(api.call("POST", f"/v1/returns/{ret['id']}/refund", t["m_key"], {}), 409)


def test_scan_of_an_unknown_barcode_is_404_and_a_second_scan_is_harmless(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    problem(api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "SB000"}), 404)
    first = api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    second = api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    assert first["status"] == second["status"] == "received"
    assert len(second["timeline"]) == len(first["timeline"])


def test_photo_upload_is_a_presigned_post_for_images_only(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    out = api.ok(
        "POST",
        f"/v1/warehouse/returns/{ret['id']}/photos",
        t["wh_key"],
        {"content_type": "image/jpeg", "line_item_id": "L1"},
        201,
    )
    assert out["key"].startswith(f"photos/{ret['merchant_id']}/{ret['id']}/L1/")
    assert out["upload"]["fields"]["key"] == out["key"] and out["upload"]["url"]
    body = problem(
        api.call("POST", f"/v1/warehouse/returns/{ret['id']}/photos", t["wh_key"], {"content_type": "application/pdf"}),
        422,
    )
    assert body["errors"][0]["loc"] == ["content_type"]


def test_inspection_rejects_photos_of_other_returns(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
    body = problem(
        api.call(
            "POST",
            f"/v1/warehouse/returns/{ret['id']}/inspection",
            t["wh_key"],
            {"items": [{"line_item_id": "L1", "received_quantity": 1, "photos": ["photos/other/ret_x/L1/p.jpg"]}]},
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["items", 0, "photos", 0]
    problem(
        api.call(
            "POST",
            f"/v1/warehouse/returns/{ret['id']}/inspection",
            t["wh_key"],
            {"items": [{"line_item_id": "L1", "received_quantity": -1}]},
        ),
        422,
    )
