"""The pure rules of outbound webhooks: event types, matching, backoff (URL checks: test_urls.py), delivery identity."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import subscriptions as dom
from chalicelib.domain.signatures import boomerang_signature
from infrastructure import definitions as d

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def sub(*events: str) -> dom.Subscription:
    return dom.Subscription("sub_1", "m_1", "https://hooks.example.com", events, AT)


def test_the_bus_rule_carries_exactly_the_subscribable_event_types() -> None:
    assert set(d.MERCHANT_WEBHOOKS.detail_types) == set(dom.EVENT_TYPES)
    assert len(dom.EVENT_TYPES) == 22 and d.MERCHANT_WEBHOOKS.queue is d.WEBHOOK_QUEUE


def test_matching() -> None:
    assert sub("return.requested").matches("return.requested")
    assert not sub("return.requested").matches("return.completed")
    assert sub("*").matches("parcel.unidentified")


@pytest.mark.parametrize(
    ("events", "locs"),
    [
        (["return.requested"], []),
        (["*"], []),
        ([], [["events"]]),
        (["return.requested", "bogus"], [["events", 1]]),
        (["*", "return.requested"], [["events", 0]]),
        (["RETURN.REQUESTED"], [["events", 0]]),
    ],
)
def test_event_errors(events: list[str], locs: list[list[object]]) -> None:
    assert [e["loc"] for e in dom.event_errors(events)] == locs


def test_events_are_deduplicated_in_order() -> None:
    assert dom.normalize_events(["b", "a", "b"]) == ("b", "a")


def test_backoff_schedule() -> None:
    waits = [dom.next_wait(n) for n in range(1, dom.MAX_ATTEMPTS + 1)]
    assert dom.MAX_ATTEMPTS == 8
    assert waits[:6] == [
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=6),
    ]
    assert waits[-1] is None  # after the 8th attempt: failed
    steps = [w for w in waits if w is not None]
    assert all(a < b for a, b in itertools.pairwise(steps))


def test_queue_delay_is_capped_at_sqs_maximum() -> None:
    assert dom.queue_delay(timedelta(seconds=30)) == 30
    assert dom.queue_delay(timedelta(hours=2)) == 900
    assert dom.queue_delay(timedelta(seconds=-5)) == 0
    assert dom.queue_delay(timedelta(seconds=0.2)) == 1


def test_delivery_id_is_stable_per_event_and_subscription_and_sorts_by_time() -> None:
    a = dom.delivery_id("RETURN#r1#TL#x#1", "sub_1", AT)
    assert a == dom.delivery_id("RETURN#r1#TL#x#1", "sub_1", AT)
    assert a != dom.delivery_id("RETURN#r1#TL#x#1", "sub_2", AT)
    assert a != dom.delivery_id("RETURN#r1#TL#x#2", "sub_1", AT)
    later = dom.delivery_id("RETURN#r1#TL#x#0", "sub_1", AT + timedelta(seconds=1))
    assert later > a


def test_payload_and_signature() -> None:
    body = dom.payload("evt", "return.requested", "2026-11-26T10:00:00Z", {"return_id": "r1"})
    assert (
        body == '{"id":"evt","type":"return.requested","created_at":"2026-11-26T10:00:00Z","data":{"return_id":"r1"}}'
    )
    sig = boomerang_signature("s3cret", body.encode())
    assert sig.startswith("sha256=") and len(sig) == 7 + 64


def test_views_never_carry_a_secret_and_pending_shows_the_next_attempt() -> None:
    assert set(sub("*").to_dict()) == {"id", "url", "events", "created_at"}
    delivery = dom.Delivery(
        "dlv_1",
        "m_1",
        "sub_1",
        "evt",
        "return.requested",
        "{}",
        dom.DeliveryStatus.PENDING,
        1,
        AT,
        last_status_code=500,
        last_error="HTTP 500",
        next_attempt_at=AT + timedelta(seconds=30),
    )
    view = delivery.to_dict()
    assert view["status"] == "pending" and view["next_attempt_at"] == "2026-11-26T10:00:30Z"
    assert "payload" not in view and "delivered_at" not in view
