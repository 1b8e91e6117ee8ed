"""The whole return lifecycle through the API, the tracking queue, the consumer and the state machines."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.signatures import easypost_signature
from tests.support import Api, SteppingClock, drain_outbox, drain_queue, easypost_event


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def clock(aws) -> SteppingClock:
    from chalicelib import bootstrap

    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


def post_easypost(api: Api, body: bytes) -> Any:
    sig = easypost_signature("whsec-easypost-tests", body)
    return api.call("POST", "/v1/webhooks/easypost", raw=body, headers={"X-Hmac-Signature": sig})


def drain_tracking_queue(aws) -> dict[str, Any]:
    return drain_queue(aws.queue_urls["boomerang-tracking"])


def wait_for(api: Api, key: str, return_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.time() + timeout
    while True:
        ret = api.ok("GET", f"/v1/returns/{return_id}", key)
        if ret["status"] == status or time.time() > deadline:
            assert ret["status"] == status, ret
            return ret
        time.sleep(0.2)


def bus_tap(aws) -> str:
    """A queue subscribed to every Boomerang event on the bus (what a consumer of domain events sees)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=aws.event_bus_name, EventPattern=json.dumps({"source": ["boomerang"]}))
    events.put_targets(Rule="tap", EventBusName=aws.event_bus_name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def tapped(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_full_lifecycle_with_clarification_and_automatic_refund(api: Api, aws, clock: SteppingClock) -> None:
    # Given a merchant whose guideline asks for clarification on damaged items and refunds automatically
    tap = bus_tap(aws)
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/guidelines",
        t["m_key"],
        {
            "rules": [
                {
                    "name": "damaged needs a look",
                    "when": "checks.damaged == true",
                    "grade": "B",
                    "disposition": "refurbish",
                    "clarify": True,
                }
            ],
            "default": {"grade": "A", "disposition": "restock"},
        },
    )
    api.ok("PUT", "/v1/settings/refunds", t["m_key"], {"target": "manual", "auto_refund": True})
    ret = api.create_return(
        t,
        lines=[
            {"line_item_id": "L1", "quantity": 2, "reason": "too_small"},
            {"line_item_id": "L2", "quantity": 1, "reason": "damaged"},
        ],
    )
    rid, tn = ret["id"], ret["tracking_number"]

    # When the carrier reports it in transit, then delivered
    assert post_easypost(api, easypost_event("evt_1", tn, "in_transit", clock.advance(5))).status_code == 200
    assert post_easypost(api, easypost_event("evt_2", tn, "delivered", clock.advance(20))).status_code == 200
    assert drain_tracking_queue(aws)["failed"] == set()
    assert api.ok("GET", f"/v1/returns/{rid}", t["m_key"])["status"] == "delivered"

    # And the warehouse scans the label and inspects
    clock.advance(2)
    scanned = api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": tn})
    assert scanned["status"] == "received"
    api.ok(
        "POST",
        f"/v1/warehouse/returns/{rid}/inspection",
        t["wh_key"],
        {
            "items": [
                {"line_item_id": "L1", "received_quantity": 2, "checks": {"damaged": False}},
                {"line_item_id": "L2", "received_quantity": 1, "checks": {"damaged": True}},
            ]
        },
        202,
    )

    # Then processing waits for the merchant
    waiting = wait_for(api, t["m_key"], rid, "awaiting_feedback")
    grades = {i["line_item_id"]: (i["grade"], i["disposition"]) for i in waiting["items"]}
    assert grades == {"L1": ("A", "restock"), "L2": ("B", "refurbish")}

    # When the merchant approves, the return completes and the automatic refund goes out
    api.ok("POST", f"/v1/returns/{rid}/feedback", t["m_key"], {"decision": "approve"})
    done = wait_for(api, t["m_key"], rid, "refunded")
    assert done["refund"]["status"] == "succeeded"
    assert done["refund"]["amount"] == {"amount": "138.90", "currency": "EUR"}
    statuses = [e["status"] for e in done["timeline"] if e["type"].startswith("return.")]
    milestones = [
        "requested",
        "label_created",
        "in_transit",
        "delivered",
        "received",
        "inspected",
        "awaiting_feedback",
        "completed",
        "refunded",
    ]
    assert statuses == milestones

    # And every milestone was published on the bus (through the outbox), with ids but no personal data
    drain_outbox(aws)
    events = tapped(tap)
    types = [e["detail-type"] for e in events]
    for status in milestones:
        assert types.count(f"return.{status}") == 1, (status, types)
    assert types.count("item.graded") == 2 and "refund.succeeded" in types
    assert all(e["source"] == "boomerang" and e["detail"]["return_id"] == rid for e in events)
    # each with the id consumers deduplicate on: its timeline record's key
    ids = [e["detail"]["event_id"] for e in events]
    assert len(set(ids)) == len(ids) and all(i.startswith(f"RETURN#{rid}#TL#") for i in ids)
    assert "erika" not in json.dumps(events).lower()
