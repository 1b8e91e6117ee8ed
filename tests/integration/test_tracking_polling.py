"""DHL tracking by polling (DHL has no webhook), against moto: a return whose label a polling carrier made is asked
about on schedule, forward only and idempotent, within the carrier's rate limit, until it is in the warehouse."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.carriers.base import CarrierAdapter, CarrierError, Label, LabelRequest, TrackingUpdate
from chalicelib.adapters.carriers.sandbox import SandboxCarrier
from chalicelib.bootstrap import container
from chalicelib.services.polling import PollResult, poll_tracking
from local.lambda_router import call_handler
from local.pollers import scheduled_event
from tests.support import OPERATOR_KEY, Api

CARRIER = "dhl_de"


class FakeTime:
    """monotonic() and sleep() of the poller: sleeping advances the time and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.now += seconds


class FakeDhl:
    """A polling carrier: real (sandbox) PDF labels under its own name, scripted tracking answers."""

    name = CARRIER
    methods = frozenset({"label"})
    polls_tracking = True
    request_seconds = 0.1  # what each tracking request takes (fake time)

    def __init__(self, time: FakeTime) -> None:
        self.time = time
        self.sandbox = SandboxCarrier()
        self.updates: dict[
            str, list[TrackingUpdate]
        ] = {}  # tracking number -> what DHL answers for it (all events so far)
        self.errors: dict[str, CarrierError] = {}  # tracking number -> raised once, on its next request
        self.calls: list[tuple[list[str], str | None, float]] = []  # numbers, account, (fake) time of the request

    def create_label(self, request: LabelRequest) -> Label:
        return dataclasses.replace(self.sandbox.create_label(request), carrier=self.name)

    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        self.sandbox.cancel_label(tracking_number, account, carrier_reference=carrier_reference)

    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        self.calls.append((list(tracking_numbers), account, self.time.now))
        self.time.now += self.request_seconds
        for number in tracking_numbers:
            if number in self.errors:
                raise self.errors.pop(number)
        return [u for number in tracking_numbers for u in self.updates.get(number, [])]

    def asked(self) -> list[str]:
        return [n for numbers, _, _ in self.calls for n in numbers]

    def script(self, tracking_number: str, status: str, dhl_status: str, hours: float) -> None:
        at = datetime.now(UTC) + timedelta(hours=hours)
        n = len(self.updates.setdefault(tracking_number, []))
        self.updates[tracking_number].append(
            TrackingUpdate(
                tracking_number=tracking_number,
                status=status,
                carrier_status=dhl_status,
                occurred_at=at,
                event_id=f"{tracking_number}-{n}",
                detail=f"DHL: {dhl_status}",
            )
        )


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def dhl(aws: Any, time: FakeTime) -> FakeDhl:
    fake = FakeDhl(time)
    carriers: dict[str, CarrierAdapter] = {"sandbox": SandboxCarrier(), CARRIER: fake}  # the fake fits the interface
    container().overrides["carriers"] = carriers
    return fake


@pytest.fixture
def api(dhl: FakeDhl) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def dhl_tenant(api: Api) -> dict[str, Any]:
    """A tenant whose warehouse ships German returns with DHL (the polling carrier)."""
    t = api.tenant()
    body = {"routes": [{"countries": ["DE"], "carriers": [CARRIER], "methods": [{"type": "label"}]}]}
    api.ok("PUT", f"/v1/admin/warehouses/{t['warehouse']['id']}/routing", OPERATOR_KEY, body)
    return t


def poll(time: FakeTime, **kwargs: Any) -> PollResult:
    return poll_tracking(container(), CARRIER, sleep=time.sleep, monotonic=time.monotonic, **kwargs)


def candidates() -> list[tuple[str, str, str | None]]:
    return container().store.tracking_poll_candidates(CARRIER)


