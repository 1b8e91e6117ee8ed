"""Every provider's words map to the normalized vocabulary; the parsers read the documented payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chalicelib.domain.errors import MalformedInput
from chalicelib.domain.tracking import (
    AFTERSHIP,
    AFTERSHIP_SUBTAG,
    EASYPOST,
    SENDCLOUD_BY_ID,
    SENDCLOUD_BY_MESSAGE,
    SHIPPO,
    SHIPPO_SUBSTATUS,
    CarrierStatus,
    normalize_aftership,
    normalize_easypost,
    normalize_sendcloud,
    normalize_shippo,
)
from chalicelib.services.tracking import PARSERS, parse_aftership, parse_sendcloud, parse_shippo
from tests.support import aftership_event, easypost_event, sendcloud_event, shippo_event

C = CarrierStatus
RECEIVED = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)

# The expectations are written out here, word by word from the vendors' documentation, independently of the tables
# in chalicelib/domain/tracking.py; each test also checks that the table holds exactly these words.
EASYPOST_EXPECTED = {
    "unknown": C.UNKNOWN,
    "pre_transit": C.PRE_TRANSIT,
    "in_transit": C.IN_TRANSIT,
    "out_for_delivery": C.OUT_FOR_DELIVERY,
    "delivered": C.DELIVERED,
    "available_for_pickup": C.AVAILABLE_FOR_PICKUP,
    "return_to_sender": C.RETURN_TO_SENDER,
    "failure": C.FAILURE,
    "cancelled": C.CANCELLED,
    "error": C.FAILURE,
}
SHIPPO_EXPECTED = {
    "UNKNOWN": C.UNKNOWN,
    "PRE_TRANSIT": C.PRE_TRANSIT,
    "TRANSIT": C.IN_TRANSIT,
    "DELIVERED": C.DELIVERED,
    "RETURNED": C.RETURN_TO_SENDER,
    "FAILURE": C.FAILURE,
}
SHIPPO_SUBSTATUS_EXPECTED = {
    ("TRANSIT", "out_for_delivery"): C.OUT_FOR_DELIVERY,
    ("TRANSIT", "pickup_available"): C.AVAILABLE_FOR_PICKUP,
    ("FAILURE", "package_lost"): C.LOST,
}
AFTERSHIP_EXPECTED = {
    "Pending": C.PRE_TRANSIT,
    "InfoReceived": C.PRE_TRANSIT,
    "InTransit": C.IN_TRANSIT,
    "OutForDelivery": C.OUT_FOR_DELIVERY,
    "AttemptFail": C.FAILURE,
    "AvailableForPickup": C.AVAILABLE_FOR_PICKUP,
    "Delivered": C.DELIVERED,
    "Exception": C.FAILURE,
    "Expired": C.UNKNOWN,
}
AFTERSHIP_SUBTAG_EXPECTED = {
    "Exception_010": C.RETURN_TO_SENDER,  # Returning to sender
    "Exception_011": C.RETURN_TO_SENDER,  # Returned to sender
    "Exception_013": C.LOST,  # Shipment lost
}
SENDCLOUD_ID_EXPECTED = {
    1: ("Announced", C.PRE_TRANSIT),
    3: ("En route to sorting center", C.IN_TRANSIT),
    4: ("Delivery delayed", C.IN_TRANSIT),
    5: ("Sorted", C.IN_TRANSIT),
    6: ("Not sorted", C.IN_TRANSIT),
    7: ("Being sorted", C.IN_TRANSIT),
    8: ("Delivery attempt failed", C.FAILURE),
    11: ("Delivered", C.DELIVERED),
    12: ("Awaiting customer pickup", C.AVAILABLE_FOR_PICKUP),
    13: ("Announced: not collected", C.PRE_TRANSIT),
    15: ("Error collecting", C.FAILURE),
    22: ("Shipment picked up by driver", C.IN_TRANSIT),
    80: ("Unable to deliver", C.FAILURE),
    91: ("Parcel en route", C.IN_TRANSIT),
    92: ("Driver en route", C.OUT_FOR_DELIVERY),
    93: ("Shipment collected by customer", C.DELIVERED),
    999: ("No label", C.PRE_TRANSIT),
    1000: ("Ready to send", C.PRE_TRANSIT),
    1001: ("Being announced", C.PRE_TRANSIT),
    1002: ("Announcement failed", C.FAILURE),
    1337: ("Unknown status - check carrier track & trace page for more insights", C.UNKNOWN),
    1998: ("Cancelled upstream", C.CANCELLED),
    1999: ("Cancellation requested", C.UNKNOWN),
    2000: ("Cancelled", C.CANCELLED),
    2001: ("Submitting cancellation request", C.UNKNOWN),
}
SENDCLOUD_MESSAGE_EXPECTED = {
    "Announced": C.PRE_TRANSIT,
    "Announced: not collected": C.PRE_TRANSIT,
    "Being announced": C.PRE_TRANSIT,
    "Ready to send": C.PRE_TRANSIT,
    "No label": C.PRE_TRANSIT,
    "En route to sorting center": C.IN_TRANSIT,
    "At sorting centre": C.IN_TRANSIT,
    "At customs": C.IN_TRANSIT,
    "Sorted": C.IN_TRANSIT,
    "Not sorted": C.IN_TRANSIT,
    "Being sorted": C.IN_TRANSIT,
    "Parcel en route": C.IN_TRANSIT,
    "Shipment picked up by driver": C.IN_TRANSIT,
    "Delivery delayed": C.IN_TRANSIT,
    "Delivery date changed": C.IN_TRANSIT,
    "Delivery address changed": C.IN_TRANSIT,
    "Delivery method changed": C.IN_TRANSIT,
    "Driver en route": C.OUT_FOR_DELIVERY,
    "Awaiting customer pickup": C.AVAILABLE_FOR_PICKUP,
    "Delivered": C.DELIVERED,
    "Shipment collected by customer": C.DELIVERED,
    "Delivery attempt failed": C.FAILURE,
    "Unable to deliver": C.FAILURE,
    "Error collecting": C.FAILURE,
    "Announcement failed": C.FAILURE,
    "Address invalid": C.FAILURE,
    "Refused by recipient": C.FAILURE,
    "Exception": C.FAILURE,
    "Returned to sender": C.RETURN_TO_SENDER,
    "Cancelled": C.CANCELLED,
    "Cancelled upstream": C.CANCELLED,
}
UNKNOWN_WORDS = ["", "SOMETHING_NEW", "in transit", "Delivered_001", "🚚"]


# ----- tables ------------------------------------------------------------------------------------------------
def test_the_tables_hold_exactly_the_documented_words() -> None:
    assert EASYPOST == EASYPOST_EXPECTED
    assert SHIPPO == SHIPPO_EXPECTED
    assert SHIPPO_SUBSTATUS == SHIPPO_SUBSTATUS_EXPECTED
    assert AFTERSHIP == AFTERSHIP_EXPECTED
    assert AFTERSHIP_SUBTAG == AFTERSHIP_SUBTAG_EXPECTED
    assert {k: v for k, (_m, v) in SENDCLOUD_ID_EXPECTED.items()} == SENDCLOUD_BY_ID
    assert {m.lower(): v for m, v in SENDCLOUD_MESSAGE_EXPECTED.items()} == SENDCLOUD_BY_MESSAGE


@pytest.mark.parametrize(("word", "expected"), EASYPOST_EXPECTED.items())
def test_easypost(word: str, expected: CarrierStatus) -> None:
    assert normalize_easypost(word) is expected


@pytest.mark.parametrize(("status", "expected"), SHIPPO_EXPECTED.items())
def test_shippo_status(status: str, expected: CarrierStatus) -> None:
    assert normalize_shippo(status) is expected
    assert normalize_shippo(status, "other") is expected  # a substatus that says nothing more


@pytest.mark.parametrize(("pair", "expected"), SHIPPO_SUBSTATUS_EXPECTED.items())
def test_shippo_substatus_refines_its_status(pair: tuple[str, str], expected: CarrierStatus) -> None:
    status, substatus = pair
    assert normalize_shippo(status, substatus) is expected
    # under another status the same code does not override (DELIVERED stays delivered)
    assert normalize_shippo("DELIVERED", substatus) is C.DELIVERED


@pytest.mark.parametrize(("tag", "expected"), AFTERSHIP_EXPECTED.items())
def test_aftership_tag(tag: str, expected: CarrierStatus) -> None:
    assert normalize_aftership(tag) is expected
    assert normalize_aftership(tag, f"{tag}_001") is expected


@pytest.mark.parametrize(("subtag", "expected"), AFTERSHIP_SUBTAG_EXPECTED.items())
def test_aftership_exception_subtags_that_say_lost_or_returned(subtag: str, expected: CarrierStatus) -> None:
    assert normalize_aftership("Exception", subtag) is expected
    assert normalize_aftership("InTransit", subtag) is C.IN_TRANSIT  # only an Exception is refined


def test_other_aftership_exceptions_are_failures() -> None:
    for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 14):
        assert normalize_aftership("Exception", f"Exception_{n:03d}") is C.FAILURE


@pytest.mark.parametrize(("status_id", "entry"), SENDCLOUD_ID_EXPECTED.items())
def test_sendcloud_status_id(status_id: int, entry: tuple[str, CarrierStatus]) -> None:
    message, expected = entry
    assert normalize_sendcloud(status_id, message) is expected
    assert normalize_sendcloud(status_id, "a translated message") is expected  # the id decides


@pytest.mark.parametrize(("message", "expected"), SENDCLOUD_MESSAGE_EXPECTED.items())
def test_sendcloud_message_for_ids_we_do_not_know(message: str, expected: CarrierStatus) -> None:
    assert normalize_sendcloud(62000, message) is expected
    assert normalize_sendcloud(None, f"  {message.upper()} ") is expected


@pytest.mark.parametrize("word", UNKNOWN_WORDS)
def test_unknown_words_are_unknown_never_an_error(word: str) -> None:
    assert normalize_easypost(word) is C.UNKNOWN
    assert normalize_shippo(word, word) is C.UNKNOWN
    assert normalize_aftership(word, word) is C.UNKNOWN
    assert normalize_sendcloud(None, word) is C.UNKNOWN
    assert normalize_sendcloud(424242, word) is C.UNKNOWN


# ----- parsers -----------------------------------------------------------------------------------------------
def test_shippo_track_updated() -> None:
    body = shippo_event("SB1", "TRANSIT", "2026-11-25T08:00:00.000Z", substatus="out_for_delivery")
    event = parse_shippo(body.decode(), RECEIVED)
    assert event is not None
    assert (event.provider, event.tracking_number, event.status) == ("shippo", "SB1", C.OUT_FOR_DELIVERY)
    assert (event.carrier_status, event.detail) == ("TRANSIT", "out_for_delivery")
    assert event.occurred_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    # no event id from Shippo: tracking number + status + status_date
    assert event.event_id == "SB1:TRANSIT:2026-11-25T08:00:00.000Z"
    again = parse_shippo(shippo_event("SB1", "TRANSIT", "2026-11-25T08:00:00.000Z").decode(), RECEIVED)
    assert again is not None and again.event_id == event.event_id  # the same checkpoint sent twice
    other = parse_shippo(shippo_event("SB1", "TRANSIT", "2026-11-25T09:00:00.000Z").decode(), RECEIVED)
    assert other is not None and other.event_id != event.event_id


def test_shippo_other_events_are_ignored_and_broken_ones_raise() -> None:
    assert parse_shippo(json.dumps({"event": "transaction_created", "data": {}}), RECEIVED) is None
    with pytest.raises(MalformedInput):
        parse_shippo(json.dumps({"event": "track_updated", "data": {"tracking_status": {}}}), RECEIVED)
    with pytest.raises(MalformedInput):
        parse_shippo(json.dumps({"event": "track_updated"}), RECEIVED)


def test_shippo_without_status_date_is_received_now_and_still_deduplicated() -> None:
    body = json.dumps({"event": "track_updated", "data": {"tracking_number": "SB2", "tracking_status": None}})
    event = parse_shippo(body, RECEIVED)
    assert event is not None
    assert (event.status, event.occurred_at, event.event_id) == (C.UNKNOWN, RECEIVED, "SB2:UNKNOWN:")


def test_aftership_tracking_update() -> None:
    body = aftership_event(
        "5b0c4d2c-1d6e-4b8f-9a57-8f4c0c2a9d11", "SB3", "Exception", "2026-11-25T10:30:00+01:00", "Exception_013"
    )
    event = parse_aftership(body.decode(), RECEIVED)
    assert event is not None
    assert (event.provider, event.event_id) == ("aftership", "5b0c4d2c-1d6e-4b8f-9a57-8f4c0c2a9d11")
    assert (event.tracking_number, event.status, event.carrier_status, event.detail) == (
        "SB3",
        C.LOST,
        "Exception",
        "Exception_013",
    )
    assert event.occurred_at == datetime(2026, 11, 25, 9, 30, tzinfo=UTC)  # the latest checkpoint's time


def test_aftership_times_without_an_offset_are_utc_and_no_checkpoint_means_ts() -> None:
    body = json.loads(aftership_event("e1", "SB4", "InTransit", "2026-11-25T10:30:00"))
    event = parse_aftership(json.dumps(body), RECEIVED)
    assert event is not None and event.occurred_at == datetime(2026, 11, 25, 10, 30, tzinfo=UTC)
    body["msg"]["checkpoints"] = []
    event = parse_aftership(json.dumps(body), RECEIVED)
    assert event is not None and event.occurred_at == datetime.fromtimestamp(body["ts"], UTC)
    del body["ts"]
    event = parse_aftership(json.dumps(body), RECEIVED)
    assert event is not None and event.occurred_at == RECEIVED


def test_aftership_other_events_are_ignored_and_broken_ones_raise() -> None:
    assert parse_aftership(json.dumps({"event": "edd_revise", "msg": {}}), RECEIVED) is None
    body = json.loads(aftership_event("e1", "SB4", "InTransit", "2026-11-25T10:30:00Z"))
    del body["event_id"]
    with pytest.raises(MalformedInput):
        parse_aftership(json.dumps(body), RECEIVED)
    with pytest.raises(MalformedInput):
        parse_aftership(json.dumps({"event": "tracking_update", "event_id": "e2", "msg": "x"}), RECEIVED)


def test_sendcloud_parcel_status_changed() -> None:
    body = sendcloud_event(4711, "SB5", 11, "Delivered", 1_795_000_000_123)
    event = parse_sendcloud(body.decode(), RECEIVED)
    assert event is not None
    assert (event.provider, event.tracking_number, event.status, event.carrier_status) == (
        "sendcloud",
        "SB5",
        C.DELIVERED,
        "Delivered",
    )
    assert event.occurred_at == datetime.fromtimestamp(1_795_000_000.123, UTC)
    assert event.event_id == "4711:11:1795000000123"  # parcel id + status id + timestamp


def test_sendcloud_documented_sample_payload() -> None:
    # the example from Sendcloud's webhook reference (trimmed): id 1 with the message "Ready to send"
    body = {
        "action": "parcel_status_changed",
        "timestamp": 1_525_271_885_993,
        "carrier_status_change_timestamp": 1_525_271_885_993,
        "parcel": {
            "id": 1,
            "name": "Mr Bob",
            "tracking_number": "3SYZXG132912330",
            "status": {"id": 1, "message": "Ready to send"},
            "shipment": {"id": 1, "name": "PostNL Standard"},
        },
    }
    event = parse_sendcloud(json.dumps(body), RECEIVED)
    assert event is not None and (event.status, event.tracking_number) == (C.PRE_TRANSIT, "3SYZXG132912330")


def test_sendcloud_ignores_other_actions_and_parcels_without_a_number() -> None:
    assert parse_sendcloud(json.dumps({"action": "integration_connected"}), RECEIVED) is None
    body = json.loads(sendcloud_event(1, "", 1000, "Ready to send", 1))
    assert parse_sendcloud(json.dumps(body), RECEIVED) is None
    body["parcel"].pop("status")
    body["parcel"]["tracking_number"] = "SB6"
    with pytest.raises(MalformedInput):
        parse_sendcloud(json.dumps(body), RECEIVED)


def test_every_provider_has_a_parser() -> None:
    assert set(PARSERS) >= {"easypost", "shippo", "aftership", "sendcloud"}
    event = PARSERS["easypost"](easypost_event("evt_1", "SB7", "in_transit", "2026-11-25T08:00:00Z").decode(), RECEIVED)
    assert event is not None and event.status is C.IN_TRANSIT
