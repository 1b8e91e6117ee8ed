"""The sandbox carrier issues real A6 PDF labels whose barcodes scan."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL.Image import Image

from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest
from chalicelib.adapters.carriers.sandbox import (
    SandboxCarrier,
    is_valid_tracking_number,
    new_tracking_number,
    next_weekday,
    printable,
    tracking_check_digit,
)
from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration, CustomsLine

A6_POINTS = (297.6, 419.5)


def a_label_request(
    *,
    sender_name: str = "Jana Novak",
    warehouse_city: str = "Krefeld",
    method: str = "label",
    weight_grams: int | None = None,
) -> LabelRequest:
    suffix = uuid.uuid4().hex[:10].upper()
    return LabelRequest(
        method=method,
        weight_grams=weight_grams,
        return_id=f"ret_{suffix}",
        order_number=f"ORD-{suffix}",
        merchant_name="Fjällräven Outlet",
        sender=Address(
            name=sender_name,
            street="Kurfürstendamm",
            house_number="195a",
            postal_code="10707",
            city="Berlin",
            country="DE",
        ),
        recipient=Address(
            name="Boomerang Returns Centre",
            street="Industriestraße",
            house_number="12",
            postal_code="47809",
            city=warehouse_city,
            country="DE",
        ),
    )


def render(label: Label, dpi: int) -> Image:
    page = pdfium.PdfDocument(label.content)[0]
    image: Image = page.render(scale=dpi / 72).to_pil()
    return image


def pdf_text(label: Label) -> str:
    text: str = pdfium.PdfDocument(label.content)[0].get_textpage().get_text_range()
    return text


def test_label_is_a_single_a6_pdf_page() -> None:
    # Given a label request
    request = a_label_request()

    # When the sandbox carrier creates a label
    label = SandboxCarrier().create_label(request)

    # Then it is a one-page PDF of A6 portrait size
    assert label.carrier == "sandbox"
    assert label.content_type == "application/pdf"
    assert label.content.startswith(b"%PDF-")
    document = pdfium.PdfDocument(label.content)
    assert len(document) == 1
    width, height = document[0].get_size()
    assert width == pytest.approx(A6_POINTS[0], abs=1)
    assert height == pytest.approx(A6_POINTS[1], abs=1)


@pytest.mark.parametrize("dpi", [203, 300])  # a common thermal printer, and office print quality
def test_barcode_and_qr_code_decode_from_the_rendered_page(dpi: int) -> None:
    # Given a label
    request = a_label_request()
    label = SandboxCarrier().create_label(request)

    # When the page is rendered to pixels and scanned, without downscaling help
    found = zxingcpp.read_barcodes(render(label, dpi), try_downscale=False)

    # Then it carries exactly one Code 128 with the tracking number and one QR code with the payload
    decoded = sorted((str(barcode.format), barcode.text) for barcode in found)
    assert decoded == sorted(
        [
            (str(zxingcpp.BarcodeFormat.Code128), label.tracking_number),
            (str(zxingcpp.BarcodeFormat.QRCode), label.qr_payload),
        ]
    )
    assert label.qr_payload == f"BMR1:{request.return_id}:{label.tracking_number}"


def test_pdf_text_names_the_return_the_order_and_both_parties() -> None:
    # Given a request with distinctive ids and names
    request = a_label_request(sender_name="Zoë Müller", warehouse_city="Mönchengladbach")

    # When the label is created
    label = SandboxCarrier().create_label(request)

    # Then its text layer holds them, Latin-1 letters printed as they are
    text = pdf_text(label)
    assert "RETURN / RETOURE" in text
    assert "Boomerang Sandbox" in text
    assert request.return_id in text
    assert request.order_number in text
    assert "Mönchengladbach" in text
    assert "Zoë Müller" in text
    assert label.tracking_number in text.replace(" ", "")


@pytest.mark.parametrize(
    ("sender_name", "printed"),
    [
        ("Łukasz Żółć", "Lukasz Zólc"),
        ("Zoë Müller", "Zoë Müller"),
        ("Đorđe Œuvre \u2013 \u201cĦal\u201d \u0131", 'Dorde OEuvre - "Hal" i'),
        ("山田 太郎 Yamada", "  Yamada"),
    ],
)
def test_names_outside_latin_1_render_transliterated(sender_name: str, printed: str) -> None:
    # Given a sender whose name the core PDF fonts cannot print as is
    request = a_label_request(sender_name=sender_name)

    # When the label is created
    label = SandboxCarrier().create_label(request)

    # Then it renders, with the name transliterated rather than crashing the PDF writer
    assert printable(sender_name) == printed
    assert printed.strip() in pdf_text(label)


@pytest.mark.parametrize(
    ("data", "check_digit"),
    [
        # GS1 SSCC example 37610425002123456|9. From the right, weights 3,1,3,...:
        # 6*3+5+4*3+3+2*3+1+2*3+0+0*3+5+2*3+4+0*3+1+6*3+7+3*3 = 101, (10 - 1) % 10 = 9
        ("37610425002123456", 9),
        # GTIN-13 example 400638133393|1
        ("400638133393", 1),
        # 14 digits, our length: 4*3+3+2*3+1+0*3+9+8*3+7+6*3+5+4*3+3+2*3+1 = 107 -> 3
        ("12345678901234", 3),
        # A sum that is already a multiple of ten gives 0, not 10
        ("00000000000000", 0),
    ],
)
def test_check_digit_follows_gs1_mod_10(data: str, check_digit: int) -> None:
    # Given GS1 reference data, When the check digit is computed, Then it matches the hand computation
    assert tracking_check_digit(data) == check_digit


def test_check_digit_rejects_non_digits() -> None:
    # Given data with a letter, When a check digit is asked for, Then it is refused
    with pytest.raises(ValueError):
        tracking_check_digit("1234A")


def test_generated_tracking_numbers_are_valid_and_unique() -> None:
    # Given / When a thousand tracking numbers are generated
    numbers = [new_tracking_number() for _ in range(1000)]

    # Then each has the sandbox format and a correct check digit, and none repeats
    assert all(len(n) == 17 and n.startswith("SB") for n in numbers)
    assert all(is_valid_tracking_number(n) for n in numbers)
    assert len(set(numbers)) == len(numbers)


@given(position=st.integers(min_value=2, max_value=16), replacement=st.sampled_from("0123456789"))
def test_any_single_digit_change_makes_a_tracking_number_invalid(position: int, replacement: str) -> None:
    # Given a valid tracking number
    number = new_tracking_number()
    if number[position] == replacement:
        replacement = str((int(replacement) + 1) % 10)

    # When one digit is changed
    tampered = number[:position] + replacement + number[position + 1 :]

    # Then the check digit catches it
    assert is_valid_tracking_number(number)
    assert not is_valid_tracking_number(tampered)


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "SB",
        "XX123456789012343",
        "sb123456789012343",
        "SB12345678901234",
        "SB1234567890123430",
        "SB" + "".join(chr(0x0660 + int(d)) for d in "123456789012343"),  # Arabic-Indic digits,
    ],
)
def test_malformed_tracking_numbers_are_invalid(candidate: str) -> None:
    # Given a string that is not SB + 15 ASCII digits, When validated, Then it is invalid
    assert not is_valid_tracking_number(candidate)


def test_cancel_accepts_a_sandbox_tracking_number() -> None:
    # Given a label the sandbox issued
    carrier = SandboxCarrier()
    label = carrier.create_label(a_label_request())

    # When it is cancelled, Then nothing is raised
    carrier.cancel_label(label.tracking_number)


@pytest.mark.parametrize("tracking_number", ["SB123456789012340", "1Z999AA10123456784", ""])
def test_cancel_refuses_an_invalid_tracking_number(tracking_number: str) -> None:
    # Given a tracking number the sandbox cannot have issued
    carrier = SandboxCarrier()

    # When it is cancelled, Then the carrier error says so and is not worth retrying
    with pytest.raises(CarrierError) as raised:
        carrier.cancel_label(tracking_number)
    assert raised.value.transient is False


def test_cancelling_twice_is_harmless() -> None:
    # Given a cancelled sandbox label
    carrier = SandboxCarrier()
    label = carrier.create_label(a_label_request())
    carrier.cancel_label(label.tracking_number)

    # When it is cancelled again, Then that succeeds too (a retried request must not fail)
    carrier.cancel_label(label.tracking_number)


# ----- return method types ------------------------------------------------------------------------------------------
def fixed_clock(at: datetime) -> SandboxCarrier:
    return SandboxCarrier(clock=lambda: at)


def a_customs_declaration(request: LabelRequest) -> CustomsDeclaration:
    return CustomsDeclaration(
        return_id=request.return_id,
        reference=request.order_number,
        currency="EUR",
        sender=request.sender,
        recipient=request.recipient,
        lines=(
            CustomsLine("SKU-1", "Wool sweater", 2, "611011", "IT", 700, Decimal("159.90")),
            CustomsLine("SKU-2", "Trail shoes", 1, "640411", "VN", 900, Decimal("129.00")),
        ),
    )


def test_the_sandbox_offers_every_method_type() -> None:
    assert SandboxCarrier().methods == frozenset({"label", "qr", "pickup", "drop_off"})


@pytest.mark.parametrize("method", ["label", "drop_off"])
def test_label_and_drop_off_get_a_printable_label_without_pickup(method: str) -> None:
    # Given a request for a printed label
    request = a_label_request(method=method)

    # When the label is created
    label = SandboxCarrier().create_label(request)

    # Then it is the A6 label, and no pickup is booked
    assert label.pickup_date is None
    assert "RETURN / RETOURE" in pdf_text(label)
    assert "Pickup" not in pdf_text(label)


@pytest.mark.parametrize("dpi", [150, 300])  # a phone screen shown to a scanner, and print quality
def test_qr_method_gets_a_label_less_code_that_scans(dpi: int) -> None:
    # Given a request for the label-less method
    request = a_label_request(method="qr", warehouse_city="Mönchengladbach")

    # When the carrier creates it
    label = SandboxCarrier().create_label(request)

    # Then it is a one-page A6 PDF whose QR code carries the payload and whose Code 128 the tracking number
    assert label.content_type == "application/pdf"
    document = pdfium.PdfDocument(label.content)
    assert len(document) == 1
    assert document[0].get_size() == pytest.approx(A6_POINTS, abs=1)
    found = zxingcpp.read_barcodes(render(label, dpi), try_downscale=False)
    assert sorted((str(b.format), b.text) for b in found) == sorted(
        [
            (str(zxingcpp.BarcodeFormat.QRCode), f"BMR1:{request.return_id}:{label.tracking_number}"),
            (str(zxingcpp.BarcodeFormat.Code128), label.tracking_number),
        ]
    )
    assert label.qr_payload == f"BMR1:{request.return_id}:{label.tracking_number}"
    assert label.pickup_date is None


def test_qr_document_tells_the_customer_what_to_do_and_shows_no_home_address() -> None:
    # Given a label-less return
    request = a_label_request(method="qr", warehouse_city="Mönchengladbach")

    # When its document is created
    label = SandboxCarrier().create_label(request)

    # Then it carries the instruction, the destination city and the tracking number, but not the customer's address
    text = pdf_text(label)
    assert "Show this code at the drop-off point; no printer needed" in text
    assert "Mönchengladbach" in text
    assert label.tracking_number in text.replace(" ", "")
    assert request.sender.name not in text
    assert request.sender.street not in text


@pytest.mark.parametrize(
    ("today", "pickup"),
    [
        (date(2026, 11, 16), date(2026, 11, 17)),  # Monday -> Tuesday
        (date(2026, 11, 19), date(2026, 11, 20)),  # Thursday -> Friday
        (date(2026, 11, 20), date(2026, 11, 23)),  # Friday -> Monday
        (date(2026, 11, 21), date(2026, 11, 23)),  # Saturday -> Monday
        (date(2026, 11, 22), date(2026, 11, 23)),  # Sunday -> Monday
        (date(2026, 12, 31), date(2027, 1, 1)),  # over the year end (public holidays are not modelled)
    ],
)
def test_next_weekday(today: date, pickup: date) -> None:
    assert next_weekday(today) == pickup


def test_pickup_is_booked_for_the_next_weekday_and_printed_on_the_label() -> None:
    # Given a pickup requested on a Friday evening (UTC)
    carrier = fixed_clock(datetime(2026, 11, 20, 22, 15, tzinfo=UTC))
    request = a_label_request(method="pickup")

    # When the label is created
    label = carrier.create_label(request)

    # Then the pickup is on Monday, printed on the label, and the label still scans
    assert label.pickup_date == date(2026, 11, 23)
    assert "Pickup: 2026-11-23" in pdf_text(label)
    decoded = {(str(b.format), b.text) for b in zxingcpp.read_barcodes(render(label, 203), try_downscale=False)}
    assert (str(zxingcpp.BarcodeFormat.Code128), label.tracking_number) in decoded
    assert (str(zxingcpp.BarcodeFormat.QRCode), label.qr_payload) in decoded


def test_pickup_date_counts_from_the_utc_date() -> None:
    # Given a clock in Berlin just after midnight on Friday, which is still Thursday in UTC
    berlin = timezone(timedelta(hours=1))
    carrier = fixed_clock(datetime(2026, 11, 20, 0, 30, tzinfo=berlin))

    # When a pickup is booked, Then the next weekday after Thursday is Friday
    assert carrier.create_label(a_label_request(method="pickup")).pickup_date == date(2026, 11, 20)


def test_customs_are_noted_on_the_label_with_their_total() -> None:
    # Given an international return with a customs declaration and a declared weight
    request = a_label_request(weight_grams=1650)
    request = replace(request, customs=a_customs_declaration(request))

    # When the label is created
    label = SandboxCarrier().create_label(request)

    # Then the label says a CN23 is enclosed, with the declared value, and still scans
    text = pdf_text(label)
    assert "CN23 enclosed" in text
    assert "288.90 EUR" in text
    assert "1.650 kg" in text
    decoded = [b.text for b in zxingcpp.read_barcodes(render(label, 203), try_downscale=False)]
    assert sorted(decoded) == sorted([label.tracking_number, label.qr_payload])


def test_a_label_without_customs_says_nothing_about_customs() -> None:
    assert "CN23" not in pdf_text(SandboxCarrier().create_label(a_label_request()))


def test_customs_and_pickup_fit_on_one_label() -> None:
    # Given a pickup for an international return
    request = a_label_request(method="pickup", weight_grams=1650)
    request = replace(request, customs=a_customs_declaration(request))

    # When the label is created, Then all service notes are printed
    text = pdf_text(fixed_clock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC)).create_label(request))
    for note in ("Pickup: 2026-11-17", "CN23 enclosed", "288.90 EUR", "1.650 kg"):
        assert note in text


@pytest.mark.parametrize("method", ["courier", "", "LABEL"])
def test_a_method_the_carrier_does_not_offer_is_refused(method: str) -> None:
    # Given a request for a method type the sandbox does not offer
    request = a_label_request(method=method)

    # When a label is asked for, Then the carrier refuses, naming the method, and retrying will not help
    with pytest.raises(CarrierError) as raised:
        SandboxCarrier().create_label(request)
    assert raised.value.detail == f"the sandbox carrier does not offer {method}"
    assert raised.value.transient is False
