"""Multi-item writes are all-or-nothing: a failure in the middle leaves no partial record behind."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from chalice.test import Client

from app import app
from chalicelib.adapters.dynamodb.keys import order_pk
from tests.support import Api


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def test_failure_in_the_middle_of_return_creation_leaves_nothing(api: Api, aws) -> None:
    # Given an order, and a tracking-token collision planted so the 3rd of the transaction's items fails
    t = api.tenant()
    order = api.order(t["m_key"])
    token = api.session(t["slug"], order)
    table = boto3.resource("dynamodb").Table(aws.table_name)
    table.put_item(Item={"pk": "TRACKTOKEN#collision", "sk": "TRACKTOKEN", "data": json.dumps({"return_id": "x"})})
    order_before = table.get_item(Key={"pk": order_pk(t["merchant"]["id"], order["order_number"]), "sk": "ORDER"})

    # When the customer creates a return
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("chalicelib.services.returns.new_token", lambda nbytes=24: "collision")
        resp = api.call(
            "POST",
            "/v1/portal/returns",
            token,
            {
                "items": [
                    {"line_item_id": "L1", "quantity": 2, "reason": "too_small"},
                    {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
                ]
            },
        )

    # Then it fails as a conflict, and no return, timeline entry, order change or label remains
    assert resp.status_code == 409, resp.body
    returns = table.query(
        IndexName="gsi3", KeyConditionExpression=Key("gsi3pk").eq(f"MERCHANT#{t['merchant']['id']}#RETURNS")
    )["Items"]
    assert returns == []
    order_after = table.get_item(Key={"pk": order_pk(t["merchant"]["id"], order["order_number"]), "sk": "ORDER"})
    assert order_after["Item"] == order_before["Item"]
    objects = boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name, Prefix="labels/").get("KeyCount", 0)
    assert objects == 0
    # And the customer can still return everything afterwards
    ok = api.ok(
        "POST",
        "/v1/portal/returns",
        token,
        {"items": [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}]},
        201,
    )
    items = table.query(KeyConditionExpression=Key("pk").eq(f"RETURN#{ok['id']}"))["Items"]
    assert {i["sk"].split("#")[0] for i in items} == {"RETURN", "TL"}
