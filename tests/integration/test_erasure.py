"""Erasure of a customer (GDPR Art. 17, issue 14): a customer with an open and a closed return, a customer photo, a
comment and labels is erased through the API; the sweeper (functions/sweeper, as the schedule runs it) does the
work. Afterwards no response or stored object names them, the S3 objects that showed them are gone, their portal
session no longer opens, the reports give the same figures, the erasure record holds only a digest and
`customer.erased` is in the outbox. Then: idempotency, 500 returns, and the retention sweep with a moved clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.bootstrap import container
from chalicelib.domain.return_index import email_key
from chalicelib.domain.returns import Return, ReturnItem
from local.lambda_router import call_handler
from local.pollers import scheduled_event
from tests.integration.test_portal_depth import _png
from tests.integration.test_reports import deliver_reports, reports
from tests.support import OPERATOR_KEY, Api, SteppingClock, drain_outbox, unique

REGION = "eu-central-1"
N = 500  # returns of one customer (test_a_customer_with_500_returns...)


def sweep() -> dict[str, int]:
    result: dict[str, int] = call_handler("sweeper", scheduled_event("sweeper", REGION))
    return result


@pytest.fixture
def clock(aws: Any) -> SteppingClock:
    bootstrap.reset()
    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def bucket_keys(aws: Any) -> set[str]:
    s3 = boto3.client("s3")
    return {o["Key"] for o in s3.list_objects_v2(Bucket=aws.bucket_name).get("Contents", [])}


def table_items(aws: Any) -> str:
    """Every item of the table as JSON text (to search for what must be gone). Tests only: nothing in the app scans."""
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    return json.dumps(items).lower()


def customer_returns(api: Api, t: dict[str, Any], email: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An open return with a comment and a customer photo, a closed (cancelled) one, on two orders of `email`."""
    order = api.order(t["m_key"], email=email)
    token = api.session(t["slug"], order)
    up = api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/png", "line_item_id": "L1"}, 201)
    container().files.put(up["key"], _png(), "image/png")
    line = {"line_item_id": "L1", "quantity": 1, "reason": "too_small", "comment": "ring 0171-555 Erika"}
    open_ret = api.ok("POST", "/v1/portal/returns", token, {"items": [{**line, "photos": [up["key"]]}]}, 201)
    closed = api.create_return(t, order=api.order(t["m_key"], email=email))
    api.ok("POST", f"/v1/portal/returns/{closed['id']}/cancel", closed["_token"], {})
    return order, open_ret, closed


