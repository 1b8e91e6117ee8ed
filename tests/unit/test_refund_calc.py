"""Refund calculation: worked examples, input checks and properties over sequences of returns of one order."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.refund_calc import (
    Deduction,
    LineInput,
    RefundBreakdown,
    RefundPolicy,
    calculate_refund,
    currency_exponent,
    round_to_minor,
)

D = Decimal
NO_RULES = RefundPolicy(grade_deductions={})
ABC = RefundPolicy(grade_deductions={"B": D("10"), "C": D("50")})


def line(
    line_item_id: str = "L1",
    *,
    unit_price: str = "10.00",
    qty: int = 1,
    grade: str | None = "A",
    ordered: int | None = None,
    paid_total: str | None = None,
    already_refunded: str = "0",
) -> LineInput:
    ordered = ordered if ordered is not None else qty
    paid = D(paid_total) if paid_total is not None else D(unit_price) * ordered
    return LineInput(
        line_item_id=line_item_id,
        unit_price=D(unit_price),
        accepted_quantity=qty,
        grade=grade,
        paid_total=paid,
        ordered_quantity=ordered,
        already_refunded=D(already_refunded),
    )


# ----- worked examples ----------------------------------------------------------------------------------------
def test_grades_a_b_c_deduct_their_percentages_per_line() -> None:
    # Given lines graded A, B and C under a policy keeping back 10% for B and 50% for C
    lines = [
        line("LA", unit_price="40.00", qty=1, grade="A"),
        line("LB", unit_price="25.00", qty=2, grade="B"),
        line("LC", unit_price="19.99", qty=1, grade="C"),
    ]

    # When the refund is calculated
    result = calculate_refund(lines, currency="EUR", policy=ABC)

    # Then A is refunded in full, B less 10% and C less 50% (9.995 -> 10.00, half up)
    a, b, c = result.lines
    assert (a.gross, a.deductions, a.amount) == (D("40.00"), (), D("40.00"))
    assert (b.gross, b.deductions, b.amount) == (D("50.00"), (Deduction("grade B: 10%", D("5.00")),), D("45.00"))
    assert (c.gross, c.deductions, c.amount) == (D("19.99"), (Deduction("grade C: 50%", D("10.00")),), D("9.99"))
    assert result.fees == ()
    assert result.shipping_refund == D("0")
    assert result.total == D("94.99")


def test_ungraded_line_and_grade_without_rule_are_not_deducted() -> None:
    result = calculate_refund(
        [line("L1", grade=None), line("L2", grade="A")],
        currency="EUR",
        policy=RefundPolicy(grade_deductions={"C": D("50")}),
    )

    assert [ln.amount for ln in result.lines] == [D("10.00"), D("10.00")]
    assert all(ln.deductions == () for ln in result.lines)


def test_deduction_is_rounded_per_line_not_per_unit_or_per_return() -> None:
    # 3 x 9.99 = 29.97; 15% of it is 4.4955 -> 4.50 (half up) on the line
    policy = RefundPolicy(grade_deductions={"B": D("15")})
    lines = [line("L1", unit_price="9.99", qty=3, grade="B"), line("L2", unit_price="0.05", qty=1, grade="B")]

    result = calculate_refund(lines, currency="EUR", policy=policy)

    first, second = result.lines
    assert first.deductions == (Deduction("grade B: 15%", D("4.50")),)
    assert first.amount == D("25.47")
    # 15% of 0.05 = 0.0075 -> 0.01 on its own line (summing first would have rounded 4.503 to 4.50)
    assert second.deductions == (Deduction("grade B: 15%", D("0.01")),)
    assert second.amount == D("0.04")
    assert result.total == D("25.51")


def test_fees_come_off_the_total_each_with_its_reason() -> None:
    # Given a restocking fee of 10%, a flat return shipping fee and a method fee deducted from the refund
    policy = RefundPolicy(
        grade_deductions={"B": D("10")}, restocking_fee_percent=D("10"), return_shipping_fee=D("4.95")
    )
    lines = [line("L1", unit_price="30.00", qty=1, grade="A"), line("L2", unit_price="20.00", qty=1, grade="B")]

    # When
    result = calculate_refund(lines, currency="EUR", policy=policy, method_fee=D("2.50"))

    # Then the lines are 30.00 + 18.00 = 48.00; restocking 4.80, shipping 4.95, method 2.50
    assert result.lines_total == D("48.00")
    assert result.fees == (
        Deduction("restocking fee: 10%", D("4.80")),
        Deduction("return shipping fee", D("4.95")),
        Deduction("return method fee", D("2.50")),
    )
    assert result.total == D("35.75")


def test_a_fee_bigger_than_the_lines_is_capped_and_the_total_is_zero() -> None:
    policy = RefundPolicy(grade_deductions={"C": D("50")}, return_shipping_fee=D("7.00"))
    lines = [line("L1", unit_price="9.00", qty=1, grade="C")]  # 4.50 after the grade

    result = calculate_refund(lines, currency="EUR", policy=policy, method_fee=D("3.00"))

    # The shipping fee takes what the line leaves (4.50); nothing is left for the method fee
    assert result.fees == (Deduction("return shipping fee", D("4.50")),)
    assert result.total == D("0.00")


def test_nothing_accepted_costs_no_fee() -> None:
    policy = RefundPolicy(grade_deductions={}, restocking_fee_percent=D("15"), return_shipping_fee=D("5"))

    result = calculate_refund([line("L1", qty=0, ordered=2)], currency="EUR", policy=policy, method_fee=D("3"))

    assert result.lines[0].amount == D("0.00")
    assert result.fees == ()
    assert result.total == D("0.00")


def test_jpy_has_no_minor_unit() -> None:
    policy = RefundPolicy(grade_deductions={"B": D("15")}, return_shipping_fee=D("500"))
    lines = [line("L1", unit_price="1333", qty=3, grade="B")]  # 3999; 15% = 599.85 -> 600

    result = calculate_refund(lines, currency="JPY", policy=policy)

    assert result.lines[0].deductions == (Deduction("grade B: 15%", D("600")),)
    assert result.lines[0].amount == D("3399")
    assert result.total == D("2899")
    assert result.to_dict()["total"] == "2899"


def test_kwd_has_three_decimals() -> None:
    policy = RefundPolicy(grade_deductions={"B": D("12.5")})
    lines = [line("L1", unit_price="1.999", qty=1, grade="B")]  # 12.5% of 1.999 = 0.249875 -> 0.250

    result = calculate_refund(lines, currency="KWD", policy=policy)

    assert result.lines[0].deductions == (Deduction("grade B: 12.5%", D("0.250")),)
    assert result.total == D("1.749")
    assert result.to_dict()["total"] == "1.749"


def test_whole_order_returned_refunds_the_original_shipping_once() -> None:
    lines = [line("L1", unit_price="50.00", qty=1)]

    first = calculate_refund(
        lines, currency="EUR", policy=NO_RULES, original_shipping_paid=D("5.90"), whole_order_returned=True
    )
    again = calculate_refund(
        lines,
        currency="EUR",
        policy=NO_RULES,
        original_shipping_paid=D("5.90"),
        shipping_already_refunded=D("5.90"),
        whole_order_returned=True,
    )

    assert first.shipping_refund == D("5.90")
    assert first.total == D("55.90")
    assert again.shipping_refund == D("0")
    assert again.total == D("50.00")


def test_original_shipping_stays_when_not_whole_order_or_policy_says_no() -> None:
    lines = [line("L1", unit_price="50.00", qty=1)]
    no_shipping = RefundPolicy(grade_deductions={}, refund_original_shipping_when_complete=False)

    partial = calculate_refund(lines, currency="EUR", policy=NO_RULES, original_shipping_paid=D("5.90"))
    refused = calculate_refund(
        lines, currency="EUR", policy=no_shipping, original_shipping_paid=D("5.90"), whole_order_returned=True
    )

    assert partial.shipping_refund == D("0")
    assert refused.shipping_refund == D("0")
    assert partial.total == refused.total == D("50.00")


def test_fees_do_not_eat_the_shipping_refund() -> None:
    policy = RefundPolicy(grade_deductions={"C": D("100")}, return_shipping_fee=D("9.00"))

    result = calculate_refund(
        [line("L1", grade="C")],
        currency="EUR",
        policy=policy,
        original_shipping_paid=D("4.90"),
        whole_order_returned=True,
    )

    assert result.lines_total == D("0.00")
    assert result.fees == ()
    assert result.total == D("4.90")


def test_line_is_capped_to_what_was_paid_for_the_units() -> None:
    # Given a line ordered 4 x 25.00 but paid 80.00 in total (a 20% discount)
    lines = [line("L1", unit_price="25.00", qty=1, ordered=4, paid_total="80.00")]

    result = calculate_refund(lines, currency="EUR", policy=NO_RULES)

    # Then one unit refunds what was paid for it, not its list price
    assert result.lines[0].gross == D("25.00")
    assert result.lines[0].deductions == (Deduction("more than was paid for these units", D("5.00")),)
    assert result.lines[0].amount == D("20.00")


def test_line_is_capped_to_what_is_left_after_earlier_refunds() -> None:
    lines = [line("L1", unit_price="30.00", qty=1, ordered=2, paid_total="60.00", already_refunded="45.00")]

    result = calculate_refund(lines, currency="EUR", policy=NO_RULES)

    assert result.lines[0].deductions == (Deduction("already refunded for this line", D("15.00")),)
    assert result.lines[0].amount == D("15.00")


def test_over_refunded_line_gives_zero_not_negative() -> None:
    lines = [line("L1", unit_price="30.00", qty=1, ordered=2, paid_total="60.00", already_refunded="75.00")]

    result = calculate_refund(lines, currency="EUR", policy=NO_RULES)

    assert result.lines[0].amount == D("0.00")
    assert result.total == D("0.00")


def test_units_returned_one_by_one_add_up_to_exactly_what_was_paid() -> None:
    # 3 units for 20.00: 6.67 + 6.67 + the 6.66 that is left, never 20.01
    refunded = D("0")
    amounts = []
    for _ in range(3):
        result = calculate_refund(
            [line("L1", unit_price="6.67", qty=1, ordered=3, paid_total="20.00", already_refunded=str(refunded))],
            currency="EUR",
            policy=NO_RULES,
        )
        refunded += result.lines[0].amount
        amounts.append(result.lines[0].amount)

    assert amounts == [D("6.67"), D("6.67"), D("6.66")]
    assert refunded == D("20.00")


def test_to_dict_uses_decimal_strings() -> None:
    policy = RefundPolicy(grade_deductions={"B": D("10")}, return_shipping_fee=D("2"))

    result = calculate_refund([line("L1", unit_price="10", qty=2, grade="B")], currency="EUR", policy=policy).to_dict()

    assert result == {
        "lines": [
            {
                "line_item_id": "L1",
                "quantity": 2,
                "gross": "20.00",
                "deductions": [{"reason": "grade B: 10%", "amount": "2.00"}],
                "amount": "18.00",
            }
        ],
        "fees": [{"reason": "return shipping fee", "amount": "2.00"}],
        "shipping_refund": "0.00",
        "total": "16.00",
        "currency": "EUR",
    }


# ----- input checks -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field_name", ["unit_price", "paid_total", "already_refunded"])
def test_line_input_refuses_floats(field_name: str) -> None:
    values: dict[str, object] = {
        "line_item_id": "L1",
        "unit_price": D("1"),
        "accepted_quantity": 1,
        "grade": None,
        "paid_total": D("1"),
        "ordered_quantity": 1,
        "already_refunded": D("0"),
    }
    values[field_name] = 1.0

    with pytest.raises(TypeError, match=field_name):
        LineInput(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwarg", ["method_fee", "original_shipping_paid", "shipping_already_refunded"])
def test_calculate_refund_refuses_floats(kwarg: str) -> None:
    with pytest.raises(TypeError, match=kwarg):
        calculate_refund([line()], currency="EUR", policy=NO_RULES, **{kwarg: 0.5})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grade_deductions": {"B": 10.0}},
        {"grade_deductions": {}, "restocking_fee_percent": 5.0},
        {"grade_deductions": {}, "return_shipping_fee": 4.95},
    ],
)
def test_policy_refuses_floats(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError):
        RefundPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grade_deductions": {"C": D("101")}},
        {"grade_deductions": {}, "restocking_fee_percent": D("-1")},
        {"grade_deductions": {}, "return_shipping_fee": D("NaN")},
    ],
)
def test_policy_refuses_out_of_range_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RefundPolicy(**kwargs)  # type: ignore[arg-type]


def test_line_input_refuses_more_accepted_than_ordered_and_bad_counts() -> None:
    with pytest.raises(ValueError, match="more accepted than ordered"):
        line(qty=3, ordered=2)
    with pytest.raises(ValueError, match="ordered_quantity"):
        line(qty=0, ordered=0)
    with pytest.raises(TypeError, match="accepted_quantity"):
        line(qty=True, ordered=1)  # type: ignore[arg-type]


def test_the_same_order_line_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        calculate_refund([line("L1"), line("L1")], currency="EUR", policy=NO_RULES)


def test_int_amounts_are_exact_and_accepted() -> None:
    result = calculate_refund([line()], currency="EUR", policy=NO_RULES, method_fee=1)  # type: ignore[arg-type]

    assert result.total == D("9.00")


# ----- policy (de)serialisation -------------------------------------------------------------------------------
def test_policy_round_trips_through_decimal_strings() -> None:
    policy = RefundPolicy(
        grade_deductions={"C": D("50"), "B": D("12.5")},
        restocking_fee_percent=D("5"),
        return_shipping_fee=D("4.95"),
        refund_original_shipping_when_complete=False,
    )

    data = policy.to_dict()

    assert data == {
        "grade_deductions": {"B": "12.5", "C": "50"},
        "restocking_fee_percent": "5",
        "return_shipping_fee": "4.95",
        "refund_original_shipping_when_complete": False,
    }
    assert RefundPolicy.from_dict(data) == policy


def test_policy_from_empty_dict_has_defaults() -> None:
    assert RefundPolicy.from_dict({}) == RefundPolicy(grade_deductions={})


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"grade_deductions": {"B": 10.5}}, ["grade_deductions", "B"]),
        ({"grade_deductions": {"D": "10"}}, ["grade_deductions", "D"]),
        ({"grade_deductions": {"C": "150"}}, ["grade_deductions", "C"]),
        ({"grade_deductions": ["B"]}, ["grade_deductions"]),
        ({"restocking_fee_percent": "ten"}, ["restocking_fee_percent"]),
        ({"restocking_fee_percent": True}, ["restocking_fee_percent"]),
        ({"return_shipping_fee": 4.95}, ["return_shipping_fee"]),
        ({"return_shipping_fee": "-1"}, ["return_shipping_fee"]),
        ({"return_shipping_fee": "Infinity"}, ["return_shipping_fee"]),
        ({"refund_original_shipping_when_complete": "yes"}, ["refund_original_shipping_when_complete"]),
    ],
)
def test_policy_from_dict_names_the_bad_field(data: dict[str, object], loc: list[str]) -> None:
    with pytest.raises(ValidationFailed) as err:
        RefundPolicy.from_dict(data)

    assert err.value.errors[0]["loc"] == loc


def test_currency_exponents() -> None:
    assert [currency_exponent(c) for c in ("EUR", "JPY", "KWD", "USD")] == [2, 0, 3, 2]
    assert round_to_minor(D("2.345"), "EUR") == D("2.35")
    assert round_to_minor(D("2.5"), "JPY") == D("3")


# ----- properties ---------------------------------------------------------------------------------------------
CURRENCIES = ["EUR", "JPY", "KWD", "USD"]
GRADES = st.sampled_from([None, "A", "B", "C"])
PERCENT = st.integers(min_value=0, max_value=10_000).map(lambda cents: D(cents).scaleb(-2))


def amounts(currency: str, *, max_minor: int = 1_000_000, extra_places: int = 0) -> st.SearchStrategy[Decimal]:
    """Non-negative amounts in the currency's minor unit (or finer, with `extra_places`)."""
    places = currency_exponent(currency) + extra_places
    return st.integers(min_value=0, max_value=max_minor * 10**extra_places).map(lambda n: D(n).scaleb(-places))


