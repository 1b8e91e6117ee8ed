"""The sandbox carrier: issues real, printable A6 return labels without calling any carrier.

Tracking numbers look like ``SB`` + 14 random digits + 1 GS1 mod-10 check digit. It offers every method type:
a printable label (``label``, ``drop_off``), a label plus a booked pickup on the next weekday (``pickup``), and a
label-less QR document to show at a drop-off point (``qr``). The PDFs are drawn with core fonts only; barcode
and QR code are vector rectangles (see `chalicelib.adapters.documents.pdf`, which imports fpdf2 lazily: this
module is imported by the API app and must not slow down its cold start).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from chalicelib.adapters.carriers.base import CarrierError, Label, LabelRequest, TrackingUpdate
from chalicelib.adapters.documents.pdf import (
    FONT,
    draw_code128,
    draw_qr_code,
    new_document,
    printable,
    start_page,
    text_lines,
)

if TYPE_CHECKING:
    from fpdf import FPDF

    from chalicelib.domain.customs import CustomsDeclaration

__all__ = [
    "TRACKING_PREFIX",
    "SandboxCarrier",
    "is_valid_tracking_number",
    "new_tracking_number",
    "next_weekday",
    "printable",
    "tracking_check_digit",
]

TRACKING_PREFIX = "SB"
_RANDOM_DIGITS = 14
_TRACKING_NUMBER = re.compile(rf"{TRACKING_PREFIX}(\d{{{_RANDOM_DIGITS + 1}}})")

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
_SERVICE_BOX_WIDTH = 36.0  # pickup date and customs note, right of the sender
_DROP_OFF_QR_SIZE = 56.0
_DROP_OFF_INSTRUCTION = "Show this code at the drop-off point; no printer needed"


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


def next_weekday(day: date) -> date:
    """The first Monday-to-Friday date after `day`: a Friday's next weekday is the Monday after."""
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxCarrier:
    name = "sandbox"
    methods: frozenset[str] = frozenset({"label", "qr", "pickup", "drop_off"})

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock

    def create_label(self, request: LabelRequest) -> Label:
        if request.method not in self.methods:
            raise CarrierError(f"the sandbox carrier does not offer {request.method}")
        tracking_number = new_tracking_number()
        qr_payload = f"BMR1:{request.return_id}:{tracking_number}"
        pickup_date = next_weekday(self._clock().astimezone(UTC).date()) if request.method == "pickup" else None
        if request.method == "qr":
            content = _render_drop_off_code(request, tracking_number, qr_payload)
        else:
            content = _render_label(request, tracking_number, qr_payload, pickup_date=pickup_date)
        return Label(
            carrier=self.name,
            tracking_number=tracking_number,
            content=content,
            content_type="application/pdf",
            qr_payload=qr_payload,
            pickup_date=pickup_date,
        )

    def cancel_label(
        self, tracking_number: str, account: str | None = None, *, carrier_reference: str | None = None
    ) -> None:
        """Nothing to void in the sandbox: any number it could have issued cancels, as often as asked."""
        if not is_valid_tracking_number(tracking_number):
            raise CarrierError("This is not a valid sandbox tracking number.")

    def fetch_tracking(self, tracking_numbers: Sequence[str], account: str | None = None) -> list[TrackingUpdate]:
        """The sandbox moves no parcels, so it knows no tracking events (simulate them through the webhooks)."""
        return []


def _render_label(request: LabelRequest, tracking_number: str, qr_payload: str, *, pickup_date: date | None) -> bytes:
    pdf = new_document(width=_PAGE_WIDTH, height=_PAGE_HEIGHT, margin=_MARGIN, title=f"Return label {tracking_number}")
    start_page(pdf)
    _header(pdf)

    # Sender, and right of it the service notes a carrier needs on the parcel (pickup date, customs)
    service = _service_notes(request, pickup_date)
    sender_width = _CONTENT_WIDTH - (_SERVICE_BOX_WIDTH + 2 if service else 0)
    _caption(pdf, 18.0, "FROM / ABSENDER")
    text_lines(pdf, _MARGIN, 22.0, request.sender.lines(), size=9, line_height=4.0, width=sender_width)
    if service:
        box_x = _PAGE_WIDTH - _MARGIN - _SERVICE_BOX_WIDTH
        pdf.set_line_width(0.4)
        pdf.rect(box_x, 18.0, _SERVICE_BOX_WIDTH, 20.5)
        text_lines(pdf, box_x + 1, 19.0, service, size=8, line_height=4.5, width=_SERVICE_BOX_WIDTH - 2, bold=True)
    _rule(pdf, 40.0)

    # Recipient (the warehouse), the largest type on the label
    _caption(pdf, 43.0, "TO / EMPFÄNGER")
    recipient = request.recipient.lines()
    text_lines(pdf, _MARGIN, 47.5, recipient[:1], size=14, line_height=6.5, width=_CONTENT_WIDTH, bold=True)
    text_lines(pdf, _MARGIN, 54.0, recipient[1:], size=13, line_height=6.0, width=_CONTENT_WIDTH)
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
        text_lines(pdf, _MARGIN, y + 3.0, [value], size=9, line_height=4.0, width=references_width, bold=True)
        y += 7.5
    draw_qr_code(pdf, qr_payload, x=_PAGE_WIDTH - _MARGIN - _QR_SIZE, y=77.5, size=_QR_SIZE)

    _tracking_barcode(pdf, tracking_number, footer="Sandbox label - not valid for shipping")
    return bytes(pdf.output())


