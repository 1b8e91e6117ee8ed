"""Return methods offered to a customer: what the warehouse's routing allows for the customer's country, what the
carriers can do, and what the merchant charges for each (shown before the customer confirms)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.domain.addresses import Address
from chalicelib.domain.customs import customs_required
from chalicelib.domain.money import Money, quantize
from chalicelib.domain.routing import Routing
from chalicelib.domain.tenants import ReturnPolicy

PREPRINTED = "preprinted"


@dataclass(frozen=True)
class MethodOption:
    id: str
    type: str  # label | qr | drop_off | pickup | preprinted
    carrier: str  # the first carrier to try ("preprinted": the label that came in the parcel)
    fallbacks: tuple[str, ...]  # further carriers offering the same method, tried when the first fails
    fee: Decimal
    currency: str
    deduct_from_refund: bool
    customs_required: bool
    recipient: Address  # the warehouse, or a consolidation address in the customer's country
    domestic: bool  # the parcel stays in the customer's country

    def to_dict(self) -> dict[str, Any]:
        """As stored on the return and shown to the customer (no address: that is on the label)."""
        return {
            "id": self.id,
            "type": self.type,
            "carrier": self.carrier,
            "fee": Money(self.fee, self.currency).to_dict(),
            "deduct_from_refund": self.deduct_from_refund,
            "customs_required": self.customs_required,
            "domestic": self.domestic,
        }


def offered_methods(
    *,
    routing: Routing,
    policy: ReturnPolicy,
    customer_country: str,
    warehouse_address: Address,
    currency: str,
    carrier_methods: Mapping[str, frozenset[str]],
    has_preprinted_label: bool,
) -> list[MethodOption]:
    """The methods for this customer, in the route's order. A method needs a carrier of the route that offers it
    (`carrier_methods`: carrier name -> method types it supports); `preprinted` needs a pre-printed return label
    registered with the order and no carrier at all."""
    route = routing.route_for(customer_country)
    if route is None:
        return []
    recipient = routing.recipient_for(customer_country, warehouse_address)
    customs = customs_required(
        customer_country, recipient.country, domestic_countries=routing.consolidation_addresses.keys()
    )
    out: list[MethodOption] = []
    for method in route.methods:
        if method.type == PREPRINTED:
            if not has_preprinted_label:
                continue
            carriers: tuple[str, ...] = (PREPRINTED,)
        else:
            carriers = tuple(c for c in route.carriers if method.type in carrier_methods.get(c, frozenset()))
            if not carriers:
                continue
        merchant_fee = policy.fee_for(method.type, customer_country)
        if merchant_fee is not None:
            fee, deduct = Decimal(merchant_fee["amount"]), bool(merchant_fee.get("deduct_from_refund", False))
        else:
            fee, deduct = method.fee or Decimal("0"), False
        out.append(
            MethodOption(
                id=f"{carriers[0]}_{method.type}" if method.type != PREPRINTED else PREPRINTED,
                type=method.type,
                carrier=carriers[0],
                fallbacks=carriers[1:],
                fee=quantize(fee, currency),
                currency=currency,
                deduct_from_refund=deduct and fee > 0,
                customs_required=customs,
                recipient=recipient,
                domestic=recipient.country == customer_country,
            )
        )
    return out


def choose_method(options: list[MethodOption], method_id: str | None) -> MethodOption | None:
    """The customer's choice; without one, the first method that makes a new label (else the first)."""
    if method_id is None:
        return next((o for o in options if o.type != PREPRINTED), options[0] if options else None)
    return next((o for o in options if o.id == method_id), None)
