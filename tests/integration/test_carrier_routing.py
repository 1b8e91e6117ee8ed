"""Routing to real carriers through the API: credentials per warehouse in SSM, the DHL Returns API answering with
its documented shapes (recorded HTTP), the fallback carrier when DHL fails, and a clear error when all fail."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import responses
from chalice.test import Client

from app import app
from chalicelib.adapters.carriers import dhl
from chalicelib.bootstrap import container
from tests.support import OPERATOR_KEY, Api

DHL_ORDERS = f"{dhl.SANDBOX_BASE_URL}/orders"
CREDENTIALS = {"api_key": "dhl-key-Q7x2", "username": "retoure-user", "password": "pw-Zk29!xQ7vB"}


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def dhl_tenant(api: Api) -> dict[str, Any]:
    t = api.tenant()
    wh = t["warehouse"]["id"]
    out = api.ok("PUT", f"/v1/admin/warehouses/{wh}/carriers/dhl_de", OPERATOR_KEY, {"credentials": CREDENTIALS})
    assert out == {"carrier": "dhl_de", "keys": ["api_key", "password", "username"]}
    api.ok(
        "PUT",
        f"/v1/admin/warehouses/{wh}/routing",
        OPERATOR_KEY,
        {"routes": [{"countries": ["DE"], "carriers": ["dhl_de", "sandbox"], "methods": [{"type": "label"}]}]},
    )
    return t


def confirmation(number: str, label: bytes) -> dict[str, Any]:
    """DHL Parcel DE Returns API v1, `POST /orders` 201 (ReturnOrderConfirmation in the vendor's OpenAPI)."""
    return {
        "sstatus": {"title": "Created", "status": 201},
        "shipmentNo": number,
        "internationalShipmentNo": None,
        "label": {"b64": base64.b64encode(label).decode()},
        "routingCode": "40327653113+99000933090010",
    }


def test_credentials_are_stored_encrypted_per_warehouse_and_never_returned(api: Api) -> None:
    t = dhl_tenant(api)
    param = boto3.client("ssm").get_parameter(
        Name=f"/boomerang/carriers/{t['warehouse']['id']}/dhl_de/password", WithDecryption=False
    )["Parameter"]
    assert param["Type"] == "SecureString"
    resp = api.call("PUT", "/v1/admin/carriers/nope", OPERATOR_KEY, {"credentials": {"api_key": "x"}})
    assert resp.status_code == 404
    resp = api.call(
        "PUT",
        f"/v1/admin/warehouses/{t['warehouse']['id']}/carriers/dhl_de",
        t["m_key"],
        {"credentials": {"api_key": "x"}},
    )
    assert resp.status_code == 403


def test_a_return_routed_to_dhl_gets_dhls_label_and_number(api: Api, rsps: responses.RequestsMock) -> None:
    t = dhl_tenant(api)
    label = b"%PDF-1.4 DHL return label"
    rsps.add(responses.POST, DHL_ORDERS, json=confirmation("999990001234", label), status=201)
    ret = api.create_return(t)
    assert (ret["carrier"], ret["tracking_number"]) == ("dhl_de", "999990001234")
    assert container().files.get(container().store.get_return(ret["id"]).label_key or "") == label
    sent = rsps.calls[0].request
    assert sent.headers["dhl-api-key"] == CREDENTIALS["api_key"]
    body = json.loads(sent.body)
    assert body["shipmentReference"] == ret["id"] and body["customerReference"] == ret["_order"]["order_number"]


def test_when_dhl_fails_the_fallback_carrier_makes_the_label(api: Api, rsps: responses.RequestsMock) -> None:
    t = dhl_tenant(api)
    rsps.add(responses.POST, DHL_ORDERS, json={"title": "Service Unavailable", "status": 503}, status=503)
    ret = api.create_return(t)
    assert ret["carrier"] == "sandbox"
    assert len([c for c in rsps.calls if c.request.url.startswith(DHL_ORDERS)]) == 2  # one retry, then the fallback


def test_when_every_carrier_fails_the_customer_gets_a_clear_503(api: Api, rsps: responses.RequestsMock) -> None:
    t = api.tenant()
    wh = t["warehouse"]["id"]
    api.ok("PUT", f"/v1/admin/warehouses/{wh}/carriers/dhl_de", OPERATOR_KEY, {"credentials": CREDENTIALS})
    api.ok(
        "PUT",
        f"/v1/admin/warehouses/{wh}/routing",
        OPERATOR_KEY,
        {"routes": [{"countries": ["*"], "carriers": ["dhl_de"], "methods": [{"type": "label"}]}]},
    )
    problem = {"type": "about:blank", "title": "Unprocessable", "status": 422, "detail": "postalCode is invalid"}
    rsps.add(responses.POST, DHL_ORDERS, body=json.dumps(problem), status=422, content_type="application/problem+json")
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    resp = api.call(
        "POST", "/v1/portal/returns", token, {"items": [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]}
    )
    assert resp.status_code == 503
    detail = json.loads(resp.body)["detail"]
    assert "postalCode" in detail and CREDENTIALS["password"] not in detail
    # nothing was written: the order's quantity is still free
    items = {i["line_item_id"]: i for i in api.ok("GET", "/v1/portal/order", token)["items"]}
    assert items["L1"]["returnable_quantity"] == 2
