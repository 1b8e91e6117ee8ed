"""The sandbox carrier: issues real, printable A6 return labels without calling any carrier.

Tracking numbers look like ``SB`` + 14 random digits + 1 GS1 mod-10 check digit. The label is a
PDF drawn with core fonts only; barcode and QR code are drawn as vector rectangles so they stay
crisp at any print resolution. fpdf2, python-barcode and segno are imported lazily: this module is
imported by the API app and must not slow down its cold start.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest

if TYPE_CHECKING:
    from fpdf import FPDF

TRACKING_PREFIX = "SB"
_RANDOM_DIGITS = 14
_TRACKING_NUMBER = re.compile(rf"{TRACKING_PREFIX}(\d{{{_RANDOM_DIGITS + 1}}})")

# Characters NFKD does not reduce to Latin-1: letters with strokes, ligatures, typographic marks.
_TRANSLITERATIONS = str.maketrans(
    {
        "Ł": "L",
        "ł": "l",
        "Đ": "D",
        "đ": "d",
        "Ħ": "H",
        "ħ": "h",
        "\u0131": "i",
        "Œ": "OE",
        "œ": "oe",
        "ẞ": "SS",
        "€": "EUR",
        "\u2013": "-",
        "\u2014": "-",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
    }
)

# Layout of the A6 page, in millimetres.
_PAGE_WIDTH = 105.0  # A6 portrait
_PAGE_HEIGHT = 148.0
_MARGIN = 6.0
_CONTENT_WIDTH = _PAGE_WIDTH - 2 * _MARGIN
_QR_SIZE = 28.0
_BARCODE_TOP = 110.0
_BARCODE_HEIGHT = 20.0
_BARCODE_QUIET_MODULES = 10
_BARCODE_MAX_MODULE = 0.5


def tracking_check_digit(digits: str) -> int:
    """GS1 mod-10 check digit: weights 3, 1, 3, ... from the rightmost data digit."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("tracking number data must be ASCII digits")
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def is_valid_tracking_number(s: str) -> bool:
    """True for ``SB`` + 14 digits + their correct check digit."""
    match = _TRACKING_NUMBER.fullmatch(s) if s.isascii() else None
    if match is None:
        return False
    digits = match.group(1)
    return tracking_check_digit(digits[:-1]) == int(digits[-1])


def new_tracking_number() -> str:
    data = "".join(str(secrets.randbelow(10)) for _ in range(_RANDOM_DIGITS))
    return f"{TRACKING_PREFIX}{data}{tracking_check_digit(data)}"


def printable(text: str) -> str:
    """Text the core PDF fonts can print: Latin-1 kept, other letters transliterated or dropped."""
    out: list[str] = []
    for char in text.translate(_TRANSLITERATIONS):
        if _is_printable_latin1(char):
            out.append(char)
            continue
        out.extend(c for c in unicodedata.normalize("NFKD", char) if _is_printable_latin1(c))
    return "".join(out)


def _is_printable_latin1(char: str) -> bool:
    return ord(char) < 256 and unicodedata.category(char)[0] != "C"


class SandboxCarrier:
    name = "sandbox"

    def create_label(self, request: LabelRequest) -> Label:
        tracking_number = new_tracking_number()
        qr_payload = f"BMR1:{request.return_id}:{tracking_number}"
        content = _render_label(request, tracking_number, qr_payload)
        return Label(
            carrier=self.name,
            tracking_number=tracking_number,
            content=content,
            content_type="application/pdf",
            qr_payload=qr_payload,
        )

    def cancel_label(self, tracking_number: str) -> None:
        if not is_valid_tracking_number(tracking_number):
            raise CarrierError("This is not a valid sandbox tracking number.")


