"""The transactional outbox in moto (docs/adr/0005): a domain event is written with the change it announces and
reaches the bus only through the table's stream (local/outbox.py playing Lambda's event source mapping,
functions/event_publisher putting the events on the bus), at least once, under a stable event id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters import event_bus
from chalicelib.domain.errors import ConcurrentModification
from chalicelib.services.common import change_return
from tests.support import Api, drain_outbox


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def tap(aws: Any) -> str:
    """A queue subscribed to every Boomerang event on the bus (what a consumer of domain events sees)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="outbox-tap")["QueueUrl"]
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


def outbox_records(aws: Any, return_id: str) -> dict[str, dict[str, Any]]:
    """The return's timeline records that carry an event, by event id (pk#sk)."""
    items = boto3.client("dynamodb").query(
        TableName=aws.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :tl)",
        ExpressionAttributeValues={":pk": {"S": f"RETURN#{return_id}"}, ":tl": {"S": "TL#"}},
    )["Items"]
    return {f"{i['pk']['S']}#{i['sk']['S']}": i for i in items if "detail_type" in i}


def test_a_change_and_its_events_are_one_write_and_the_bus_hears_of_them_through_the_stream(
    api: Api, aws: Any, tap: str
) -> None:
    # Given a customer's new return
    t = api.tenant()
    ret = api.create_return(t)
    # Then its events are in the table, with the return, and not yet on the bus
    records = outbox_records(aws, ret["id"])
    assert sorted(r["detail_type"]["S"] for r in records.values()) == ["return.label_created", "return.requested"]
    assert tapped(tap) == []
    # When the stream is relayed
    drained = drain_outbox(aws)
    # Then each event went on the bus once, as published before (source, detail-type, detail) plus its event id
    assert (drained.delivered, drained.failed) == (2, 0)
    events = tapped(tap)
    assert sorted(e["detail-type"] for e in events) == ["return.label_created", "return.requested"]
    for e in events:
        record = records[e["detail"]["event_id"]]
        assert e["source"] == "boomerang"
        assert e["detail-type"] == record["detail_type"]["S"]
        assert e["detail"] == {**json.loads(record["detail"]["S"]), "event_id": e["detail"]["event_id"]}
        assert e["detail"]["return_id"] == ret["id"] and e["detail"]["merchant_id"] == ret["merchant_id"]
    # and nothing is delivered twice without a failure
    assert drain_outbox(aws).delivered == 0
    assert tapped(tap) == []


class FailingFirstEntryOnce:
    """EventBridge refusing the first entry of the first PutEvents (a throttled entry), then the real one."""

    def __init__(self) -> None:
        self.real = boto3.client("events")
        self.calls = 0

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        self.calls += 1
        if self.calls > 1:
            return dict(self.real.put_events(Entries=Entries))
        rest = self.real.put_events(Entries=Entries[1:])["Entries"] if len(Entries) > 1 else []
        refused = {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
        return {"FailedEntryCount": 1, "Entries": [refused, *rest]}


def test_an_event_the_bus_refused_is_published_by_the_next_drain_under_the_same_id(
    api: Api, aws: Any, tap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    flaky = FailingFirstEntryOnce()
    monkeypatch.setattr(event_bus, "client", lambda service: flaky)
    # When PutEvents refuses return.requested (its batch also carries return.label_created, which goes out)
    first = drain_outbox(aws)
    assert (first.delivered, first.failed) == (2, 1)
    assert [e["detail-type"] for e in tapped(tap)] == ["return.label_created"]
    # Then the relay hands the refused record over again (and, as Lambda does, what followed it in the batch)
    second = drain_outbox(aws)
    assert (second.delivered, second.failed) == (2, 0)
    again = tapped(tap)
    assert sorted(e["detail-type"] for e in again) == ["return.label_created", "return.requested"]
    assert drain_outbox(aws).delivered == 0
    # At least once, never lost: a redelivered event has the id it had, so consumers can tell it is the same
    records = outbox_records(aws, ret["id"])
    assert {e["detail"]["event_id"] for e in again} == set(records)


def test_a_cancelled_transaction_publishes_nothing_and_the_relay_reads_on(api: Api, aws: Any, tap: str) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    drain_outbox(aws)
    tapped(tap)
    c = bootstrap.container()
    # Given a copy of the return that another change makes stale
    stale = c.store.get_return(ret["id"])
    change_return(c, ret["id"], lambda r: setattr(r, "notify_customer", False))  # no event
    # When the stale copy is cancelled: the transaction (return, its timeline, its event) is refused
    stale.cancel(actor="customer", at=c.now(), reason="changed my mind")
    with pytest.raises(ConcurrentModification):
        c.store.save_return(stale)
    # Then nothing of it reaches the bus
    assert drain_outbox(aws).delivered == 0
    assert tapped(tap) == []
    # And the change made again, committed this time, is published once
    change_return(c, ret["id"], lambda r: r.cancel(actor="customer", at=c.now(), reason="changed my mind"))
    assert drain_outbox(aws).delivered == 1
    (event,) = tapped(tap)
    assert event["detail-type"] == "return.cancelled" and event["detail"]["reason"] == "changed my mind"


def test_an_unidentified_parcel_is_announced_through_the_outbox(api: Api, aws: Any, tap: str) -> None:
    t = api.tenant()
    resp = api.call("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": "UNREADABLE-9", "notes": "label torn"})
    assert resp.status_code == 404
    parcel_id = json.loads(resp.body)["unidentified_parcel_id"]
    assert tapped(tap) == []
    assert drain_outbox(aws).delivered == 1
    (event,) = tapped(tap)
    assert event["detail-type"] == "parcel.unidentified"
    assert event["detail"]["parcel_id"] == parcel_id
    assert event["detail"]["warehouse_id"] == t["warehouse"]["id"]
    assert (event["detail"]["return_id"], event["detail"]["merchant_id"]) == ("", "")
    assert event["detail"]["event_id"].startswith(f"PARCEL#{parcel_id}#TL#")