def test_a_dhl_return_moves_in_transit_then_delivered_and_polling_again_adds_nothing(
    api: Api, dhl: FakeDhl, time: FakeTime
) -> None:
    # Given a return whose label DHL made (and one whose label came from the sandbox, which has webhooks)
    t = dhl_tenant(api)
    ret = api.create_return(t)
    tn = ret["tracking_number"]
    assert ret["carrier"] == CARRIER
    other = api.tenant()
    sandbox_return = api.create_return(other)
    assert sandbox_return["carrier"] == "sandbox"
    assert candidates() == [(ret["id"], tn, t["warehouse"]["id"])]  # the account: the warehouse's

    # When DHL reports the parcel accepted and moving
    dhl.script(tn, "pre_transit", "pre-transit", hours=1)
    dhl.script(tn, "in_transit", "transit", hours=2)
    first = poll(time)
    # Then the return is in transit, with both checkpoints on its timeline
    assert first == PollResult(requested=1, events=2, stopped_early=False, moved=1, finished=0, failed=0)
    assert dhl.calls == [([tn], t["warehouse"]["id"], 1000.0)]
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "in_transit"

    # When DHL reports it delivered
    dhl.script(tn, "delivered", "delivered", hours=5)
    assert poll(time).moved == 1
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "delivered"
    checkpoints = [e for e in view["timeline"] if e["type"] == "carrier.checkpoint"]
    assert [c["carrier_status"] for c in checkpoints] == ["pre-transit", "transit", "delivered"]
    assert {c["provider"] for c in checkpoints} == {CARRIER}
    statuses = [e["status"] for e in view["timeline"] if e["type"].startswith("return.")]
    assert statuses == ["requested", "label_created", "in_transit", "delivered"]

    # When it is polled again with nothing new: nothing is added
    again = poll(time)
    assert (again.requested, again.events, again.moved, again.failed) == (1, 3, 0, 0)
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["timeline"] == view["timeline"]
    assert candidates() == [(ret["id"], tn, t["warehouse"]["id"])]  # delivered: still asked (until scanned)

    # When the warehouse scans it: the marker goes, DHL is not asked again
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": tn})
    calls = len(dhl.calls)
    assert poll(time) == PollResult(requested=0, events=0, stopped_early=False, moved=0, finished=1, failed=0)
    assert len(dhl.calls) == calls and candidates() == []
    assert api.ok("GET", f"/v1/returns/{sandbox_return['id']}", other["m_key"])["status"] == "label_created"


def test_a_run_asks_at_most_max_requests_numbers_spaced_by_the_interval_least_recently_polled_first(
    api: Api, dhl: FakeDhl, time: FakeTime
) -> None:
    t = dhl_tenant(api)
    numbers = [api.create_return(t)["tracking_number"] for _ in range(4)]
    first = poll(time, max_requests=3, min_interval_s=0.5)
    assert (first.requested, first.stopped_early) == (3, False)
    assert len(dhl.calls) == 3 and all(len(n) == 1 for n, _, _ in dhl.calls)  # DHL: one number per request
    # each request took 0.1 s: the poller waited the rest of the interval, no more
    assert time.waits == [0.4, 0.4]
    starts = [at for _, _, at in dhl.calls]
    assert all(b - a >= 0.5 for a, b in itertools.pairwise(starts))
    # the next run starts with the number not asked yet, then the one asked longest ago
    second = poll(time, max_requests=3, min_interval_s=0.5)
    assert second.requested == 3
    asked = dhl.asked()
    assert asked[3] == (set(numbers) - set(asked[:3])).pop()
    assert asked[4:6] == asked[0:2]
    # a run out of its time budget starts no further request
    third = poll(time, max_requests=3, min_interval_s=0.5, time_budget_s=0.55)
    assert (third.requested, third.stopped_early) == (2, True)
    assert dhl.asked()[6:] == [asked[2], asked[3]]


