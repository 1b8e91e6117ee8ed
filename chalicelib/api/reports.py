"""Merchant reports: figures from counters kept by the report aggregator (one Query per day asked)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint

from chalicelib.api import schemas as s
from chalicelib.api.routing import Call, endpoint
from chalicelib.bootstrap import container

bp = Blueprint(__name__)
MERCHANT = ("merchant",)
ERRORS = (401, 403, 422)


def _run(call: Call, report: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    assert call.principal is not None
    q: s.ReportQuery = call.query
    return report(container(), call.principal.id, q.from_, q.to)


@endpoint(
    bp,
    "/v1/reports/summary",
    "GET",
    summary="Returns, items, refunds and return rate over days",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportQuery,
    response=s.ReportSummaryOut,
    errors=ERRORS,
)
def summary(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    return _run(call, reports.summary)


@endpoint(
    bp,
    "/v1/reports/reasons",
    "GET",
    summary="Returned units per return reason, optionally by period, SKU, product category or reason category",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportReasonsQuery,
    response=s.ReportReasonsOut,
    errors=ERRORS,
)
def reasons(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    assert call.principal is not None
    q: s.ReportReasonsQuery = call.query
    return reports.reasons(container(), call.principal.id, q.from_, q.to, q.group_by)


@endpoint(
    bp,
    "/v1/reports/skus",
    "GET",
    summary="Returned and sold units and the return rate per SKU",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportQuery,
    response=s.ReportSkusOut,
    errors=ERRORS,
)
def skus(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    return _run(call, reports.skus)


@endpoint(
    bp,
    "/v1/reports/processing-times",
    "GET",
    summary="Processing times per stage (histogram, median and p90)",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportQuery,
    response=s.ReportProcessingTimesOut,
    errors=ERRORS,
)
def processing_times(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    return _run(call, reports.processing_times)


@endpoint(
    bp,
    "/v1/reports/grades",
    "GET",
    summary="Graded units per grade and per disposition",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportQuery,
    response=s.ReportGradesOut,
    errors=ERRORS,
)
def grades(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    return _run(call, reports.grades)


@endpoint(
    bp,
    "/v1/reports/carriers",
    "GET",
    summary="Carrier transit times per carrier (histogram, median and p90)",
    tag="reports",
    auth=MERCHANT,
    query=s.ReportQuery,
    response=s.ReportCarriersOut,
    errors=ERRORS,
)
def carriers(call: Call) -> dict[str, Any]:
    from chalicelib.services import reports

    return _run(call, reports.carriers)