def policies(currency: str) -> st.SearchStrategy[RefundPolicy]:
    return st.builds(
        RefundPolicy,
        grade_deductions=st.dictionaries(st.sampled_from(["A", "B", "C"]), PERCENT),
        restocking_fee_percent=PERCENT,
        return_shipping_fee=amounts(currency, max_minor=5_000, extra_places=1),
        refund_original_shipping_when_complete=st.booleans(),
    )


def has_minor_units(value: Decimal, currency: str) -> bool:
    return value == round_to_minor(value, currency) and -value.as_tuple().exponent <= currency_exponent(currency)  # type: ignore[operator]


def all_amounts(result: RefundBreakdown) -> list[Decimal]:
    values = [result.total, result.shipping_refund, *(f.amount for f in result.fees)]
    for ln in result.lines:
        values += [ln.gross, ln.amount, *(d.amount for d in ln.deductions)]
    return values


@dataclass(frozen=True)
class OrderLine:
    line_item_id: str
    unit_price: Decimal
    ordered: int
    paid_total: Decimal


@st.composite
def order_and_returns(
    draw: st.DrawFn,
) -> tuple[str, list[OrderLine], Decimal, list[tuple[RefundPolicy, Decimal, dict]]]:
    """An order (lines, shipping) and a sequence of returns: per return a policy, a method fee and accepted units."""
    currency = draw(st.sampled_from(CURRENCIES))
    n_lines = draw(st.integers(min_value=1, max_value=4))
    lines = []
    for i in range(n_lines):
        ordered = draw(st.integers(min_value=1, max_value=5))
        unit_price = draw(amounts(currency, max_minor=100_000, extra_places=draw(st.sampled_from([0, 2]))))
        # paid: the list price, a discount, or (seen in imports) more than the list price
        paid_total = draw(st.one_of(st.just(round_to_minor(unit_price * ordered, currency)), amounts(currency)))
        lines.append(OrderLine(f"L{i + 1}", unit_price, ordered, paid_total))
    shipping = draw(amounts(currency, max_minor=10_000))
    remaining = {ln.line_item_id: ln.ordered for ln in lines}
    returns = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        accepted = {}
        for ln in lines:
            qty = draw(st.integers(min_value=0, max_value=remaining[ln.line_item_id]))
            if qty or draw(st.booleans()):
                accepted[ln.line_item_id] = (qty, draw(GRADES))
            remaining[ln.line_item_id] -= qty
        returns.append((draw(policies(currency)), draw(amounts(currency, max_minor=5_000)), accepted))
    return currency, lines, shipping, returns


