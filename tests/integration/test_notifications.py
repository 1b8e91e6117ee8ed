"""Customer emails end to end in moto: a return created in the portal -> its domain event, written with it (the
transactional outbox) -> the stream relay -> the bus -> the rule -> the notification queue -> the notifier -> SES (and
the local mail outbox directory, read back as .eml files)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from infrastructure import definitions as d
from local.lambda_router import call_handler
from local.pollers import lambda_event
from tests.support import Api, drain_outbox

BASE_URL = "https://returns.example"


@pytest.fixture
def outbox(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "outbox"
    monkeypatch.setenv("OUTBOX_DIR", str(path))
    monkeypatch.setenv("PUBLIC_BASE_URL", BASE_URL)
    bootstrap.reset()  # settings read again, with the outbox
    return path


@pytest.fixture
def api(outbox: Path) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def tenant(api: Api, *, merchant_locale: str) -> dict[str, Any]:
    wh = api.warehouse()
    m = api.merchant(wh["id"], name="Müller Mode", locale=merchant_locale)
    return {"warehouse": wh, "merchant": m, "wh_key": wh["api_key"], "m_key": m["api_key"], "slug": m["slug"]}


def drain(aws: Any) -> dict[str, Any]:
    """Relay the committed domain events to the bus, then play the event source mapping once on the notification
    queue. Failed messages are made visible again at once (in AWS: after the visibility timeout), so a second drain is
    the retry."""
    drain_outbox(aws)
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.NOTIFICATION_QUEUE.name]
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    if not msgs:
        return {"count": 0, "failed": set()}
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    result = call_handler("notifier", lambda_event(msgs, arn, "eu-central-1"))
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    for m in msgs:
        if m["MessageId"] in failed:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return {"count": len(msgs), "failed": failed, "messages": msgs}


def mails(outbox: Path) -> list[EmailMessage]:
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]  # type: ignore[misc]


def sent_through_ses() -> int:
    """Messages SES accepted (moto's SentLast24Hours counts the recipients of each message twice)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return len(ses_backends[DEFAULT_ACCOUNT_ID]["eu-central-1"].sent_messages)


def text_of(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())  # type: ignore[attr-defined]


def put_event(aws: Any, detail_type: str, ret: dict[str, Any], **extra: Any) -> None:
    detail = {"return_id": ret["id"], "merchant_id": ret["merchant_id"], "at": "2026-11-26T10:00:00Z", **extra}
    resp = boto3.client("events").put_events(
        Entries=[
            {
                "Source": d.EVENT_SOURCE,
                "DetailType": detail_type,
                "Detail": json.dumps(detail),
                "EventBusName": aws.event_bus_name,
            }
        ]
    )
    assert resp["FailedEntryCount"] == 0


def test_a_portal_return_emails_the_label_in_the_orders_language(api: Api, aws: Any, outbox: Path) -> None:
    # Given a merchant writing English and an order placed in German
    t = tenant(api, merchant_locale="en")
    order = api.order(t["m_key"], locale="de-DE", email="kim@example.com")
    # When the customer creates a return in the portal and the notifier drains its queue
    ret = api.create_return(t, order=order)
    drained = drain(aws)
    # Then one German email went out through SES, to the order's address, with the label attached
    assert drained["count"] == 1 and drained["failed"] == set()
    assert json.loads(drained["messages"][0]["Body"])["detail-type"] == "return.label_created"
    (mail,) = mails(outbox)
    assert sent_through_ses() == 1
    assert mail["To"] == "kim@example.com"
    assert mail["Subject"] == f"Müller Mode: Ihre Rücksendung zur Bestellung {order['order_number']} ist angemeldet"
    text = text_of(mail)
    assert text.startswith("Guten Tag,")
    assert f"{BASE_URL}/v1/track/{ret['tracking_token']}" in text
    assert "Das Rücksendeetikett finden Sie im Anhang dieser E-Mail." in text
    assert "Freundliche Grüße\nMüller Mode" in text
    attachments = list(mail.iter_attachments())
    assert [(a.get_filename(), a.get_content_type()) for a in attachments] == [("label.pdf", "application/pdf")]
    label = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=f"labels/{ret['merchant_id']}/{ret['id']}.pdf")
    assert attachments[0].get_content() == label["Body"].read()
    assert attachments[0].get_content().startswith(b"%PDF")
    assert drain(aws)["count"] == 0


def test_an_order_without_locale_gets_the_merchants_language(api: Api, aws: Any, outbox: Path) -> None:
    # Given a German merchant, one order without a locale and one in English
    t = tenant(api, merchant_locale="de")
    no_locale = api.order(t["m_key"], locale=None)
    english = api.order(t["m_key"], locale="en")
    api.create_return(t, order=no_locale)
    api.create_return(t, order=english)
    # When the notifier drains the queue
    assert drain(aws)["failed"] == set()
    # Then the first is written in German (the merchant's language), the second in English
    by_order = {no_locale["order_number"]: "", english["order_number"]: ""}
    for mail in mails(outbox):
        (number,) = [n for n in by_order if n in mail["Subject"]]
        by_order[number] = text_of(mail)
    assert by_order[no_locale["order_number"]].startswith("Guten Tag,")
    assert by_order[english["order_number"]].startswith("Hello,")
    assert "The return label is attached to this email." in by_order[english["order_number"]]