def test_an_erased_customer_is_gone_from_every_response_and_object_and_the_figures_stay(
    api: Api, aws: Any, clock: SteppingClock
) -> None:
    t = api.tenant()
    email = f"{unique('erika')}@example.com"
    order, open_ret, closed = customer_returns(api, t, email)
    other = api.create_return(t)  # another customer of the merchant: untouched
    deliver_reports(aws)
    before = reports(api, t["m_key"])
    keys_before = bucket_keys(aws)
    erased_objects = {k for k in keys_before if open_ret["id"] in k or closed["id"] in k or k.startswith("customer/")}
    assert {k.split("/")[0] for k in erased_objects} == {"customer", "labels"}

    # When the merchant erases the customer
    accepted = api.ok("POST", "/v1/customers/erase", t["m_key"], {"email": email.upper()}, 202)
    assert accepted["status"] == "pending" and accepted["id"].startswith("era")
    assert sweep()["erasure:completed"] == 1
    assert drain_outbox(aws).delivered == 1  # customer.erased went on the bus (the returns' changes are no events)

    # Then the returns are readable, pseudonymised
    for ret_id in (open_ret["id"], closed["id"]):
        view = api.ok("GET", f"/v1/returns/{ret_id}", t["m_key"])
        text = json.dumps(view).lower()
        for personal in (email, "erika mustermann", "musterweg", "berlin", "0171-555"):
            assert personal not in text, (personal, ret_id)
    listed = api.ok("GET", f"/v1/returns?customer_email={email}", t["m_key"])
    assert listed["items"] == []
    all_listed = json.dumps(api.ok("GET", "/v1/returns", t["m_key"])).lower()
    assert open_ret["id"].lower() in all_listed and email not in all_listed
    # nothing stored names them (the other customer's order still does)
    stored = table_items(aws)
    for personal in (email, "0171-555"):
        assert personal not in stored
    assert stored.count("musterweg") == 1  # the other customer's order
    # the label, the CN23 and the customer's photo are gone; the other customer's label is not
    keys_after = bucket_keys(aws)
    assert not (erased_objects & keys_after)
    assert any(other["id"] in k for k in keys_after)
    # the customer can no longer open a session
    resp = api.call(
        "POST",
        f"/v1/portal/merchants/{t['slug']}/sessions",
        None,
        {"order_number": order["order_number"], "email": email},
    )
    assert resp.status_code == 404
    api.session(t["slug"], other["_order"])  # the other customer can
    # the figures are the same
    deliver_reports(aws)
    assert reports(api, t["m_key"]) == before
    # the erasure is recorded without the address, and announced
    status = api.ok("GET", f"/v1/customers/erasures/{accepted['id']}", t["m_key"])
    assert status["status"] == "completed"
    assert (status["orders"], status["returns"]) == (2, 2) and status["objects"] >= 3
    events = container().store.erasure_events(t["merchant"]["id"], accepted["id"])
    assert [e["detail_type"] for e in events] == ["customer.erased"]
    assert events[0]["detail"]["returns"] == 2 and email not in json.dumps(events).lower()

    # A second erasure of the same address finds nothing and succeeds
    again = api.ok("POST", "/v1/customers/erase", t["m_key"], {"email": email}, 202)
    assert sweep()["erasure:completed"] == 1
    second = api.ok("GET", f"/v1/customers/erasures/{again['id']}", t["m_key"])
    assert (second["status"], second["orders"], second["returns"]) == ("completed", 0, 0)
    assert sweep() == {}  # nothing left due
    assert len(container().store.erasure_events(t["merchant"]["id"], accepted["id"])) == 1


def test_the_operator_erases_for_a_merchant_and_bad_input_is_422(api: Api, aws: Any) -> None:
    t = api.tenant()
    email = f"{unique('op')}@example.com"
    api.order(t["m_key"], email=email)
    bad = api.call("POST", "/v1/customers/erase", t["m_key"], {"email": "not-an-address"})
    assert bad.status_code == 422 and "email" in bad.body.decode()
    missing = api.call("POST", "/v1/admin/customers/erase", OPERATOR_KEY, {"email": email})
    assert missing.status_code == 422 and "merchant_id" in missing.body.decode()
    assert api.call("POST", "/v1/customers/erase", OPERATOR_KEY, {"email": email}).status_code == 403
    unknown = {"email": email, "merchant_id": "m-nope"}
    nope = api.call("POST", "/v1/admin/customers/erase", OPERATOR_KEY, unknown)
    assert nope.status_code == 422 and "merchant_id" in nope.body.decode()
    body = {"email": email, "merchant_id": t["merchant"]["id"]}
    accepted = api.ok("POST", "/v1/admin/customers/erase", OPERATOR_KEY, body, 202)
    assert sweep()["erasure:completed"] == 1
    status = api.ok("GET", f"/v1/customers/erasures/{accepted['id']}", t["m_key"])
    assert (status["status"], status["orders"], status["returns"]) == ("completed", 1, 0)  # found by its customer link
    assert email not in table_items(aws)


