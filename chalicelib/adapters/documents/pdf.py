"""Drawing helpers shared by every PDF we print: labels, QR drop-off codes, customs declarations.

Core fonts only (Latin-1, see `printable`); barcodes and QR codes are drawn as vector rectangles so they stay
crisp at any print resolution. fpdf2, python-barcode and segno are imported inside the functions that need
them: this module is imported by the API app and must not slow down its cold start.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fpdf import FPDF

FONT = "Helvetica"

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


def new_document(*, width: float, height: float, margin: float, title: str) -> FPDF:
    """An empty portrait document in millimetres, black on white, no automatic page breaks."""
    from fpdf import FPDF

    pdf = FPDF(orientation="portrait", unit="mm", format=(width, height))
    pdf.set_auto_page_break(auto=False)
    pdf.set_margins(margin, margin, margin)
    pdf.set_creator("Boomerang")
    pdf.set_title(printable(title))
    return pdf


def start_page(pdf: FPDF) -> None:
    pdf.add_page()
    pdf.set_text_color(0)
    pdf.set_draw_color(0)
    pdf.set_fill_color(0)


def fit_font(pdf: FPDF, text: str, *, size: float, width: float, bold: bool = False, min_size: float = 5) -> None:
    """Select the core font at `size`, shrinking it in half points until `text` fits `width` (or `min_size`)."""
    style = "B" if bold else ""
    font_size = size
    pdf.set_font(FONT, style, font_size)
    while font_size > min_size and pdf.get_string_width(text) > width - 1:
        font_size -= 0.5
        pdf.set_font(FONT, style, font_size)


def text_lines(
    pdf: FPDF,
    x: float,
    y: float,
    lines: Iterable[str],
    *,
    size: float,
    line_height: float,
    width: float,
    bold: bool = False,
    align: str = "L",
) -> float:
    """Print one cell per line at (x, y), shrinking a line's type until it fits `width`; returns the y below."""
    for line in lines:
        text = printable(line)
        fit_font(pdf, text, size=size, width=width, bold=bold)
        pdf.set_xy(x, y)
        pdf.cell(width, line_height, text, align=align)
        y += line_height
    return y


def draw_code128(
    pdf: FPDF,
    data: str,
    *,
    x: float,
    y: float,
    width: float,
    height: float,
    max_module: float = 0.5,
    quiet_modules: int = 10,
) -> None:
    """A Code 128 of `data`, centred in the box from `x` of `width`, leaving `quiet_modules` of quiet zone."""
    from barcode.codex import Code128  # type: ignore[import-untyped, unused-ignore]

    modules: str = Code128(data).build()[0]
    module = min(max_module, width / (len(modules) + 2 * quiet_modules))
    left = x + (width - len(modules) * module) / 2
    for start, length in dark_runs(bar == "1" for bar in modules):
        pdf.rect(left + start * module, y, length * module, height, style="F")


def draw_qr_code(pdf: FPDF, payload: str, *, x: float, y: float, size: float) -> None:
    """A QR code of `payload` (error correction M) filling the square of `size` at (x, y), without quiet zone."""
    import segno

    qr = segno.make(payload, error="m", micro=False)
    rows = list(qr.matrix_iter(scale=1, border=0))
    module = size / len(rows)
    for row_index, row in enumerate(rows):
        for start, length in dark_runs(bool(dark) for dark in row):
            pdf.rect(x + start * module, y + row_index * module, length * module, module, style="F")


def dark_runs(cells: Iterable[bool]) -> list[tuple[int, int]]:
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
