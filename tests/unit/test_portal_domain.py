"""Pure domain of the portal: eligibility and quantity arithmetic, reasons, routing and methods, cancel and expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.methods import choose_method, offered_methods
from chalicelib.domain.orders import Delivery, Order, OrderItem, eligibility
from chalicelib.domain.returns import Return, ReturnItem
from chalicelib.domain.routing import Route, RouteMethod, Routing
from chalicelib.domain.tenants import Reason, ReturnPolicy

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
HOME = Address("Erika", "Musterweg", "5", "10115", "Berlin", "DE")
WAREHOUSE = Address("Lager", "Hafenstrasse", "12", "20457", "Hamburg", "DE")
CH_HUB = Address("Hub", "Industriestrasse", "7", "4133", "Pratteln", "CH")


def order_with(item: OrderItem, delivered_at: datetime | None = None, country: str = "DE") -> Order:
    address = Address(HOME.name, HOME.street, HOME.house_number, HOME.postal_code, HOME.city, country)
    return Order("m", "1001", "e@x.example", "EUR", NOW - timedelta(days=20), address, [item], delivered_at)


# ----- the quantity arithmetic (hypothesis) -----------------------------------------------------------------------
operations = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(1, 4)),
        st.tuples(st.just("return"), st.integers(1, 5)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(quantity=st.integers(1, 8), ops=operations)
def test_no_sequence_of_returns_returns_more_than_was_delivered(quantity: int, ops: list[tuple[str, int]]) -> None:
    """Pieces arrive, returns reserve, cancellations release, in any order: what active returns hold never
    exceeds what was delivered, and a reservation is refused exactly when it would."""
    item = OrderItem("L1", "SKU", "Shirt", quantity, Decimal("10"))
    order = order_with(item)
    policy = ReturnPolicy(return_window_days=30)
    active: list[int] = []
    for op, n in ops:
        delivered, _ = item.delivered(order.delivered_at)
        if op == "deliver":
            if delivered + n <= quantity:
                item.deliveries.append(Delivery(n, NOW - timedelta(days=1)))
        elif op == "return":
            if sum(active) + n <= delivered:
                order.reserve("L1", n, policy, NOW)
                active.append(n)
            else:
                with pytest.raises(ValidationFailed):
                    order.reserve("L1", n, policy, NOW)
        elif active:
            order.release("L1", active.pop(n % len(active)))
        delivered, _ = item.delivered(order.delivered_at)
        assert item.returned_quantity == sum(active) <= delivered <= quantity
        el = eligibility(order, item, policy, NOW)
        assert el.returnable_quantity == delivered - sum(active)


def test_eligibility_reasons_in_order_of_precedence() -> None:
    policy = ReturnPolicy(
        return_window_days=14, non_returnable_tags=["final"], window_overrides=[{"tag": "x", "days": 60}]
    )
    sale = OrderItem("L", "S", "n", 1, Decimal(1), tags=["final"])
    assert eligibility(order_with(sale, None), sale, policy, NOW).reason == "final_sale"  # before not_delivered
    plain = OrderItem("L", "S", "n", 1, Decimal(1))
    assert eligibility(order_with(plain, None), plain, policy, NOW).reason == "not_delivered"
    assert eligibility(order_with(plain, NOW - timedelta(days=15)), plain, policy, NOW).reason == "window_expired"
    assert eligibility(order_with(plain, NOW - timedelta(days=14)), plain, policy, NOW).returnable  # last day counts
    long = OrderItem("L", "S", "n", 1, Decimal(1), tags=["x"])
    assert eligibility(order_with(long, NOW - timedelta(days=59)), long, policy, NOW).returnable
    plain.returned_quantity = 1
    assert eligibility(order_with(plain, NOW), plain, policy, NOW).reason == "already_returned"


def test_the_window_runs_from_the_last_delivered_piece() -> None:
    policy = ReturnPolicy(return_window_days=14)
    item = OrderItem(
        "L",
        "S",
        "n",
        3,
        Decimal(1),
        deliveries=[Delivery(1, NOW - timedelta(days=30)), Delivery(1, NOW - timedelta(days=3))],
    )
    el = eligibility(order_with(item, NOW - timedelta(days=30)), item, policy, NOW)
    assert el.returnable_quantity == 2  # the third piece never arrived


# ----- reasons ----------------------------------------------------------------------------------------------------
def test_reason_tree_round_trips_and_finds_nested_codes() -> None:
    tree = Reason.from_dict(
        {
            "code": "fit",
            "label": "Fit",
            "children": [{"code": "too_small", "label": "Too small", "comment_required": True}],
        }
    )
    policy = ReturnPolicy(reasons=[tree])
    assert Reason.from_dict(tree.to_dict()) == tree
    found = policy.find_reason("too_small")
    assert found is not None and found.comment_required
    assert policy.reason_codes() == {"fit", "too_small"}
    assert policy.find_reason("other") is None


# ----- routing and methods ----------------------------------------------------------------------------------------
def test_a_named_country_wins_over_the_wildcard_and_unserved_countries_get_nothing() -> None:
    de = Route(("DE",), ("sandbox",), (RouteMethod("qr"),))
    rest = Route(("*",), ("sandbox",), (RouteMethod("label"),))
    assert Routing((rest, de)).route_for("DE") == de
    assert Routing((rest, de)).route_for("FR") == rest
    assert Routing((de,)).route_for("FR") is None
    assert Routing().route_for("FR") is not None  # no routing: the default route
    routing = Routing((de, rest), {"CH": CH_HUB})
    assert Routing.from_dict(routing.to_dict()) == routing


def _methods(country: str, routing: Routing, policy: ReturnPolicy | None = None, preprinted: bool = False) -> list:
    return offered_methods(
        routing=routing,
        policy=policy or ReturnPolicy(),
        customer_country=country,
        warehouse_address=WAREHOUSE,
        currency="EUR",
        carrier_methods={"sandbox": frozenset({"label", "qr"}), "other": frozenset({"label", "pickup"})},
        has_preprinted_label=preprinted,
    )


def test_methods_need_a_carrier_that_offers_them_and_fallbacks_follow_the_route_order() -> None:
    route = Route(
        ("*",), ("sandbox", "other"), tuple(RouteMethod(t) for t in ("label", "pickup", "drop_off", "preprinted"))
    )
    options = _methods("DE", Routing((route,)))
    assert [(o.type, o.carrier, o.fallbacks) for o in options] == [
        ("label", "sandbox", ("other",)),
        ("pickup", "other", ()),
    ]
    with_pre = _methods("DE", Routing((route,)), preprinted=True)
    assert with_pre[-1].type == "preprinted"
    assert choose_method(with_pre, None) == with_pre[0]  # the default makes a label
    assert choose_method(with_pre, "nope") is None


def test_customs_and_domestic_consolidation() -> None:
    route = Route(("*",), ("sandbox",), (RouteMethod("label"),))
    assert not _methods("AT", Routing((route,)))[0].customs_required
    gb = _methods("GB", Routing((route,)))[0]
    assert gb.customs_required and not gb.domestic
    assert _methods("CH", Routing((route,)))[0].customs_required
    ch = _methods("CH", Routing((route,), {"CH": CH_HUB}))[0]
    assert not ch.customs_required and ch.domestic and ch.recipient == CH_HUB


def test_merchant_fees_win_over_route_fees_and_a_zero_fee_deducts_nothing() -> None:
    route = Route(("*",), ("sandbox",), (RouteMethod("label", Decimal("4.9")), RouteMethod("qr", Decimal("1"))))
    policy = ReturnPolicy(
        fees=[
            {"method_type": "label", "countries": ["AT"], "amount": "2.5", "deduct_from_refund": True},
            {"method_type": "qr", "amount": "0", "deduct_from_refund": True},
        ]
    )
    at = {o.type: o for o in _methods("AT", Routing((route,)), policy)}
    de = {o.type: o for o in _methods("DE", Routing((route,)), policy)}
    assert (at["label"].fee, at["label"].deduct_from_refund) == (Decimal("2.50"), True)
    assert (de["label"].fee, de["label"].deduct_from_refund) == (Decimal("4.90"), False)
    assert (de["qr"].fee, de["qr"].deduct_from_refund) == (Decimal("0.00"), False)


# ----- cancel and expire ------------------------------------------------------------------------------------------
def _return() -> Return:
    ret = Return.request(
        return_id="ret_1",
        merchant_id="m",
        warehouse_id="w",
        order_number="1001",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=[ReturnItem("L1", "S", "n", 1, Decimal("10"), "too_small")],
        tracking_token="t",
        actor="customer",
        at=NOW,
    )
    ret.attach_label(carrier="sandbox", tracking_number="SB1", label_key="k", actor="customer", at=NOW)
    ret.label_expires_at = NOW + timedelta(days=7)
    return ret


def test_cancel_before_the_parcel_moves_only() -> None:
    ret = _return()
    ret.cancel(actor="customer", at=NOW, reason="found a better size")
    assert ret.status.value == "cancelled" and ret.events[-1].type == "return.cancelled"
    moving = _return()
    moving.receive(actor="w", at=NOW, barcode="SB1")
    with pytest.raises(InvalidTransition):
        moving.cancel(actor="customer", at=NOW)


def test_expiry_only_when_due_and_still_unused() -> None:
    ret = _return()
    assert not ret.expire(actor="system", at=NOW + timedelta(days=6))
    assert ret.expire(actor="system", at=NOW + timedelta(days=7))
    assert ret.status.value == "expired"
    moved = _return()
    moved.receive(actor="w", at=NOW, barcode="SB1")
    assert not moved.expire(actor="system", at=NOW + timedelta(days=30))


def test_the_label_scan_check_fails_for_a_label_that_does_not_carry_the_number() -> None:
    from chalicelib.adapters.carriers.base import LabelRequest
    from chalicelib.adapters.carriers.sandbox import SandboxCarrier, new_tracking_number
    from tests.support import assert_label_scans

    label = SandboxCarrier().create_label(LabelRequest("ret_1", "1001", "Shop", HOME, WAREHOUSE))
    assert_label_scans(label.content, label.tracking_number, label.qr_payload)
    with pytest.raises(AssertionError):
        assert_label_scans(label.content, new_tracking_number())
