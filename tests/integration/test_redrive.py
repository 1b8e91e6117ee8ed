"""`python -m infrastructure.redrive`: dead-letter queue -> source queue, against moto. A redriven tracking event is
then processed; a dry run moves nothing; a failed send loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.domain.signatures import easypost_signature
from infrastructure import redrive
from local.lambda_router import call_handler
from local.provision import Resources
from tests.support import Api, drain_queue, easypost_event, sqs_event

TRACKING, DLQ = "boomerang-tracking", "boomerang-tracking-dlq"


@pytest.fixture
def api(aws: Resources) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def counts(url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def receive_all(url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=30
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)


def dead_letters(aws: Resources, n: int) -> list[str]:
    """`n` messages put straight into the tracking DLQ (with a message attribute); their bodies."""
    sqs = boto3.client("sqs")
    bodies = [json.dumps({"provider": "easypost", "body": f'{{"n": {i}}}', "received_at": "x"}) for i in range(n)]
    for body in bodies:
        sqs.send_message(
            QueueUrl=aws.dlq_urls[TRACKING],
            MessageBody=body,
            MessageAttributes={"source": {"DataType": "String", "StringValue": "test"}},
        )
    return bodies


def test_a_tracking_event_that_kept_failing_is_redriven_and_then_applied(
    api: Api, aws: Resources, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a signed tracking event whose processing failed maxReceiveCount times (the table was unavailable)
    t = api.tenant()
    ret = api.create_return(t)
    body = easypost_event("evt_redrive", ret["tracking_number"], "in_transit", "2030-01-01T08:00:00Z")
    headers = {"X-Hmac-Signature": easypost_signature("whsec-easypost-tests", body)}
    assert api.call("POST", "/v1/webhooks/easypost", raw=body, headers=headers).status_code == 200
    from functions.tracking_consumer import handler as consumer

    def unavailable(c: Any, event: Any) -> int:
        raise RuntimeError("the table is unavailable")

    monkeypatch.setattr(consumer, "record_tracking_event", unavailable)
    sqs = boto3.client("sqs")
    url, dlq = aws.queue_urls[TRACKING], aws.dlq_urls[TRACKING]
    for _ in range(10):
        msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        if not msgs:
            break
        assert call_handler("tracking_consumer", sqs_event(msgs))["batchItemFailures"]
    assert counts(url) == (0, 0) and counts(dlq) == (1, 0)
    monkeypatch.undo()  # the cause is fixed

    # When the DLQ is redriven
    assert redrive.main(["--queue", "tracking"]) == 0
    assert "moved 1 of 1 message(s) from boomerang-tracking-dlq to boomerang-tracking" in capsys.readouterr().out

    # Then the consumer applies the event, and the DLQ is empty
    assert counts(dlq) == (0, 0)
    assert drain_queue(url) == {"count": 1, "failed": set()}
    assert api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])["status"] == "in_transit"


def test_a_dry_run_moves_nothing_and_max_moves_that_many_with_their_attributes(
    aws: Resources, capsys: pytest.CaptureFixture[str]
) -> None:
    url, dlq = aws.queue_urls[TRACKING], aws.dlq_urls[TRACKING]
    bodies = dead_letters(aws, 3)

    assert redrive.main(["--queue", "tracking", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: 3 message(s) in boomerang-tracking-dlq would move to boomerang-tracking" in out
    assert '"n"' not in out  # no bodies printed
    assert counts(dlq) == (3, 0)  # all still there, and visible again at once
    assert counts(url) == (0, 0)

    assert redrive.main(["--queue", "tracking", "--max", "2"]) == 0
    assert "moved 2 of 2" in capsys.readouterr().out
    assert counts(dlq) == (1, 0)
    moved = receive_all(url)
    assert len(moved) == 2 and {m["Body"] for m in moved} < set(bodies)
    assert all(m["MessageAttributes"]["source"]["StringValue"] == "test" for m in moved)


class FlakySqs:
    """The SQS client, but SendMessageBatch fails: raising once, or refusing the last entry of a batch once."""

    def __init__(self, mode: str) -> None:
        self.real = boto3.client("sqs")
        self.mode = mode
        self.sends = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.sends += 1
        if self.sends > 1:
            return dict(self.real.send_message_batch(**kwargs))
        if self.mode == "raise":
            raise ConnectionError("the network went away")
        *sent, refused = kwargs["Entries"]
        response = dict(self.real.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=sent))
        response["Failed"] = [{"Id": refused["Id"], "SenderFault": False, "Code": "InternalError"}]
        return response


@pytest.mark.parametrize("mode", ["raise", "refuse one"])
def test_nothing_is_lost_when_sending_fails(aws: Resources, mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    url, dlq = aws.queue_urls[TRACKING], aws.dlq_urls[TRACKING]
    bodies = dead_letters(aws, 3)
    flaky = FlakySqs(mode)

    assert redrive.main(["--queue", "tracking"], sqs=flaky) == 1  # a failure is the command's exit status
    out = capsys.readouterr().out
    if mode == "raise":
        assert "moved 0 of 3" in out and counts(dlq) == (3, 0) and counts(url) == (0, 0)
    else:
        assert "moved 2 of 3" in out and "1 not accepted" in out
        assert counts(dlq) == (1, 0) and counts(url) == (2, 0)

    assert redrive.main(["--queue", "tracking"], sqs=flaky) == 0  # again, once the cause is gone
    assert counts(dlq) == (0, 0)
    assert sorted(m["Body"] for m in receive_all(url)) == sorted(bodies)  # each exactly once


class FailsAgain:
    """The SQS client; right after a redriven message is sent, the consumer fails it maxReceiveCount times (moto's
    redrive policy moves it back to the DLQ, with the id the source queue gave it) before the command reads on."""

    def __init__(self, source_url: str) -> None:
        self.real = boto3.client("sqs")
        self.source_url = source_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def delete_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        response = dict(self.real.delete_message_batch(**kwargs))
        for _ in range(10):  # received and never deleted: after maxReceiveCount receives it moves to the DLQ
            self.real.receive_message(QueueUrl=self.source_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        return response


def test_a_message_failing_again_during_the_run_is_not_moved_twice(aws: Resources) -> None:
    url, dlq = aws.queue_urls[TRACKING], aws.dlq_urls[TRACKING]
    dead_letters(aws, 2)
    result = redrive.redrive(FailsAgain(url), url, dlq, wait_seconds=0, say=lambda _: None)
    assert (result.read, result.moved, result.came_back, result.failed) == (2, 2, 2, 0)
    assert counts(dlq) == (2, 0) and counts(url) == (0, 0)  # left in the DLQ, visible, for whoever looks next
    assert "2 failed again and came back" in result.summary()
