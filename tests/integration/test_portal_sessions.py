"""Portal sessions (issue 13): non-ASCII emails matched one normalised way; the rate limit counted atomically, with a
true Retry-After, IPv6 clients keyed by their /64, and the order's owner not locked out by a stranger's guesses."""

from __future__ import annotations

import json
import threading
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from chalice.local import LambdaEventConverter
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.dynamodb.repository import DynamoStore
from tests.support import Api, unique

SOURCE_IP_HEADER = "x-test-source-ip"


@pytest.fixture
def api(aws, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Chalice test client, where a request may say which address it comes from (API Gateway's sourceIp)."""
    original = LambdaEventConverter.create_lambda_event

    def create_lambda_event(self: Any, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
        event = original(self, method, path, headers, body)
        source = {k.lower(): v for k, v in headers.items()}.get(SOURCE_IP_HEADER)
        if source:
            event["requestContext"]["identity"]["sourceIp"] = source
        return event

    monkeypatch.setattr(LambdaEventConverter, "create_lambda_event", create_lambda_event)
    with Client(app) as client:
        yield Api(client)


class Clock:
    """The app's clock, moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(aws) -> Clock:
    fake = Clock()
    bootstrap.container().clock = fake
    return fake


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.body)
    assert resp.headers["Content-Type"] == "application/problem+json"
    body: dict[str, Any] = json.loads(resp.body)
    return body


def attempt(api: Api, slug: str, order_number: str, email: str, ip: str | None = None) -> Any:
    headers = {SOURCE_IP_HEADER: ip} if ip else None
    path = f"/v1/portal/merchants/{slug}/sessions"
    return api.call("POST", path, None, {"order_number": order_number, "email": email}, headers=headers)


# ----- defect 3: non-ASCII emails -----------------------------------------------------------------------------------
def test_a_non_ascii_email_opens_a_session_in_any_case_or_unicode_form_and_a_wrong_one_is_a_clean_404(
    api: Api,
) -> None:
    t = api.tenant()
    order = api.order(t["m_key"], email="müller@example.com")
    number = order["order_number"]
    for given in ("müller@example.com", "MÜLLER@EXAMPLE.COM", unicodedata.normalize("NFD", "müller@example.com")):
        assert attempt(api, t["slug"], number, given).status_code == 201, given
    wrong = problem(attempt(api, t["slug"], number, "mueller@example.com"), 404)
    non_ascii_wrong = problem(attempt(api, t["slug"], number, "müler@example.com"), 404)
    assert wrong["detail"] == non_ascii_wrong["detail"]
    # a non-ASCII guess against an ASCII address is the same clean 404
    plain = api.order(t["m_key"], email="erika@example.com")
    assert problem(attempt(api, t["slug"], plain["order_number"], "érika@example.com"), 404) == wrong


def test_an_order_stored_with_a_differently_normalised_email_still_opens_a_session(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"], email="zoe@example.com")
    c = bootstrap.container()
    stored = c.store.get_order(t["merchant"]["id"], order["order_number"])
    assert stored is not None
    stored.email = "  " + unicodedata.normalize("NFD", "Zoë@Example.COM") + " "  # as an older intake may have kept it
    c.store.save_order(stored, c.now())
    assert attempt(api, t["slug"], order["order_number"], "zoë@example.com").status_code == 201
    assert attempt(api, t["slug"], order["order_number"], "zoe@example.com").status_code == 404


def test_order_intake_stores_the_normalised_email_and_the_returns_filter_finds_it_in_any_form(api: Api) -> None:
    t = api.tenant()
    given = " " + unicodedata.normalize("NFD", "Jürgen.Groß@Exämple.DE") + " "
    order = api.order(t["m_key"], email=given)
    stored = bootstrap.container().store.get_order(t["merchant"]["id"], order["order_number"])
    assert stored is not None and stored.email == "jürgen.groß@exämple.de"
    assert unicodedata.is_normalized("NFC", stored.email)
    ret = api.create_return(t, order=order)
    for form in ("jürgen.groß@exämple.de", "JÜRGEN.GROSS@EXÄMPLE.DE".replace("SS", "ß"), given.strip()):
        found = api.ok("GET", f"/v1/returns?email={quote(form)}", t["m_key"])
        assert [r["id"] for r in found["items"]] == [ret["id"]], form
        # the contract's name for the filter (../shared/CONTRACT.md: `customer_email`)
        found = api.ok("GET", f"/v1/returns?customer_email={quote(form)}", t["m_key"])
        assert [r["id"] for r in found["items"]] == [ret["id"]], form
    other = api.call("GET", f"/v1/returns?customer_email={quote(given.strip())}&email=x%40example.com", t["m_key"])
    assert other.status_code == 422


# ----- defect 4: the rate limit ---------------------------------------------------------------------------------------
@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every order lookup a session attempt reaches (the check must come before it)."""
    seen: list[str] = []
    real = DynamoStore.load_for_return_creation

    def spy(self: DynamoStore, merchant_id: str, order_number: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(order_number)
        return real(self, merchant_id, order_number, *args, **kwargs)

    monkeypatch.setattr(DynamoStore, "load_for_return_creation", spy)
    return seen


def test_a_hundred_parallel_wrong_guesses_on_one_order_let_at_most_ten_reach_the_lookup(
    api: Api, lookups: list[str]
) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    answers: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(100)

    def guess(n: int) -> None:
        try:
            start.wait(30)
            answers.append(attempt(api, t["slug"], order["order_number"], f"guess{n}@example.com", "198.51.100.7"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(100)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    statuses = sorted(r.status_code for r in answers)
    assert len(statuses) == 100
    assert len(lookups) <= 10
    assert statuses.count(404) == len(lookups) and statuses.count(429) == 100 - len(lookups), statuses
    assert all(int(r.headers["Retry-After"]) > 0 for r in answers if r.status_code == 429)
    # the owner, from another address, still gets in
    assert attempt(api, t["slug"], order["order_number"], order["email"], "203.0.113.5").status_code == 201


def test_retry_after_is_the_time_the_next_attempt_is_really_let_through(api: Api, clock: Clock) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    number, ip = order["order_number"], "198.51.100.20"
    clock.advance(600)  # 09:10, in the middle of a 15-minute stretch
    for n in range(5):
        problem(attempt(api, t["slug"], number, f"a{n}@example.com", ip), 404)
    clock.advance(600)  # 09:20: five more, ten within fifteen minutes
    for n in range(5):
        problem(attempt(api, t["slug"], number, f"b{n}@example.com", ip), 404)
    refused = attempt(api, t["slug"], number, order["email"], ip)
    problem(refused, 429)
    wait = int(refused.headers["Retry-After"])
    assert wait == 300  # the first five stop counting at 09:25
    clock.advance(wait - 1)
    problem(attempt(api, t["slug"], number, order["email"], ip), 429)  # refused attempts count toward nothing
    clock.advance(1)
    assert attempt(api, t["slug"], number, order["email"], ip).status_code == 201


def test_ipv6_clients_are_counted_by_their_64_and_ipv4_mapped_ones_as_ipv4(api: Api) -> None:
    t = api.tenant()
    for n in range(50):  # fifty wrong guesses on as many orders, from hosts rotating through one /64
        host = f"2001:db8:aa:1:{n:x}::{n + 1:x}"
        problem(attempt(api, t["slug"], unique("NOPE"), "x@example.com", host), 404)
    problem(attempt(api, t["slug"], unique("NOPE"), "x@example.com", "2001:db8:aa:1:ffff:1:2:3"), 429)
    problem(attempt(api, t["slug"], unique("NOPE"), "x@example.com", "2001:db8:aa:2::1"), 404)  # another /64
    for _ in range(50):
        problem(attempt(api, t["slug"], unique("NOPE"), "x@example.com", "::ffff:203.0.113.9"), 404)
    problem(attempt(api, t["slug"], unique("NOPE"), "x@example.com", "203.0.113.9"), 429)


def test_a_strangers_guesses_do_not_lock_the_owner_out_and_many_addresses_stay_bounded(
    api: Api, lookups: list[str]
) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    number = order["order_number"]
    for n in range(10):
        problem(attempt(api, t["slug"], number, f"s{n}@example.com", "198.51.100.7"), 404)
    problem(attempt(api, t["slug"], number, order["email"], "198.51.100.7"), 429)
    # the owner, from an address that has not failed on this order, opens sessions (which never count)
    for _ in range(3):
        assert attempt(api, t["slug"], number, order["email"], "203.0.113.5").status_code == 201
    # each further address may try once while the order is full, fifty at most: then every address waits
    for n in range(50):
        ip = f"2001:db8:{n + 1:x}::1"
        problem(attempt(api, t["slug"], number, f"m{n}@example.com", ip), 404)
        problem(attempt(api, t["slug"], number, f"m{n}b@example.com", ip), 429)
    problem(attempt(api, t["slug"], number, order["email"], "2001:db8:ffff::1"), 429)
    assert len(lookups) == 10 + 3 + 50


def test_successful_sessions_never_count(api: Api) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    for _ in range(55):
        assert attempt(api, t["slug"], order["order_number"], order["email"]).status_code == 201
    problem(attempt(api, t["slug"], order["order_number"], "wrong@example.com"), 404)


def test_an_attempt_whose_process_died_counts_until_its_window_ends(
    api: Api, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    real = DynamoStore.load_for_return_creation

    def crash(self: DynamoStore, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the Lambda timed out")

    monkeypatch.setattr(DynamoStore, "load_for_return_creation", crash)
    for _ in range(10):
        assert attempt(api, t["slug"], order["order_number"], order["email"]).status_code == 500
    monkeypatch.setattr(DynamoStore, "load_for_return_creation", real)
    problem(attempt(api, t["slug"], order["order_number"], order["email"]), 429)
    clock.advance(15 * 60)
    assert attempt(api, t["slug"], order["order_number"], order["email"]).status_code == 201


def test_dynamodb_calls_of_a_session(api: Api) -> None:
    from bench.counter import DynamoCallCounter

    t = api.tenant()
    order = api.order(t["m_key"])
    with DynamoCallCounter() as counter:
        with counter.scope("right") as right:
            assert attempt(api, t["slug"], order["order_number"], order["email"]).status_code == 201
        with counter.scope("wrong") as wrong:
            problem(attempt(api, t["slug"], order["order_number"], "wrong@example.com"), 404)
    # claim, slug, merchant + order, the claim given back; a wrong pair keeps its claim
    assert right == {"TransactWriteItems": 2, "GetItem": 1, "BatchGetItem": 1}
    assert wrong == {"TransactWriteItems": 1, "GetItem": 1, "BatchGetItem": 1}
