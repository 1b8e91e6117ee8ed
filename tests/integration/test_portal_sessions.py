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
