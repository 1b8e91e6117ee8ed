"""Customer emails: language choice, every template in every language, formats, and the notify service with fakes
(sent once, retried after a failed send, skipped when it must not go out)."""

from __future__ import annotations

import email
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from email import policy
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.mail import Attachment, SesMailer
from chalicelib.bootstrap import Container
from chalicelib.config import Settings
from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import NotFound
from chalicelib.domain.notifications import (
    KINDS,
    LANGUAGES,
    RETURN_KINDS,
    WITHDRAWAL_RECEIVED,
    MissingContext,
    format_datetime,
    format_money,
    language,
    render,
)
from chalicelib.domain.orders import Order
from chalicelib.domain.returns import RefundSummary, Return, ReturnItem, ReturnStatus
from chalicelib.domain.tenants import Merchant
from chalicelib.services import notifications as service
from infrastructure import definitions as d
from local.lambda_router import FakeContext

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
TRACK = "https://returns.example/v1/track/tok_abc"
CTX: dict[str, Any] = {
    "merchant_name": "Müller Mode",
    "order_number": "ORD-4711",
    "track_url": TRACK,
    "amount": Decimal("49.95"),
    "currency": "EUR",
    "received_at": T0,
}


# ----- language ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("order_locale", "merchant_locale", "expected"),
    [
        ("de", "en", "de"),
        ("de-DE", "en", "de"),
        ("de_CH", "en", "de"),
        ("DE-at", None, "de"),
        ("en-GB", "de", "en"),
        ("en", None, "en"),
        (None, "de", "de"),  # no order locale: the merchant's
        ("", "de-DE", "de"),
        ("fr-FR", "de", "de"),  # a language we do not write: the merchant's
        ("fr", "it", "en"),  # neither: English
        (None, None, "en"),
        ("dex", None, "en"),  # not a German tag
    ],
)
def test_language_is_the_orders_then_the_merchants_then_english(
    order_locale: str | None, merchant_locale: str | None, expected: str
) -> None:
    assert language(order_locale, merchant_locale) == expected


# ----- templates -----------------------------------------------------------------------------------------------------
def test_every_language_has_every_kind_and_every_method() -> None:
    # Given the languages as data: adding one must not leave a kind or a return method without text
    assert set(LANGUAGES) >= {"de", "en"}
    methods = set(LANGUAGES["en"].methods)
    assert methods >= {"label", "qr", "pickup", "drop_off", "preprinted"}
    for lang, lg in LANGUAGES.items():
        assert set(lg.kinds) == KINDS, lang
        assert set(lg.methods) == methods, lang
        assert len(lg.months) == 12, lang


def test_the_notification_rule_routes_exactly_the_return_kinds() -> None:
    assert set(d.CUSTOMER_NOTIFICATIONS.detail_types) == RETURN_KINDS
    assert d.CUSTOMER_NOTIFICATIONS.queue is d.NOTIFICATION_QUEUE
    assert d.NOTIFICATION_QUEUE.consumer == "notifier"


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("kind", sorted(RETURN_KINDS))
def test_every_return_kind_names_merchant_order_and_track_link(kind: str, lang: str) -> None:
    message = render(kind, lang, CTX)
    assert message is not None
    assert "Müller Mode" in message.subject
    for needed in ("Müller Mode", "ORD-4711", TRACK):
        assert needed in message.text, (kind, lang, needed)
    assert message.text.startswith(LANGUAGES[lang].greeting)
    assert "{" not in message.text and "{" not in message.subject  # every placeholder filled
    assert "\n" not in message.subject


def test_the_languages_really_differ_and_german_is_written_with_umlauts() -> None:
    for kind in RETURN_KINDS:
        de, en = render(kind, "de", CTX), render(kind, "en", CTX)
        assert de is not None and en is not None
        assert de.subject != en.subject and de.text != en.text
        assert "Guten Tag," in de.text and "Freundliche Grüße" in de.text
        assert "Hello," in en.text and "Kind regards" in en.text
        assert "Rücksendung" in de.text  # not "Ruecksendung"
    german = "\n".join(m.text + m.subject for k in KINDS if (m := render(k, "de", CTX)))
    for transliteration in ("Ruecksend", "Gruesse", "Grusse", "geprueft", "Pruefung", "Naechst", "fuer ", "aussen"):
        assert transliteration not in german
    assert {"ä", "ö", "ü", "ß"} <= set(german)
    label = render("return.label_created", "de", {**CTX, "customs": True})
    assert label is not None and "außen am Paket" in label.text


