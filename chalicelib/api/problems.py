"""RFC 7807 problem+json responses, and the one place where domain errors become HTTP statuses."""

from __future__ import annotations

import json
from typing import Any

from chalice.app import Response

from chalicelib.domain import errors

PROBLEM_TYPE = "https://boomerang.example/problems/"


class Forbidden(errors.DomainError):
    title = "Forbidden"


STATUS: list[tuple[type[errors.DomainError], int]] = [
    (errors.MalformedInput, 400),
    (errors.Unauthorized, 401),
    (Forbidden, 403),
    (errors.NotFound, 404),
    (errors.InvalidTransition, 409),
    (errors.Conflict, 409),
    (errors.ValidationFailed, 422),
    (errors.RateLimited, 429),
    (errors.Unavailable, 503),
]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": PROBLEM_TYPE + (type_ or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={"Content-Type": "application/problem+json", **(headers or {})},
    )


def from_error(exc: errors.DomainError) -> Response:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            headers: dict[str, str] = {}
            if isinstance(exc, errors.ValidationFailed):
                extra["errors"] = exc.errors
            if isinstance(exc, errors.UnidentifiedParcelError):
                extra["unidentified_parcel_id"] = exc.parcel_id
            if isinstance(exc, errors.RateLimited):
                headers["Retry-After"] = str(exc.retry_after)
            if isinstance(exc, errors.Unauthorized):
                headers["WWW-Authenticate"] = "Bearer"
            return problem(status, exc.title, exc.detail, headers=headers, **extra)
    return problem(500, "Internal error", "an unexpected error occurred")
