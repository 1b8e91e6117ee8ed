"""Tracking webhooks of every provider: signed -> queued -> consumer -> the return moves; bad signatures change nothing.

EasyPost, Shippo, AfterShip and Sendcloud, each through the chalice test client against moto, the queue drained
through the real consumer (tests.support.drain_queue).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.domain.signatures import shippo_signature
from local.provision import Resources
from tests.support import (
    Api,
    aftership_event,
    drain_queue,
    easypost_event,
    sendcloud_event,
    shippo_event,
    signature_headers,
)

SECRETS = {
    "easypost": "whsec-easypost-tests",  # tests/conftest.py
    "shippo": "whsec-shippo-tests",
    "aftership": "whsec-aftership-tests",
    "sendcloud": "whsec-sendcloud-tests",
}
PROVIDERS = list(SECRETS)
HEADERS = {
    "easypost": "X-Hmac-Signature",
    "shippo": "Shippo-Auth-Signature",
    "aftership": "aftership-hmac-sha256",
    "sendcloud": "Sendcloud-Signature",
}


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


# provider -> (carrier word for in transit, for delivered), and how that provider's body looks
WORDS = {
    "easypost": ("in_transit", "delivered"),
    "shippo": ("TRANSIT", "DELIVERED"),
    "aftership": ("InTransit", "Delivered"),
    "sendcloud": ("En route to sorting center", "Delivered"),
}
SENDCLOUD_IDS = {"En route to sorting center": 3, "Delivered": 11}


def body_for(provider: str, tracking_number: str, word: str, at: datetime) -> bytes:
    if provider == "easypost":
        return easypost_event(f"evt_{uuid.uuid4().hex}", tracking_number, word, _iso(at))
    if provider == "shippo":
        return shippo_event(tracking_number, word, at.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
    if provider == "aftership":
        return aftership_event(str(uuid.uuid4()), tracking_number, word, at.isoformat())
    return sendcloud_event(4711, tracking_number, SENDCLOUD_IDS[word], word, int(at.timestamp() * 1000))


@pytest.fixture
def api(aws: Resources, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for provider, secret in SECRETS.items():
        monkeypatch.setenv(f"{provider.upper()}_WEBHOOK_SECRET", secret)
    bootstrap.reset()  # settings are read once
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def queue_url(aws: Resources) -> str:
    return aws.queue_urls["boomerang-tracking"]


def post(api: Api, provider: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    if headers is None:
        headers = signature_headers(provider, SECRETS[provider], body)
    return api.call("POST", f"/v1/webhooks/{provider}", raw=body, headers=headers)


def queued(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in msgs.get("Messages", [])]


def view(api: Api, tenant: dict[str, Any], ret: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = api.ok("GET", f"/v1/returns/{ret['id']}", tenant["m_key"])
    return out


def checkpoints(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["provider"], e["carrier_status"], e["at"]) for e in v["timeline"] if e["type"] == "carrier.checkpoint"]


def _bad_requests(provider: str, body: bytes, tampered: bytes) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Requests the receiver must refuse: name -> (body, headers)."""
    header = HEADERS[provider]
    signed = signature_headers(provider, SECRETS[provider], body)
    bad = {
        "tampered body": (tampered, signed),
        "one more byte": (body + b" ", signed),
        "missing header": (body, {}),
        "empty header": (body, {header: ""}),
        "wrong secret": (body, signature_headers(provider, "not-the-secret", body)),
        "garbage header": (body, {header: "garbage"}),
        "truncated signature": (body, {header: signed[header][:-4]}),
    }
    if provider == "shippo":
        now = int(time.time())
        bad["stale"] = (body, signature_headers(provider, SECRETS[provider], body, now - 301 - 60))
        bad["future"] = (body, signature_headers(provider, SECRETS[provider], body, now + 301 + 60))
        bad["no timestamp"] = (body, {header: signed[header].split(",", 1)[1]})
    return bad


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_webhooks_move_the_return_and_bad_signatures_change_nothing(
    api: Api, queue_url: str, provider: str
) -> None:
    # Given a return with a label
    t = api.tenant()
    ret = api.create_return(t)
    tn = ret["tracking_number"]
    now = datetime.now(UTC).replace(microsecond=0)
    transit_at, delivered_at = now + timedelta(hours=1), now + timedelta(hours=3)
    transit_word, delivered_word = WORDS[provider]
    transit = body_for(provider, tn, transit_word, transit_at)
    tampered = transit.replace(transit_word.encode(), delivered_word.encode(), 1)  # "it was delivered"
    assert tampered != transit

    # When the "in transit" webhook comes tampered with, or with a bad, missing or stale signature
    for name, (body, headers) in _bad_requests(provider, transit, tampered).items():
        resp = post(api, provider, body, headers)
        # Then it is refused as a problem, nothing is queued and the return is unchanged
        assert resp.status_code == 401, (name, resp.body)
        assert resp.headers["Content-Type"] == "application/problem+json", name
        assert json.loads(resp.body)["status"] == 401, name
    assert queued(queue_url) == []
    v = view(api, t, ret)
    assert (v["status"], checkpoints(v)) == ("label_created", [])

    # When it comes signed (twice: providers retry)
    for _ in range(2):
        resp = post(api, provider, transit)
        assert 200 <= resp.status_code < 300, resp.body
    # Then the raw body is queued with its provider, and nothing else happened yet
    assert [(m["provider"], m["body"]) for m in queued(queue_url)] == [(provider, transit.decode())] * 2
    assert view(api, t, ret)["status"] == "label_created"

    # When the consumer drains the queue, the return is in transit with the carrier's checkpoint, once
    assert drain_queue(queue_url) == {"count": 2, "failed": set()}
    v = view(api, t, ret)
    assert v["status"] == "in_transit"
    assert checkpoints(v) == [(provider, transit_word, _iso(transit_at))]

    # And "delivered" moves it on, the checkpoints ordered by the carrier's time
    assert post(api, provider, body_for(provider, tn, delivered_word, delivered_at)).status_code == 200
    assert drain_queue(queue_url) == {"count": 1, "failed": set()}
    v = view(api, t, ret)
    assert v["status"] == "delivered"
    assert checkpoints(v) == [
        (provider, transit_word, _iso(transit_at)),
        (provider, delivered_word, _iso(delivered_at)),
    ]
    assert queued(queue_url) == []