def test_unknown_kinds_have_no_email_and_unknown_languages_get_english() -> None:
    assert render("return.delivered", "de", CTX) is None
    assert render("item.graded", "en", CTX) is None
    assert render("return.received", "fr", CTX) == render("return.received", "en", CTX)


def test_a_missing_value_is_an_error_not_an_email_with_a_hole() -> None:
    with pytest.raises(MissingContext, match="track_url"):
        render("return.in_transit", "de", {**CTX, "track_url": None})
    with pytest.raises(MissingContext, match="received_at"):
        render(WITHDRAWAL_RECEIVED, "en", {"merchant_name": "M", "order_number": "O"})


@pytest.mark.parametrize(
    ("method", "de_phrase", "en_phrase"),
    [
        ("label", "drucken Sie das Rücksendeetikett aus", "print the return label"),
        ("drop_off", "Annahmestelle", "drop-off point"),
        ("qr", "QR-Code", "QR code"),
        ("pickup", "holt das Paket am 01.12.2026 bei Ihnen ab", "collect the parcel from you on 1 December 2026"),
        ("preprinted", "vorgedruckte Rücksendeetikett", "pre-printed return label"),
    ],
)
def test_the_label_email_says_how_the_parcel_goes_by_method(method: str, de_phrase: str, en_phrase: str) -> None:
    ctx = {**CTX, "method_type": method, "pickup_date": "2026-12-01"}
    de, en = render("return.label_created", "de", ctx), render("return.label_created", "en", ctx)
    assert de is not None and en is not None
    assert de_phrase in de.text
    assert en_phrase in en.text


def test_the_label_email_mentions_attachments_customs_and_validity_only_when_there_are_any() -> None:
    plain = render("return.label_created", "en", CTX)
    full = render(
        "return.label_created",
        "en",
        {**CTX, "attachments": True, "customs": True, "label_expires_at": datetime(2026, 12, 26, 9, tzinfo=UTC)},
    )
    assert plain is not None and full is not None
    assert "attached" not in plain.text and "CN23" not in plain.text and "valid until" not in plain.text
    assert "The return label is attached to this email." in full.text
    assert "print the attached CN23 customs declaration and attach it to the outside of the parcel" in full.text
    assert "valid until 26 December 2026" in full.text
    de = render("return.label_created", "de", {**CTX, "attachments": True, "customs": True})
    assert de is not None
    assert "im Anhang" in de.text and "Zollinhaltserklärung CN23" in de.text
    pickup = render("return.label_created", "de", {**CTX, "method_type": "pickup"})  # no date known
    assert pickup is not None and "zum vereinbarten Termin" in pickup.text


@pytest.mark.parametrize(
    ("amount", "currency", "de", "en"),
    [
        (Decimal("49.95"), "EUR", "49,95 EUR", "EUR 49.95"),
        ("49.9", "EUR", "49,90 EUR", "EUR 49.90"),
        (Decimal("1234.5"), "CHF", "1.234,50 CHF", "CHF 1,234.50"),
        (Decimal("0"), "GBP", "0,00 GBP", "GBP 0.00"),
        (Decimal("1500"), "JPY", "1.500 JPY", "JPY 1,500"),
    ],
)
def test_money_is_formatted_per_language(amount: Any, currency: str, de: str, en: str) -> None:
    assert format_money(amount, currency, "de") == de
    assert format_money(amount, currency, "en") == en


def test_the_refund_email_states_the_amount_in_the_languages_format() -> None:
    de, en = render("return.refunded", "de", CTX), render("return.refunded", "en", CTX)
    assert de is not None and en is not None
    assert "49,95 EUR" in de.text and "erstattet" in de.text
    assert "EUR 49.95" in en.text and "refunded" in en.text
    unknown = render("return.refunded", "en", {**CTX, "amount": None})
    assert unknown is not None and "the amount for the accepted items" in unknown.text


