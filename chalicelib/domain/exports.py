"""Exports of a merchant's returns as CSV: the export itself, its rows and the file's parts. Pure, no I/O.

An export covers the returns created in [created_from, created_to] (newest first, as the list index serves them),
one row per return (`returns`) or per returned item (`items`). Cells a spreadsheet would run as a formula
(starting with = + - @, or a tab / carriage return) get a leading apostrophe (OWASP "CSV injection").

The file is written in parts for an S3 multipart upload: `csv_parts` turns rows into chunks of at least `part_size`
bytes (the last one may be smaller), holding at most about one part in memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from chalicelib.domain.returns import Return, iso

ExportKind = Literal["returns", "items", "customer"]
ExportStatus = Literal["pending", "ready", "failed"]

KINDS: tuple[str, ...] = ("returns", "items")  # the CSV kinds (POST /v1/exports)
#: A customer's access export (GDPR Art. 15, POST /v1/customers/export): one JSON document (domain/access.py)
CUSTOMER = "customer"
MAX_SPAN = timedelta(days=400)  # the longest created-at range one export may cover
PART_SIZE = 5 * 1024 * 1024  # S3's minimum part size (all parts but the last)
MAX_ATTEMPTS = 3  # runs of one export before it is recorded as failed
CONTENT_TYPE = "text/csv; charset=utf-8"
JSON_CONTENT_TYPE = "application/json"

RETURN_COLUMNS = (
    "return_id",
    "order_number",
    "status",
    "created_at",
    "updated_at",
    "carrier",
    "tracking_number",
    "items",
    "quantity",
    "refunded_amount",
    "currency",
    "reasons",
    "grades",
    "refund_status",
)
ITEM_COLUMNS = (
    "return_id",
    "order_number",
    "line_item_id",
    "sku",
    "quantity",
    "received_quantity",
    "reason",
    "grade",
    "disposition",
    "item_status",
    "unit_price",
    "currency",
    "category",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class Export:
    id: str
    merchant_id: str
    kind: ExportKind
    created_from: datetime
    created_to: datetime
    created_at: datetime
    format: str = "csv"
    status: ExportStatus = "pending"
    attempts: int = 0
    upload_id: str | None = None  # the multipart upload of the run under way (aborted when a new run starts)
    rows: int | None = None
    size: int | None = None
    error: str | None = None
    completed_at: datetime | None = None
    #: a customer export's subject: the customer's email as an index key (return_index.email_key), never the address
    subject: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Where the file lives in the files bucket (exports/ expires by a lifecycle rule)."""
        return f"exports/{self.merchant_id}/{self.id}.{self.format}"

    @property
    def content_type(self) -> str:
        return JSON_CONTENT_TYPE if self.format == "json" else CONTENT_TYPE

    @property
    def done(self) -> bool:
        return self.status in ("ready", "failed")

    def started(self, upload_id: str) -> Export:
        return replace(self, attempts=self.attempts + 1, upload_id=upload_id, error=None)

    def ready(self, rows: int, size: int, at: datetime) -> Export:
        return replace(self, status="ready", rows=rows, size=size, upload_id=None, completed_at=at)

    def crashed(self, error: str, at: datetime) -> Export:
        """A run failed: failed for good after MAX_ATTEMPTS runs, else pending again (the message is retried)."""
        if self.attempts >= MAX_ATTEMPTS:
            return replace(self, status="failed", error=error, upload_id=None, completed_at=at)
        return replace(self, status="pending", error=error, upload_id=None)


def check_range(created_from: datetime, created_to: datetime) -> tuple[str, str] | None:
    """(field, message) of the first problem with a requested range, or None."""
    if created_to < created_from:
        return "to", "must not be before 'from'"
    if created_to - created_from > MAX_SPAN:
        return "to", f"at most {MAX_SPAN.days} days after 'from': split the export"
    return None


def safe_cell(value: Any) -> str:
    """A cell as text, defused if a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def header(kind: ExportKind) -> tuple[str, ...]:
    return RETURN_COLUMNS if kind == "returns" else ITEM_COLUMNS


def return_row(ret: Return) -> list[str]:
    reasons = list(dict.fromkeys(it.reason for it in ret.items))
    grades = [it.grade.value for it in ret.items if it.grade is not None]
    cells: list[Any] = [
        ret.id,
        ret.order_number,
        ret.status.value,
        iso(ret.created_at),
        iso(ret.updated_at),
        ret.carrier,
        ret.tracking_number,
        len(ret.items),
        sum(it.quantity for it in ret.items),
        ret.refunded_total,
        ret.currency,
        "|".join(reasons),
        "|".join(grades),
        ret.refund.status if ret.refund else None,
    ]
    return [safe_cell(c) for c in cells]


def item_rows(ret: Return) -> Iterator[list[str]]:
    for it in ret.items:
        cells: list[Any] = [
            ret.id,
            ret.order_number,
            it.line_item_id,
            it.sku,
            it.quantity,
            it.received_quantity,
            it.reason,
            it.grade.value if it.grade else None,
            it.disposition.value if it.disposition else None,
            it.status.value,
            it.unit_price,
            ret.currency,
            it.category,
        ]
        yield [safe_cell(c) for c in cells]


def rows(kind: ExportKind, returns: Iterable[Return]) -> Iterator[list[str]]:
    """The data rows (no header) for the returns, in their order."""
    for ret in returns:
        if kind == "returns":
            yield return_row(ret)
        else:
            yield from item_rows(ret)


class _Sink:
    """What csv.writer writes into: UTF-8 bytes appended to one buffer."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, text: str) -> int:
        self.buffer += text.encode()
        return len(text)


@dataclass
class PartStats:
    rows: int = 0  # data rows written (without the header)
    size: int = 0  # bytes in all parts


def csv_parts(
    kind: ExportKind, data: Iterable[list[str]], part_size: int = PART_SIZE, stats: PartStats | None = None
) -> Iterator[bytes]:
    """The CSV (header first, CRLF line ends) as parts of at least `part_size` bytes; the last may be smaller and
    there is always at least one. Memory: one part plus one row."""
    if part_size < 1:
        raise ValueError("part_size must be positive")
    stats = stats if stats is not None else PartStats()
    sink = _Sink()
    writer = csv.writer(sink)
    writer.writerow(header(kind))
    for row in data:
        writer.writerow(row)
        stats.rows += 1
        if len(sink.buffer) >= part_size:
            part = bytes(sink.buffer)
            sink.buffer.clear()
            stats.size += len(part)
            yield part
    if sink.buffer or stats.size == 0:  # the rest; never an empty part after a full one
        last = bytes(sink.buffer)
        sink.buffer.clear()
        stats.size += len(last)
        yield last