def _render_label(request: LabelRequest, tracking_number: str, qr_payload: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format=(_PAGE_WIDTH, _PAGE_HEIGHT))
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_creator("Boomerang")
    pdf.set_title(f"Return label {tracking_number}")
    pdf.add_page()
    pdf.set_text_color(0)
    pdf.set_draw_color(0)
    pdf.set_fill_color(0)

    # Header
    pdf.set_font("Helvetica", "B", 16)
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.cell(_CONTENT_WIDTH, 8, "RETURN / RETOURE")
    pdf.set_font("Helvetica", "", 8)
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.cell(_CONTENT_WIDTH, 8, "Boomerang Sandbox", align="R")
    _rule(pdf, 15.5, width=0.6)

    # Sender
    _caption(pdf, 18.0, "FROM / ABSENDER")
    _text_lines(pdf, 22.0, request.sender.lines(), size=9, line_height=4.0, width=_CONTENT_WIDTH)
    _rule(pdf, 40.0)

    # Recipient (the warehouse), the largest type on the label
    _caption(pdf, 43.0, "TO / EMPFÄNGER")
    recipient = request.recipient.lines()
    _text_lines(pdf, 47.5, recipient[:1], size=14, line_height=6.5, width=_CONTENT_WIDTH, bold=True)
    _text_lines(pdf, 54.0, recipient[1:], size=13, line_height=6.0, width=_CONTENT_WIDTH)
    _rule(pdf, 74.0, width=0.6)

    # References (left) and QR code (right)
    references_width = _CONTENT_WIDTH - _QR_SIZE - 4
    y = 77.0
    for caption, value in (
        ("RETURN ID", request.return_id),
        ("ORDER", request.order_number),
        ("MERCHANT", request.merchant_name),
        ("PARCELS", str(request.parcel_count)),
    ):
        _caption(pdf, y, caption)
        _text_lines(pdf, y + 3.0, [value], size=9, line_height=4.0, width=references_width, bold=True)
        y += 7.5
    _draw_qr_code(pdf, qr_payload, x=_PAGE_WIDTH - _MARGIN - _QR_SIZE, y=77.5)

    # Tracking barcode and its human-readable text
    _draw_code128(pdf, tracking_number, y=_BARCODE_TOP)
    pdf.set_font("Helvetica", "B", 12)
    pdf.set_xy(_MARGIN, _BARCODE_TOP + _BARCODE_HEIGHT + 1.5)
    pdf.cell(_CONTENT_WIDTH, 6, " ".join(_groups(tracking_number)), align="C")
    pdf.set_font("Helvetica", "", 6.5)
    pdf.set_xy(_MARGIN, _BARCODE_TOP + _BARCODE_HEIGHT + 8.0)
    pdf.cell(_CONTENT_WIDTH, 4, "Sandbox label - not valid for shipping", align="C")

    return bytes(pdf.output())


def _rule(pdf: FPDF, y: float, width: float = 0.3) -> None:
    pdf.set_line_width(width)
    pdf.line(_MARGIN, y, _PAGE_WIDTH - _MARGIN, y)


def _caption(pdf: FPDF, y: float, text: str) -> None:
    pdf.set_font("Helvetica", "B", 6.5)
    pdf.set_text_color(90)
    pdf.set_xy(_MARGIN, y)
    pdf.cell(_CONTENT_WIDTH, 3, text)
    pdf.set_text_color(0)


def _text_lines(
    pdf: FPDF,
    y: float,
    lines: list[str],
    *,
    size: float,
    line_height: float,
    width: float,
    bold: bool = False,
) -> None:
    """Print one cell per line, shrinking a line's type until it fits `width`."""
    style = "B" if bold else ""
    for line in lines:
        text = printable(line)
        font_size = size
        pdf.set_font("Helvetica", style, font_size)
        while font_size > 5 and pdf.get_string_width(text) > width - 1:
            font_size -= 0.5
            pdf.set_font("Helvetica", style, font_size)
        pdf.set_xy(_MARGIN, y)
        pdf.cell(width, line_height, text)
        y += line_height


def _draw_code128(pdf: FPDF, data: str, *, y: float) -> None:
    from barcode.codex import Code128  # type: ignore[import-untyped, unused-ignore]

    modules: str = Code128(data).build()[0]
    module = min(_BARCODE_MAX_MODULE, _CONTENT_WIDTH / (len(modules) + 2 * _BARCODE_QUIET_MODULES))
    x = (_PAGE_WIDTH - len(modules) * module) / 2
    for start, length in _dark_runs(bar == "1" for bar in modules):
        pdf.rect(x + start * module, y, length * module, _BARCODE_HEIGHT, style="F")


def _draw_qr_code(pdf: FPDF, payload: str, *, x: float, y: float) -> None:
    import segno

    qr = segno.make(payload, error="m", micro=False)
    rows = list(qr.matrix_iter(scale=1, border=0))
    module = _QR_SIZE / len(rows)
    for row_index, row in enumerate(rows):
        for start, length in _dark_runs(bool(dark) for dark in row):
            pdf.rect(x + start * module, y + row_index * module, length * module, module, style="F")


def _dark_runs(cells: Iterable[bool]) -> list[tuple[int, int]]:
    """(start, length) of each run of dark cells, so adjacent modules become one rectangle."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    index = 0
    for index, dark in enumerate(cells):
        if dark and start is None:
            start = index
        elif not dark and start is not None:
            runs.append((start, index - start))
            start = None
    if start is not None:
        runs.append((start, index + 1 - start))
    return runs


def _groups(tracking_number: str) -> list[str]:
    """``SB 1234 5678 9012 345``: easier to read out over the phone."""
    digits = tracking_number[len(TRACKING_PREFIX) :]
    return [TRACKING_PREFIX, *(digits[i : i + 4] for i in range(0, len(digits), 4))]
