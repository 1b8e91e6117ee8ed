"""CSV exports of a merchant's returns: requested by the API, run by functions/export_worker, handed back as a
short-lived presigned URL.

The worker reads the list index's `all` facet (one Query per page of PAGE_SIZE return ids, newest created first,
within the created-at range) and the returns of each page (BatchGetItem, BATCH_SIZE at a time), writes rows through
`csv.writer` into a small buffer and uploads a part whenever it holds PART_SIZE bytes (S3 multipart upload). Memory
stays about one part plus one page of ids and one batch of returns, whatever the number of returns. Nothing scans.

Idempotent per export: a message for a ready (or failed) export does nothing; a run that crashed is started again
from the beginning (its multipart upload aborted first), and after MAX_ATTEMPTS runs the export is failed.

Always final: a pending export is in the sweeper's index (chalicelib/domain/sweeping.py). An export whose message
was never queued (or went to the DLQ) is queued again by the sweeper (`redrive_export`), and failed after
MAX_REDRIVES redrives without an outcome.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain import exports as ex
from chalicelib.domain.emails import normalise_email
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.identifiers import new_id
from chalicelib.domain.return_index import email_key
from chalicelib.domain.returns import Return, iso
from chalicelib.observability import logger

PAGE_SIZE = 1000  # return ids per index Query (index items are small: about 100 KB a page)
BATCH_SIZE = 100  # returns per BatchGetItem (its own limit)
URL_TTL_SECONDS = 900  # the download link's life; a new one on every GET


def request_export(
    c: Container, merchant_id: str, kind: ex.ExportKind, created_from: datetime, created_to: datetime
) -> dict[str, Any]:
    problem = ex.check_range(created_from, created_to)
    if problem:
        raise ValidationFailed.at([problem[0]], problem[1])
    export = ex.Export(
        id=new_id("exp"),
        merchant_id=merchant_id,
        kind=kind,
        created_from=created_from,
        created_to=created_to,
        created_at=c.now(),
    )
    c.store.save_export(export, now=export.created_at)
    try:
        c.export_queue.enqueue(merchant_id, export.id)
    except Exception:
        # The export is recorded (pending, in the sweeper's index): the sweeper queues it again once it is due.
        logger.exception("export not queued; the sweeper will queue it", merchant_id=merchant_id, export_id=export.id)
    logger.info("export requested", merchant_id=merchant_id, export_id=export.id, kind=kind)
    return {"id": export.id, "status": export.status}


def request_customer_export(c: Container, merchant_id: str, email: str) -> dict[str, Any]:
    """A customer's access export (GDPR Art. 15, services/access.py): one JSON document, through the same queue,
    worker, record and bucket prefix as the CSV exports. The record keeps the address only hashed (its index key).
    Whether the merchant holds anything about the customer shows only in the document (empty sections if not)."""
    now = c.now()
    export = ex.Export(
        id=new_id("exp"),
        merchant_id=merchant_id,
        kind="customer",
        format="json",
        created_from=now,
        created_to=now,
        created_at=now,
        subject=email_key(normalise_email(email)),
    )
    c.store.save_export(export, now=now)
    try:
        c.export_queue.enqueue(merchant_id, export.id)
    except Exception:
        logger.exception("export not queued; the sweeper will queue it", merchant_id=merchant_id, export_id=export.id)
    logger.info("export requested", merchant_id=merchant_id, export_id=export.id, kind=export.kind)
    return {"id": export.id, "status": export.status}


def get_export(c: Container, merchant_id: str, export_id: str) -> dict[str, Any]:
    export = c.store.get_export(merchant_id, export_id)
    customer = export.kind == ex.CUSTOMER
    out: dict[str, Any] = {
        "id": export.id,
        "kind": export.kind,
        "format": export.format,
        "status": export.status,
        "from": None if customer else iso(export.created_from),
        "to": None if customer else iso(export.created_to),
        "created_at": iso(export.created_at),
    }
    if export.status == "ready":
        out.update(
            {
                "rows": export.rows,
                "size": export.size,
                "completed_at": iso(export.completed_at) if export.completed_at else None,
                "url": c.files.presigned_get(export.key, URL_TTL_SECONDS),
                "expires_at": iso(datetime.fromtimestamp(c.now().timestamp() + URL_TTL_SECONDS, tz=c.now().tzinfo)),
            }
        )
    elif export.status == "failed":
        out["error"] = export.error
    return out


def returns_in_range(c: Container, merchant_id: str, created_from: datetime, created_to: datetime) -> Iterator[Return]:
    """The merchant's returns created in the range, newest first: one Query per page of ids, then their returns
    BATCH_SIZE at a time (one BatchGetItem each), so at most one batch of returns is held."""
    cursor: dict[str, Any] | None = None
    while True:
        page, cursor = c.store.query_index(
            merchant_id, "all", created_from=created_from, created_to=created_to, cursor=cursor, limit=PAGE_SIZE
        )
        for start in range(0, len(page), BATCH_SIZE):
            for ret in c.store.get_returns([rid for rid, _since in page[start : start + BATCH_SIZE]]):
                if ret.merchant_id == merchant_id:
                    yield ret
        if not cursor:
            return


def run_export(c: Container, merchant_id: str, export_id: str, *, part_size: int = ex.PART_SIZE) -> ex.Export:
    """Write the export's CSV to S3 (multipart) and mark it ready. Raises to have the message retried."""
    export = c.store.get_export(merchant_id, export_id)
    if export.done:
        logger.info("export already done", export_id=export_id, status=export.status)
        return export
    files = c.files
    if export.upload_id:  # an earlier run crashed mid-way: start again from a clean slate
        files.abort_multipart(export.key, export.upload_id)
    export = export.started(files.start_multipart(export.key, export.content_type))
    c.store.save_export(export, now=c.now())
    upload_id = export.upload_id
    assert upload_id is not None
    try:
        stats = ex.PartStats()
        etags = [
            files.upload_part(export.key, upload_id, number, part)
            for number, part in enumerate(_parts(c, export, part_size, stats), start=1)
        ]
        files.complete_multipart(export.key, upload_id, etags)
    except Exception as exc:
        files.abort_multipart(export.key, upload_id)
        export = export.crashed(f"{type(exc).__name__}: the export could not be written", c.now())
        c.store.save_export(export, now=c.now())
        logger.exception("export failed", export_id=export_id, attempts=export.attempts, status=export.status)
        if export.status == "failed":
            return export  # for good: the message is done
        raise
    export = export.ready(stats.rows, stats.size, c.now())
    c.store.save_export(export)
    logger.info("export ready", export_id=export_id, rows=stats.rows, size=stats.size, parts=len(etags))
    return export