def test_date_and_time_are_formatted_per_language_in_utc() -> None:
    from datetime import timedelta, timezone

    berlin = datetime(2026, 11, 26, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert format_datetime(berlin, "de") == "26.11.2026 um 10:00 UTC"
    assert format_datetime(berlin, "en") == "26 November 2026 at 10:00 UTC"
    assert format_datetime(datetime(2026, 3, 1, 7, 5), "de") == "01.03.2026 um 07:05 UTC"  # naive = UTC


@pytest.mark.parametrize(
    ("lang", "received", "whole_order"),
    [
        ("de", "am 26.11.2026 um 10:00 UTC bei Müller Mode eingegangen", "die gesamte Bestellung"),
        ("en", "received your withdrawal on 26 November 2026 at 10:00 UTC", "the whole order"),
    ],
)
def test_the_withdrawal_acknowledgement_names_order_date_time_and_what_was_withdrawn(
    lang: str, received: str, whole_order: str
) -> None:
    ctx = {"merchant_name": "Müller Mode", "order_number": "ORD-4711", "received_at": T0}
    whole = render(WITHDRAWAL_RECEIVED, lang, ctx)
    some = render(WITHDRAWAL_RECEIVED, lang, {**ctx, "items": ["2 x Shirt M", "1 x Jeans 32"]})
    assert whole is not None and some is not None
    for message in (whole, some):
        assert "ORD-4711" in message.subject and "ORD-4711" in message.text
        assert received in message.text
        assert "/v1/track/" not in message.text
    assert whole_order in whole.text
    assert "- 2 x Shirt M\n- 1 x Jeans 32" in some.text and whole_order not in some.text


# ----- the mail adapter ----------------------------------------------------------------------------------------------
class FakeSes:
    def __init__(self) -> None:
        self.raw: list[bytes] = []

    def send_raw_email(self, **kwargs: Any) -> dict[str, str]:
        self.raw.append(kwargs["RawMessage"]["Data"])
        return {"MessageId": "m1"}


def test_the_mailer_attaches_files_and_keeps_plain_messages_plain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ses = FakeSes()
    monkeypatch.setattr("chalicelib.adapters.mail.client", lambda name: ses)
    mailer = SesMailer("returns@shop.example", str(tmp_path))
    # Given an existing caller (three arguments) and a caller with a PDF attached
    mailer.send("ops@shop.example", "Refund failed", "plain ascii")
    mailer.send(
        "kim@example.com",
        "Müller Mode: Ihre Rücksendung",
        "Freundliche Grüße",
        attachments=[Attachment("label.pdf", b"%PDF-1.4 label", "application/pdf")],
    )
    plain, with_label = (email.message_from_bytes(raw, policy=policy.default) for raw in ses.raw)
    assert not plain.is_multipart() and plain.get_content().strip() == "plain ascii"
    assert with_label["Subject"] == "Müller Mode: Ihre Rücksendung"
    body = with_label.get_body(("plain",))
    assert body.get_content().strip() == "Freundliche Grüße"
    assert body["Content-Transfer-Encoding"] == "quoted-printable"  # SES wants 7-bit parts
    (attachment,) = with_label.iter_attachments()
    assert attachment.get_filename() == "label.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 label"
    assert all(byte < 128 for byte in ses.raw[1])
    assert sorted(p.read_bytes() for p in tmp_path.glob("*.eml")) == sorted(ses.raw)


# ----- the service, with fakes ---------------------------------------------------------------------------------------
@dataclass
class FakeStore:
    returns: dict[str, Return] = field(default_factory=dict)
    orders: dict[tuple[str, str], Order] = field(default_factory=dict)
    merchants: dict[str, Merchant] = field(default_factory=dict)
    markers: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def get_return(self, return_id: str) -> Return:
        if return_id not in self.returns:
            raise NotFound(return_id)
        return self.returns[return_id]

    def get_order(self, merchant_id: str, order_number: str) -> Order | None:
        return self.orders.get((merchant_id, order_number))

    def get_merchant(self, merchant_id: str) -> Merchant:
        if merchant_id not in self.merchants:
            raise NotFound(merchant_id)
        return self.merchants[merchant_id]

    def claim_marker(self, pk: str, sk: str, data: dict[str, Any], ttl_seconds: int | None = None) -> bool:
        if (pk, sk) in self.markers:
            return False
        self.markers[(pk, sk)] = data
        return True

    def release_marker(self, pk: str, sk: str) -> None:
        self.markers.pop((pk, sk), None)


@dataclass
class FakeMailer:
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0

    def send(self, to: str, subject: str, text: str, attachments: Any = ()) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("SES unavailable")
        self.sent.append({"to": to, "subject": subject, "text": text, "attachments": list(attachments)})


@dataclass
class FakeFiles:
    objects: dict[str, bytes] = field(default_factory=dict)

    def get(self, key: str) -> bytes:
        return self.objects[key]


@dataclass
class World:
    c: Container
    store: FakeStore
    mailer: FakeMailer
    files: FakeFiles


def _settings() -> Settings:
    return Settings(
        table_name="t",
        bucket_name="b",
        tracking_queue_url="q",
        event_bus_name="e",
        processing_state_machine_arn="p",
        refund_state_machine_arn="r",
        public_base_url="https://returns.example/",
    )


def add_return(world: World, *, return_id: str = "ret_1", order_locale: str | None = "de-DE") -> Return:
    ret = Return.request(
        return_id=return_id,
        merchant_id="mer_1",
        warehouse_id="wh_1",
        order_number=f"ORD-{return_id}",
        currency="EUR",
        customer_country="DE",
        locale=order_locale or "en",
        items=[ReturnItem("L1", "SHIRT-M", "Shirt M", 1, Decimal("29.95"), "too_small")],
        tracking_token=f"tok_{return_id}",
        actor="customer",
        at=T0,
    )
    ret.status = ReturnStatus.LABEL_CREATED
    ret.label_key = f"labels/mer_1/{return_id}.pdf"
    world.files.objects[ret.label_key] = b"%PDF label " + return_id.encode()
    world.store.returns[return_id] = ret
    world.store.orders[("mer_1", ret.order_number)] = Order(
        merchant_id="mer_1",
        order_number=ret.order_number,
        email="kim@example.com",
        currency="EUR",
        ordered_at=T0,
        shipping_address=Address("Kim", "Weg", "1", "10115", "Berlin", "DE"),
        items=[],
        locale=order_locale,
    )
    return ret


@pytest.fixture
def world() -> World:
    store, mailer, files = FakeStore(), FakeMailer(), FakeFiles()
    store.merchants["mer_1"] = Merchant(
        id="mer_1", name="Müller Mode", slug="mueller", warehouse_id="wh_1", created_at=T0, locale="en"
    )
    c = Container(settings_factory=_settings, overrides={"store": store, "mailer": mailer, "files": files})
    return World(c, store, mailer, files)


def detail(ret: Return, **extra: Any) -> dict[str, Any]:
    return {"return_id": ret.id, "merchant_id": ret.merchant_id, "at": "2026-11-26T10:00:00Z", **extra}


def test_a_label_email_goes_out_once_in_the_orders_language_with_the_label_attached(world: World) -> None:
    ret = add_return(world)
    assert service.notify(world.c, "return.label_created", detail(ret)) == "sent"
    assert service.notify(world.c, "return.label_created", detail(ret)) == "duplicate"
    (mail,) = world.mailer.sent
    assert mail["to"] == "kim@example.com"
    assert "Ihre Rücksendung zur Bestellung ORD-ret_1" in mail["subject"]
    assert "https://returns.example/v1/track/tok_ret_1" in mail["text"]
    assert [(a.filename, a.content, a.content_type) for a in mail["attachments"]] == [
        ("label.pdf", b"%PDF label ret_1", "application/pdf")
    ]
    assert "Das Rücksendeetikett finden Sie im Anhang" in mail["text"]
    assert ("NOTIFY#ret_1", "return.label_created") in world.store.markers


def test_an_international_return_gets_the_cn23_attached_too(world: World) -> None:
    ret = add_return(world)
    ret.customs = {"required": True, "declaration_key": "labels/mer_1/ret_1-cn23.pdf"}
    ret.method = {"type": "pickup", "pickup_date": "2026-12-01"}
    world.files.objects["labels/mer_1/ret_1-cn23.pdf"] = b"%PDF cn23"
    assert service.notify(world.c, "return.label_created", detail(ret)) == "sent"
    (mail,) = world.mailer.sent
    assert [a.filename for a in mail["attachments"]] == ["label.pdf", "cn23.pdf"]
    assert mail["attachments"][1].content == b"%PDF cn23"
    assert "CN23" in mail["text"] and "am 01.12.2026" in mail["text"]


def test_without_an_order_locale_the_merchants_language_is_used(world: World) -> None:
    ret = add_return(world, order_locale=None)
    world.store.merchants["mer_1"].locale = "de"
    service.notify(world.c, "return.in_transit", detail(ret))
    assert "unterwegs" in world.mailer.sent[0]["subject"]
    ret2 = add_return(world, return_id="ret_2", order_locale="en-GB")
    service.notify(world.c, "return.in_transit", detail(ret2))
    assert "on its way" in world.mailer.sent[1]["subject"]


def test_a_failed_send_releases_the_marker_so_the_retry_sends_exactly_once(world: World) -> None:
    ret = add_return(world)
    world.mailer.fail_next = 1
    with pytest.raises(ConnectionError):
        service.notify(world.c, "return.received", detail(ret))
    assert world.store.markers == {}
    assert service.notify(world.c, "return.received", detail(ret)) == "sent"
    assert service.notify(world.c, "return.received", detail(ret)) == "duplicate"
    assert len(world.mailer.sent) == 1


def test_each_milestone_is_its_own_email_and_each_kind_of_carrier_exception_too(world: World) -> None:
    ret = add_return(world)
    outcomes = [
        service.notify(world.c, "return.in_transit", detail(ret)),
        service.notify(world.c, "return.received", detail(ret)),
        service.notify(world.c, "carrier.exception", detail(ret, carrier_status="failure")),
        service.notify(world.c, "carrier.exception", detail(ret, carrier_status="failure")),
        service.notify(world.c, "carrier.exception", detail(ret, carrier_status="return_to_sender")),
    ]
    assert outcomes == ["sent", "sent", "sent", "duplicate", "sent"]
    assert len(world.mailer.sent) == 4


def test_the_refund_email_names_the_refunded_amount(world: World) -> None:
    ret = add_return(world)
    ret.status = ReturnStatus.REFUNDED
    ret.refund = RefundSummary(id="ref_1", status="succeeded", amount=Decimal("29.95"), currency="EUR")
    assert service.notify(world.c, "return.refunded", detail(ret, refund_id="ref_1")) == "sent"
    assert "29,95 EUR" in world.mailer.sent[0]["text"]


@pytest.mark.parametrize(
    ("change", "event_type", "expected"),
    [
        (
            lambda w, r: setattr(r, "notify_customer", False),
            "return.label_created",
            "skipped:customer notifications off",
        ),
        (lambda w, r: w.store.returns.clear(), "return.received", "skipped:return not found"),
        (lambda w, r: w.store.orders.clear(), "return.received", "skipped:order not found"),
        (lambda w, r: w.store.merchants.clear(), "return.received", "skipped:merchant not found"),
        (
            lambda w, r: setattr(r, "status", ReturnStatus.CANCELLED),
            "return.label_created",
            "skipped:return already cancelled",
        ),
        (lambda w, r: None, "return.delivered", "skipped:not a customer notification"),
    ],
)
def test_nothing_goes_out_when_it_must_not(world: World, change: Any, event_type: str, expected: str) -> None:
    ret = add_return(world)
    change(world, ret)
    assert service.notify(world.c, event_type, detail(ret)) == expected
    assert world.mailer.sent == []
    assert world.store.markers == {}


def test_an_event_without_a_return_id_is_an_error(world: World) -> None:
    with pytest.raises(ValueError, match="return_id"):
        service.notify(world.c, "return.received", {"merchant_id": "mer_1"})


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __getattr__(self, level: str) -> Any:
        return lambda message, *args, **fields: self.lines.append(f"{level} {message} {args} {fields}")


def test_no_email_address_reaches_the_logs(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    log = RecordingLogger()
    monkeypatch.setattr(service, "logger", log)
    ret = add_return(world)
    world.mailer.fail_next = 1
    with pytest.raises(ConnectionError):
        service.notify(world.c, "return.label_created", detail(ret))
    service.notify(world.c, "return.label_created", detail(ret))
    service.notify(world.c, "return.label_created", detail(ret))
    world.store.orders.clear()
    service.notify(world.c, "return.received", detail(ret))
    service.send_withdrawal_acknowledgement(
        world.c, to="kim@example.com", lang="en", merchant_name="M", order_number="O", received_at=T0, items=None
    )
    logged = "\n".join(log.lines)
    assert len(log.lines) == 5 and "ret_1" in logged  # it did log, with the ids
    assert "example.com" not in logged and "Kim" not in logged


def test_the_withdrawal_acknowledgement_is_sent_to_the_given_address(world: World) -> None:
    service.send_withdrawal_acknowledgement(
        world.c,
        to="kim@example.com",
        lang="de",
        merchant_name="Müller Mode",
        order_number="ORD-9",
        received_at=T0,
        items=None,
    )
    (mail,) = world.mailer.sent
    assert mail["to"] == "kim@example.com" and mail["attachments"] == []
    assert "ORD-9" in mail["subject"]
    assert "26.11.2026 um 10:00 UTC" in mail["text"] and "die gesamte Bestellung" in mail["text"]


# ----- the handlers --------------------------------------------------------------------------------------------------
def _sqs(bodies: list[Any]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"h{i}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:boomerang-notifications",
                "awsRegion": "eu-central-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def test_the_notifier_reports_the_records_that_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions.notifier import handler as notifier

    seen: list[tuple[str, dict[str, Any]]] = []

    def fake_notify(c: Any, event_type: str, detail: dict[str, Any]) -> str:
        seen.append((event_type, detail))
        if detail["return_id"] == "ret_bad":
            raise ConnectionError("SES unavailable")
        return "sent"

    monkeypatch.setattr(notifier, "notify", fake_notify)
    envelope = {"version": "0", "source": "boomerang", "detail-type": "return.received"}
    result = notifier.handler(
        _sqs(
            [
                {**envelope, "detail": {"return_id": "ret_ok"}},  # moto's delivery: no `account`, still fine
                {**envelope, "detail": {"return_id": "ret_bad"}},
                "not json",
            ]
        ),
        FakeContext("boomerang-notifier"),
    )
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert seen == [("return.received", {"return_id": "ret_ok"}), ("return.received", {"return_id": "ret_bad"})]


def test_the_expiry_function_runs_the_expiry_service(monkeypatch: pytest.MonkeyPatch) -> None:
    import chalicelib.services.cancellations as cancellations_service
    from functions.expire_labels import handler as expire_labels

    calls: list[Any] = []

    def fake_expire_labels(c: Any) -> int:
        calls.append(c)
        return 3

    monkeypatch.setattr(cancellations_service, "expire_labels", fake_expire_labels)
    from local.pollers import scheduled_event

    assert expire_labels.handler(scheduled_event("expire_labels", "eu-central-1"), FakeContext("x")) == {"expired": 3}
    assert len(calls) == 1


def test_every_scheduled_function_has_a_handler_and_a_valid_expression() -> None:
    import re

    scheduled = [fn for fn in d.FUNCTIONS if fn.schedule]
    assert [fn.name for fn in scheduled] == ["expire_labels", "dhl_tracking_poller", "sweeper"]
    for fn in scheduled:
        assert re.fullmatch(r"rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)", fn.schedule or "")
        assert (d.ROOT / "functions" / fn.name / "handler.py").is_file()


def test_dates_may_come_as_strings_dates_or_datetimes() -> None:
    from chalicelib.domain.notifications import format_date

    assert format_date("2026-12-01", "de") == "01.12.2026"
    assert format_date("2026-12-01T23:30:00Z", "en") == "1 December 2026"
    assert format_date(date(2026, 5, 3), "en") == "3 May 2026"
    assert format_date(datetime(2026, 3, 1, tzinfo=UTC), "de") == "01.03.2026"
    assert format_date("next Tuesday", "en") == "next Tuesday"


def test_the_local_scheduler_invokes_each_scheduled_function_through_the_router(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from local import lambda_router, pollers

    calls: list[tuple[str, dict[str, Any]]] = []

    def call_handler(name: str, payload: dict[str, Any]) -> Any:
        calls.append((name, payload))
        if name == "broken":
            raise RuntimeError("boom")
        return {"expired": 0}

    monkeypatch.setattr(lambda_router, "call_handler", call_handler)
    functions = [d.Function("expire_labels", schedule="rate(1 hour)"), d.Function("broken", schedule="rate(1 hour)")]
    scheduler = pollers.Scheduler(functions, interval=30, stop=threading.Event())
    scheduler.tick()
    scheduler.tick()
    assert [name for name, _ in calls] == ["expire_labels", "broken"] * 2
    assert calls[0][1]["detail-type"] == "Scheduled Event" and calls[0][1]["source"] == "aws.events"
    assert (scheduler.runs, scheduler.failed) == (2, 2)  # a failed run does not stop the next ones
    monkeypatch.setenv("SCHEDULE_INTERVAL_SECONDS", "0.5")
    assert pollers.schedule_interval_seconds() == 0.5
    monkeypatch.delenv("SCHEDULE_INTERVAL_SECONDS")
    assert pollers.schedule_interval_seconds() == 30
