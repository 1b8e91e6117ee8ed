"""The CN 23 customs declaration is a real A4 PDF: its text reads back and its barcode scans."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL.Image import Image

from chalicelib.adapters.carriers.sandbox import new_tracking_number
from chalicelib.adapters.documents.cn23 import LINES_PER_SHEET, TITLE, render_cn23, sheet_count
from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import CustomsDeclaration, CustomsLine

A4_POINTS = (595.3, 841.9)
AT = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)


def a_line(n: int, **overrides: object) -> CustomsLine:
    fields: dict[str, object] = {
        "sku": f"SKU-{n:03d}",
        "description": f"Item number {n}",
        "quantity": 1,
        "hs_code": f"6110{n:04d}",
        "country_of_origin": "PT",
        "weight_grams": 250,
        "value": Decimal("10.00"),
    }
    fields.update(overrides)
    return CustomsLine(**fields)  # type: ignore[arg-type]


def a_declaration(lines: list[CustomsLine], *, sender_name: str = "Ann Smith") -> CustomsDeclaration:
    suffix = uuid.uuid4().hex[:8].upper()
    return CustomsDeclaration(
        return_id=f"ret_{suffix}",
        reference=f"ORD-{suffix}",
        currency="GBP",
        sender=Address(sender_name, "Baker Street", "221b", "NW1 6XE", "London", "GB"),
        recipient=Address("Boomerang Returns Centre", "Industriestraße", "12", "47809", "Krefeld", "DE"),
        lines=tuple(lines),
    )


def page_texts(content: bytes) -> list[str]:
    """The text layer of each page, line breaks as ``\n``."""
    return [page.get_textpage().get_text_range().replace("\r\n", "\n") for page in pdfium.PdfDocument(content)]


def render(content: bytes, page: int = 0, dpi: int = 200) -> Image:
    image: Image = pdfium.PdfDocument(content)[page].render(scale=dpi / 72).to_pil()
    return image


def three_lines() -> list[CustomsLine]:
    return [
        a_line(
            1,
            description="Merino wool sweater",
            quantity=2,
            hs_code="61101100",
            country_of_origin="IT",
            weight_grams=700,
            value=Decimal("159.90"),
        ),
        a_line(
            2,
            description="Trail running shoes",
            hs_code="640411",
            country_of_origin="VN",
            weight_grams=900,
            value=Decimal("129.00"),
        ),
        a_line(
            3,
            description="Cotton socks, 3 pairs",
            quantity=3,
            hs_code="6115950000",
            country_of_origin="TR",
            weight_grams=150,
            value=Decimal("29.97"),
        ),
    ]


def test_a_declaration_renders_as_one_a4_page_with_every_field_readable() -> None:
    # Given a declaration of three lines from a sender whose name is not Latin-1
    declaration = a_declaration(three_lines(), sender_name="Łukasz Żółć")
    tracking_number = new_tracking_number()

    # When it is rendered
    content = render_cn23(declaration, tracking_number=tracking_number, carrier="sandbox", at=AT)

    # Then it is a one-page A4 PDF
    assert content.startswith(b"%PDF-")
    document = pdfium.PdfDocument(content)
    assert len(document) == 1
    width, height = document[0].get_size()
    assert width == pytest.approx(A4_POINTS[0], abs=1)
    assert height == pytest.approx(A4_POINTS[1], abs=1)

    # And its text layer holds the form's fields, the name transliterated
    (text,) = page_texts(content)
    assert TITLE in text
    assert "Lukasz Zólc" in text
    assert "Boomerang Returns Centre" in text
    assert "Industriestraße 12" in text
    assert "NW1 6XE London" in text
    assert "Returned goods" in text
    for line in declaration.lines:
        assert line.hs_code in text
        assert line.country_of_origin in text
        assert line.description in text
        assert f"{line.value} GBP" in text
    for weight in ("0.700", "0.900", "0.150"):  # line weights in kg, 3 decimals
        assert weight in text
    assert "1.750" in text  # total gross weight
    assert "318.87 GBP" in text  # total value
    assert declaration.reference in text
    assert declaration.return_id in text
    assert "2026-11-20" in text
    assert "certify that the particulars given in this declaration are correct" in text
    assert "SIGNATURE" in text
    assert tracking_number in text


def test_declared_totals_are_printed() -> None:
    # Given three lines weighing 1.750 kg and worth 318.87 GBP in total
    declaration = a_declaration(three_lines())

    # When rendered
    (text,) = page_texts(render_cn23(declaration, tracking_number=new_tracking_number(), carrier="sandbox", at=AT))

    # Then both totals are on the form
    assert declaration.total_weight_grams == 1750
    assert "TOTAL GROSS WEIGHT (KG)\n1.750" in text
    assert "TOTAL VALUE\n318.87 GBP" in text


@pytest.mark.parametrize(
    "tracking_number",
    [
        "SB123456789012343",  # a sandbox number (fixed: parametrize ids must be stable under pytest -n)
        "1Z999AA10123456784",  # a UPS-style alphanumeric number
        "JJD000390007827585941",  # a DHL-style long number
    ],
)
def test_the_tracking_barcode_scans_back_to_the_tracking_number(tracking_number: str) -> None:
    # Given a rendered declaration
    content = render_cn23(a_declaration(three_lines()), tracking_number=tracking_number, carrier="any", at=AT)

    # When the page is rendered to pixels and scanned
    found = zxingcpp.read_barcodes(render(content), try_downscale=False)

    # Then exactly one Code 128 carries the tracking number
    assert [(barcode.format, barcode.text) for barcode in found] == [(zxingcpp.BarcodeFormat.Code128, tracking_number)]


def test_a_long_declaration_continues_on_further_sheets() -> None:
    # Given more lines than one sheet holds
    lines = [a_line(n) for n in range(1, 2 * LINES_PER_SHEET + 2)]
    declaration = a_declaration(lines)
    tracking_number = new_tracking_number()

    # When it is rendered
    content = render_cn23(declaration, tracking_number=tracking_number, carrier="sandbox", at=AT)

    # Then it takes three sheets, each line is on exactly one of them, and each sheet says where it belongs
    texts = page_texts(content)
    assert len(texts) == sheet_count(len(lines)) == 3
    for line in lines:
        assert sum(line.sku in text for text in texts) == 1
    assert "Sheet 1 of 3" in texts[0] and "Continued on sheet 2 of 3" in texts[0]
    assert "Sheet 2 of 3" in texts[1] and "Continued on sheet 3 of 3" in texts[1]
    assert "Sheet 3 of 3" in texts[2] and "Continued" not in texts[2]

    # And the totals and the declaration close the last sheet only; every sheet has the parties and the barcode
    assert "250.00 GBP" in texts[2]
    assert all("TOTAL VALUE" not in text for text in texts[:2])
    assert all(TITLE in text and declaration.reference in text and "Krefeld" in text for text in texts)
    for page in range(3):
        assert [b.text for b in zxingcpp.read_barcodes(render(content, page))] == [tracking_number]


def test_unknown_customs_data_prints_as_a_dash_and_long_descriptions_are_cut() -> None:
    # Given a line without HS code or origin, and a description far wider than its column
    description = "An extraordinarily long description of a returned article " * 3
    declaration = a_declaration([a_line(1, hs_code="", country_of_origin="", description=description)])

    # When rendered
    (text,) = page_texts(render_cn23(declaration, tracking_number=new_tracking_number(), carrier="sandbox", at=AT))

    # Then the empty fields show as dashes and the description is shortened with an ellipsis, not overflowing
    assert "SKU-001 1 0.250 10.00 GBP - -" in text.replace("\n", " ")
    assert "An extraordinarily long description" in text
    assert description.strip() not in text
    assert "..." in text


@pytest.mark.parametrize(("line_count", "sheets"), [(1, 1), (LINES_PER_SHEET, 1), (LINES_PER_SHEET + 1, 2), (0, 1)])
def test_sheet_count(line_count: int, sheets: int) -> None:
    assert sheet_count(line_count) == sheets