def _parts(c: Container, export: ex.Export, part_size: int, stats: ex.PartStats) -> Iterator[bytes]:
    """The file's parts: CSV rows streamed from the returns, or a customer's document (small: built whole)."""
    if export.kind != ex.CUSTOMER:
        data = ex.rows(export.kind, returns_in_range(c, export.merchant_id, export.created_from, export.created_to))
        yield from ex.csv_parts(export.kind, data, part_size, stats)
        return
    from chalicelib.domain.access import encode
    from chalicelib.services.access import collect

    if not export.subject:
        raise ValueError("a customer export without its customer")
    doc = collect(c, export.merchant_id, export.subject)
    body = encode(doc)
    stats.rows = sum(len(doc[section]) for section in ("orders", "returns", "withdrawals", "notifications"))
    stats.size = len(body)
    for start in range(0, len(body), part_size):
        yield body[start : start + part_size]


def handle_message(c: Container, body: str, *, part_size: int = ex.PART_SIZE) -> ex.Export:
    """One SQS message of the export queue: `{"merchant_id", "export_id"}`."""
    message = json.loads(body)
    return run_export(c, str(message["merchant_id"]), str(message["export_id"]), part_size=part_size)


def redrive_export(c: Container, due: Any) -> str:
    """The sweeper's part (chalicelib/services/sweeper.py): a pending export past its due time is queued again (its
    claim first, so a second sweeper does nothing), or failed when redrives did not help."""
    from chalicelib.adapters.dynamodb.due import claim
    from chalicelib.domain import sweeping

    merchant_id, export_id = due.pk.removeprefix("EXPORT#").split("#", 1)
    export = c.store.get_export(merchant_id, export_id)
    if export.done:
        return "done"
    now = c.now()
    if sweeping.exhausted("export", due.redrives):
        failed = replace(export, status="failed", error="the export could not be run", upload_id=None, completed_at=now)
        if not c.store.save_export(failed, claimed=due):
            return "moved on"  # a part upload left behind is aborted by the bucket's lifecycle rule
        logger.warning("export failed by the sweeper", export_id=export_id, redrives=due.redrives)
        return "failed"
    if not claim(due, now + sweeping.backoff("export", due.redrives)):
        return "moved on"
    c.export_queue.enqueue(merchant_id, export_id)
    logger.info("export queued again", export_id=export_id, redrives=due.redrives + 1)
    return "queued"
