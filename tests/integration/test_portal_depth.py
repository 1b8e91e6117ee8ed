"""Portal depth through the API against moto: eligibility, nested reasons and customer photos, return methods and
fees, international returns with customs and the CN23, Swiss domestic consolidation, customer-service returns,
cancellation, the EU withdrawal function, label expiry and track & trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pypdfium2 as pdfium
import pytest
import zxingcpp
from chalice.test import Client

from app import app
from chalicelib.bootstrap import container
from chalicelib.services import cancellations
from tests.support import ADDRESS, CUSTOMER_ADDRESS, OPERATOR_KEY, Api, unique

REASONS = [
    {"code": "size", "label": "Size", "children": [{"code": "too_small", "label": "Too small"}]},
    {
        "code": "damaged",
        "label": "Arrived damaged",
        "comment_required": True,
        "photo_required": True,
    },
    {
        "code": "hygiene_opened",
        "label": "Hygiene seal opened",
        "excludes_item": True,
        "message": "Opened hygiene articles cannot be taken back.",
    },
    {"code": "changed_mind", "label": "Changed my mind"},
]


@pytest.fixture
def api(aws: Any) -> Any:
    with Client(app) as client:
        yield Api(client)


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    return dict(json.loads(resp.body))


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body.get("errors", [])]


def policy(api: Api, m_key: str, **extra: Any) -> None:
    api.ok("PUT", "/v1/settings/policy", m_key, {"return_window_days": 30, "reasons": REASONS, **extra})


def item(line: str, sku: str, qty: int = 1, price: str = "20.00", **extra: Any) -> dict[str, Any]:
    return {"line_item_id": line, "sku": sku, "name": f"Article {sku}", "quantity": qty, "unit_price": price, **extra}


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def stored(key: str) -> bytes:
    return container().files.get(key)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(data))


def barcodes(data: bytes) -> dict[str, str]:
    page = pdfium.PdfDocument(data)[0]
    found = zxingcpp.read_barcodes(page.render(scale=300 / 72).to_pil(), try_downscale=False)
    return {str(b.format): b.text for b in found}


def routing(api: Api, warehouse_id: str, body: dict[str, Any], expect: int = 200) -> Any:
    return api.ok("PUT", f"/v1/admin/warehouses/{warehouse_id}/routing", OPERATOR_KEY, body, expect)


# ----- eligibility ------------------------------------------------------------------------------------------------
def test_each_item_says_why_it_cannot_be_returned(api: Api) -> None:
    t = api.tenant()
    policy(
        api,
        t["m_key"],
        non_returnable_tags=["final-sale"],
        non_returnable_skus=["GIFTCARD"],
        window_overrides=[{"tag": "xmas", "days": 90}],
    )
    now = datetime.now(UTC)
    old = iso(now - timedelta(days=40))
    order = api.order(
        t["m_key"],
        delivered_at=old,
        items=[
            item("L1", "OLD"),  # delivered 40 days ago, 30-day window
            item("L2", "SALE", tags=["final-sale"]),
            item("L3", "GIFTCARD"),
            item("L4", "XMAS", tags=["xmas"]),  # 90-day override
            item("L5", "LATE", delivered_at=iso(now + timedelta(days=1))),  # its own date wins (not yet in window)
            item("L6", "SPLIT", qty=3, deliveries=[{"quantity": 1, "delivered_at": old}]),  # 2 still on their way
            item(
                "L7",
                "SPLIT2",
                qty=2,
                deliveries=[
                    {"quantity": 1, "delivered_at": old},
                    {"quantity": 1, "delivered_at": iso(now - timedelta(days=2))},
                ],
            ),
        ],
    )
    token = api.session(t["slug"], order)
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert view["L1"]["not_returnable_reason"] == "window_expired"
    assert view["L2"]["not_returnable_reason"] == "final_sale"
    assert view["L3"]["not_returnable_reason"] == "final_sale"
    assert view["L4"]["returnable"] and view["L4"]["returnable_quantity"] == 1
    assert view["L5"]["returnable"]  # delivered "tomorrow": the window is open until 30 days after
    assert view["L6"]["not_returnable_reason"] == "window_expired"  # window from the last delivered piece
    # the window runs from the last piece: both delivered pieces can be returned
    assert view["L7"]["returnable_quantity"] == 2 and view["L7"]["delivered_quantity"] == 2

    fresh = api.order(
        t["m_key"],
        delivered_at=None,  # type: ignore[arg-type]
        items=[
            item("N1", "NOTYET"),
            item("N2", "PART", qty=3, deliveries=[{"quantity": 1, "delivered_at": iso(now - timedelta(days=1))}]),
        ],
    )
    token = api.session(t["slug"], fresh)
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert view["N1"]["not_returnable_reason"] == "not_delivered"
    assert view["N2"]["returnable_quantity"] == 1
    api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "N2", "quantity": 1, "reason": "too_small"}]},
        201,
    )
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert view["N2"]["not_returnable_reason"] == "not_delivered"  # the rest has not arrived yet

    # already_returned: the whole line is in a return
    r = api.create_return(t, [{"line_item_id": "L4", "quantity": 1, "reason": "too_small"}], order=order)
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", r["_token"])["items"]}
    assert view["L4"]["not_returnable_reason"] == "already_returned"
    resp = api.call(
        "POST",
        "/v1/portal/returns",
        r["_token"],
        {"items": [{"line_item_id": "L4", "quantity": 1, "reason": "too_small"}]},
    )
    assert ["items", 0, "line_item_id"] in locs(problem(resp, 422))


def test_split_deliveries_cannot_exceed_the_ordered_quantity(api: Api) -> None:
    t = api.tenant()
    at = iso(datetime.now(UTC))
    body = {
        "order_number": unique("ORD"),
        "email": "erika@example.com",
        "currency": "EUR",
        "ordered_at": at,
        "shipping_address": CUSTOMER_ADDRESS,
        "items": [item("L1", "A", qty=1, deliveries=[{"quantity": 2, "delivered_at": at}])],
    }
    assert ["items", 0, "deliveries"] in locs(problem(api.call("POST", "/v1/orders", t["m_key"], body), 422))


# ----- reasons and customer photos --------------------------------------------------------------------------------
def test_nested_reasons_with_comment_photo_and_exclusion_rules(api: Api) -> None:
    t = api.tenant()
    policy(api, t["m_key"])
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    reasons = api.ok("GET", "/v1/portal/order", token)["reasons"]
    assert reasons[0]["children"][0]["code"] == "too_small"
    assert reasons[1]["comment_required"] and reasons[1]["photo_required"]

    def attempt(line: dict[str, Any]) -> dict[str, Any]:
        return problem(api.call("POST", "/v1/portal/returns", token, {"items": [line]}), 422)

    base = {"line_item_id": "L1", "quantity": 1}
    err = attempt({**base, "reason": "size"})  # not a leaf
    assert locs(err) == [["items", 0, "reason"]] and "too_small" in err["errors"][0]["msg"]
    err = attempt({**base, "reason": "hygiene_opened"})
    assert err["errors"][0]["msg"] == "Opened hygiene articles cannot be taken back."
    assert locs(attempt({**base, "reason": "damaged"})) == [["items", 0, "comment"]]
    assert locs(attempt({**base, "reason": "damaged", "comment": "torn seam"})) == [["items", 0, "photos"]]
    assert locs(attempt({**base, "reason": "nope"})) == [["items", 0, "reason"]]

    # a photo: presigned POST for this line, uploaded, then cited
    up = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/png", "line_item_id": "L1"}, 201)
    assert up["upload"]["fields"]["Content-Type"] == "image/png"
    other = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/png", "line_item_id": "L2"}, 201)
    err = attempt({**base, "reason": "damaged", "comment": "torn", "photos": [up["key"]]})
    assert locs(err) == [["items", 0, "photos", 0]]  # not uploaded yet
    png = _png()
    container().files.put(up["key"], png, "image/png")
    container().files.put(other["key"], png, "image/png")
    err = attempt({**base, "reason": "damaged", "comment": "torn", "photos": [other["key"]]})  # another line's photo
    assert locs(err) == [["items", 0, "photos", 0]]
    ret = api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{**base, "reason": "damaged", "comment": "torn seam", "photos": [up["key"]]}]},
        201,
    )
    merchant_view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert merchant_view["items"][0]["customer_photos"][0]["key"] == up["key"]
    assert locs(
        problem(api.call("POST", "/v1/portal/photos", token, {"content_type": "text/plain", "line_item_id": "L1"}), 422)
    ) == [["content_type"]]


def test_duplicate_reason_codes_are_refused(api: Api) -> None:
    t = api.tenant()
    body = {
        "return_window_days": 30,
        "reasons": [{"code": "a", "label": "A", "children": [{"code": "a", "label": "A"}]}],
    }
    assert locs(problem(api.call("PUT", "/v1/settings/policy", t["m_key"], body), 422))[0][0] == "reasons"


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


# ----- methods and fees -------------------------------------------------------------------------------------------
def test_without_routing_every_country_gets_a_free_sandbox_label(api: Api) -> None:
    t = api.tenant()
    r = api.create_return(t)
    methods = api.ok("GET", "/v1/portal/methods", r["_token"])["items"]
    assert methods == [
        {
            "id": "sandbox_label",
            "carrier": "sandbox",
            "type": "label",
            "fee": {"amount": "0.00", "currency": "EUR"},
            "customs_required": False,
            "deduct_from_refund": False,
            "domestic": True,
        }
    ]
    assert r["method"]["id"] == "sandbox_label"


def test_each_method_type_with_its_fee(api: Api) -> None:
    t = api.tenant()
    routing(
        api,
        t["warehouse"]["id"],
        {
            "routes": [
                {
                    "countries": ["DE", "AT"],
                    "carriers": ["sandbox"],
                    "methods": [
                        {"type": "label"},
                        {"type": "qr"},
                        {"type": "drop_off"},
                        {"type": "pickup", "fee": "4.90"},
                        {"type": "preprinted"},
                    ],
                }
            ]
        },
    )
    policy(
        api,
        t["m_key"],
        fees=[
            {"method_type": "label", "amount": "3.50", "deduct_from_refund": True},
            {"method_type": "qr", "countries": ["DE"], "amount": "1.00"},
            {"method_type": "qr", "amount": "2.00"},
        ],
    )
    order = api.order(t["m_key"], return_tracking_numbers=["PRE-0001", "PRE-0002"], items=[item("L1", "A", qty=10)])
    token = api.session(t["slug"], order)
    methods = {m["type"]: m for m in api.ok("GET", "/v1/portal/methods", token)["items"]}
    assert list(methods) == ["label", "qr", "drop_off", "pickup", "preprinted"]
    assert methods["label"]["fee"]["amount"] == "3.50" and methods["label"]["deduct_from_refund"]
    assert methods["qr"]["fee"]["amount"] == "1.00"  # the DE entry wins over the general one
    assert methods["pickup"]["fee"]["amount"] == "4.90"  # the operator's route fee
    assert methods["drop_off"]["fee"]["amount"] == "0.00"

    def create(method_id: str) -> dict[str, Any]:
        return api.ok(
            "POST",
            "/v1/portal/returns",
            token,
            {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "changed_mind"}], "method_id": method_id},
            201,
        )

    for type_ in ("label", "drop_off", "pickup"):
        ret = create(methods[type_]["id"])
        assert ret["method"]["type"] == type_ and ret["status"] == "label_created"
        pdf = stored(container().store.get_return(ret["id"]).label_key or "")
        assert barcodes(pdf)[str(zxingcpp.BarcodeFormat.Code128)] == ret["tracking_number"]
        if type_ == "pickup":
            assert "Pickup" in pdf_text(pdf) and ret["method"]["pickup_date"] in pdf_text(pdf)
    qr = create(methods["qr"]["id"])
    pdf = stored(container().store.get_return(qr["id"]).label_key or "")
    assert str(zxingcpp.BarcodeFormat.QRCode) in barcodes(pdf)
    assert barcodes(pdf)[str(zxingcpp.BarcodeFormat.Code128)] == qr["tracking_number"]

    first = create("preprinted")
    assert first["tracking_number"] == "PRE-0001" and first["label"] is None and first["carrier"] == "preprinted"
    second = create("preprinted")
    assert second["tracking_number"] == "PRE-0002"
    assert "preprinted" not in {m["type"] for m in api.ok("GET", "/v1/portal/methods", token)["items"]}
    resp = api.call(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "changed_mind"}], "method_id": "preprinted"},
    )
    assert locs(problem(resp, 422)) == [["method_id"]]
    # cancelling a pre-printed return frees its number for the next return
    api.ok("POST", f"/v1/portal/returns/{second['id']}/cancel", token, {})
    assert create("preprinted")["tracking_number"] == "PRE-0002"
    # the warehouse identifies a pre-printed parcel by its number
    scanned = api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "PRE-0001"})
    assert scanned["id"] == first["id"]


def test_a_country_the_routing_does_not_serve_gets_no_method(api: Api) -> None:
    t = api.tenant()
    routing(
        api,
        t["warehouse"]["id"],
        {"routes": [{"countries": ["AT"], "carriers": ["sandbox"], "methods": [{"type": "label"}]}]},
    )
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    assert api.ok("GET", "/v1/portal/methods", token)["items"] == []
    resp = api.call(
        "POST", "/v1/portal/returns", token, {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]}
    )
    assert locs(problem(resp, 422)) == [["method_id"]]


def test_routing_is_validated(api: Api) -> None:
    t = api.tenant()
    wh = t["warehouse"]["id"]
    bad = {
        "routes": [{"countries": ["DE"], "carriers": ["nope"], "methods": [{"type": "label"}]}],
        "consolidation_addresses": {"CH": {**ADDRESS, "country": "DE"}},
    }
    err = problem(api.call("PUT", f"/v1/admin/warehouses/{wh}/routing", OPERATOR_KEY, bad), 422)
    assert ["routes", 0, "carriers", 0] in locs(err) and ["consolidation_addresses", "CH", "country"] in locs(err)
    ok = {"routes": [{"countries": ["*"], "carriers": ["sandbox"], "methods": [{"type": "label"}]}]}
    assert problem(api.call("PUT", "/v1/admin/warehouses/wh_nope/routing", OPERATOR_KEY, ok), 404)
    assert problem(api.call("PUT", f"/v1/admin/warehouses/{wh}/routing", t["m_key"], ok), 403)


def test_a_fee_deducted_from_the_refund_is_taken_off_the_refundable_amount(api: Api) -> None:
    from chalicelib.domain.returns import Disposition, Grade, ReturnStatus

    t = api.tenant()
    policy(api, t["m_key"], fees=[{"method_type": "label", "amount": "3.50", "deduct_from_refund": True}])
    r = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    ret = container().store.get_return(r["id"])
    it = ret.items[0]
    it.grade, it.disposition, it.received_quantity = Grade.A, Disposition.RESTOCK, 1
    ret.status = ReturnStatus.COMPLETED
    from chalicelib.domain.refunds import plan

    merchant = container().store.get_merchant(t["merchant"]["id"])
    order = container().store.get_order(t["merchant"]["id"], ret.order_number)
    the_plan = plan(ret, order, merchant.refunds.policy)
    assert str(the_plan.refundable) == "26.45"  # 29.95 - 3.50
    assert [f.reason for f in the_plan.breakdown.fees] == ["return method fee"]


# ----- international, Swiss domestic -------------------------------------------------------------------------------
GB_ADDRESS = {
    "name": "Jane Doe",
    "street": "Baker Street",
    "house_number": "221B",
    "postal_code": "NW1 6XE",
    "city": "London",
    "country": "GB",
}
CH_ADDRESS = {
    "name": "Heidi Muster",
    "street": "Bahnhofstrasse",
    "house_number": "1",
    "postal_code": "8001",
    "city": "Zürich",
    "country": "CH",
}
CH_HUB = {
    "name": "Boomerang Retouren CH",
    "street": "Industriestrasse",
    "house_number": "7",
    "postal_code": "4133",
    "city": "Pratteln",
    "country": "CH",
}


def test_a_gb_return_carries_customs_data_and_a_cn23(api: Api) -> None:
    t = api.tenant()
    policy(api, t["m_key"], customs_defaults={"hs_code": "620342", "country_of_origin": "PT", "weight_grams": 400})
    order = api.order(
        t["m_key"],
        shipping_address=GB_ADDRESS,
        currency="GBP",
        items=[
            item("L1", "JACKET", price="120.00", hs_code="620193", country_of_origin="IT", weight_grams=900),
            item("L2", "SCARF", price="35.50"),  # no customs data: merchant defaults, with warnings
        ],
    )
    token = api.session(t["slug"], order)
    methods = api.ok("GET", "/v1/portal/methods", token)["items"]
    assert methods[0]["customs_required"] and not methods[0]["domestic"]
    ret = api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {
            "items": [
                {"line_item_id": "L1", "quantity": 1, "reason": "too_small"},
                {"line_item_id": "L2", "quantity": 1, "reason": "changed_mind"},
            ]
        },
        201,
    )
    assert ret["customs"]["required"] and ret["customs"]["declaration"]["content_type"] == "application/pdf"
    merchant_view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    warnings = merchant_view["customs"]["warnings"]
    assert any("SCARF" in w and "hs_code" in w for w in warnings)
    assert {e["warning"] for e in merchant_view["timeline"] if e["type"] == "customs.warning"} == set(warnings)
    lines = {line["sku"]: line for line in merchant_view["customs"]["lines"]}
    assert lines["JACKET"]["hs_code"] == "620193" and lines["SCARF"]["hs_code"] == "620342"
    assert lines["SCARF"]["country_of_origin"] == "PT"

    stored_ret = container().store.get_return(ret["id"])
    cn23 = stored((stored_ret.customs or {})["declaration_key"])
    text = pdf_text(cn23)
    assert "CN 23" in text and "620193" in text and "620342" in text and order["order_number"] in text
    assert "155.50" in text  # total value
    assert barcodes(cn23)[str(zxingcpp.BarcodeFormat.Code128)] == ret["tracking_number"]
    label = stored(stored_ret.label_key or "")
    assert "CN23" in pdf_text(label)
    assert barcodes(label)[str(zxingcpp.BarcodeFormat.Code128)] == ret["tracking_number"]


def test_a_swiss_return_ships_domestically_with_a_consolidation_address(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"], shipping_address=CH_ADDRESS, currency="CHF")
    token = api.session(t["slug"], order)
    # without a consolidation address: international, with customs
    assert api.ok("GET", "/v1/portal/methods", token)["items"][0]["customs_required"]
    routing(
        api,
        t["warehouse"]["id"],
        {
            "routes": [{"countries": ["*"], "carriers": ["sandbox"], "methods": [{"type": "label"}]}],
            "consolidation_addresses": {"CH": CH_HUB},
        },
    )
    method = api.ok("GET", "/v1/portal/methods", token)["items"][0]
    assert not method["customs_required"] and method["domestic"]
    ret = api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]},
        201,
    )
    assert ret["customs"] is None
    label = stored(container().store.get_return(ret["id"]).label_key or "")
    text = pdf_text(label)
    assert "Pratteln" in text and "Hamburg" not in text
    assert barcodes(label)[str(zxingcpp.BarcodeFormat.Code128)] == ret["tracking_number"]


# ----- customer service, cancellation -----------------------------------------------------------------------------
def test_customer_service_creates_a_return_and_gets_the_label(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    ret = api.ok(
        "POST",
        "/v1/returns",
        t["m_key"],
        {
            "order_number": order["order_number"],
            "items": [{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}],
            "notify_customer": False,
        },
        201,
    )
    assert ret["status"] == "label_created" and ret["label"]["url"]
    created = next(e for e in ret["timeline"] if e["type"] == "return.requested")
    assert created["actor"] == f"merchant:{t['merchant']['id']}"
    assert container().store.get_return(ret["id"]).notify_customer is False
    # another merchant cannot create returns for this order, nor see it
    other = api.tenant()
    resp = api.call(
        "POST",
        "/v1/returns",
        other["m_key"],
        {
            "order_number": order["order_number"],
            "items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}],
        },
    )
    problem(resp, 404)
    problem(api.call("POST", f"/v1/returns/{ret['id']}/cancel", other["m_key"], {}), 404)
    # customer service cancels it: quantities come back
    cancelled = api.ok("POST", f"/v1/returns/{ret['id']}/cancel", t["m_key"], {"reason": "customer called"})
    assert cancelled["status"] == "cancelled"
    token = api.session(t["slug"], order)
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert view["L2"]["returnable_quantity"] == 1


def test_cancellation_only_before_the_parcel_moves(api: Api) -> None:
    t = api.tenant()
    r = api.create_return(t, [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}])
    token = r["_token"]
    other_order = api.order(t["m_key"])
    other_token = api.session(t["slug"], other_order)
    problem(api.call("POST", f"/v1/portal/returns/{r['id']}/cancel", other_token), 404)  # not this customer's
    done = api.ok("POST", f"/v1/portal/returns/{r['id']}/cancel", token)  # no body at all is fine
    assert done["status"] == "cancelled" and done["label"] is None
    assert problem(api.call("POST", f"/v1/portal/returns/{r['id']}/cancel", token), 409)
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert view["L1"]["returnable_quantity"] == 2

    moving = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}], order=r["_order"])
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": moving["tracking_number"]})
    err = problem(api.call("POST", f"/v1/portal/returns/{moving['id']}/cancel", token), 409)
    assert "before" in err["detail"]


def test_a_carrier_that_cannot_void_the_label_leaves_the_return_unchanged(api: Api) -> None:
    from chalicelib.adapters.carriers.base import CarrierError
    from chalicelib.adapters.carriers.sandbox import SandboxCarrier

    class Stuck(SandboxCarrier):
        def cancel_label(
            self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
        ) -> None:
            raise CarrierError("already scanned at the counter", transient=False)

    t = api.tenant()
    r = api.create_return(t)
    container().overrides["carriers"] = {"sandbox": Stuck()}
    try:
        problem(api.call("POST", f"/v1/portal/returns/{r['id']}/cancel", r["_token"]), 503)
    finally:
        container().overrides.pop("carriers")
    assert container().store.get_return(r["id"]).status.value == "label_created"


# ----- withdrawal -------------------------------------------------------------------------------------------------
def test_the_withdrawal_function_needs_confirmation_acknowledges_and_links_the_return(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    path = f"/v1/portal/merchants/{t['slug']}/withdrawals"
    body = {"order_number": order["order_number"], "email": order["email"], "name": "Erika Mustermann"}
    assert locs(problem(api.call("POST", path, None, body), 422)) == [["confirm"]]
    assert locs(problem(api.call("POST", path, None, {**body, "confirm": False}), 422)) == [["confirm"]]
    wrong = problem(api.call("POST", path, None, {**body, "email": "x@example.com", "confirm": True}), 404)
    assert "email" in wrong["detail"] and "order number" in wrong["detail"]  # does not say which half was wrong

    sent: list[tuple[str, str, str]] = []
    mailer = container().mailer
    original = mailer.send

    def capture(to: str, subject: str, text: str, *args: Any, **kwargs: Any) -> None:
        sent.append((to, subject, text))
        original(to, subject, text, *args, **kwargs)

    mailer.send = capture  # type: ignore[method-assign]
    try:
        out = api.ok(
            "POST", path, None, {**body, "confirm": True, "items": [{"line_item_id": "L1", "quantity": 1}]}, 201
        )
    finally:
        mailer.send = original  # type: ignore[method-assign]
    received = datetime.fromisoformat(out["received_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - received).total_seconds()) < 60 and out["acknowledgement"] == "sent"
    ((to, _subject, text),) = sent
    assert to == order["email"]
    assert order["order_number"] in text
    assert received.strftime("%d.%m.%Y") in text and received.strftime("%H:%M") in text  # order locale "de"

    r = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}], order=order)
    assert r["withdrawal_id"] == out["id"]
    w = container().store.get_withdrawal(t["merchant"]["id"], order["order_number"], out["id"])
    assert w.return_ids == [r["id"]]
    later = api.create_return(t, [{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}], order=order)
    assert later["withdrawal_id"] is None  # one withdrawal, linked once


def test_withdrawal_items_must_be_order_lines(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    body = {
        "order_number": order["order_number"],
        "email": order["email"],
        "name": "E",
        "confirm": True,
        "items": [{"line_item_id": "NOPE"}],
    }
    err = problem(api.call("POST", f"/v1/portal/merchants/{t['slug']}/withdrawals", None, body), 422)
    assert locs(err) == [["items", 0, "line_item_id"]]


# ----- label expiry, track & trace ---------------------------------------------------------------------------------
def test_labels_not_used_in_time_expire_the_return(api: Api) -> None:
    t = api.tenant()
    policy(api, t["m_key"], label_validity_days=7)
    unused = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    shipped = api.create_return(
        t, [{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}], order=unused["_order"]
    )
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": shipped["tracking_number"]})
    c = container()
    assert unused["label_expires_at"]
    assert cancellations.expire_labels(c) == 0  # not due yet
    real = c.clock
    c.clock = lambda: real() + timedelta(days=8)  # type: ignore[method-assign]
    try:
        assert cancellations.expire_labels(c) == 1
        assert cancellations.expire_labels(c) == 0  # the sweep is idempotent: markers are gone
    finally:
        c.clock = real  # type: ignore[method-assign]
    expired = api.ok("GET", f"/v1/returns/{unused['id']}", t["m_key"])
    assert expired["status"] == "expired"
    assert api.ok("GET", f"/v1/returns/{shipped['id']}", t["m_key"])["status"] == "received"
    view = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", unused["_token"])["items"]}
    assert view["L1"]["returnable_quantity"] == 2  # the expired return gave its quantity back
    track = api.ok("GET", f"/v1/track/{unused['tracking_token']}")
    assert track["status"] == "expired" and "next_step" not in track


def test_track_and_trace_shows_milestones_without_personal_data(api: Api) -> None:
    import base64

    t = api.tenant()
    r = api.create_return(t)
    token = r["tracking_token"]
    assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    track = api.ok("GET", f"/v1/track/{token}")
    assert [m["status"] for m in track["milestones"]] == ["requested", "label_created"]
    assert track["next_step"] == "in_transit"
    dump = json.dumps(track)
    for personal in ("Erika", "Musterweg", "erika@example.com", r["_order"]["order_number"], "Berlin"):
        assert personal not in dump
    problem(api.call("GET", f"/v1/track/{token[:-2]}xx"), 404)
