"""Backfills for data written before a read model existed: the list index (return_index.py) and the report counters.

Both are safe to run any number of times, beside live traffic:
- the list index: a return whose stored facets lack some of the ones it has now is saved again under its version
  (save_return writes exactly the missing index items; nothing else changes); a concurrent change makes it read again;
- report counters: the domain events on the return's timeline records (the outbox) are replayed into the report
  aggregator with their own event ids, so an event the aggregator already counted is a duplicate and adds nothing.

Sold quantities are counted when orders are saved; orders saved before the counters existed are not recounted here
(orders have no per-merchant listing to walk).

Walks one merchant's returns through the returns-by-merchant index (Queries, never a Scan), page by page.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from chalicelib.domain import reports as r
from chalicelib.domain.errors import ConcurrentModification, NotFound
from chalicelib.domain.return_index import facets
from chalicelib.observability import logger

if TYPE_CHECKING:
    from chalicelib.bootstrap import Container
    from chalicelib.domain.returns import Return

PAGE = 100


def index_return(c: Container, ret: Return, attempts: int = 5) -> bool:
    """Write the list index items `ret` lacks; whether anything was written."""
    for _ in range(attempts):
        if not set(facets(ret)) - set(ret.indexed):
            return False
        try:
            c.store.save_return(ret)
        except ConcurrentModification:
            try:
                ret = c.store.get_return(ret.id)
            except NotFound:
                return False
            continue
        return True
    raise ConcurrentModification(f"return '{ret.id}' kept changing; run the backfill again")


def replay_reports(c: Container, return_id: str) -> Counter[str]:
    """Replay the return's report events into the aggregator: outcome -> count (`applied`, `duplicate`, ...)."""
    from chalicelib.services import reports

    outcomes: Counter[str] = Counter()
    for event in c.store.outbox_events(return_id):
        if event.detail_type in r.EVENT_TYPES:
            outcomes[reports.aggregate(c, event.detail_type, event.detail)] += 1
    return outcomes


def backfill(c: Container, merchant_id: str, *, index: bool = True, report_counters: bool = True) -> dict[str, Any]:
    """Both backfills over every return of the merchant; what was done, as counts."""
    c.store.get_merchant(merchant_id)  # 404 for an unknown merchant
    out: dict[str, Any] = {"merchant_id": merchant_id, "returns": 0, "indexed": 0, "events": Counter[str]()}
    cursor: dict[str, Any] | None = None
    while True:
        page, cursor = c.store.list_returns(merchant_id, status=None, updated_since=None, cursor=cursor, limit=PAGE)
        for ret in page:
            out["returns"] += 1
            if index and index_return(c, ret):
                out["indexed"] += 1
            if report_counters:
                out["events"].update(replay_reports(c, ret.id))
        if not cursor:
            break
    out["events"] = dict(out["events"])
    logger.info("backfill done", merchant_id=merchant_id, returns=out["returns"], indexed=out["indexed"])
    return out
