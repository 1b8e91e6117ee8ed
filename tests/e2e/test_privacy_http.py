"""Erasure and access in local mode, over HTTP against `python -m local`: a customer with an open and a closed
return, a customer photo and labels in S3. Their access export holds their data; after their erasure no answer and
no stored object shows them, their S3 objects are gone, their session no longer opens, the merchant still reads the
returns (pseudonymised) and the report's figures are the same."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests

from tests.support.local_stack import Stack, running_stack

pytestmark = pytest.mark.e2e

EMAIL = "Renate.Privat@example.com"
NAME = "Renate Privat"
STREET = "Geheimweg"
COMMENT = "Passt nicht, Renate aus Wolfsburg"
ADDRESS = {
    "name": NAME,
    "street": STREET,
    "house_number": "7",
    "postal_code": "38440",
    "city": "Wolfsburg",
    "country": "DE",
}
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00"
    b"\x00\x0cIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # the sweeper (which runs erasures) every 2 s instead of every 30 s
    with running_stack(tmp_path_factory.mktemp("privacy-stack"), {"SCHEDULE_INTERVAL_SECONDS": "2"}) as running:
        yield running


def until(read: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r:.300}"
        time.sleep(0.3)


def s3_keys(stack: Stack) -> set[str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.creds["moto"],
        region_name="eu-central-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return {
        f"{bucket['Name']}/{obj['Key']}"
        for bucket in s3.list_buckets()["Buckets"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"])
        for obj in page.get("Contents", [])
    }


def shows_the_customer(text: str) -> list[str]:
    lowered = text.lower()
    return [p for p in (EMAIL.lower(), NAME.lower(), STREET.lower(), COMMENT.lower()) if p in lowered]


def test_access_then_erasure_of_a_customer_with_an_open_and_a_closed_return(stack: Stack) -> None:
    op = stack.creds["operator_key"]
    wh = stack.call("POST", "/v1/admin/warehouses", op, {"name": "Privacy wh", "address": ADDRESS}, 201)
    slug = f"privacy-{int(time.time() * 1000)}"
    m = stack.call("POST", "/v1/admin/merchants", op, {"name": "Privacy", "slug": slug, "warehouse_id": wh["id"]}, 201)
    mk = m["api_key"]
    order = {
        "order_number": "PRIV-1",
        "email": EMAIL,
        "currency": "EUR",
        "ordered_at": "2026-11-01T10:00:00Z",
        "delivered_at": datetime.now(UTC).isoformat(),
        "shipping_address": ADDRESS,
        "items": [
            {"line_item_id": "L1", "sku": "S-1", "name": "Shirt", "quantity": 1, "unit_price": "10.00"},
            {"line_item_id": "L2", "sku": "S-2", "name": "Hose", "quantity": 1, "unit_price": "20.00"},
        ],
    }
    stack.call("POST", "/v1/orders", mk, order, 201)
    token = stack.call(
        "POST", f"/v1/portal/merchants/{slug}/sessions", None, {"order_number": "PRIV-1", "email": EMAIL}, 201
    )["token"]
    # a customer photo, uploaded to S3 through its presigned POST
    photo = stack.call("POST", "/v1/portal/photos", token, {"content_type": "image/png", "line_item_id": "L1"}, 201)
    upload = requests.post(photo["upload"]["url"], data=photo["upload"]["fields"], files={"file": PNG}, timeout=30)
    assert upload.status_code in (200, 201, 204), upload.text
    line = {"line_item_id": "L1", "quantity": 1, "reason": "too_small", "comment": COMMENT, "photos": [photo["key"]]}
    open_return = stack.call("POST", "/v1/portal/returns", token, {"items": [line]}, 201)
    closed = stack.call(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "L2", "quantity": 1, "reason": "too_small"}]},
        201,
    )
    stack.call("POST", f"/v1/portal/returns/{closed['id']}/cancel", token, {}, 200)
    mine = {k for k in s3_keys(stack) if open_return["id"] in k or closed["id"] in k or photo["key"] in k}
    assert any(k.endswith(f"{open_return['id']}.pdf") for k in mine), mine  # the open return's label
    assert any(k.endswith(photo["key"]) for k in mine), mine  # the customer's photo
    summary = stack.call("GET", "/v1/reports/summary?from=2026-06-01&to=2027-05-31", mk)

    # Access: one JSON document with everything about them
    export = stack.call("POST", "/v1/customers/export", mk, {"email": EMAIL.upper()}, 202)
    ready = until(
        lambda: stack.call("GET", f"/v1/exports/{export['id']}", mk), lambda e: e["status"] == "ready", "export"
    )
    document = requests.get(ready["url"], timeout=30)
    assert document.status_code == 200
    data = document.json()
    text = json.dumps(data, ensure_ascii=False)
    assert set(shows_the_customer(text)) == {EMAIL.lower(), NAME.lower(), STREET.lower(), COMMENT.lower()}
    assert {r["id"] for r in data["returns"]} == {open_return["id"], closed["id"]}

    # Erasure
    erasure = stack.call("POST", "/v1/customers/erase", mk, {"email": EMAIL}, 202)
    done = until(
        lambda: stack.call("GET", f"/v1/customers/erasures/{erasure['id']}", mk),
        lambda e: e["status"] == "completed",
        "erasure",
    )
    assert done["returns"] == 2 and done["orders"] == 1
    assert not shows_the_customer(json.dumps(done))

    # the merchant still reads both returns, pseudonymised; the list finds nobody under the old address
    for ret in (open_return, closed):
        view = stack.http.get(
            f"{stack.api}/v1/returns/{ret['id']}", headers={"Authorization": f"Bearer {mk}"}, timeout=30
        )
        assert view.status_code == 200
        assert not shows_the_customer(view.text), view.text[:500]
    found = stack.call("GET", f"/v1/returns?customer_email={EMAIL}", mk)
    assert found["items"] == []
    # their objects are gone from S3, the session no longer opens, and the figures are the same
    assert not (mine & s3_keys(stack))
    stack.call("POST", f"/v1/portal/merchants/{slug}/sessions", None, {"order_number": "PRIV-1", "email": EMAIL}, 404)
    assert stack.call("GET", "/v1/reports/summary?from=2026-06-01&to=2027-05-31", mk) == summary
    # a second erasure finds nothing more and completes
    again = stack.call("POST", "/v1/customers/erase", mk, {"email": EMAIL}, 202)
    second = until(
        lambda: stack.call("GET", f"/v1/customers/erasures/{again['id']}", mk),
        lambda e: e["status"] == "completed",
        "second erasure",
    )
    assert second["returns"] == 0
