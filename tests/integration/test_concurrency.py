"""Concurrent writers on one return lose no update: every change is a versioned, conditional write that a lost
race retries from a fresh read."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.repository import DynamoStore
from chalicelib.domain.errors import ConcurrentModification
from chalicelib.domain.tracking import CarrierStatus, TrackingEvent
from chalicelib.services import processing
from chalicelib.services.common import commit
from chalicelib.services.tracking import record_tracking_event
from tests.support import Api, inspect, received_return, wait_for_status


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def interleave(monkeypatch: pytest.MonkeyPatch, when: Any, interloper: Any) -> list[int]:
    """Run `interloper` once, between the first read and the first write of the change `when` selects."""
    real = DynamoStore.save_return
    fired: list[int] = []

    def save_return(self: DynamoStore, ret: Any, *args: Any, **kwargs: Any) -> None:
        if not fired and when(ret):
            fired.append(1)
            interloper()  # commits first: our version is now stale
        real(self, ret, *args, **kwargs)

    monkeypatch.setattr(DynamoStore, "save_return", save_return)
    return fired


def photo_recorded(return_id: str, key: str) -> None:
    c = bootstrap.container()
    ret = c.store.get_return(return_id)
    ret.record_photo(key, None, actor="test:photo", at=c.now())
    commit(c, ret)


def test_an_inspection_racing_a_photo_upload_keeps_both(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    t = api.tenant()
    ret = received_return(api, t)
    key = f"photos/{ret['merchant_id']}/{ret['id']}/parcel/ph_race.jpg"
    fired = interleave(monkeypatch, lambda r: r.status.value == "inspected", lambda: photo_recorded(ret["id"], key))
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {"tag": "ok"}}])
    assert fired
    final = wait_for_status(api, t["m_key"], ret["id"], "completed")
    assert [p["key"] for p in final["parcel_photos"]] == [key]
    assert final["items"][0]["checks"] == {"tag": "ok"}
    types = [e["type"] for e in final["timeline"]]
    assert types.count("photo.added") == 1 and types.count("return.inspected") == 1


def test_feedback_racing_a_late_carrier_checkpoint_keeps_both(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/guidelines",
        t["m_key"],
        {
            "rules": [{"name": "look", "when": "true", "grade": "B", "disposition": "refurbish", "clarify": True}],
            "default": {"grade": "A", "disposition": "restock"},
        },
    )
    ret = received_return(api, t)
    inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 1, "checks": {}}])
    wait_for_status(api, t["m_key"], ret["id"], "awaiting_feedback")
    c = bootstrap.container()
    late = TrackingEvent(
        provider="easypost",
        event_id="evt_late",
        tracking_number=ret["tracking_number"],
        status=CarrierStatus.DELIVERED,
        occurred_at=c.now(),
        carrier_status="delivered",
    )
    fired = interleave(
        monkeypatch, lambda r: r.status.value == "completed", lambda: record_tracking_event(bootstrap.container(), late)
    )
    processing.resolve_feedback(c, t["merchant"]["id"], ret["id"], "approve", [], "fine")
    assert fired
    final = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    types = [e["type"] for e in final["timeline"]]
    assert "carrier.checkpoint" in types and "feedback.received" in types
    assert final["status"] in ("completed", "refunded")


def test_many_writers_at_once_lose_nothing(api: Api) -> None:
    # Given one return and two writers hammering it at the same time
    t = api.tenant()
    ret = received_return(api, t)
    c = bootstrap.container()
    errors: list[BaseException] = []

    def carrier() -> None:
        try:
            for n in range(8):
                event = TrackingEvent(
                    provider="easypost",
                    event_id=f"evt_{n}",
                    tracking_number=ret["tracking_number"],
                    status=CarrierStatus.IN_TRANSIT,
                    occurred_at=c.now(),
                    carrier_status="in_transit",
                )
                for _ in range(5):  # a message that lost every race is delivered again by SQS
                    try:
                        record_tracking_event(c, event)
                        break
                    except ConcurrentModification:
                        continue
                else:
                    raise AssertionError("the carrier event never got through")
        except BaseException as exc:
            errors.append(exc)

    def photos() -> None:
        try:
            for n in range(8):
                for _ in range(10):  # the services' retry loop, as photos.py does it
                    r = c.store.get_return(ret["id"])
                    r.record_photo(f"photos/x/{ret['id']}/parcel/p{n}.jpg", None, actor="test", at=c.now())
                    try:
                        commit(c, r)
                        break
                    except Exception as exc:  # ConcurrentModification: read again
                        if type(exc).__name__ != "ConcurrentModification":
                            raise
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=carrier), threading.Thread(target=photos)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    # Then every change is there exactly once
    assert not errors, errors
    final = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    types = [e["type"] for e in final["timeline"]]
    assert types.count("carrier.checkpoint") == 8 and types.count("photo.added") == 8
    assert len(final["parcel_photos"]) == 8
