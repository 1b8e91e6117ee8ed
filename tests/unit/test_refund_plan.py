"""Refund planning over returns and orders: entitlement, allocation, the cross-return cap, retry timing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.addresses import Address
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.orders import Order, OrderItem
from chalicelib.domain.refund_calc import RefundPolicy
from chalicelib.domain.refunds import (
    RefundAllocation,
    RetryPolicy,
    allocate,
    choose_amount,
    plan,
    release,
    reserve,
    store_credit_value,
)
from chalicelib.domain.returns import Disposition, Grade, Return, ReturnItem, ReturnStatus

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ADDRESS = Address(name="A", street="S", house_number="1", postal_code="10115", city="Berlin", country="DE")


def order(*lines: tuple[str, int, str, str | None], shipping: str = "0") -> Order:
    """lines: (line_item_id, quantity, unit_price, paid_total or None)."""
    return Order(
        merchant_id="m",
        order_number="O1",
        email="a@b.example",
        currency="EUR",
        ordered_at=T0,
        shipping_address=ADDRESS,
        items=[
            OrderItem(
                line_item_id=lid,
                sku=f"SKU-{lid}",
                name=lid,
                quantity=qty,
                unit_price=Decimal(price),
                paid_total=Decimal(paid) if paid is not None else None,
            )
            for lid, qty, price, paid in lines
        ],
        shipping_paid=Decimal(shipping),
    )


def completed(o: Order, units: dict[str, int], grades: dict[str, str] | None = None, rid: str = "r1") -> Return:
    """A completed return of `units` per line, all accepted (grade A unless given), reserved on the order."""
    items = []
    for lid, qty in units.items():
        line = o.item(lid)
        assert line is not None
        line.returned_quantity += qty
        item = ReturnItem(
            line_item_id=lid, sku=line.sku, name=line.name, quantity=qty, unit_price=line.unit_price, reason="r"
        )
        item.received_quantity = qty
        item.grade = Grade((grades or {}).get(lid, "A"))
        item.disposition = Disposition.RESTOCK
        items.append(item)
    ret = Return.request(
        return_id=rid,
        merchant_id="m",
        warehouse_id="w",
        order_number="O1",
        currency="EUR",
        customer_country="DE",
        locale="de",
        items=items,
        tracking_token=f"tok-{rid}",
        actor="c",
        at=T0,
    )
    ret.status = ReturnStatus.COMPLETED
    return ret


def refund(ret: Return, o: Order, amount: Decimal | None, policy: RefundPolicy, rid: str = "rf") -> RefundAllocation:
    the_plan = plan(ret, o, policy)
    value = choose_amount(the_plan, amount, "EUR")
    share = allocate(the_plan, ret, value)
    ret.request_refund(refund_id=rid, amount=value, allocation=share, breakdown=None, reason=None, actor="m", at=T0)
    reserve(o, share)
    return share


def test_the_entitlement_uses_what_was_paid_grade_deductions_and_fees() -> None:
    o = order(("L1", 2, "50.00", "90.00"), ("L2", 1, "20.00", None))  # L1 had a 10.00 discount
    ret = completed(o, {"L1": 2, "L2": 1}, grades={"L2": "B"})
    policy = RefundPolicy(grade_deductions={"B": Decimal(10)}, return_shipping_fee=Decimal("4.90"))
    the_plan = plan(ret, o, policy)
    lines = {line.line_item_id: line for line in the_plan.breakdown.lines}
    assert lines["L1"].amount == Decimal("90.00")  # capped to what was paid, not 2 x 50
    assert [d.reason for d in lines["L1"].deductions] == ["more than was paid for these units"]
    assert lines["L2"].amount == Decimal("18.00")
    assert [d.reason for d in lines["L2"].deductions] == ["grade B: 10%"]
    assert the_plan.refundable == Decimal("103.10")  # 90 + 18 - 4.90


def test_the_original_shipping_comes_back_only_with_the_whole_order() -> None:
    o = order(("L1", 1, "30.00", None), ("L2", 1, "20.00", None), shipping="4.95")
    partial = completed(o, {"L1": 1})
    assert plan(partial, o, RefundPolicy()).breakdown.shipping_refund == 0
    rest = completed(o, {"L2": 1}, rid="r2")
    assert plan(rest, o, RefundPolicy()).breakdown.shipping_refund == Decimal("4.95")
    no_shipping = RefundPolicy(refund_original_shipping_when_complete=False)
    assert plan(rest, o, no_shipping).breakdown.shipping_refund == 0


def test_allocation_takes_shipping_first_and_hands_units_to_the_shop_once() -> None:
    o = order(("L1", 1, "30.00", None), shipping="5.00")
    ret = completed(o, {"L1": 1})
    first = refund(ret, o, Decimal("10.00"), RefundPolicy(), rid="a")
    assert first.shipping == Decimal("5.00") and first.lines == {"L1": Decimal("5.00")}
    assert first.quantities == {"L1": 1}
    second = refund(ret, o, None, RefundPolicy(), rid="b")
    assert second.total == Decimal("25.00") and second.quantities == {}
    assert plan(ret, o, RefundPolicy()).refundable == 0
    assert o.refunded == {"L1": Decimal("30.00")} and o.shipping_refunded == Decimal("5.00")


def test_amounts_are_checked_and_name_the_field() -> None:
    o = order(("L1", 1, "30.00", None))
    ret = completed(o, {"L1": 1})
    the_plan = plan(ret, o, RefundPolicy())
    for bad in (Decimal("30.01"), Decimal("0"), Decimal("1.001")):
        with pytest.raises(ValidationFailed) as err:
            choose_amount(the_plan, bad, "EUR")
        assert err.value.errors[0]["loc"] == ["amount"]


def test_a_failed_refund_gives_its_share_back_to_the_return_and_the_order() -> None:
    o = order(("L1", 1, "30.00", None))
    ret = completed(o, {"L1": 1})
    share = refund(ret, o, None, RefundPolicy())
    ret.refund_failed(refund_id="rf", amount=share.total, allocation=share, error="x", actor="s", at=T0)
    release(o, share)
    assert plan(ret, o, RefundPolicy()).refundable == Decimal("30.00") and o.refunded == {"L1": Decimal("0")}


def test_store_credit_adds_the_bonus_in_the_currency_minor_unit() -> None:
    assert store_credit_value(Decimal("59.90"), Decimal(10), "EUR") == Decimal("65.89")
    assert store_credit_value(Decimal("1000"), Decimal("12.5"), "JPY") == Decimal("1125")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, str, str | None]], list[list[tuple[int, int, str]]], list]:
    n = draw(st.integers(1, 3))
    lines = [
        (
            draw(st.integers(1, 4)),
            f"{draw(st.integers(1, 9999))}.{draw(st.integers(0, 99)):02d}",
            draw(st.one_of(st.none(), st.integers(1, 10_000))),  # paid after a discount: per mille of the price
        )
        for _ in range(n)
    ]
    returns = draw(
        st.lists(
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(1, 4), st.sampled_from("ABC")), min_size=1, max_size=3
            ),
            min_size=1,
            max_size=4,
        )
    )
    actions = draw(
        st.lists(
            st.tuples(st.integers(0, 3), st.sampled_from(["all", "part"]), st.integers(1, 99), st.booleans()),
            max_size=10,
        )
    )
    return lines, returns, actions


def _paid(full: Decimal, per_mille: int) -> str:
    """A discounted line total in whole cents (odd amounts, so per-unit shares round)."""
    return str(max(Decimal("0.01"), (full * min(per_mille, 1000) / 1000).quantize(Decimal("0.01"))))


@settings(max_examples=300, deadline=None)
@given(histories(), st.sampled_from([Decimal(0), Decimal(10), Decimal(100)]), st.sampled_from(["0", "3.95"]))
def test_no_order_line_is_ever_refunded_more_than_was_paid(history, deduction: Decimal, shipping: str) -> None:
    lines, return_specs, actions = history
    o = order(
        *[
            (f"L{i}", qty, price, _paid(Decimal(price) * qty, d) if d else None)
            for i, (qty, price, d) in enumerate(lines)
        ],
        shipping=shipping,
    )
    policy = RefundPolicy(grade_deductions={"B": deduction}, restocking_fee_percent=Decimal(5))
    returns: list[Return] = []
    for k, spec in enumerate(return_specs):
        units: dict[str, int] = {}
        grades: dict[str, str] = {}
        for idx, qty, grade in spec:
            line = o.items[idx]
            room = line.quantity - line.returned_quantity - units.get(line.line_item_id, 0)
            if room > 0:
                units[line.line_item_id] = units.get(line.line_item_id, 0) + min(qty, room)
                grades[line.line_item_id] = grade
        if units:
            returns.append(completed(o, units, grades, rid=f"r{k}"))
    held: list[tuple[Return, RefundAllocation]] = []
    for n, (which, kind, percent, fails) in enumerate(actions):
        if not returns:
            break
        ret = returns[which % len(returns)]
        the_plan = plan(ret, o, policy)
        if the_plan.refundable == 0:
            continue
        amount = (
            None
            if kind == "all"
            else max(Decimal("0.01"), (the_plan.refundable * percent / 100).quantize(Decimal("0.01")))
        )
        share = refund(ret, o, min(amount, the_plan.refundable) if amount else None, policy, rid=f"rf{n}")
        if fails:
            ret.refund_failed(refund_id=f"rf{n}", amount=share.total, allocation=share, error="x", actor="s", at=T0)
            release(o, share)
        else:
            held.append((ret, share))
    for line in o.items:
        given_back = sum((s.lines.get(line.line_item_id, Decimal(0)) for _, s in held), Decimal(0))
        assert given_back == o.refunded.get(line.line_item_id, Decimal(0))
        assert given_back <= line.paid
    assert sum((s.shipping for _, s in held), Decimal(0)) <= o.shipping_paid
    for ret in returns:
        mine = sum((s.total for r, s in held if r is ret), Decimal(0))
        assert mine == ret.refund_reserved()
        assert plan(ret, o, policy).refundable >= 0


def test_retry_waits_back_off_honour_retry_after_and_respect_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=6, deadline_seconds=300, base_seconds=5, max_wait_seconds=80, attempt_seconds=20)
    assert [policy.next_wait(n, 0, None) for n in range(1, 6)] == [5, 10, 20, 40, 80]
    assert policy.next_wait(6, 0, None) is None  # six attempts are the most
    assert policy.next_wait(1, 0, 30.5) == 31  # the shop's Retry-After wins over a shorter backoff
    assert policy.next_wait(1, 280, None) is None  # the next attempt could not end before the deadline
    assert policy.next_wait(1, 0, 600) is None  # a shop asking for 10 minutes: give up now, click again later


def test_rounding_per_return_never_adds_up_to_more_than_the_line_paid() -> None:
    # 0.05 paid for two units: each unit alone rounds to 0.03; the second return gets what is left, 0.02.
    o = order(("L1", 2, "1.00", "0.05"))
    first = completed(o, {"L1": 1}, rid="r1")
    second = completed(o, {"L1": 1}, rid="r2")
    assert refund(first, o, None, RefundPolicy(), rid="a").total == Decimal("0.03")
    assert refund(second, o, None, RefundPolicy(), rid="b").total == Decimal("0.02")
    assert o.refunded["L1"] == Decimal("0.05")