def test_numbers_of_one_account_share_a_request_when_the_carrier_takes_several(
    api: Api, dhl: FakeDhl, time: FakeTime
) -> None:
    dhl.tracking_batch_size = 2  # type: ignore[attr-defined]
    a, b = dhl_tenant(api), dhl_tenant(api)
    by_account = {
        a["warehouse"]["id"]: {api.create_return(a)["tracking_number"] for _ in range(3)},
        b["warehouse"]["id"]: {api.create_return(b)["tracking_number"] for _ in range(2)},
    }
    result = poll(time, min_interval_s=0.5)
    assert result.requested == 5
    assert all(1 <= len(numbers) <= 2 and set(numbers) <= by_account[acc] for numbers, acc, _ in dhl.calls)
    assert sorted(dhl.asked()) == sorted(n for ns in by_account.values() for n in ns)
    assert len(dhl.calls) == 3 and time.waits == [0.4, 0.4]


def test_a_rate_limit_ends_the_run_and_the_next_run_continues(api: Api, dhl: FakeDhl, time: FakeTime) -> None:
    t = dhl_tenant(api)
    rets = [api.create_return(t) for _ in range(3)]
    for r in rets:
        dhl.script(r["tracking_number"], "in_transit", "transit", hours=1)
    order = [tn for _, tn, _ in candidates()]
    dhl.errors[order[1]] = CarrierError("429 Too Many Requests", transient=True)

    first = poll(time)
    assert first == PollResult(requested=1, events=1, stopped_early=True, moved=1, finished=0, failed=0)
    assert dhl.asked() == order[:2]  # the third was never asked

    second = poll(time)
    assert (second.requested, second.moved, second.stopped_early) == (3, 2, False)
    assert dhl.asked()[2:] == [order[1], order[2], order[0]]  # the unanswered ones first
    for r in rets:
        assert api.ok("GET", f"/v1/returns/{r['id']}", t["m_key"])["status"] == "in_transit"


def test_a_number_the_carrier_refuses_is_skipped_and_the_others_are_polled(
    api: Api, dhl: FakeDhl, time: FakeTime
) -> None:
    t = dhl_tenant(api)
    rets = [api.create_return(t) for _ in range(2)]
    for r in rets:
        dhl.script(r["tracking_number"], "in_transit", "transit", hours=1)
    bad = rets[0]["tracking_number"]
    dhl.errors[bad] = CarrierError("404 no shipment found", transient=False)
    result = poll(time)
    assert (result.requested, result.moved, result.failed, result.stopped_early) == (2, 1, 1, False)
    assert api.ok("GET", f"/v1/returns/{rets[0]['id']}", t["m_key"])["status"] == "label_created"
    assert api.ok("GET", f"/v1/returns/{rets[1]['id']}", t["m_key"])["status"] == "in_transit"
    assert poll(time).moved == 1  # asked again next run (it may just be too early for DHL)


def test_a_cancelled_return_is_no_longer_polled_by_the_scheduled_function(api: Api, dhl: FakeDhl) -> None:
    t = dhl_tenant(api)
    ret = api.create_return(t)
    assert [rid for rid, _, _ in candidates()] == [ret["id"]]
    api.ok("POST", f"/v1/portal/returns/{ret['id']}/cancel", ret["_token"], {})
    out = call_handler("dhl_tracking_poller", scheduled_event("dhl_tracking_poller", "eu-central-1"))
    assert out == {"requested": 0, "events": 0, "moved": 0, "finished": 1, "failed": 0, "stopped_early": False}
    assert candidates() == [] and dhl.calls == []


def test_without_a_polling_carrier_configured_a_run_does_nothing(aws: Any, time: FakeTime) -> None:
    c = container()
    c.store.tracking_poll_marker(CARRIER, "ret_orphan", "JJD000", None).save()
    from chalicelib.adapters.carriers.sandbox import SandboxCarrier

    c.overrides["carriers"] = {"sandbox": SandboxCarrier()}  # a deployment without DHL
    assert poll(time) == PollResult(0, 0, stopped_early=False)  # only the sandbox here: logged, nothing asked
    assert candidates() == [("ret_orphan", "JJD000", None)]
    c.overrides["carriers"] = {CARRIER: FakeDhl(time)}
    assert poll(time).finished == 1  # a marker whose return does not exist goes
    assert candidates() == []
