"""The sandbox carrier issues real A6 PDF labels whose barcodes scan."""

from __future__ import annotations

import uuid

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
    printable,
    tracking_check_digit,
)
from chalicelib.domain.addresses import Address

A6_POINTS = (297.6, 419.5)


def a_label_request(*, sender_name: str = "Jana Novak", warehouse_city: str = "Krefeld") -> LabelRequest:
    suffix = uuid.uuid4().hex[:10].upper()
    return LabelRequest(
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
