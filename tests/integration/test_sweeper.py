"""States that could hang for good (issue 13, defect 6) always end in a final state: the process is killed (or the
AWS call fails) right after the commit, the record is left stuck, and the sweeper (functions/sweeper, run here as
the schedule runs it) brings it to delivered/failed, ready/failed or sent. Young records are left alone; a second run
changes nothing. Refunds, which need the state machine running: tests/workflow/test_sweeper_refunds.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.domain.sweeping import MAX_REDRIVES
from infrastructure import definitions as d
from local.lambda_router import call_handler
from local.pollers import lambda_event, scheduled_event
from tests.integration.test_subscriptions import REGION, Receiver, deliveries, drain, subscribe, tenant
from tests.support import Api, SteppingClock, drain_outbox, drain_queue


class Killed(BaseException):
    """The process dies here (a Lambda timeout, an out-of-memory kill): nothing after it runs, no except catches it."""


def sweep() -> dict[str, int]:
    result: dict[str, int] = call_handler("sweeper", scheduled_event("sweeper", REGION))
    return result


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


def _webhook_messages(aws: Any) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.WEBHOOK_QUEUE.name]
    out: list[dict[str, Any]] = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", []):
        out.extend(msgs)
    return out


# ----- (a) a webhook delivery whose retry was never queued ---------------------------------------------------------
def test_a_delivery_whose_retry_was_never_queued_is_queued_again_by_the_sweeper(
    api: Api, aws: Any, receiver: Receiver, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a receiver that fails, and a dispatcher killed right after it recorded the attempt, before the retry
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.requested"])
    receiver.status = 500
    api.create_return(t)
    drain_outbox(aws)
    (event,) = [m for m in _webhook_messages(aws) if json.loads(m["Body"])["detail-type"] == "return.requested"]

    def killed(self: Any, body: dict[str, Any], delay_seconds: int) -> None:
        raise Killed

    with monkeypatch.context() as m:
        m.setattr("functions.webhook_dispatcher.handler.SqsRetryQueue.send", killed)
        with pytest.raises(Killed):
            call_handler("webhook_dispatcher", lambda_event([event], "arn:aws:sqs:eu-central-1:123:x", REGION))
    # Then the delivery is stuck: pending after one attempt, no retry queued; the event coming again is a duplicate
    call_handler("webhook_dispatcher", lambda_event([event], "arn:aws:sqs:eu-central-1:123:x", REGION))
    assert _webhook_messages(aws) == []
    (stuck,) = deliveries(api, t, sub)
    assert stuck["status"] == "pending" and stuck["attempts"] == 1 and len(receiver.requests) == 1
    # When the sweeper runs while the retry is merely due (young): it leaves it alone
    clock.advance(hours=0.1)
    assert sweep() == {}
    # When it runs once the retry is long overdue, it queues it again; a second run queues nothing more
    receiver.status = 200
    clock.advance(hours=1)
    assert sweep() == {"delivery:queued": 1}
    assert sweep() == {}
    drain(aws)
    # Then the delivery is delivered, by one more attempt
    (done,) = deliveries(api, t, sub)
    assert done["status"] == "delivered" and done["attempts"] == 2 and len(receiver.requests) == 2
    clock.advance(hours=24)
    assert sweep() == {}


def test_a_delivery_whose_retry_can_never_be_queued_ends_failed(
    api: Api, aws: Any, receiver: Receiver, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a stuck delivery (the retry's SendMessage failed after the attempt was recorded)
    t = tenant(api)
    sub = subscribe(api, t, receiver.url, ["return.requested"])
    receiver.status = 500
    api.create_return(t)
    drain_outbox(aws)
    monkeypatch.setattr(
        "functions.webhook_dispatcher.handler.SqsRetryQueue.send", lambda *a, **k: (_ for _ in ()).throw(OSError())
    )
    drain_queue(aws.queue_urls[d.WEBHOOK_QUEUE.name], "webhook_dispatcher")
    assert deliveries(api, t, sub)[0]["status"] == "pending"
    # When the queue keeps refusing the sweeper's messages too
    monkeypatch.setattr(bootstrap.container().webhook_queue, "send", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    outcomes = []
    for _ in range(MAX_REDRIVES["delivery"] + 1):
        clock.advance(hours=7)
        outcomes.append(sweep())
    # Then each pass tried once, and the last gave it a final state
    assert outcomes == [{"delivery:error": 1}] * MAX_REDRIVES["delivery"] + [{"delivery:failed": 1}]
    (failed,) = deliveries(api, t, sub)
    assert failed["status"] == "failed" and failed["last_error"] == "the next attempt could not be queued"
    clock.advance(hours=24)
    assert sweep() == {}


# ----- (c) an export whose job was never queued --------------------------------------------------------------------
def _request_export(api: Api, key: str) -> str:
    now = bootstrap.container().now()
    body = {"kind": "returns", "format": "csv", "from": now.strftime("%Y-%m-%d"), "to": now.strftime("%Y-%m-%d")}
    return str(api.ok("POST", "/v1/exports", key, body, 202)["id"])


def test_an_export_whose_job_was_never_queued_is_queued_again_then_ready(
    api: Api, aws: Any, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a merchant with a return, and a queue that refuses the export's message right after it was recorded
    t = api.tenant()
    api.create_return(t)
    with monkeypatch.context() as m:
        m.setattr(bootstrap.container().export_queue, "enqueue", lambda *a: (_ for _ in ()).throw(OSError("down")))
        export_id = _request_export(api, t["m_key"])  # answered: the export exists and will be made
    # Then it is pending, with nothing queued for the worker
    queued = boto3.client("sqs").receive_message(QueueUrl=aws.queue_urls[d.EXPORT_QUEUE.name], WaitTimeSeconds=0)
    assert queued.get("Messages", []) == []
    assert api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])["status"] == "pending"
    # When the sweeper runs while it is young, nothing; once it is overdue, it is queued again (once)
    assert sweep() == {}
    clock.advance(hours=1)
    assert sweep() == {"export:queued": 1}
    assert sweep() == {}
    # Then the worker makes it: ready, and nothing is due any more
    assert drain_queue(aws.queue_urls[d.EXPORT_QUEUE.name], "export_worker") == {"count": 1, "failed": set()}
    out = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert out["status"] == "ready" and out["rows"] == 1
    clock.advance(hours=24)
    assert sweep() == {}


def test_an_export_that_is_never_run_ends_failed(api: Api, aws: Any, clock: SteppingClock) -> None:
    # Given an export whose messages never reach the worker (each one lost)
    t = api.tenant()
    export_id = _request_export(api, t["m_key"])
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.EXPORT_QUEUE.name]
    outcomes = []
    for _ in range(MAX_REDRIVES["export"] + 1):
        for lost in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=lost["ReceiptHandle"])
        clock.advance(hours=7)
        outcomes.append(sweep())
    # Then the sweeper queued it again each time, and then failed it
    assert outcomes == [{"export:queued": 1}] * MAX_REDRIVES["export"] + [{"export:failed": 1}]
    out = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert out["status"] == "failed" and out["error"] == "the export could not be run"
    assert sweep() == {}


# ----- (d) a withdrawal acknowledgement never sent -----------------------------------------------------------------
def _withdraw(api: Api, t: dict[str, Any], order: dict[str, Any]) -> Any:
    body = {"order_number": order["order_number"], "email": order["email"], "name": "Erika M", "confirm": True}
    return api.call("POST", f"/v1/portal/merchants/{t['slug']}/withdrawals", None, body)


@pytest.mark.parametrize("failure", [OSError("SES throttled"), Killed()], ids=["ses-fails", "process-killed"])
def test_a_withdrawal_acknowledgement_not_sent_is_sent_once_by_the_sweeper(
    api: Api, aws: Any, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    # Given a withdrawal whose acknowledgement fails to send (or whose process dies) right after it was stored
    t = api.tenant()
    order = api.order(t["m_key"])
    mailer = bootstrap.container().mailer
    sent: list[tuple[str, str]] = []
    original = mailer.send

    def failing(to: str, subject: str, text: str, *args: Any, **kwargs: Any) -> None:
        raise failure

    def capture(to: str, subject: str, text: str, *args: Any, **kwargs: Any) -> None:
        sent.append((to, text))
        original(to, subject, text, *args, **kwargs)

    monkeypatch.setattr(mailer, "send", failing)
    if isinstance(failure, Killed):
        with pytest.raises(Killed):
            _withdraw(api, t, order)
    else:
        resp = _withdraw(api, t, order)
        assert resp.status_code == 201 and json.loads(resp.body)["acknowledgement"] == "pending"
    monkeypatch.setattr(mailer, "send", capture)
    # When the sweeper runs while it is young: nothing is sent
    assert sweep() == {} and sent == []
    # When it runs once the acknowledgement is overdue: sent, once, to the consumer, naming the order
    clock.advance(hours=1)
    assert sweep() == {"acknowledgement:sent": 1}
    ((to, text),) = sent
    assert to == order["email"] and order["order_number"] in text
    # And never again
    clock.advance(hours=48)
    assert sweep() == {} and len(sent) == 1


def test_an_acknowledgement_sent_on_the_spot_is_never_sent_again(api: Api, clock: SteppingClock) -> None:
    t = api.tenant()
    order = api.order(t["m_key"])
    resp = _withdraw(api, t, order)
    assert json.loads(resp.body)["acknowledgement"] == "sent"
    clock.advance(hours=48)
    assert sweep() == {}


def test_the_sweeper_queries_the_due_index_and_never_scans(
    api: Api, aws: Any, clock: SteppingClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given something due of each kind the sweeper can see without the state machine
    t = api.tenant()
    with monkeypatch.context() as m:
        m.setattr(bootstrap.container().export_queue, "enqueue", lambda *a: (_ for _ in ()).throw(OSError("down")))
        _request_export(api, t["m_key"])
    calls: list[str] = []
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def spy(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return original(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    clock.advance(hours=1)
    assert sweep() == {"export:queued": 1}
    assert "Scan" not in calls and "Query" in calls
