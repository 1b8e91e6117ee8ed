"""Key helpers and marker descriptions of the single table. No PynamoDB import here: services use these
without paying for the persistence stack at import time (cold start)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


def stored_time(at: datetime) -> str:
    """Stored times: UTC, microseconds, fixed width (so they sort as strings in keys)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_stored(raw: str | None) -> datetime | None:
    """A stored time back (None for none)."""
    if not raw:
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def return_pk(return_id: str) -> str:
    return f"RETURN#{return_id}"


def order_pk(merchant_id: str, order_number: str) -> str:
    return f"ORDER#{merchant_id}#{order_number}"


@dataclass(frozen=True)
class Marker:
    """An extra item written in the same transaction as an aggregate, only if it does not exist yet."""

    pk: str
    sk: str
    data: dict[str, Any] | None = None
    ttl_seconds: int | None = None
