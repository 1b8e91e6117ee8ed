"""Outbound webhooks end to end in moto: a subscription through the API -> a return's domain events (the outbox) ->
the bus -> the webhook rule -> the webhook queue -> functions/webhook_dispatcher -> a real HTTP receiver on loopback.
Retries are the dispatcher's own delayed messages: the tests drive them with the app's clock and by making moto's
delayed messages visible (in AWS: SQS's DelaySeconds)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.domain.subscriptions import MAX_ATTEMPTS
from chalicelib.services.subscriptions import secret_name
from infrastructure import definitions as d
from local.lambda_router import call_handler
from local.pollers import lambda_event
from tests.support import Api, SteppingClock, drain_outbox

REGION = "eu-central-1"
SECRET = "whsec_test_0123456789abcdef"


class Receiver:
    """A merchant's webhook endpoint on loopback: records every request, answers `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.answer_headers: dict[str, str] = {}
        self.answer_body = b""
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                    status = receiver.status
                self.send_response(status)
                for name, value in receiver.answer_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.answer_body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a capped read hangs up
                    self.wfile.write(receiver.answer_body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def clock(aws: Any, monkeypatch: pytest.MonkeyPatch) -> SteppingClock:
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")
    bootstrap.reset()
    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


@pytest.fixture
def api(clock: SteppingClock) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _reveal_delayed(queue_name: str) -> None:
    """Make moto's delayed messages visible now (the tests' stand-in for SQS's DelaySeconds passing)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    for message in sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[queue_name]._messages:
        message.delayed_until = 0


def drain(aws: Any) -> list[dict[str, Any]]:
    """Relay committed events to the bus, then one pass of the event source mapping over the webhook queue (delayed
    retries included). Returns the messages handled; failed ones are made visible again."""
    drain_outbox(aws)
    _reveal_delayed(d.WEBHOOK_QUEUE.name)
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.WEBHOOK_QUEUE.name]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handled: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return handled
        result = call_handler("webhook_dispatcher", lambda_event(msgs, arn, REGION))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        assert not failed, failed
        for m in msgs:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        handled.extend(msgs)


def signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def tenant(api: Api) -> dict[str, Any]:
    wh = api.warehouse()
    m = api.merchant(wh["id"])
    return {"merchant": m, "m_key": m["api_key"], "slug": m["slug"]}


def subscribe(api: Api, t: dict[str, Any], url: str, events: list[str]) -> dict[str, Any]:
    sub: dict[str, Any] = api.ok(
        "POST", "/v1/subscriptions", t["m_key"], {"url": url, "events": events, "secret": SECRET}, 201
    )
    return sub


def deliveries(api: Api, t: dict[str, Any], sub: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.ok("GET", f"/v1/subscriptions/{sub['id']}/deliveries", t["m_key"])["items"]
    return items


def test_a_subscribed_event_is_delivered_once_signed(api: Api, aws: Any, receiver: Receiver) -> None:
    # Given a merchant subscribed to label_created only
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.label_created"])
    assert set(sub) == {"id", "url", "events", "created_at"} and sub["events"] == ["return.label_created"]
    # When a return is created (requested + label_created) and the events are delivered
    ret = api.create_return(t)
    drain(aws)
    # Then exactly one signed request arrived, for label_created, with the event's id
    (request,) = receiver.requests
    body = json.loads(request["body"])
    headers = request["headers"]
    assert headers["X-Boomerang-Signature"] == signature(request["body"])
    assert body["type"] == "return.label_created" == headers["X-Boomerang-Event-Type"]
    assert body["id"] == headers["X-Boomerang-Event-Id"] and body["id"].startswith(f"RETURN#{ret['id']}#TL#")
    assert body["data"]["return_id"] == ret["id"] and body["data"]["event_id"] == body["id"]
    assert body["created_at"].endswith("Z")
    assert headers["User-Agent"].startswith("Boomerang-Webhooks/")
    # And the deliveries list shows it delivered
    (delivery,) = deliveries(api, t, sub)
    assert delivery["id"] == headers["X-Boomerang-Delivery-Id"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["event_id"] == body["id"] and "delivered_at" in delivery


def test_star_gets_every_event_and_other_merchants_events_never(api: Api, aws: Any, receiver: Receiver) -> None:
    # Given one merchant subscribed to everything, and another merchant with returns too
    t, other = tenant(api), tenant(api)
    sub = subscribe(api, t, receiver.url, ["*"])
    # When both create returns
    ret = api.create_return(t)
    api.create_return(other)
    drain(aws)
    # Then the subscriber got its own return's events, each once, and nothing of the other merchant's
    types = sorted(b["type"] for b in receiver.bodies())
    assert types == ["return.label_created", "return.requested"]
    assert {b["data"]["return_id"] for b in receiver.bodies()} == {ret["id"]}
    assert len(deliveries(api, t, sub)) == 2


def test_a_duplicate_event_creates_no_second_delivery(api: Api, aws: Any, receiver: Receiver) -> None:
    # Given a delivered event
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.requested"])
    api.create_return(t)
    handled = drain(aws)
    assert len(receiver.requests) == 1
    # When the same event reaches the dispatcher again (at-least-once delivery)
    event_messages = [m for m in handled if "detail-type" in json.loads(m["Body"])]
    again = call_handler("webhook_dispatcher", lambda_event(event_messages, "arn:aws:sqs:eu-central-1:123:x", REGION))
    # Then nothing more is sent and there is still one delivery
    assert again["batchItemFailures"] == []
    assert len(receiver.requests) == 1
    assert len(deliveries(api, t, sub)) == 1


def test_a_failing_receiver_is_retried_then_failed_then_redelivered_by_hand(
    api: Api, aws: Any, receiver: Receiver, clock: SteppingClock
) -> None:
    # Given a receiver that answers 500
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.requested"])
    receiver.status = 500
    api.create_return(t)
    # When the event is dispatched
    drain(aws)
    # Then the delivery is pending after one attempt, with the next one scheduled
    (delivery,) = deliveries(api, t, sub)
    assert delivery["status"] == "pending" and delivery["attempts"] == 1 and delivery["last_status_code"] == 500
    assert delivery["last_error"] == "HTTP 500" and "next_attempt_at" in delivery
    # When the retry message comes back before the attempt is due, it waits again (no attempt)
    drain(aws)
    assert len(receiver.requests) == 1
    # When time passes, each retry makes one more attempt, until the last
    for attempt in range(2, MAX_ATTEMPTS + 1):
        clock.advance(hours=13)
        drain(aws)
        assert len(receiver.requests) == attempt
        (delivery,) = deliveries(api, t, sub)
        assert delivery["attempts"] == attempt
    # Then the delivery failed, and nothing more is tried
    assert delivery["status"] == "failed"
    clock.advance(hours=24)
    assert drain(aws) == []
    assert len(receiver.requests) == MAX_ATTEMPTS
    # And every attempt carried the same event id and the same bytes
    assert len({r["body"] for r in receiver.requests}) == 1
    # When the receiver is fixed and the merchant redelivers by hand
    receiver.status = 204
    redeliver = f"/v1/subscriptions/{sub['id']}/deliveries/{delivery['id']}/redeliver"
    out = api.ok("POST", redeliver, t["m_key"], expect=202)
    # Then it is queued at once (the API never waits for the receiver), a second click changes nothing
    assert out["status"] == "pending" and out["attempts"] == MAX_ATTEMPTS
    assert api.ok("POST", redeliver, t["m_key"], expect=202)["status"] == "pending"
    assert deliveries(api, t, sub)[0]["status"] == "pending" and len(receiver.requests) == MAX_ATTEMPTS
    # And when the dispatcher takes it, it is delivered once: the same payload, the same event id
    assert len(drain(aws)) == 2  # both clicks' messages; the second finds the attempt made
    assert len(receiver.requests) == MAX_ATTEMPTS + 1
    (out,) = deliveries(api, t, sub)
    assert out["status"] == "delivered" and out["attempts"] == MAX_ATTEMPTS + 1
    assert receiver.requests[-1]["body"] == receiver.requests[0]["body"]
    assert receiver.requests[-1]["headers"]["X-Boomerang-Signature"] == signature(receiver.requests[0]["body"])
    assert deliveries(api, t, sub)[0]["status"] == "delivered"


def test_a_deleted_subscription_gets_nothing(api: Api, aws: Any, receiver: Receiver) -> None:
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["*"])
    secrets = bootstrap.container().secrets
    assert secrets.get(t["merchant"]["id"], secret_name(sub["id"])) == SECRET
    resp = api.call("DELETE", f"/v1/subscriptions/{sub['id']}", t["m_key"])
    assert resp.status_code == 204
    assert secrets.get(t["merchant"]["id"], secret_name(sub["id"])) is None  # the signing secret went with it
    assert api.ok("GET", "/v1/subscriptions", t["m_key"])["items"] == []
    api.create_return(t)
    drain(aws)
    assert receiver.requests == []
    assert api.call("DELETE", f"/v1/subscriptions/{sub['id']}", t["m_key"]).status_code == 404


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"url": "https://hooks.example.com/x", "events": ["return.requested", "return.nope"]}, ["events", 1]),
        ({"url": "https://hooks.example.com/x", "events": ["*", "return.requested"]}, ["events", 0]),
        ({"url": "https://hooks.example.com/x", "events": []}, ["events"]),
        ({"url": "http://hooks.example.com/x", "events": ["*"]}, ["url"]),
        ({"url": "https://10.0.0.5/x", "events": ["*"]}, ["url"]),
        ({"url": "https://169.254.169.254/latest", "events": ["*"]}, ["url"]),
        ({"url": "ftp://hooks.example.com/x", "events": ["*"]}, ["url"]),
        ({"url": "https://user:pw@hooks.example.com/x", "events": ["*"]}, ["url"]),
        ({"url": "https://hooks.example.com/x", "events": ["*"], "secret": "short"}, ["secret"]),
    ],
)
def test_validation_errors_name_the_field(api: Api, body: dict[str, Any], loc: list[Any]) -> None:
    t = tenant(api)
    resp = api.call("POST", "/v1/subscriptions", t["m_key"], {"secret": SECRET, **body})
    assert resp.status_code == 422, resp.body
    problem = json.loads(resp.body)
    assert loc in [e["loc"] for e in problem["errors"]]


def test_loopback_is_refused_unless_the_settings_allow_it(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOKS_ALLOW_LOOPBACK", raising=False)
    bootstrap.reset()
    with Client(app) as client:
        api = Api(client)
        t = tenant(api)
        for url in ("http://127.0.0.1:9/x", "https://127.0.0.1/x", "https://localhost/x", "https://[::1]/x"):
            resp = api.call("POST", "/v1/subscriptions", t["m_key"], {"url": url, "events": ["*"], "secret": SECRET})
            assert resp.status_code == 422, url
            assert json.loads(resp.body)["errors"][0]["loc"] == ["url"]


def test_at_most_twenty_subscriptions(api: Api) -> None:
    t = tenant(api)
    for i in range(20):
        subscribe(api, t, f"https://hooks.example.com/{i}", ["*"])
    resp = api.call(
        "POST",
        "/v1/subscriptions",
        t["m_key"],
        {"url": "https://hooks.example.com/x", "events": ["*"], "secret": SECRET},
    )
    assert resp.status_code == 422


def test_other_merchants_subscriptions_are_not_found_and_secrets_never_shown(
    api: Api, aws: Any, receiver: Receiver
) -> None:
    # Given a subscription with one delivery
    t, other = tenant(api), tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.requested"])
    api.create_return(t)
    drain(aws)
    (delivery,) = deliveries(api, t, sub)
    # Then another merchant can neither see nor touch it
    base = f"/v1/subscriptions/{sub['id']}"
    assert api.call("GET", f"{base}/deliveries", other["m_key"]).status_code == 404
    assert api.call("POST", f"{base}/deliveries/{delivery['id']}/redeliver", other["m_key"]).status_code == 404
    assert api.call("DELETE", base, other["m_key"]).status_code == 404
    assert api.ok("GET", "/v1/subscriptions", other["m_key"])["items"] == []
    # And no answer ever carries the secret
    for path in ("/v1/subscriptions", f"{base}/deliveries"):
        assert SECRET not in api.call("GET", path, t["m_key"]).body.decode()
    # And the secret is where the refund webhook's is: SSM, per merchant
    name = f"/boomerang/merchants/{t['merchant']['id']}/subscription-{sub['id']}"
    ssm = boto3.client("ssm")
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == SECRET


def test_deliveries_are_paginated_newest_first(api: Api, aws: Any, receiver: Receiver) -> None:
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["*"])
    api.create_return(t)
    drain(aws)
    first = api.ok("GET", f"/v1/subscriptions/{sub['id']}/deliveries?limit=1", t["m_key"])
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.ok(
        "GET", f"/v1/subscriptions/{sub['id']}/deliveries?limit=1&cursor={first['next_cursor']}", t["m_key"]
    )
    a, b = first["items"][0], second["items"][0]
    # both events of the return, one per page, newest first (events of one transaction may share a time)
    assert {a["event_type"], b["event_type"]} == {"return.requested", "return.label_created"}
    assert a["created_at"] >= b["created_at"] and a["id"] > b["id"]
    assert (
        second["next_cursor"] is None
        or api.ok(
            "GET", f"/v1/subscriptions/{sub['id']}/deliveries?limit=1&cursor={second['next_cursor']}", t["m_key"]
        )["items"]
        == []
    )


def test_a_redirect_is_a_failed_delivery_and_the_answer_is_never_kept(api: Api, aws: Any, receiver: Receiver) -> None:
    # Given a receiver (local sink) that redirects to another endpoint, with a large body
    elsewhere = Receiver()
    try:
        receiver.status = 302
        receiver.answer_headers = {"Location": elsewhere.url}
        receiver.answer_body = b"internal-secret " * (256 * 1024)  # 4 MiB
        t = tenant(api)
        sub = subscribe(api, t, receiver.url, ["return.label_created"])
        # When the event is delivered
        api.create_return(t)
        drain(aws)
        # Then the redirect was not followed, the delivery failed with the status only
        assert len(receiver.requests) == 1 and elsewhere.requests == []
        (delivery,) = deliveries(api, t, sub)
        assert delivery["status"] == "pending" and delivery["last_status_code"] == 302
        assert delivery["last_error"] == "HTTP 302"
    finally:
        elsewhere.close()


def test_a_name_rebound_to_a_private_address_gets_no_connection(
    api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a subscription to a name that answered a public address when it was saved
    import socket

    answer = {"hooks.rebind.example": "93.184.215.14"}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answer:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer[host], port or 0))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    t = tenant(api)
    sub = subscribe(api, t, "https://hooks.rebind.example/x", ["return.label_created"])
    # When it answers the metadata address at delivery time
    answer["hooks.rebind.example"] = "169.254.169.254"
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] in ("169.254.169.254", "93.184.215.14"):
            attempts.append(address)
            raise OSError("recorded, not made")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    api.create_return(t)
    drain(aws)
    # Then no connection was attempted and the delivery says why, in our words
    assert attempts == []
    (delivery,) = deliveries(api, t, sub)
    assert delivery["status"] == "pending" and delivery.get("last_status_code") is None
    assert delivery["last_error"].startswith("the URL was refused: host resolves to a refused address")
