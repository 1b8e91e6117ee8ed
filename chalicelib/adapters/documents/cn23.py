"""The customs declaration a parcel carries across a customs border, modelled on the UPU form CN 23.

One A4 sheet holds `LINES_PER_SHEET` item lines; a longer declaration continues on further sheets (the CN 23
allows several), each repeating the parties and the barcode, with the totals, the declaration and the
signature on the last sheet. fpdf2 and the barcode libraries are imported lazily (see `pdf`).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from chalicelib.adapters.documents.pdf import (
    FONT,
    draw_code128,
    fit_font,
    new_document,
    printable,
    start_page,
    text_lines,
)

if TYPE_CHECKING:
    from fpdf import FPDF

    from chalicelib.domain.addresses import Address
    from chalicelib.domain.customs import CustomsDeclaration, CustomsLine

TITLE = "CUSTOMS DECLARATION CN 23"
LINES_PER_SHEET = 12
DECLARATION = (
    "I, the undersigned, whose name and address are given on the item, certify that the particulars given in "
    "this declaration are correct and that this item does not contain any dangerous article or articles "
    "prohibited by legislation or by postal or customs regulations."
)
_CATEGORIES = (
    ("gift", "Gift"),
    ("documents", "Documents"),
    ("commercial_sample", "Commercial sample"),
    ("returned_goods", "Returned goods"),
    ("sale_of_goods", "Sale of goods"),
    ("other", "Other"),
)

# Layout of the A4 page, in millimetres.
_PAGE_WIDTH = 210.0
_PAGE_HEIGHT = 297.0
_MARGIN = 10.0
_CONTENT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN
_HALF = _CONTENT_WIDTH / 2
_BARCODE_WIDTH = 86.0
_BARCODE_HEIGHT = 14.0
_PARTIES_TOP = 36.0
_REFERENCES_TOP = 72.0
_CATEGORY_TOP = 92.0
_TABLE_TOP = 99.0
_TABLE_HEADER_HEIGHT = 10.0
_ROW_HEIGHT = 8.0
_TOTALS_TOP = _TABLE_TOP + _TABLE_HEADER_HEIGHT + LINES_PER_SHEET * _ROW_HEIGHT + 2.0
_DECLARATION_TOP = _TOTALS_TOP + 22.0
# (heading, width, alignment) of each column of the items table; the widths add up to the content width.
_COLUMNS = (
    ("Detailed description of contents", 64.0, "L"),
    ("Quantity", 16.0, "R"),
    ("Net weight (kg)", 22.0, "R"),
    ("Value ({currency})", 28.0, "R"),
    ("HS tariff number", 30.0, "C"),
    ("Country of origin of goods", 30.0, "C"),
)


def render_cn23(declaration: CustomsDeclaration, *, tracking_number: str, carrier: str, at: datetime) -> bytes:
    """The declaration as a PDF: one A4 page per `LINES_PER_SHEET` lines."""
    sheets = sheet_count(len(declaration.lines))
    pdf = new_document(
        width=_PAGE_WIDTH, height=_PAGE_HEIGHT, margin=_MARGIN, title=f"CN 23 {declaration.reference} {tracking_number}"
    )
    for index in range(1, sheets + 1):
        lines = declaration.lines[(index - 1) * LINES_PER_SHEET : index * LINES_PER_SHEET]
        start_page(pdf)
        _header(pdf, tracking_number, sheet=index, sheets=sheets)
        _party(pdf, _MARGIN, "FROM / SENDER", declaration.sender)
        _party(pdf, _MARGIN + _HALF, "TO / ADDRESSEE", declaration.recipient)
        _references(pdf, declaration, carrier=carrier, at=at)
        _category(pdf, declaration.category)
        _items(pdf, lines, currency=declaration.currency)
        if index < sheets:
            pdf.set_font(FONT, "B", 9)
            pdf.set_xy(_MARGIN, _TOTALS_TOP)
            pdf.cell(_CONTENT_WIDTH, 8, f"Continued on sheet {index + 1} of {sheets}", align="R")
        else:
            _totals(pdf, declaration)
            _declaration(pdf, at)
        _footer(pdf, carrier=carrier, tracking_number=tracking_number, sheet=index, sheets=sheets)
    return bytes(pdf.output())


def sheet_count(line_count: int) -> int:
    """How many A4 sheets a declaration of `line_count` lines takes."""
    return max(1, math.ceil(line_count / LINES_PER_SHEET))


def _header(pdf: FPDF, tracking_number: str, *, sheet: int, sheets: int) -> None:
    pdf.set_font(FONT, "B", 17)
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.cell(_CONTENT_WIDTH - _BARCODE_WIDTH, 9, TITLE)
    pdf.set_font(FONT, "", 8.5)
    pdf.set_xy(_MARGIN, _MARGIN + 10)
    pdf.cell(_CONTENT_WIDTH - _BARCODE_WIDTH, 4, "May be opened officially")
    pdf.set_xy(_MARGIN, _MARGIN + 15)
    pdf.cell(_CONTENT_WIDTH - _BARCODE_WIDTH, 4, f"Sheet {sheet} of {sheets}")

    barcode_x = _PAGE_WIDTH - _MARGIN - _BARCODE_WIDTH
    draw_code128(
        pdf,
        tracking_number,
        x=barcode_x,
        y=_MARGIN,
        width=_BARCODE_WIDTH,
        height=_BARCODE_HEIGHT,
        max_module=0.45,
    )
    pdf.set_font(FONT, "B", 10)
    pdf.set_xy(barcode_x, _MARGIN + _BARCODE_HEIGHT + 1)
    pdf.cell(_BARCODE_WIDTH, 5, printable(tracking_number), align="C")
    _rule(pdf, _MARGIN + 22.0, width=0.6)


def _party(pdf: FPDF, x: float, caption: str, address: Address) -> None:
    """An address as the CN 23 lays it out: one labelled field per line."""
    width = _HALF - 2
    _caption(pdf, x, _PARTIES_TOP - 3.5, caption)
    pdf.set_line_width(0.3)
    pdf.rect(x, _PARTIES_TOP, width, 32.0)
    y = _PARTIES_TOP + 1.5
    for label, value in (
        ("Name", address.name),
        ("Street", f"{address.street} {address.house_number}".strip()),
        ("Postcode / City", f"{address.postal_code} {address.city}".strip()),
        ("Country", address.country),
    ):
        pdf.set_font(FONT, "", 6.5)
        pdf.set_text_color(90)
        pdf.set_xy(x + 1.5, y)
        pdf.cell(22, 7, label)
        pdf.set_text_color(0)
        text_lines(pdf, x + 24, y, [value], size=10, line_height=7, width=width - 25.5, bold=label == "Name")
        y += 7.5


def _references(pdf: FPDF, declaration: CustomsDeclaration, *, carrier: str, at: datetime) -> None:
    y = _REFERENCES_TOP
    for x, fields in (
        (_MARGIN, (("Sender's reference (order number)", declaration.reference), ("Return ID", declaration.return_id))),
        (_MARGIN + _HALF, (("Carrier", carrier), ("Date", at.date().isoformat()))),
    ):
        for offset, (label, value) in enumerate(fields):
            _caption(pdf, x, y + offset * 7.0, label)
            text_lines(pdf, x, y + offset * 7.0 + 3.0, [value], size=9, line_height=4, width=_HALF - 2, bold=True)


def _category(pdf: FPDF, category: str) -> None:
    _caption(pdf, _MARGIN, _CATEGORY_TOP - 3.5, "CATEGORY OF ITEM")
    x = _MARGIN
    pdf.set_line_width(0.3)
    for key, label in _CATEGORIES:
        pdf.rect(x, _CATEGORY_TOP, 3.5, 3.5)
        if key == category:
            pdf.set_line_width(0.4)
            pdf.line(x + 0.5, _CATEGORY_TOP + 0.5, x + 3.0, _CATEGORY_TOP + 3.0)
            pdf.line(x + 0.5, _CATEGORY_TOP + 3.0, x + 3.0, _CATEGORY_TOP + 0.5)
            pdf.set_line_width(0.3)
            pdf.set_font(FONT, "B", 8.5)
        else:
            pdf.set_font(FONT, "", 8.5)
        pdf.set_xy(x + 4.5, _CATEGORY_TOP - 0.5)
        pdf.cell(pdf.get_string_width(label) + 1, 4.5, label)
        x += 4.5 + pdf.get_string_width(label) + 6.0


def _items(pdf: FPDF, lines: tuple[CustomsLine, ...], *, currency: str) -> None:
    pdf.set_line_width(0.3)
    x = _MARGIN
    for heading, width, _align in _COLUMNS:
        pdf.rect(x, _TABLE_TOP, width, _TABLE_HEADER_HEIGHT)
        pdf.set_font(FONT, "B", 7)
        pdf.set_xy(x, _TABLE_TOP + 1)
        pdf.multi_cell(width, 3.5, heading.format(currency=currency), align="C")
        x += width
    y = _TABLE_TOP + _TABLE_HEADER_HEIGHT
    for row in range(LINES_PER_SHEET):
        line = lines[row] if row < len(lines) else None
        x = _MARGIN
        for column, (_heading, width, align) in enumerate(_COLUMNS):
            pdf.rect(x, y, width, _ROW_HEIGHT)
            if line is not None:
                _cell(pdf, line, column, x=x, y=y, width=width, align=align, currency=currency)
            x += width
        y += _ROW_HEIGHT


def _cell(
    pdf: FPDF, line: CustomsLine, column: int, *, x: float, y: float, width: float, align: str, currency: str
) -> None:
    if column == 0:  # the description, and the SKU in small type below it
        _fitted(pdf, line.description, x=x + 1, y=y + 0.5, width=width - 2, height=4.5, size=8.5, align=align)
        pdf.set_text_color(90)
        _fitted(pdf, f"SKU {line.sku}", x=x + 1, y=y + 4.3, width=width - 2, height=3, size=6, align=align)
        pdf.set_text_color(0)
        return
    value = (
        str(line.quantity),
        f"{line.weight_grams / 1000:.3f}",
        f"{line.value} {currency}",
        line.hs_code or "-",
        line.country_of_origin or "-",
    )[column - 1]
    _fitted(pdf, value, x=x + 1, y=y, width=width - 2, height=_ROW_HEIGHT, size=8.5, align=align)


def _totals(pdf: FPDF, declaration: CustomsDeclaration) -> None:
    pdf.set_line_width(0.6)
    pdf.rect(_MARGIN, _TOTALS_TOP, _CONTENT_WIDTH, 16.0)
    for x, label, value in (
        (_MARGIN, "Total gross weight (kg)", f"{declaration.total_weight_grams / 1000:.3f}"),
        (_MARGIN + _HALF, "Total value", f"{declaration.total_value} {declaration.currency}"),
    ):
        _caption(pdf, x + 2, _TOTALS_TOP + 1.5, label.upper())
        pdf.set_font(FONT, "B", 13)
        pdf.set_xy(x + 2, _TOTALS_TOP + 6)
        pdf.cell(_HALF - 4, 8, value)

    comments = f"Comments: goods returned to the seller; order {declaration.reference}, return {declaration.return_id}."
    text_lines(pdf, _MARGIN, _TOTALS_TOP + 17.0, [comments], size=8.5, line_height=4.5, width=_CONTENT_WIDTH)


def _declaration(pdf: FPDF, at: datetime) -> None:
    pdf.set_font(FONT, "", 8.5)
    pdf.set_xy(_MARGIN, _DECLARATION_TOP)
    pdf.multi_cell(_CONTENT_WIDTH, 4.2, DECLARATION)
    y = _DECLARATION_TOP + 20.0
    _caption(pdf, _MARGIN, y, "DATE")
    text_lines(pdf, _MARGIN, y + 3.5, [at.date().isoformat()], size=10, line_height=5, width=40, bold=True)
    signature_x = _MARGIN + 60.0
    _caption(pdf, signature_x, y, "SENDER'S SIGNATURE")
    pdf.set_line_width(0.3)
    pdf.line(signature_x, y + 14.0, _PAGE_WIDTH - _MARGIN, y + 14.0)


def _footer(pdf: FPDF, *, carrier: str, tracking_number: str, sheet: int, sheets: int) -> None:
    pdf.set_font(FONT, "", 6.5)
    pdf.set_text_color(90)
    pdf.set_xy(_MARGIN, _PAGE_HEIGHT - _MARGIN - 4)
    footer = f"CN 23 - {carrier} {tracking_number} - sheet {sheet} of {sheets} - prepared by Boomerang"
    pdf.cell(_CONTENT_WIDTH, 4, printable(footer), align="C")
    pdf.set_text_color(0)


def _fitted(pdf: FPDF, text: str, *, x: float, y: float, width: float, height: float, size: float, align: str) -> None:
    """One cell of `text`, shrunk to fit `width` and, below the smallest type, cut short with an ellipsis."""
    text = printable(text)
    fit_font(pdf, text, size=size, width=width, min_size=5.5)
    if pdf.get_string_width(text) > width - 1:
        while text and pdf.get_string_width(f"{text}...") > width - 1:
            text = text[:-1]
        text = f"{text.rstrip()}..."
    pdf.set_xy(x, y)
    pdf.cell(width, height, text, align=align)


def _rule(pdf: FPDF, y: float, width: float = 0.3) -> None:
    pdf.set_line_width(width)
    pdf.line(_MARGIN, y, _PAGE_WIDTH - _MARGIN, y)


def _caption(pdf: FPDF, x: float, y: float, text: str) -> None:
    pdf.set_font(FONT, "B", 6.5)
    pdf.set_text_color(90)
    pdf.set_xy(x, y)
    pdf.cell(_HALF - 2, 3, text)
    pdf.set_text_color(0)