@settings(max_examples=200, deadline=None)
@given(order_and_returns())
def test_no_sequence_of_returns_refunds_more_than_was_paid(
    scenario: tuple[str, list[OrderLine], Decimal, list[tuple[RefundPolicy, Decimal, dict]]],
) -> None:
    currency, order_lines, shipping, returns = scenario
    refunded = {ln.line_item_id: D(0) for ln in order_lines}
    returned_units = {ln.line_item_id: 0 for ln in order_lines}
    shipping_refunded = D(0)
    grand_total = D(0)
    by_id = {ln.line_item_id: ln for ln in order_lines}

    for policy, method_fee, accepted in returns:
        for lid, (qty, _grade) in accepted.items():
            returned_units[lid] += qty
        whole = all(returned_units[ln.line_item_id] == ln.ordered for ln in order_lines)
        inputs = [
            LineInput(
                line_item_id=lid,
                unit_price=by_id[lid].unit_price,
                accepted_quantity=qty,
                grade=grade,
                paid_total=by_id[lid].paid_total,
                ordered_quantity=by_id[lid].ordered,
                already_refunded=refunded[lid],
            )
            for lid, (qty, grade) in accepted.items()
        ]
        result = calculate_refund(
            inputs,
            currency=currency,
            policy=policy,
            method_fee=method_fee,
            original_shipping_paid=shipping,
            shipping_already_refunded=shipping_refunded,
            whole_order_returned=whole,
        )
        for ln in result.lines:
            refunded[ln.line_item_id] += ln.amount
            # a line never refunds more than was paid for those units
            paid_for_units = by_id[ln.line_item_id].paid_total * ln.quantity / by_id[ln.line_item_id].ordered
            assert ln.amount <= round_to_minor(paid_for_units, currency)
        shipping_refunded += result.shipping_refund
        grand_total += result.total

        for ln in order_lines:
            assert refunded[ln.line_item_id] <= ln.paid_total
        assert shipping_refunded <= shipping
        assert grand_total <= sum((ln.paid_total for ln in order_lines), D(0)) + shipping


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_total_is_lines_less_fees_plus_shipping_in_minor_units(data: st.DataObject) -> None:
    currency = data.draw(st.sampled_from(CURRENCIES))
    inputs = []
    for i in range(data.draw(st.integers(min_value=0, max_value=5))):
        ordered = data.draw(st.integers(min_value=1, max_value=10))
        inputs.append(
            LineInput(
                line_item_id=f"L{i}",
                unit_price=data.draw(amounts(currency, extra_places=data.draw(st.sampled_from([0, 1, 3])))),
                accepted_quantity=data.draw(st.integers(min_value=0, max_value=ordered)),
                grade=data.draw(GRADES),
                paid_total=data.draw(amounts(currency, extra_places=data.draw(st.sampled_from([0, 2])))),
                ordered_quantity=ordered,
                already_refunded=data.draw(amounts(currency)),
            )
        )
    result = calculate_refund(
        inputs,
        currency=currency,
        policy=data.draw(policies(currency)),
        method_fee=data.draw(amounts(currency, max_minor=10_000, extra_places=1)),
        original_shipping_paid=data.draw(amounts(currency, max_minor=10_000, extra_places=1)),
        shipping_already_refunded=data.draw(amounts(currency, max_minor=10_000)),
        whole_order_returned=data.draw(st.booleans()),
    )

    # (2) the total adds up and is never negative; every deduction and fee is positive
    assert result.total == result.lines_total - sum((f.amount for f in result.fees), D(0)) + result.shipping_refund
    assert result.total >= 0
    assert sum((f.amount for f in result.fees), D(0)) <= result.lines_total
    for ln in result.lines:
        assert ln.amount == ln.gross - sum((d.amount for d in ln.deductions), D(0))
        assert ln.amount >= 0
        assert all(d.amount > 0 for d in ln.deductions)
    assert all(f.amount > 0 for f in result.fees)
    # (3) every amount is in the currency's minor units, and so is its string form
    for value in all_amounts(result):
        assert has_minor_units(value, currency), value
    assert D(result.to_dict()["total"]) == result.total
