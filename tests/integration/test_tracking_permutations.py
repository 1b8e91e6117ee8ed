"""Carrier events arrive late, duplicated and in any order: the outcome must not depend on it (property-based).

For one return, a provider's story (pre transit, in transit, out for delivery, delivered, and a late in-transit
scan) is applied through `record_tracking_event` against moto in an order hypothesis chooses, with duplicates. The
final status and the multiset of `carrier.checkpoint` entries (provider, carrier_status, at) must equal applying the
story once in order; every checkpoint appears exactly once and the timeline lists them by carrier time.

Hypothesis examples cannot take function-scoped fixtures, so the test sets up the emulated account, the tenant and
one order once and creates a fresh return (its own tracking number) inside each example.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.keys import return_pk
from chalicelib.domain.tracking import TrackingEvent
from chalicelib.services.tracking import PARSERS, record_tracking_event
from local.provision import Resources
from tests.support import Api, aftership_event, easypost_event, sendcloud_event, shippo_event

Checkpoint = tuple[str, str, str]
# A provider's story: (body builder (tracking number, carrier time) -> body, the provider's word on the timeline)
Story = list[tuple[Callable[[str, datetime], bytes], str]]

HOURS = (0.0, 1.0, 2.0, 3.0, 1.5)  # carrier times of the story's events; the last is the late in-transit scan


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


STORIES: dict[str, Story] = {
    "easypost": [
        (lambda tn, at, i=i, word=word: easypost_event(f"evt_{tn}_{i}", tn, word, _iso(at)), word)
        for i, word in enumerate(["pre_transit", "in_transit", "out_for_delivery", "delivered", "in_transit"])
    ],
    "shippo": [
        (lambda tn, at: shippo_event(tn, "PRE_TRANSIT", _iso(at), "information_received"), "PRE_TRANSIT"),
        (lambda tn, at: shippo_event(tn, "TRANSIT", _iso(at), "package_departed"), "TRANSIT"),
        (lambda tn, at: shippo_event(tn, "TRANSIT", _iso(at), "out_for_delivery"), "TRANSIT"),
        (lambda tn, at: shippo_event(tn, "DELIVERED", _iso(at), "delivered"), "DELIVERED"),
        (lambda tn, at: shippo_event(tn, "TRANSIT", _iso(at), "package_arrived"), "TRANSIT"),
    ],
    "aftership": [
        (lambda tn, at, i=i, tag=tag: aftership_event(f"{tn}-{i}", tn, tag, at.isoformat()), tag)
        for i, tag in enumerate(["InfoReceived", "InTransit", "OutForDelivery", "Delivered", "InTransit"])
    ],
    "sendcloud": [
        (lambda tn, at, sid=sid, msg=msg: sendcloud_event(77, tn, sid, msg, _ms(at)), msg)
        for sid, msg in [
            (1000, "Ready to send"),
            (3, "En route to sorting center"),
            (92, "Driver en route"),
            (11, "Delivered"),
            (91, "Parcel en route"),
        ]
    ],
}


@pytest.fixture
def api(aws: Resources) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def test_any_order_with_duplicates_ends_like_applying_the_story_once_in_order(api: Api) -> None:
    # Given one tenant and one order with enough pieces for a return per example
    tenant = api.tenant()
    order = api.order(
        tenant["m_key"],
        items=[{"line_item_id": "L1", "sku": "SOCK", "name": "Sock", "quantity": 60, "unit_price": "5.00"}],
    )
    token = api.session(tenant["slug"], order)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    c = bootstrap.container()

    def new_return() -> dict[str, Any]:
        lines = [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]
        created: dict[str, Any] = api.ok("POST", "/v1/portal/returns", token, {"items": lines}, 201)
        return created

    def events_for(provider: str, tracking_number: str) -> list[TrackingEvent]:
        out = []
        for (build, _word), hours in zip(STORIES[provider], HOURS, strict=True):
            at = start + timedelta(hours=hours)
            event = PARSERS[provider](build(tracking_number, at).decode(), at)
            assert event is not None
            out.append(event)
        return out

    table = boto3.resource("dynamodb").Table(c.settings.table_name)

    def forget(return_id: str) -> None:
        """Delete an example's return once checked: moto copies the whole table on every transaction, so a table
        that kept every example's return would make each example slower than the one before."""
        pk = return_pk(return_id)
        items = table.query(KeyConditionExpression=Key("pk").eq(pk), ProjectionExpression="pk, sk")["Items"]
        with table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})

    def outcome(return_id: str) -> tuple[str, list[Checkpoint]]:
        view = api.ok("GET", f"/v1/returns/{return_id}", tenant["m_key"])
        checkpoints = [
            (e["provider"], e["carrier_status"], e["at"]) for e in view["timeline"] if e["type"] == "carrier.checkpoint"
        ]
        return view["status"], checkpoints

    baselines: dict[str, tuple[str, list[Checkpoint]]] = {}

    def baseline(provider: str) -> tuple[str, list[Checkpoint]]:
        """The story applied once, in order, to a return of its own."""
        if provider not in baselines:
            ret = new_return()
            for event in events_for(provider, ret["tracking_number"]):
                record_tracking_event(c, event)
            baselines[provider] = outcome(ret["id"])
            forget(ret["id"])
        return baselines[provider]

    @settings(max_examples=20, deadline=None, database=None)
    @given(data=st.data(), provider=st.sampled_from(sorted(STORIES)))
    def any_order(data: st.DataObject, provider: str) -> None:
        n = len(STORIES[provider])
        extra = data.draw(st.lists(st.integers(0, n - 1), max_size=3), label="duplicates")
        order = data.draw(st.permutations([*range(n), *extra]), label="delivery order")
        expected_status, expected_checkpoints = baseline(provider)

        # When the events of a fresh return arrive in this order, duplicates included
        ret = new_return()
        events = events_for(provider, ret["tracking_number"])
        for i in order:
            record_tracking_event(c, events[i])

        # Then the return ends as if each had arrived once, in order
        status, checkpoints = outcome(ret["id"])
        assert status == expected_status == "delivered"
        assert Counter(checkpoints) == Counter(expected_checkpoints)
        assert len(checkpoints) == len(set(checkpoints)) == n  # each checkpoint exactly once
        assert [at for _p, _w, at in checkpoints] == sorted(at for _p, _w, at in checkpoints)  # by carrier time
        assert [w for _p, w, _at in checkpoints] == [
            word for (_b, word), _h in sorted(zip(STORIES[provider], HOURS, strict=True), key=lambda s: s[1])
        ]
        forget(ret["id"])

    any_order()
