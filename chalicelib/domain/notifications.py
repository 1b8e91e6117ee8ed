"""Customer emails: which language, and the text of each milestone's email. Pure: no I/O.

Templates are data: one `Language` per supported language, holding one `Template` per kind (a domain event type
such as `return.label_created`, or `withdrawal.received`) and the phrases and formats the templates share.
Adding a language is adding one entry to `LANGUAGES`; adding a kind is adding a `Template` to every language
(a unit test checks that every language has every kind).

Emails carry what the customer needs and nothing more: the merchant's name, the order number, the track & trace
link, amounts and dates. No addresses, no names of people.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from chalicelib.domain.money import minor_exponent, quantize
from chalicelib.domain.text import single_line

DEFAULT_LANGUAGE = "en"

#: Kinds about one return: the email names the order and links to track & trace.
RETURN_KINDS = frozenset(
    {
        "return.label_created",
        "return.in_transit",
        "return.received",
        "return.inspected",
        "return.refunded",
        "return.cancelled",
        "return.expired",
        "return.rejected",
        "carrier.exception",
    }
)
WITHDRAWAL_RECEIVED = "withdrawal.received"
KINDS = RETURN_KINDS | {WITHDRAWAL_RECEIVED}

#: Context each kind needs (render raises MissingContext without it).
_REQUIRED = {
    **{kind: ("merchant_name", "order_number", "track_url") for kind in RETURN_KINDS},
    WITHDRAWAL_RECEIVED: ("merchant_name", "order_number", "received_at"),
}


class MissingContext(ValueError):
    """render() was not given a value a template needs (a programming error, not bad customer input)."""


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


@dataclass(frozen=True)
class Template:
    subject: str
    body: str  # paragraphs; placeholders: the context's keys and the computed {instructions}, {amount}, {items}, ...


@dataclass(frozen=True)
class Language:
    greeting: str
    closing: str
    track: str  # the track & trace paragraph of every return email
    #: label_created: how the parcel goes on its way, by return method type ("pickup_unscheduled": no date known)
    methods: Mapping[str, str]
    label_attached: str
    customs: str
    label_valid_until: str
    refund_amount_unknown: str
    withdrawn_items: str
    withdrawn_whole_order: str
    date: str  # placeholders: day, month, month_name, year
    datetime: str  # placeholders: date, hour, minute (always UTC)
    months: tuple[str, ...]
    money: str  # placeholders: amount, currency
    decimal_point: str
    thousands_separator: str
    kinds: Mapping[str, Template]


GERMAN = Language(
    greeting="Guten Tag,",
    closing="Freundliche Grüße\n{merchant_name}",
    track="Den aktuellen Stand Ihrer Rücksendung sehen Sie jederzeit hier:\n{track_url}",
    methods={
        "label": "Bitte drucken Sie das Rücksendeetikett aus, kleben Sie es gut sichtbar auf das Paket und geben "
        "Sie das Paket beim Versanddienstleister ab.",
        "drop_off": "Bitte drucken Sie das Rücksendeetikett aus, kleben Sie es gut sichtbar auf das Paket und "
        "bringen Sie das Paket zu einer Annahmestelle des Versanddienstleisters.",
        "qr": "Sie müssen nichts ausdrucken: Zeigen Sie bei der Abgabe des Pakets in einer Annahmestelle des "
        "Versanddienstleisters einfach den QR-Code Ihrer Rücksendung vor. Das Etikett wird dort für Sie gedruckt.",
        "pickup": "Der Versanddienstleister holt das Paket am {pickup_date} bei Ihnen ab. Bitte halten Sie es gut "
        "verpackt und mit dem Rücksendeetikett versehen bereit.",
        "pickup_unscheduled": "Der Versanddienstleister holt das Paket zum vereinbarten Termin bei Ihnen ab. Bitte "
        "halten Sie es gut verpackt und mit dem Rücksendeetikett versehen bereit.",
        "preprinted": "Bitte verwenden Sie das vorgedruckte Rücksendeetikett, das Ihrer Lieferung beilag: Kleben "
        "Sie es auf das Paket und geben Sie das Paket beim Versanddienstleister ab.",
    },
    label_attached="Das Rücksendeetikett finden Sie im Anhang dieser E-Mail.",
    customs="Wichtig für den Zoll: Bitte drucken Sie die beigefügte Zollinhaltserklärung CN23 aus und bringen Sie "
    "sie außen am Paket an.",
    label_valid_until="Das Rücksendeetikett ist bis zum {date} gültig.",
    refund_amount_unknown="den Betrag für die angenommenen Artikel",
    withdrawn_items="Ihr Widerruf umfasst folgende Artikel:\n{items}",
    withdrawn_whole_order="Ihr Widerruf umfasst die gesamte Bestellung.",
    date="{day:02d}.{month:02d}.{year}",
    datetime="{date} um {hour:02d}:{minute:02d} UTC",
    months=(
        "Januar",
        "Februar",
        "März",
        "April",
        "Mai",
        "Juni",
        "Juli",
        "August",
        "September",
        "Oktober",
        "November",
        "Dezember",
    ),
    money="{amount} {currency}",
    decimal_point=",",
    thousands_separator=".",
    kinds={
        "return.label_created": Template(
            subject="{merchant_name}: Ihre Rücksendung zur Bestellung {order_number} ist angemeldet",
            body="vielen Dank! Ihre Rücksendung zur Bestellung {order_number} ist angemeldet. So geht es weiter:"
            "\n\n{instructions}",
        ),
        "return.in_transit": Template(
            subject="{merchant_name}: Ihre Rücksendung ist unterwegs",
            body="Ihre Rücksendung zur Bestellung {order_number} ist auf dem Weg zu uns. Sobald sie in unserem "
            "Lager eingetroffen ist, melden wir uns wieder.",
        ),
        "return.received": Template(
            subject="{merchant_name}: Ihre Rücksendung ist bei uns eingetroffen",
            body="Ihre Rücksendung zur Bestellung {order_number} ist in unserem Lager angekommen. Wir prüfen jetzt "
            "die Artikel und melden uns, sobald die Prüfung abgeschlossen ist.",
        ),
        "return.inspected": Template(
            subject="{merchant_name}: Ihre Rücksendung wurde geprüft",
            body="wir haben die Artikel Ihrer Rücksendung zur Bestellung {order_number} geprüft. Als Nächstes "
            "kümmern wir uns um Ihre Erstattung; wir informieren Sie, sobald sie veranlasst ist.",
        ),
        "return.refunded": Template(
            subject="{merchant_name}: Ihre Erstattung zur Bestellung {order_number}",
            body="wir haben Ihnen für Ihre Rücksendung zur Bestellung {order_number} {amount} erstattet. Der Betrag "
            "wird über die ursprüngliche Zahlungsart gutgeschrieben; je nach Zahlungsanbieter kann es einige Tage "
            "dauern, bis Sie ihn sehen.",
        ),
        "return.cancelled": Template(
            subject="{merchant_name}: Ihre Rücksendung wurde storniert",
            body="Ihre Rücksendung zur Bestellung {order_number} wurde storniert. Das Rücksendeetikett ist nicht mehr "
            "gültig; bitte verwenden Sie es nicht. Möchten Sie doch etwas zurücksenden, können Sie innerhalb der "
            "Rückgabefrist jederzeit eine neue Rücksendung anmelden.",
        ),
        "return.expired": Template(
            subject="{merchant_name}: Ihr Rücksendeetikett ist abgelaufen",
            body="das Rücksendeetikett Ihrer Rücksendung zur Bestellung {order_number} wurde nicht innerhalb seiner "
            "Gültigkeitsdauer verwendet und ist nun abgelaufen. Bitte verschicken Sie kein Paket mehr mit diesem "
            "Etikett. Möchten Sie die Artikel dennoch zurücksenden, melden Sie die Rücksendung bitte innerhalb der "
            "Rückgabefrist neu an.",
        ),
        "return.rejected": Template(
            subject="{merchant_name}: Ihre Rücksendung konnte nicht angenommen werden",
            body="nach der Prüfung Ihrer Rücksendung zur Bestellung {order_number} können wir die Artikel leider "
            "nicht annehmen und keine Erstattung leisten. Bei Fragen zu dieser Entscheidung wenden Sie sich bitte "
            "an den Kundenservice von {merchant_name}.",
        ),
        "carrier.exception": Template(
            subject="{merchant_name}: Problem beim Versand Ihrer Rücksendung",
            body="der Versanddienstleister hat uns ein Problem mit dem Paket Ihrer Rücksendung zur Bestellung "
            "{order_number} gemeldet. Wir kümmern uns bereits darum und melden uns bei Ihnen, falls wir etwas von "
            "Ihnen brauchen. Sie müssen vorerst nichts tun.",
        ),
        WITHDRAWAL_RECEIVED: Template(
            subject="{merchant_name}: Eingangsbestätigung Ihres Widerrufs zur Bestellung {order_number}",
            body="hiermit bestätigen wir den Eingang Ihres Widerrufs zur Bestellung {order_number}. Ihr Widerruf ist "
            "am {received_at} bei {merchant_name} eingegangen.\n\n{items}",
        ),
    },
)

ENGLISH = Language(
    greeting="Hello,",
    closing="Kind regards\n{merchant_name}",
    track="You can follow your return at any time here:\n{track_url}",
    methods={
        "label": "Please print the return label, stick it clearly visible on the parcel and hand the parcel in "
        "with the carrier.",
        "drop_off": "Please print the return label, stick it clearly visible on the parcel and take the parcel to "
        "one of the carrier's drop-off points.",
        "qr": "No printer needed: just show the QR code of your return when you hand the parcel in at one of the "
        "carrier's drop-off points. The label is printed for you there.",
        "pickup": "The carrier will collect the parcel from you on {pickup_date}. Please have it packed and "
        "labelled with the return label.",
        "pickup_unscheduled": "The carrier will collect the parcel from you at the agreed time. Please have it "
        "packed and labelled with the return label.",
        "preprinted": "Please use the pre-printed return label that came with your delivery: stick it on the "
        "parcel and hand the parcel in with the carrier.",
    },
    label_attached="The return label is attached to this email.",
    customs="Important for customs: please print the attached CN23 customs declaration and attach it to the "
    "outside of the parcel.",
    label_valid_until="The return label is valid until {date}.",
    refund_amount_unknown="the amount for the accepted items",
    withdrawn_items="Your withdrawal covers the following items:\n{items}",
    withdrawn_whole_order="Your withdrawal covers the whole order.",
    date="{day} {month_name} {year}",
    datetime="{date} at {hour:02d}:{minute:02d} UTC",
    months=(
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    money="{currency} {amount}",
    decimal_point=".",
    thousands_separator=",",
    kinds={
        "return.label_created": Template(
            subject="{merchant_name}: your return for order {order_number} is registered",
            body="Thank you! Your return for order {order_number} is registered. Here is what to do next:"
            "\n\n{instructions}",
        ),
        "return.in_transit": Template(
            subject="{merchant_name}: your return is on its way",
            body="Your return for order {order_number} is on its way to us. We will be in touch again once it has "
            "arrived at our warehouse.",
        ),
        "return.received": Template(
            subject="{merchant_name}: your return has arrived",
            body="Your return for order {order_number} has arrived at our warehouse. We are now inspecting the "
            "items and will let you know as soon as the inspection is complete.",
        ),
        "return.inspected": Template(
            subject="{merchant_name}: your return has been inspected",
            body="We have inspected the items of your return for order {order_number}. Next, we will take care of "
            "your refund and let you know as soon as it has been issued.",
        ),
        "return.refunded": Template(
            subject="{merchant_name}: your refund for order {order_number}",
            body="We have refunded {amount} for your return of order {order_number}. The money goes back to your "
            "original payment method; depending on your payment provider it may take a few days to show.",
        ),
        "return.cancelled": Template(
            subject="{merchant_name}: your return has been cancelled",
            body="Your return for order {order_number} has been cancelled. The return label is no longer valid; "
            "please do not use it. If you do want to send something back, you can register a new return at any "
            "time within the return period.",
        ),
        "return.expired": Template(
            subject="{merchant_name}: your return label has expired",
            body="The return label of your return for order {order_number} was not used within its validity and "
            "has now expired. Please do not send a parcel with this label any more. If you still want to return "
            "the items, please register the return again within the return period.",
        ),
        "return.rejected": Template(
            subject="{merchant_name}: your return could not be accepted",
            body="After inspecting your return for order {order_number}, we are unfortunately unable to accept the "
            "items or issue a refund. If you have questions about this decision, please contact {merchant_name}'s "
            "customer service.",
        ),
        "carrier.exception": Template(
            subject="{merchant_name}: a problem with the shipment of your return",
            body="The carrier has reported a problem with the parcel of your return for order {order_number}. We "
            "are already on it and will contact you if we need anything from you. There is nothing you need to do "
            "for now.",
        ),
        WITHDRAWAL_RECEIVED: Template(
            subject="{merchant_name}: we have received your withdrawal for order {order_number}",
            body="We confirm that we have received your withdrawal from the contract for order {order_number}. "
            "{merchant_name} received your withdrawal on {received_at}.\n\n{items}",
        ),
    },
)

LANGUAGES: dict[str, Language] = {"de": GERMAN, "en": ENGLISH}

_PRIMARY_SUBTAG = re.compile(r"[-_]")


def _supported(locale: str | None) -> str | None:
    if not locale:
        return None
    primary = _PRIMARY_SUBTAG.split(locale.strip(), maxsplit=1)[0].lower()
    return primary if primary in LANGUAGES else None


def language(order_locale: str | None, merchant_locale: str | None) -> str:
    """The language of a customer email: the order's locale if we write that language, else the merchant's,
    else English. `de`, `de-DE`, `de_CH` are all German."""
    return _supported(order_locale) or _supported(merchant_locale) or DEFAULT_LANGUAGE


# ----- formats ---------------------------------------------------------------------------------------------------
def _language(lang: str) -> Language:
    return LANGUAGES.get(lang) or LANGUAGES[DEFAULT_LANGUAGE]


def format_money(amount: Decimal | str | int, currency: str, lang: str) -> str:
    """`49,95 EUR` (de), `EUR 49.95` (en); thousands grouped (`1.234,50 EUR`, `EUR 1,234.50`)."""
    lg = _language(lang)
    value = quantize(Decimal(str(amount)), currency)
    digits = f"{value:,.{minor_exponent(currency)}f}"  # 1,234.50
    localized = "".join(lg.thousands_separator if ch == "," else lg.decimal_point if ch == "." else ch for ch in digits)
    return lg.money.format(amount=localized, currency=currency)


def _as_date(value: date | datetime | str) -> date | None:
    if isinstance(value, datetime):
        return _utc(value).date()
    if isinstance(value, date):
        return value
    try:
        return (
            datetime.fromisoformat(value.replace("Z", "+00:00")).date() if "T" in value else date.fromisoformat(value)
        )
    except ValueError:
        return None


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def format_date(value: date | datetime | str, lang: str) -> str:
    """`26.11.2026` (de), `26 November 2026` (en). A datetime counts in UTC; an unparsable string is kept as is."""
    day = _as_date(value)
    if day is None:
        return str(value)
    lg = _language(lang)
    return lg.date.format(day=day.day, month=day.month, month_name=lg.months[day.month - 1], year=day.year)


def format_datetime(at: datetime, lang: str) -> str:
    """`26.11.2026 um 10:00 UTC` (de), `26 November 2026 at 10:00 UTC` (en). A naive datetime is taken as UTC."""
    utc = _utc(at)
    return _language(lang).datetime.format(date=format_date(utc, lang), hour=utc.hour, minute=utc.minute)


# ----- rendering -------------------------------------------------------------------------------------------------
def _instructions(lg: Language, lang: str, ctx: Mapping[str, Any]) -> str:
    method = ctx.get("method_type") or "label"
    if method == "pickup" and not ctx.get("pickup_date"):
        method = "pickup_unscheduled"
    paragraphs = [lg.methods.get(method, lg.methods["label"])]
    if ctx.get("attachments"):
        paragraphs.append(lg.label_attached)
    if ctx.get("customs"):
        paragraphs.append(lg.customs)
    if ctx.get("label_expires_at"):
        paragraphs.append(lg.label_valid_until.format(date=format_date(ctx["label_expires_at"], lang)))
    pickup = format_date(ctx["pickup_date"], lang) if ctx.get("pickup_date") else ""
    return "\n\n".join(p.replace("{pickup_date}", pickup) for p in paragraphs)


def _withdrawn(lg: Language, ctx: Mapping[str, Any]) -> str:
    items = [str(i) for i in ctx.get("items") or []]
    if not items:
        return lg.withdrawn_whole_order
    return lg.withdrawn_items.format(items="\n".join(f"- {i}" for i in items))


def render(kind: str, lang: str, ctx: Mapping[str, Any]) -> Message | None:
    """The email for `kind` in `lang` (English for a language we do not write), or None: no email for this kind.

    Context: merchant_name; return kinds also order_number and track_url; `return.label_created` method_type
    (label | qr | pickup | drop_off | preprinted), pickup_date, attachments (bool), customs (bool: a CN23 is
    attached), label_expires_at; `return.refunded` amount and currency; `withdrawal.received` order_number,
    received_at (datetime) and items (names, or none for the whole order).
    """
    lg = _language(lang)
    template = lg.kinds.get(kind)
    if template is None:
        return None
    required = _REQUIRED.get(kind, ("merchant_name",))
    missing = [key for key in required if ctx.get(key) in (None, "")]
    if missing:
        raise MissingContext(f"{kind}: missing {', '.join(missing)}")
    values: dict[str, Any] = {k: v for k, v in ctx.items() if isinstance(v, str)}
    values.update({key: str(ctx[key]) for key in required})
    if kind == "return.label_created":
        values["instructions"] = _instructions(lg, lang, ctx)
    if kind == "return.refunded":
        amount, currency = ctx.get("amount"), ctx.get("currency")
        values["amount"] = (
            format_money(amount, str(currency), lang) if amount is not None and currency else lg.refund_amount_unknown
        )
    if kind == WITHDRAWAL_RECEIVED:
        values["received_at"] = format_datetime(ctx["received_at"], lang)
        values["items"] = _withdrawn(lg, ctx)
    paragraphs = [lg.greeting, template.body.format_map(values)]
    if kind in RETURN_KINDS:
        paragraphs.append(lg.track.format_map(values))
    paragraphs.append(lg.closing.format_map(values))
    # a subject is one header line, whatever the merchant's name or the order number hold (the mailer checks again)
    subject = single_line(template.subject.format_map(values))
    return Message(subject=subject, text="\n\n".join(paragraphs) + "\n")
