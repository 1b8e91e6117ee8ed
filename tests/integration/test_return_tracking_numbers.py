"""A pre-printed return tracking number belongs to one merchant per warehouse: a scan of it must never receive a
parcel on another tenant's return. The claim is written in the order's own transaction, with a condition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.bootstrap import container
from tests.support import OPERATOR_KEY, Api, unique


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def _order(api: Api, key: str, numbers: list[str], order_number: str | None = None, expect: int = 201) -> Any:
    body = {
        "order_number": order_number or unique("ORD"),
        "email": "erika@example.com",
        "currency": "EUR",
        "ordered_at": "2026-11-15T10:00:00Z",
        "delivered_at": "2026-11-20T10:00:00Z",
        "shipping_address": {
            "name": "Erika Mustermann",
            "street": "Musterweg",
            "house_number": "5",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        "items": [{"line_item_id": "L1", "sku": "SHIRT-M", "name": "Shirt", "quantity": 1, "unit_price": "29.95"}],
        "return_tracking_numbers": numbers,
    }
    resp = api.call("POST", "/v1/orders", key, body)
    assert resp.status_code == expect, (resp.status_code, resp.body)
    return body, json.loads(resp.body) if resp.body else None


def _item_count(aws: Any) -> int:
    return int(boto3.client("dynamodb").scan(TableName=aws.table_name, Select="COUNT")["Count"])


def test_a_number_another_merchant_of_the_warehouse_uses_is_refused_and_nothing_is_written(api: Api, aws: Any) -> None:
    # Given two merchants of one warehouse, the first with a pre-printed return number
    t = api.tenant()
    other = api.merchant(t["warehouse"]["id"])
    number = unique("PRE")
    _order(api, t["m_key"], [number])
    # When the second registers the same number on an order of its own
    before = _item_count(aws)
    body, err = _order(api, other["api_key"], [unique("PRE"), number], expect=422)
    # Then it is refused naming the field, and nothing of that order is written
    assert err["errors"][0]["loc"] == ["return_tracking_numbers", 1]
    assert _item_count(aws) == before
    assert container().store.get_order(other["id"], body["order_number"]) is None
    # nor can it be added later to an order the second merchant already has
    ok_body, _ = _order(api, other["api_key"], [])
    _, err = _order(api, other["api_key"], [number], order_number=ok_body["order_number"], expect=422)
    assert err["errors"][0]["loc"] == ["return_tracking_numbers", 0]
    assert container().store.get_order(other["id"], ok_body["order_number"]).return_tracking_numbers == []  # type: ignore[union-attr]


def test_the_same_number_in_two_warehouses_is_fine(api: Api) -> None:
    number = unique("PRE")
    _order(api, api.tenant()["m_key"], [number])
    _order(api, api.tenant()["m_key"], [number])


def test_a_merchant_upserting_its_own_order_again_keeps_its_number(api: Api) -> None:
    t = api.tenant()
    number = unique("PRE")
    body, _ = _order(api, t["m_key"], [number])
    _order(api, t["m_key"], [number], order_number=body["order_number"], expect=200)
    # and may use it on another order of its own
    _order(api, t["m_key"], [number])
    assert OPERATOR_KEY  # the operator is not involved
