"""Carrier tracking by polling, for carriers that offer no webhook (DHL Shipment Tracking): ask the carrier for the
returns that are still on their way, apply what it answers like a webhook event (`record_tracking_event`:
idempotent on the carrier's event id, status forward only), and stop asking once the parcel is in the warehouse or
the return ended.

A tracking-poll marker (repository `tracking_poll_marker`) is written with each return whose label such a carrier
made. A run asks for at most `max_requests` tracking numbers, least recently polled first, at least
`min_interval_s` apart (the carrier's rate limit). A transient carrier error (429, 5xx, timeout) ends the run, as does
its time budget: the numbers not asked yet are the least recently polled ones, so the next run starts with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.adapters.carriers.base import CarrierError, TrackingUpdate
from chalicelib.bootstrap import Container
from chalicelib.domain.errors import NotFound
from chalicelib.domain.returns import RANK, ReturnStatus
from chalicelib.domain.tracking import CarrierStatus, TrackingEvent
from chalicelib.observability import logger
from chalicelib.services.tracking import record_tracking_event


@dataclass(frozen=True)
class PollResult:
    requested: int  # tracking numbers asked for
    events: int  # carrier updates handed to record_tracking_event (a duplicate is counted, and changes nothing)
    stopped_early: bool  # a transient carrier error or the time budget ended the run; the next run continues
    moved: int = 0  # returns whose status moved forward
    finished: int = 0  # markers removed: the return is in the warehouse, cancelled, expired, rejected or gone
    failed: int = 0  # numbers the carrier refused (non-transient), and updates that could not be applied


#: Past these statuses the carrier has nothing more to tell (the warehouse scanned the parcel, or the return ended).
_LAST_POLLED_STATUS = ReturnStatus.DELIVERED


def _done(status: ReturnStatus) -> bool:
    return RANK[status] > RANK[_LAST_POLLED_STATUS]  # received .. refunded; cancelled, expired, rejected


def _event(carrier: str, update: TrackingUpdate) -> TrackingEvent:
    try:
        status = CarrierStatus(update.status)
    except ValueError:
        status = CarrierStatus.UNKNOWN
    return TrackingEvent(
        provider=carrier,
        event_id=update.event_id,
        tracking_number=update.tracking_number,
        status=status,
        occurred_at=update.occurred_at,
        carrier_status=update.carrier_status,
        detail=update.detail,
    )


@dataclass(frozen=True)
class _Candidate:
    return_id: str
    tracking_number: str
    account: str | None


def _due(c: Container, carrier: str, limit: int) -> tuple[list[_Candidate], int]:
    """Up to `limit` candidates still worth asking about, least recently polled first; the markers of returns past
    `delivered` (or gone) are removed on the way. Returns (candidates, markers removed)."""
    due: list[_Candidate] = []
    finished = 0
    for return_id, number, account in c.store.tracking_poll_candidates(carrier):
        if len(due) >= limit:
            break
        try:
            ret = c.store.get_return(return_id)
        except NotFound:
            ret = None
        if ret is None or _done(ret.status):
            c.store.delete_tracking_poll(carrier, return_id)
            finished += 1
            logger.info("tracking no longer polled", carrier=carrier, return_id=return_id)
            continue
        due.append(_Candidate(return_id, number, account))
    return due, finished


def _batches(candidates: list[_Candidate], size: int) -> list[list[_Candidate]]:
    """Batches of at most `size` numbers of one account each, in the candidates' order (by their first member)."""
    batches: list[list[_Candidate]] = []
    open_batches: dict[str | None, list[_Candidate]] = {}
    for cand in candidates:
        batch = open_batches.get(cand.account)
        if batch is None or len(batch) >= size:
            batch = open_batches[cand.account] = []
            batches.append(batch)
        batch.append(cand)
    return batches


def poll_tracking(
    c: Container,
    carrier: str = "dhl_de",
    *,
    max_requests: int = 100,
    min_interval_s: float = 0.2,
    time_budget_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> PollResult:
    """One polling run for `carrier` (scheduled): at most `max_requests` tracking numbers asked, requests at least
    `min_interval_s` apart, no request started after `time_budget_s` (the rest waits for the next run). Safe to run
    again at any time: events are applied once per carrier event id."""
    adapter = c.carriers.get(carrier)
    if adapter is None or not getattr(adapter, "polls_tracking", False):
        if c.store.tracking_poll_candidates(carrier):
            logger.error("returns wait for tracking but the carrier is not configured for polling", carrier=carrier)
        return PollResult(0, 0, stopped_early=False)
    size = max(1, int(getattr(adapter, "tracking_batch_size", 1)))
    due, finished = _due(c, carrier, max_requests)
    requested = events = moved = failed = 0
    stopped_early = False
    started = monotonic()
    last_request: float | None = None
    for batch in _batches(due, size):
        if time_budget_s is not None and monotonic() - started >= time_budget_s:
            logger.warning("tracking poll out of time; the next run continues", carrier=carrier)
            stopped_early = True
            break
        if last_request is not None:
            wait = min_interval_s - (monotonic() - last_request)
            if wait > 0:
                sleep(wait)
        numbers = [cand.tracking_number for cand in batch]
        last_request = monotonic()
        try:
            updates = adapter.fetch_tracking(numbers, batch[0].account)
        except CarrierError as exc:
            if exc.transient:
                logger.warning("carrier asked us to slow down or failed; the next run continues", carrier=carrier)
                stopped_early = True
                break
            logger.warning(
                "carrier refused a tracking request; skipped",
                carrier=carrier,
                return_ids=[cand.return_id for cand in batch],
                detail=exc.detail,
            )
            requested += len(batch)
            failed += len(batch)
            _polled(c, carrier, batch)
            continue
        requested += len(batch)
        applied = True
        for update in updates:
            events += 1
            try:
                moved += record_tracking_event(c, _event(carrier, update))
            except Exception:  # this number is asked again first next run; the event id keeps it applied once
                logger.exception("a polled tracking update could not be applied", carrier=carrier)
                applied = False
                failed += 1
        if applied:
            _polled(c, carrier, batch)
    result = PollResult(requested, events, stopped_early, moved=moved, finished=finished, failed=failed)
    logger.info(
        "tracking polled",
        carrier=carrier,
        requested=requested,
        events=events,
        moved=moved,
        finished=finished,
        failed=failed,
        stopped_early=stopped_early,
    )
    return result


def _polled(c: Container, carrier: str, batch: list[_Candidate]) -> None:
    now = c.now()
    for cand in batch:
        c.store.tracking_polled(carrier, cand.return_id, cand.tracking_number, cand.account, now)