def test_unreadable_bodies_unknown_parcels_and_missing_secrets(
    api: Api, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signed bodies that are not JSON objects: 400, not queued
    for provider in PROVIDERS:
        for body in (b"not json", b"{broken", b"[1, 2]", b'"text"', "{}".encode("utf-16")):
            resp = post(api, provider, body)
            assert resp.status_code == 400, (provider, body, resp.body)
            assert json.loads(resp.body)["status"] == 400
    assert queued(queue_url) == []

    # Unknown tracking numbers: accepted, consumed without failure, ignored
    for provider in PROVIDERS:
        body = body_for(provider, f"SB-UNKNOWN-{uuid.uuid4().hex[:8]}", WORDS[provider][1], datetime.now(UTC))
        assert post(api, provider, body).status_code == 200
    assert drain_queue(queue_url) == {"count": len(PROVIDERS), "failed": set()}
    assert queued(queue_url) == []

    # No secret configured: every request is 401, whatever it is signed with
    for provider in PROVIDERS:
        monkeypatch.delenv(f"{provider.upper()}_WEBHOOK_SECRET")
    bootstrap.reset()
    for provider in PROVIDERS:
        body = body_for(provider, "SB-ANY", WORDS[provider][0], datetime.now(UTC))
        for secret in (SECRETS[provider], ""):
            resp = post(api, provider, body, signature_headers(provider, secret, body))
            assert resp.status_code == 401, (provider, resp.body)
    assert queued(queue_url) == []


def test_shippo_staleness_is_judged_by_the_app_clock(api: Api, queue_url: str) -> None:
    # Given the app's clock a day behind the wall clock
    app_now = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    bootstrap.container().clock = lambda: app_now
    body = shippo_event("SB-CLOCK", "TRANSIT", "2026-11-25T08:00:00.000Z")

    def signed_at(at: datetime) -> dict[str, str]:
        return {"Shippo-Auth-Signature": shippo_signature(SECRETS["shippo"], body, int(at.timestamp()))}

    # Then a signature made at the wall clock's now is a day in the future: stale
    assert post(api, "shippo", body, signed_at(datetime.now(UTC))).status_code == 401
    # and signatures within 300 s of the app's now are fresh, on either side; beyond, stale
    assert post(api, "shippo", body, signed_at(app_now - timedelta(seconds=300))).status_code == 200
    assert post(api, "shippo", body, signed_at(app_now + timedelta(seconds=300))).status_code == 200
    assert post(api, "shippo", body, signed_at(app_now - timedelta(seconds=301))).status_code == 401
    assert post(api, "shippo", body, signed_at(app_now + timedelta(seconds=301))).status_code == 401
    assert len(queued(queue_url)) == 2
