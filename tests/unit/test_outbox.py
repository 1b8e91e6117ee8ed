"""The transactional outbox without AWS: what a timeline record carries, what the relay publishes from a stream
record and what it reports as failed, how the publisher chunks and fails, and the local emulation of the filter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.adapters import event_bus
from chalicelib.adapters.dynamodb.outbox import bus_event, event_id
from chalicelib.adapters.dynamodb.repository import DynamoStore
from chalicelib.adapters.event_bus import BusEvent, EventBridgePublisher
from chalicelib.bootstrap import Container
from chalicelib.domain.returns import Return, ReturnItem
from chalicelib.services.outbox import relay
from infrastructure import definitions as d
from local.outbox import lambda_record, matches

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def labelled_return() -> Return:
    item = ReturnItem(
        line_item_id="L1", sku="SKU1", name="x", quantity=1, unit_price=Decimal("10.00"), reason="too_small"
    )
    ret = Return.request(
        return_id="ret_1",
        merchant_id="mer_1",
        warehouse_id="wh_1",
        order_number="O1",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=[item],
        tracking_token="tok",
        actor="customer",
        at=T0,
    )
    ret.note_customs_warning("no HS code", actor="system", at=T0)  # a note: no event
    ret.attach_label(carrier="sandbox", tracking_number="SB1", label_key="k", actor="customer", at=T0)
    return ret


def stream_record(rec: Any, sequence_number: str, event_name: str = "INSERT") -> dict[str, Any]:
    """What Lambda delivers for a record written by the repository (NEW_IMAGE)."""
    image = rec.serialize()
    return {
        "eventID": f"e{sequence_number}",
        "eventName": event_name,
        "eventSource": "aws:dynamodb",
        "eventVersion": "1.1",
        "awsRegion": "eu-central-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-central-1:123456789012:table/t/stream/2026-11-20T10:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_000_000.0,
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": sequence_number,
            "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE",
        },
    }


class RecordingPublisher:
    def __init__(self, fail: Sequence[int] = ()) -> None:
        self.fail = list(fail)
        self.published: list[BusEvent] = []

    def publish(self, events: Sequence[BusEvent]) -> list[int]:
        self.published += [e for i, e in enumerate(events) if i not in self.fail]
        return self.fail


def test_only_recorded_events_are_outbox_records_and_carry_the_detail_published_before() -> None:
    # Given a return with two events and a note
    ret = labelled_return()
    events = ret.events
    # When the repository maps its new timeline to records
    records = DynamoStore._timeline_records(ret)
    # Then the entries that are events carry type and detail (the detail exactly as published after the commit)
    assert [r.type for r in records] == ["return.requested", "customs.warning", "return.label_created"]
    assert [r.detail_type for r in records] == ["return.requested", None, "return.label_created"]
    assert [e.type for e in events] == ["return.requested", "return.label_created"]
    assert records[2].detail == json.dumps(events[1].detail(), default=str)
    assert json.loads(records[2].detail or "") == {
        "return_id": "ret_1",
        "merchant_id": "mer_1",
        "at": "2026-11-20T10:00:00Z",
        "status": "label_created",
        "carrier": "sandbox",
        "tracking_number": "SB1",
    }
    assert records[1].detail is None


def test_a_stream_record_becomes_the_bus_event_with_its_key_as_event_id() -> None:
    ret = labelled_return()
    rec = DynamoStore._timeline_records(ret)[2]
    event = bus_event(stream_record(rec, "101"))
    assert event is not None
    assert event.detail_type == "return.label_created"
    assert event.detail == {**ret.events[1].detail(), "event_id": f"RETURN#ret_1#{rec.sk}"}
    assert event.detail["event_id"] == event_id(rec.pk, rec.sk)
    # the same record delivered again is the same event, with the same id
    assert bus_event(stream_record(rec, "101")) == event


def test_records_without_an_event_are_not_published() -> None:
    ret = labelled_return()
    note, labelled = DynamoStore._timeline_records(ret)[1:]
    assert bus_event(stream_record(note, "1")) is None
    assert bus_event(stream_record(labelled, "2", event_name="MODIFY")) is None
    removed = stream_record(labelled, "3", event_name="REMOVE")
    del removed["dynamodb"]["NewImage"]
    assert bus_event(removed) is None


def test_the_relay_reports_what_was_not_published_by_sequence_number() -> None:
    # Given three outbox records and a note in the stream
    first, second = labelled_return(), labelled_return()
    a, note, b = DynamoStore._timeline_records(first)
    c = DynamoStore._timeline_records(second)[2]
    records = [stream_record(a, "1"), stream_record(note, "2"), stream_record(b, "3"), stream_record(c, "4")]
    # When the bus refuses the second event
    publisher = RecordingPublisher(fail=[1])
    failed = relay(Container(overrides={"events": publisher}), records)
    # Then it is reported by its record's sequence number (Lambda retries from there); the others went out in order
    assert failed == ["3"]
    assert [e.detail["event_id"] for e in publisher.published] == [f"{a.pk}#{a.sk}", f"{c.pk}#{c.sk}"]


def test_an_unreadable_record_fails_with_every_later_one() -> None:
    ret = labelled_return()
    a, _, b = DynamoStore._timeline_records(ret)
    broken = stream_record(b, "2")
    broken["dynamodb"]["NewImage"]["detail"] = {"S": "not json"}
    publisher = RecordingPublisher()
    failed = relay(Container(overrides={"events": publisher}), [stream_record(a, "1"), broken, stream_record(a, "3")])
    assert failed == ["2", "3"]
    assert [e.detail_type for e in publisher.published] == ["return.requested"]


def test_the_handler_answers_batch_item_failures() -> None:
    from chalicelib import bootstrap
    from functions.event_publisher import handler as module

    ret = labelled_return()
    a, _, b = DynamoStore._timeline_records(ret)
    with bootstrap.override(events=RecordingPublisher(fail=[0])):
        result = module.handler({"Records": [stream_record(a, "7"), stream_record(b, "8")]}, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": "7"}]}


class FakeContext:
    function_name = "boomerang-event_publisher"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:boomerang-event_publisher"
    aws_request_id = "req-1"


class FakeEvents:
    """EventBridge's PutEvents: refuses the entries whose position in `refuse` (per call), or raises."""

    def __init__(self, refuse: dict[int, set[int]] | None = None, raise_on: set[int] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or {}
        self.raise_on = raise_on or set()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        call = len(self.calls)
        self.calls.append(Entries)
        if call in self.raise_on:
            raise ConnectionError("EventBridge unreachable")
        refused = self.refuse.get(call, set())
        return {
            "FailedEntryCount": len(refused),
            "Entries": [
                {"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"} if i in refused else {"EventId": "x"}
                for i in range(len(Entries))
            ],
        }


def events(n: int) -> list[BusEvent]:
    return [BusEvent("return.requested", {"return_id": f"r{i}", "at": T0}) for i in range(n)]


def test_the_publisher_puts_chunks_of_ten_with_the_entries_published_today(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEvents()
    monkeypatch.setattr(event_bus, "client", lambda service: fake)
    assert EventBridgePublisher("bus").publish(events(23)) == []
    assert [len(c) for c in fake.calls] == [10, 10, 3]
    assert fake.calls[0][0] == {
        "Source": "boomerang",
        "DetailType": "return.requested",
        "Detail": json.dumps({"return_id": "r0", "at": str(T0)}),
        "EventBusName": "bus",
        "Resources": [],
    }
    assert event_bus.SOURCE == d.EVENT_SOURCE


def test_the_publisher_stops_at_the_first_chunk_with_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeEvents(refuse={1: {2, 5}})
    monkeypatch.setattr(event_bus, "client", lambda service: fake)
    # the refused entries of the second chunk, and everything after it (not tried)
    assert EventBridgePublisher("bus").publish(events(25)) == [12, 15, *range(20, 25)]
    assert len(fake.calls) == 2
    failing = FakeEvents(raise_on={0})
    monkeypatch.setattr(event_bus, "client", lambda service: failing)
    assert EventBridgePublisher("bus").publish(events(12)) == list(range(12))


# -- the local emulation of the event source's filter -----------------------------------------------------------


def test_the_local_filter_selects_new_outbox_records_only() -> None:
    pattern = d.OUTBOX.filter_pattern()
    ret = labelled_return()
    a, note, b = DynamoStore._timeline_records(ret)
    assert matches(pattern, stream_record(a, "1"))
    assert matches(pattern, stream_record(b, "2"))
    assert not matches(pattern, stream_record(note, "3"))  # a note carries no event
    assert not matches(pattern, stream_record(b, "4", event_name="MODIFY"))
    removed = stream_record(b, "5", event_name="REMOVE")
    del removed["dynamodb"]["NewImage"]
    assert not matches(pattern, removed)
    other = stream_record(b, "6")
    other["dynamodb"]["Keys"]["sk"] = {"S": "CARRIEREVT#easypost#evt_1"}
    assert not matches(pattern, other)


def test_the_local_filter_refuses_operators_it_does_not_emulate() -> None:
    with pytest.raises(ValueError, match="not emulated"):
        matches({"eventName": [{"anything-but": ["REMOVE"]}]}, {"eventName": "INSERT"})


def test_records_are_reshaped_as_lambda_delivers_them() -> None:
    raw = {
        "eventID": "1",
        "eventName": "INSERT",
        "awsRegion": "us-east-1",  # moto's, whatever the region
        "dynamodb": {
            "ApproximateCreationDateTime": T0,
            "Keys": {"pk": {"S": "p"}, "sk": {"S": "TL#1"}},
            "NewImage": {"pk": {"S": "p"}, "sk": {"S": "TL#1"}, "blob": {"B": b"\x00\x01"}},
            "SequenceNumber": "1",
        },
    }
    record = lambda_record(raw, "arn:stream", "eu-central-1")
    assert record["awsRegion"] == "eu-central-1"
    assert record["eventSourceARN"] == "arn:stream"
    assert record["dynamodb"]["ApproximateCreationDateTime"] == T0.timestamp()
    assert record["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="}
    assert raw["dynamodb"]["ApproximateCreationDateTime"] == T0  # the input is left alone
