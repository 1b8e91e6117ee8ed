"""Typed domain errors. The API maps each class to one HTTP status in one place (chalicelib/api/problems.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    title = "Domain error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedInput(DomainError):
    """The request body cannot be read at all (not JSON)."""

    title = "Malformed request"


class NotFound(DomainError):
    title = "Not found"


class UnidentifiedParcelError(NotFound):
    """No return matches a scanned parcel; it was recorded as an unidentified parcel."""

    def __init__(self, parcel_id: str) -> None:
        super().__init__(
            "no return of this warehouse's merchants matches this barcode; recorded as an unidentified parcel"
        )
        self.parcel_id = parcel_id


class Unauthorized(DomainError):
    title = "Unauthorized"


class InvalidTransition(DomainError):
    """A status change the transition table does not allow."""

    title = "Invalid state transition"

    def __init__(self, current: str, target: str, detail: str | None = None) -> None:
        super().__init__(detail or f"cannot move a return from '{current}' to '{target}'")
        self.current = current
        self.target = target


class Conflict(DomainError):
    """The request contradicts the current state (a taken slug, an already fully refunded return, ...)."""

    title = "Conflict"


class AlreadyApplied(Conflict):
    """An idempotency marker already existed: the same event or request was applied before."""

    title = "Already applied"


class ConcurrentModification(Conflict):
    """Another writer changed the record between our read and our conditional write."""

    title = "Concurrent modification"


class ValidationFailed(DomainError):
    """Input that is well-formed but not acceptable; `errors` name the fields (loc relative to the body)."""

    title = "Validation failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []

    @classmethod
    def at(cls, loc: list[str | int], msg: str) -> ValidationFailed:
        return cls(msg, [{"loc": loc, "msg": msg}])


class RateLimited(DomainError):
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (carrier, state machine, ...) failed; the request may be retried."""

    title = "Service unavailable"