def _render_drop_off_code(request: LabelRequest, tracking_number: str, qr_payload: str) -> bytes:
    """The label-less document: a large QR code the drop-off point scans, then prints the label itself."""
    pdf = new_document(width=_PAGE_WIDTH, height=_PAGE_HEIGHT, margin=_MARGIN, title=f"Return code {tracking_number}")
    start_page(pdf)
    _header(pdf)

    _caption(pdf, 18.0, "DROP-OFF CODE")
    draw_qr_code(pdf, qr_payload, x=(_PAGE_WIDTH - _DROP_OFF_QR_SIZE) / 2, y=23.0, size=_DROP_OFF_QR_SIZE)
    text_lines(pdf, _MARGIN, 82.0, [_DROP_OFF_INSTRUCTION], size=9, line_height=5.0, width=_CONTENT_WIDTH, bold=True)
    _rule(pdf, 88.5)

    recipient = request.recipient
    details = [
        f"To: {recipient.city}, {recipient.country}",
        f"Return {request.return_id} - Order {request.order_number}",
    ]
    if request.customs is not None:
        details.append(f"Customs: CN23 sent to the carrier, value {_customs_total(request.customs)}")
    text_lines(pdf, _MARGIN, 91.0, details, size=8.5, line_height=5.0, width=_CONTENT_WIDTH)

    _tracking_barcode(pdf, tracking_number, footer="Sandbox code - not valid for shipping")
    return bytes(pdf.output())


def _service_notes(request: LabelRequest, pickup_date: date | None) -> list[str]:
    notes: list[str] = []
    if pickup_date is not None:
        notes.append(f"Pickup: {pickup_date.isoformat()}")
    if request.customs is not None:
        notes.append("CN23 enclosed")
        notes.append(f"Value {_customs_total(request.customs)}")
    if request.weight_grams is not None:
        notes.append(f"Weight {request.weight_grams / 1000:.3f} kg")
    return notes


def _customs_total(customs: CustomsDeclaration) -> str:
    return f"{customs.total_value} {customs.currency}"


def _header(pdf: FPDF) -> None:
    pdf.set_font(FONT, "B", 16)
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.cell(_CONTENT_WIDTH, 8, "RETURN / RETOURE")
    pdf.set_font(FONT, "", 8)
    pdf.set_xy(_MARGIN, _MARGIN)
    pdf.cell(_CONTENT_WIDTH, 8, "Boomerang Sandbox", align="R")
    _rule(pdf, 15.5, width=0.6)


def _tracking_barcode(pdf: FPDF, tracking_number: str, *, footer: str) -> None:
    """The tracking number as Code 128, its human-readable text below, and the sandbox disclaimer."""
    draw_code128(
        pdf,
        tracking_number,
        x=_MARGIN,
        y=_BARCODE_TOP,
        width=_CONTENT_WIDTH,
        height=_BARCODE_HEIGHT,
        max_module=_BARCODE_MAX_MODULE,
        quiet_modules=_BARCODE_QUIET_MODULES,
    )
    pdf.set_font(FONT, "B", 12)
    pdf.set_xy(_MARGIN, _BARCODE_TOP + _BARCODE_HEIGHT + 1.5)
    pdf.cell(_CONTENT_WIDTH, 6, " ".join(_groups(tracking_number)), align="C")
    pdf.set_font(FONT, "", 6.5)
    pdf.set_xy(_MARGIN, _BARCODE_TOP + _BARCODE_HEIGHT + 8.0)
    pdf.cell(_CONTENT_WIDTH, 4, footer, align="C")


def _rule(pdf: FPDF, y: float, width: float = 0.3) -> None:
    pdf.set_line_width(width)
    pdf.line(_MARGIN, y, _PAGE_WIDTH - _MARGIN, y)


def _caption(pdf: FPDF, y: float, text: str) -> None:
    pdf.set_font(FONT, "B", 6.5)
    pdf.set_text_color(90)
    pdf.set_xy(_MARGIN, y)
    pdf.cell(_CONTENT_WIDTH, 3, text)
    pdf.set_text_color(0)


def _groups(tracking_number: str) -> list[str]:
    """``SB 1234 5678 9012 345``: easier to read out over the phone."""
    digits = tracking_number[len(TRACKING_PREFIX) :]
    return [TRACKING_PREFIX, *(digits[i : i + 4] for i in range(0, len(digits), 4))]
