"""Key helpers and marker descriptions of the single table. No PynamoDB import here: services use these
without paying for the persistence stack at import time (cold start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