def test_the_same_event_delivered_twice_sends_one_email(api: Api, aws: Any, outbox: Path) -> None:
    # Given the label_created event in the notification queue
    t = tenant(api, merchant_locale="en")
    api.create_return(t)
    drain_outbox(aws)
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.NOTIFICATION_QUEUE.name]
    (msg,) = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    # When SQS hands it to the notifier twice (at-least-once delivery; here even in the same batch)
    twice = [msg, {**msg, "MessageId": f"{msg['MessageId']}-again"}]
    result = call_handler("notifier", lambda_event(twice, "arn:aws:sqs:eu-central-1:123456789012:x", "eu-central-1"))
    # Then both are handled, and one email went out
    assert result["batchItemFailures"] == []
    assert len(mails(outbox)) == 1
    assert sent_through_ses() == 1


class FailingOnce:
    """The real mailer, except that its first send fails as SES would when throttling."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failures = 0

    def send(self, *args: Any, **kwargs: Any) -> None:
        if self.failures == 0:
            self.failures += 1
            raise ConnectionError("SES throttled")
        self.real.send(*args, **kwargs)


def test_a_failed_send_is_retried_and_then_sent_exactly_once(api: Api, aws: Any, outbox: Path) -> None:
    t = tenant(api, merchant_locale="en")
    api.create_return(t)
    flaky = FailingOnce(bootstrap.container().mailer)
    with bootstrap.override(mailer=flaky):
        # When the first delivery fails to send
        first = drain(aws)
        assert first["count"] == 1 and len(first["failed"]) == 1
        assert mails(outbox) == [] and sent_through_ses() == 0
        # Then the message stays for the retry, which sends it
        second = drain(aws)
        assert second["count"] == 1 and second["failed"] == set()
        assert drain(aws)["count"] == 0
    assert flaky.failures == 1
    assert len(mails(outbox)) == 1
    assert sent_through_ses() == 1


def test_a_return_without_customer_notifications_sends_nothing(api: Api, aws: Any, outbox: Path) -> None:
    from chalicelib.services.common import change_return

    # Given a return created with notify_customer off (as customer service may)
    t = tenant(api, merchant_locale="en")
    ret = api.create_return(t)
    change_return(bootstrap.container(), ret["id"], lambda r: setattr(r, "notify_customer", False))
    # When its label_created event is handled
    drained = drain(aws)
    # Then the message is done with (not retried) and nothing was sent
    assert drained["count"] == 1 and drained["failed"] == set()
    assert drain(aws)["count"] == 0
    assert mails(outbox) == [] and sent_through_ses() == 0


def test_each_milestone_on_the_bus_becomes_one_email_and_others_none(api: Api, aws: Any, outbox: Path) -> None:
    # Given an existing return whose label email went out
    t = tenant(api, merchant_locale="en")
    order = api.order(t["m_key"], locale="en")
    ret = api.create_return(t, order=order)
    drain(aws)
    # When milestones are published on the bus (and one the customer is not told about)
    for detail_type in ("return.in_transit", "return.delivered", "return.received", "return.inspected"):
        put_event(aws, detail_type, ret)
    put_event(aws, "return.received", ret)  # the same milestone again
    put_event(aws, "return.refunded", ret, refund_id="ref_x")
    put_event(aws, "carrier.exception", ret, carrier_status="failure")
    outcomes = drain(aws)
    # Then the rule routed only the customer milestones, and each went out once
    assert outcomes["count"] == 6 and outcomes["failed"] == set()
    subjects = sorted(m["Subject"] for m in mails(outbox))
    number = order["order_number"]
    assert subjects == sorted(
        [
            f"Müller Mode: your return for order {number} is registered",
            "Müller Mode: your return is on its way",
            "Müller Mode: your return has arrived",
            "Müller Mode: your return has been inspected",
            f"Müller Mode: your refund for order {number}",
            "Müller Mode: a problem with the shipment of your return",
        ]
    )
    for mail in mails(outbox):
        assert number in text_of(mail)
        assert f"{BASE_URL}/v1/track/{ret['tracking_token']}" in text_of(mail)


def test_a_carrier_exception_flags_the_return_and_tells_the_customer_once(api: Api, aws: Any, outbox: Path) -> None:
    from chalicelib.domain.signatures import easypost_signature
    from tests.support import easypost_event

    t = tenant(api, merchant_locale="en")
    ret = api.create_return(t)
    drain(aws)  # the label email
    before = len(mails(outbox))
    tn = ret["tracking_number"]
    for event_id, status, at in (
        ("evt_1", "in_transit", "2026-11-26T08:00:00Z"),
        ("evt_2", "failure", "2026-11-26T09:00:00Z"),
        ("evt_3", "failure", "2026-11-26T10:00:00Z"),  # the same problem reported again
    ):
        body = easypost_event(event_id, tn, status, at)
        headers = {"X-Hmac-Signature": easypost_signature("whsec-easypost-tests", body)}
        assert api.call("POST", "/v1/webhooks/easypost", raw=body, headers=headers).status_code == 200
    sqs = boto3.client("sqs")
    url = aws.queue_urls[d.TRACKING_QUEUE.name]
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert call_handler("tracking_consumer", lambda_event(msgs, arn, "eu-central-1")) == {"batchItemFailures": []}

    view = api.ok("GET", f"/v1/returns/{ret['id']}", t["m_key"])
    assert view["carrier_exception"]["status"] == "failure" and not view["carrier_exception"].get("resolved_at")
    assert [e["carrier_status"] for e in view["timeline"] if e["type"] == "carrier.exception"] == ["failure"]
    while drain(aws)["count"]:
        pass
    subjects = [m["Subject"] for m in mails(outbox)[before:]]
    # on its way, and one email about the problem (not two: the same exception again is no news)
    assert len(subjects) == 2, subjects
    assert sum("Problem beim Versand" in subject for subject in subjects) == 1, subjects  # the order is German
