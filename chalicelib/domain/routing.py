"""Carrier routing per warehouse (operator-owned): which carriers and return methods serve which customer countries,
and consolidation addresses that let customers of a country ship domestically (e.g. Swiss customers to a Swiss
address, from where the operator forwards in bulk)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from chalicelib.domain.addresses import Address

METHOD_TYPES = ("label", "qr", "drop_off", "pickup", "preprinted")
ANY_COUNTRY = "*"


@dataclass(frozen=True)
class RouteMethod:
    type: str  # one of METHOD_TYPES
    fee: Decimal | None = None  # the operator's default fee for the method; the merchant's policy fees win

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **({"fee": str(self.fee)} if self.fee is not None else {})}


@dataclass(frozen=True)
class Route:
    countries: tuple[str, ...]  # ISO alpha-2, or "*" for every other country
    carriers: tuple[str, ...]  # in order of preference; the later ones are fallbacks
    methods: tuple[RouteMethod, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "countries": list(self.countries),
            "carriers": list(self.carriers),
            "methods": [m.to_dict() for m in self.methods],
        }


DEFAULT_ROUTE = Route((ANY_COUNTRY,), ("sandbox",), (RouteMethod("label"),))


@dataclass(frozen=True)
class Routing:
    routes: tuple[Route, ...] = ()
    consolidation_addresses: dict[str, Address] = field(default_factory=dict)

    def route_for(self, country: str) -> Route | None:
        """A route naming the country wins over a "*" route; without any routes: the sandbox with a free label.
        None: this warehouse takes no returns from that country."""
        if not self.routes:
            return DEFAULT_ROUTE
        for route in self.routes:
            if country in route.countries:
                return route
        return next((r for r in self.routes if ANY_COUNTRY in r.countries), None)

    def recipient_for(self, country: str, warehouse_address: Address) -> Address:
        """Where a customer in `country` sends the parcel: a consolidation address in their country, if any."""
        return self.consolidation_addresses.get(country, warehouse_address)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Routing:
        if not data:
            return DEFAULT_ROUTING
        return cls(
            routes=tuple(
                Route(
                    countries=tuple(r["countries"]),
                    carriers=tuple(r["carriers"]),
                    methods=tuple(
                        RouteMethod(m["type"], Decimal(m["fee"]) if m.get("fee") is not None else None)
                        for m in r["methods"]
                    ),
                )
                for r in data.get("routes") or []
            ),
            consolidation_addresses={
                country: Address.from_dict(a) for country, a in (data.get("consolidation_addresses") or {}).items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "routes": [r.to_dict() for r in self.routes],
            "consolidation_addresses": {k: a.to_dict() for k, a in self.consolidation_addresses.items()},
        }


DEFAULT_ROUTING = Routing()
