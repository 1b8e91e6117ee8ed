"""EasyPost webhook -> SQS -> batch consumer: signatures, idempotency, forward-only, partial failures, DLQ."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.signatures import easypost_signature
from local.lambda_router import call_handler
from tests.support import Api, easypost_event, sqs_event

SECRET = "whsec-easypost-tests"


@pytest.fixture
def api(aws) -> Any:
    with Client(app) as client:
        yield Api(client)


def event(event_id: str, code: str, status: str, at: str = "2026-11-25T08:00:00Z") -> bytes:
    return easypost_event(event_id, code, status, at)


def post(api: Api, body: bytes, signature: str | None = "auto") -> Any:
    headers = {}
    if signature == "auto":
        headers["X-Hmac-Signature"] = easypost_signature(SECRET, body)
    elif signature is not None:
        headers["X-Hmac-Signature"] = signature
    return api.call("POST", "/v1/webhooks/easypost", raw=body, headers=headers)


def queue_messages(aws) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = aws.queue_urls["boomerang-tracking"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])


def consume(bodies: list[bytes], provider: str = "easypost") -> dict[str, Any]:
    msgs = [
        {
            "MessageId": f"m{i}",
            "ReceiptHandle": f"r{i}",
            "MD5OfBody": "x",
            "Body": json.dumps({"provider": provider, "body": b.decode(), "received_at": "2026-11-25T09:00:00+00:00"}),
        }
        for i, b in enumerate(bodies)
    ]
    return call_handler("tracking_consumer", sqs_event(msgs))


def test_valid_signature_is_queued_and_bad_ones_are_401_with_nothing_queued(api: Api, aws) -> None:
    body = event("evt_1", "SB123", "in_transit")
    for bad in (None, "", "hmac-sha256-hex=00", easypost_signature("other", body)):
        resp = post(api, body, bad)
        assert resp.status_code == 401, resp.body
        assert json.loads(resp.body)["status"] == 401
    tampered = body.replace(b"in_transit", b"delivered")
    assert post(api, tampered, easypost_signature(SECRET, body)).status_code == 401
    assert queue_messages(aws) == []
    assert post(api, body).status_code == 200
    msgs = queue_messages(aws)
    assert len(msgs) == 1 and json.loads(msgs[0]["Body"])["body"] == body.decode()


def test_signed_garbage_is_400(api: Api, aws) -> None:
    body = b"not json"
    assert post(api, body).status_code == 400
    assert queue_messages(aws) == []


def test_duplicates_and_disorder_end_at_the_highest_status_with_one_checkpoint_each(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    tn = ret["tracking_number"]
    later = [(datetime.now(UTC) + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ") for h in (1, 3)]
    delivered = event("evt_d", tn, "delivered", later[1])
    transit = event("evt_t", tn, "in_transit", later[0])
    # delivered first, then a late in_transit, then both again
    for batch in ([delivered], [transit], [delivered, transit]):
        assert consume(batch) == {"batchItemFailures": []}
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "delivered"
    checkpoints = [e for e in view["timeline"] if e["type"] == "carrier.checkpoint"]
    assert [c["carrier_status"] for c in checkpoints] == ["in_transit", "delivered"]  # ordered by carrier time
    statuses = [e["status"] for e in view["timeline"] if e["type"].startswith("return.")]
    assert statuses == ["requested", "label_created", "delivered"]


def test_unknown_tracking_numbers_are_acknowledged(api: Api) -> None:
    assert consume([event("evt_x", "SB-UNKNOWN", "delivered")]) == {"batchItemFailures": []}


def test_a_poison_message_fails_alone(api: Api) -> None:
    t = api.tenant()
    ret = api.create_return(t)
    good = event("evt_g", ret["tracking_number"], "in_transit")
    result = consume([good, b"{broken"])
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "in_transit"


def test_failed_messages_end_in_the_dead_letter_queue(api: Api, aws) -> None:
    # Given a poison message on the queue (signed, so it passes the webhook; not a tracker payload)
    assert post(api, b'{"description":"tracker.updated","id":"evt_p","result":{}}').status_code == 200
    sqs = boto3.client("sqs")
    url, dlq = aws.queue_urls["boomerang-tracking"], aws.dlq_urls["boomerang-tracking"]
    # When the consumer fails it on every delivery (maxReceiveCount times)
    for _ in range(6):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        if not msgs:
            break
        result = call_handler("tracking_consumer", sqs_event(msgs))
        assert len(result["batchItemFailures"]) == len(msgs)
    # Then it lands in the DLQ and nothing is lost
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert len(dead) == 1 and "evt_p" in dead[0]["Body"]


def test_a_stale_index_answer_is_retried_from_the_table(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracking-number index can lag the table: an event applied to a stale copy must not overwrite newer
    state (the version check fails) and is applied again to a fresh read."""
    from chalicelib.bootstrap import container

    t = api.tenant()
    ret = api.create_return(t)
    c = container()
    stale = c.store.find_returns_by_tracking_number(ret["tracking_number"])
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})  # newer: received
    monkeypatch.setattr(type(c.store), "find_returns_by_tracking_number", lambda self, number: stale)
    assert consume([event("evt_late", ret["tracking_number"], "in_transit")]) == {"batchItemFailures": []}
    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["status"] == "received"  # not rolled back to the stale copy
    assert [e["carrier_status"] for e in view["timeline"] if e["type"] == "carrier.checkpoint"] == ["in_transit"]