def seed_returns(t: dict[str, Any], order_number: str, email: str, clock: SteppingClock) -> None:
    """N returns of one customer with their list index items, written in batches (the API would take minutes)."""
    from chalicelib.adapters.dynamodb.keys import stored_time
    from chalicelib.adapters.dynamodb.models import PointerRecord, ReturnRecord
    from chalicelib.adapters.dynamodb.repository import _index_pk, _return_to_record
    from chalicelib.domain.return_index import facets

    container().store  # noqa: B018 - binds the models to the table
    merchant_id = t["merchant"]["id"]
    with ReturnRecord.batch_write() as returns, PointerRecord.batch_write() as index:
        for i in range(N):
            item = ReturnItem("L1", "SHIRT-M", "Shirt M", 1, Decimal("29.95"), "too_small", comment=f"note {email}")
            ret = Return.request(
                return_id=f"ret_{merchant_id[-8:]}{i:04d}",
                merchant_id=merchant_id,
                warehouse_id=t["warehouse"]["id"],
                order_number=order_number,
                currency="EUR",
                customer_country="DE",
                locale="de",
                items=[item],
                tracking_token=unique("tok"),
                actor="customer",
                at=clock(),
            )
            ret.customer_email_key = email_key(email)
            ret.indexed = facets(ret)
            returns.save(_return_to_record(ret))
            sk = f"{stored_time(ret.created_at)}#{ret.id}"
            for facet in ret.indexed:
                pk = _index_pk(merchant_id, facet)
                index.save(PointerRecord(pk=pk, sk=sk, created_at=stored_time(ret.created_at)))


def test_a_customer_with_500_returns_is_erased_in_pages_and_resumes(api: Api, aws: Any, clock: SteppingClock) -> None:
    from chalicelib.services import privacy

    t = api.tenant()
    email = f"{unique('many')}@example.com"
    order = api.order(t["m_key"], email=email)
    store = container().store
    seed_returns(t, order["order_number"], email, clock)
    accepted = api.ok("POST", "/v1/customers/erase", t["m_key"], {"email": email}, 202)
    # a run that stops after 200 returns (the function's time) is resumed by the next
    monkey = pytest.MonkeyPatch()
    monkey.setattr(privacy, "MAX_RETURNS_PER_RUN", 200)
    try:
        erasure = store.get_erasure(t["merchant"]["id"], accepted["id"])
        assert privacy.erase(container(), erasure, max_returns=N // 2) is False
        assert store.get_erasure(t["merchant"]["id"], accepted["id"])["returns"] == N // 2
    finally:
        monkey.undo()
    clock.advance(hours=1)
    assert sweep()["erasure:completed"] == 1
    status = api.ok("GET", f"/v1/customers/erasures/{accepted['id']}", t["m_key"])
    assert (status["status"], status["returns"], status["orders"]) == ("completed", N, 1)
    assert email not in table_items(aws)


def test_returns_that_ended_are_pseudonymised_after_the_merchants_retention_period(
    api: Api, aws: Any, clock: SteppingClock
) -> None:
    t = api.tenant()
    api.ok(
        "PUT",
        "/v1/settings/policy",
        t["m_key"],
        {"return_window_days": 30, "reasons": [{"code": "too_small", "label": "Too small"}], "retention_days": 90},
    )
    email = f"{unique('old')}@example.com"
    _, open_ret, closed = customer_returns(api, t, email)
    assert sweep() == {}  # nothing due yet
    clock.advance(hours=24 * 60)  # past the first look (30 days), before the merchant's 90
    assert sweep() == {"retention:waits": 1}
    clock.advance(hours=24 * 29)
    assert sweep() == {}  # moved to its due time
    clock.advance(hours=24 * 2)
    assert sweep() == {"retention:pseudonymised": 1}
    view = api.ok("GET", f"/v1/returns/{closed['id']}", t["m_key"])
    assert not any(k for k in bucket_keys(aws) if closed["id"] in k)  # its label is gone
    assert email not in json.dumps(view).lower()
    ids = [x["id"] for x in api.ok("GET", f"/v1/returns?customer_email={email}", t["m_key"])["items"]]
    assert ids == [open_ret["id"]]  # the open one is untouched: its period has not started
    assert any(open_ret["id"] in k for k in bucket_keys(aws))
    assert sweep() == {}


def test_the_retention_period_is_bounded(api: Api, aws: Any) -> None:
    t = api.tenant()
    body = {"return_window_days": 30, "reasons": [{"code": "too_small", "label": "Too small"}], "retention_days": 5}
    bad = api.call("PUT", "/v1/settings/policy", t["m_key"], body)
    assert bad.status_code == 422 and "retention_days" in bad.body.decode()
    assert timedelta(days=1095)  # the default: tests/unit/test_privacy_domain.py
