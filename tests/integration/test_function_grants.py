"""Least privilege against the code: functions run through their handlers here, and every AWS call they make is
checked against their grants in infrastructure/definitions.py (tests/support/iam_audit.py, installed by the `aws`
fixture for every test: a call the grants do not allow fails the test as AccessDenied would fail it in AWS)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
import responses
from chalice.test import Client

from app import app
from chalicelib.adapters.carriers import easypost
from chalicelib.bootstrap import container
from infrastructure import definitions as d
from local.lambda_router import call_handler
from local.pollers import scheduled_event
from tests.support import Api, iam_audit
from tests.support.iam_audit import Audit, accesses


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def _audit() -> Audit:
    audit = iam_audit.current()
    assert audit is not None
    return audit


def test_expire_labels_voids_an_easypost_label_with_the_carrier_credentials(api: Api, aws: Any) -> None:
    # Given an unused EasyPost label whose validity has passed, and the operator's EasyPost key in SSM
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/policy",
        t["m_key"],
        {"return_window_days": 30, "reasons": [{"code": "too_small", "label": "Too small"}], "label_validity_days": 7},
    )
    ret = api.create_return(t, [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}])
    boto3.client("dynamodb").update_item(
        TableName=aws.table_name,
        Key={"pk": {"S": f"RETURN#{ret['id']}"}, "sk": {"S": "RETURN"}},
        UpdateExpression="SET carrier = :c",
        ExpressionAttributeValues={":c": {"S": "easypost"}},
    )
    boto3.client("ssm").put_parameter(
        Name="/boomerang/carriers/default/easypost/api_key", Value="EZTK-test", Type="SecureString"
    )
    c = container()
    real = c.clock
    c.clock = lambda: real() + timedelta(days=8)  # type: ignore[method-assign]
    try:
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.GET,
                re.compile(re.escape(f"{easypost.BASE_URL}/trackers") + r".*"),
                json={"trackers": [{"id": "trk_1", "tracking_code": ret["tracking_number"], "shipment_id": "shp_1"}]},
            )
            rsps.add(responses.POST, f"{easypost.BASE_URL}/shipments/shp_1/refund", json={"refund_status": "submitted"})
            # When the scheduled function runs
            out = call_handler("expire_labels", scheduled_event("expire_labels", "eu-central-1"))
            # Then the label is voided at EasyPost and the return expires
            assert [call.request.method for call in rsps.calls] == ["GET", "POST"]
    finally:
        c.clock = real  # type: ignore[method-assign]
    assert out == {"expired": 1}
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "expired"
    # and it read the carrier's credentials (which its grants must allow: the aws fixture fails the test otherwise)
    used = {(a.action, a.name) for a in _audit().seen if a.function == "expire_labels"}
    assert ("ssm:GetParameter", "carriers/default/easypost/api_key") in used


def test_a_call_outside_the_grants_is_a_denial() -> None:
    # Given the photo processor's grants (uploads and thumbnails, not labels or exports)
    audit = Audit()
    # When it reads a photo, writes a thumbnail, and then reads a label and writes an export
    audit.check("photo_processor", "s3", "GetObject", {"Key": "photos/m/r/L1/p.png"})
    audit.check("photo_processor", "s3", "PutObject", {"Key": "thumbs/m/r/L1/p.jpg"})
    audit.check("photo_processor", "s3", "GetObject", {"Key": "labels/m/r.pdf"})
    audit.check("photo_processor", "s3", "PutObject", {"Key": "exports/m/x.csv"})
    audit.check("export_worker", "dynamodb", "PutItem", {"Item": {"pk": {"S": "RETURN#r"}}})
    audit.check("export_worker", "dynamodb", "PutItem", {"Item": {"pk": {"S": "EXPORT#m"}}})
    # Then only the last two S3 calls and the write outside EXPORT# are denied
    assert [(a.function, a.action, a.name) for a in audit.denied] == [
        ("photo_processor", "s3:GetObject", "labels/m/r.pdf"),
        ("photo_processor", "s3:PutObject", "exports/m/x.csv"),
        ("export_worker", "dynamodb:PutItem", "RETURN#r"),
    ]


def test_calls_are_authorized_as_aws_authorizes_them() -> None:
    # a transaction item by item, HEAD as GetObject, multipart parts as PutObject, parameters below the prefix
    tx = {
        "TransactItems": [
            {"Put": {"Item": {"pk": {"S": "RETURN#1"}}}},
            {"Delete": {"Key": {"pk": {"S": "RIDX#m#status=x"}}}},
            {"ConditionCheck": {"Key": {"pk": {"S": "ORDER#m#1"}}}},
        ]
    }
    assert accesses("dynamodb", "TransactWriteItems", tx) == [
        ("dynamodb:PutItem", d.On.TABLE, "RETURN#1"),
        ("dynamodb:DeleteItem", d.On.TABLE, "RIDX#m#status=x"),
        ("dynamodb:ConditionCheckItem", d.On.TABLE, "ORDER#m#1"),
    ]
    assert accesses("s3", "HeadObject", {"Key": "photos/a"}) == [("s3:GetObject", d.On.BUCKET, "photos/a")]
    assert accesses("s3", "UploadPart", {"Key": "exports/a"}) == [("s3:PutObject", d.On.BUCKET, "exports/a")]
    assert accesses("ssm", "GetParameter", {"Name": "/boomerang/carriers/default/dhl_de/api_key"}) == [
        ("ssm:GetParameter", d.On.PARAMETERS, "carriers/default/dhl_de/api_key")
    ]


def test_every_function_need_is_a_capability_and_photo_processor_is_limited_to_its_prefixes() -> None:
    for fn in d.FUNCTIONS:
        assert set(fn.needs) <= set(d.CAPABILITIES), fn.name
    assert set(d.API_NEEDS) <= set(d.CAPABILITIES)
    needs = next(fn.needs for fn in d.FUNCTIONS if fn.name == "photo_processor")
    for key in ("labels/m/r.pdf", "exports/m/x.csv", "customer/m/o/L1/p.png", "thumbs/m/r/L1/p.jpg"):
        assert not d.allows(needs, "s3:GetObject", d.On.BUCKET, key), key
    assert d.allows(needs, "s3:PutObject", d.On.BUCKET, "thumbs/parcels/w/p/x.jpg")
    assert not d.allows(needs, "s3:PutObject", d.On.BUCKET, "photos/m/r/L1/p.png")
    assert not d.allows(needs, "dynamodb:DeleteItem", d.On.TABLE, "RETURN#r")
