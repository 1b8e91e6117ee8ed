"""The EU online withdrawal function (Directive 2023/2673, Art. 11a of Directive 2011/83 as amended).

A consumer who bought online may declare the withdrawal from the contract through a clearly labelled function; the
trader acknowledges receipt on a durable medium, with the date and time it was received. The declaration is a legal
act in itself: it is stored as received (who, which order, which items, when), independent of any return, and the
return that follows links to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.returns import iso


@dataclass
class Withdrawal:
    id: str
    merchant_id: str
    order_number: str
    name: str  # as the consumer declared it
    items: list[dict[str, Any]] | None  # [{line_item_id, quantity}]; None: the whole order
    received_at: datetime
    return_ids: list[str] = field(default_factory=list)  # the returns that followed
    acknowledged_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "merchant_id": self.merchant_id,
            "order_number": self.order_number,
            "name": self.name,
            "items": self.items,
            "received_at": iso(self.received_at),
            "return_ids": self.return_ids,
            "acknowledged_at": iso(self.acknowledged_at) if self.acknowledged_at else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Withdrawal:
        def parse(v: str | None) -> datetime | None:
            return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None

        received = parse(d["received_at"])
        assert received is not None
        return cls(
            id=d["id"],
            merchant_id=d["merchant_id"],
            order_number=d["order_number"],
            name=d["name"],
            items=d.get("items"),
            received_at=received,
            return_ids=list(d.get("return_ids") or []),
            acknowledged_at=parse(d.get("acknowledged_at")),
        )
