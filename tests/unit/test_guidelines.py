"""Guideline rules in CEL: compile checks naming the rule, first match wins, missing data does not match."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.guidelines import Guideline, check_compiles, classify
from chalicelib.domain.returns import Disposition, Grade

GUIDE = Guideline.from_dict(
    {
        "rules": [
            {
                "name": "hygiene opened",
                "when": "'hygiene' in item.tags && checks.opened == true",
                "grade": "C",
                "disposition": "dispose",
            },
            {
                "name": "damaged",
                "when": "checks.damaged == true",
                "grade": "B",
                "disposition": "refurbish",
                "clarify": True,
                "steps": ["steam", "repackage"],
            },
            {
                "name": "expensive",
                "when": "item.unit_price > 100.0 && order.country == 'CH'",
                "grade": "A",
                "disposition": "restock",
                "clarify": True,
            },
        ],
        "default": {"grade": "A", "disposition": "restock"},
    }
)
ORDER = {"country": "DE", "currency": "EUR"}


def item(**kw: object) -> dict[str, object]:
    return {"sku": "S", "tags": [], "unit_price": 10.0, "quantity": 1, "reason": "too_small", **kw}


def test_first_matching_rule_wins_and_is_named() -> None:
    c = classify(GUIDE, item=item(tags=["hygiene"]), checks={"opened": True, "damaged": True}, order=ORDER)
    assert (c.grade, c.disposition, c.rule) == (Grade.C, Disposition.DISPOSE, {"name": "hygiene opened", "index": 0})


def test_clarify_and_steps_come_from_the_rule() -> None:
    c = classify(GUIDE, item=item(), checks={"damaged": True}, order=ORDER)
    assert c.clarify and c.steps == ("steam", "repackage")


def test_missing_data_does_not_match_and_the_default_applies() -> None:
    c = classify(GUIDE, item=item(), checks={}, order=ORDER)
    assert (c.grade, c.disposition, c.clarify, c.rule["name"]) == (Grade.A, Disposition.RESTOCK, False, "default")


def test_order_and_price_variables() -> None:
    c = classify(
        GUIDE, item=item(unit_price=250.0), checks={"damaged": False}, order={"country": "CH", "currency": "CHF"}
    )
    assert c.rule["name"] == "expensive"


def test_a_rule_that_does_not_compile_is_named() -> None:
    with pytest.raises(ValidationFailed) as exc:
        check_compiles([{"name": "ok", "when": "true"}, {"name": "broken", "when": "checks.("}])
    assert exc.value.errors[0]["loc"] == ["rules", 1, "when"]
    assert "broken" in exc.value.errors[0]["msg"]


def test_a_non_boolean_result_never_matches() -> None:
    g = Guideline.from_dict(
        {
            "rules": [{"name": "number", "when": "1 + 1", "grade": "C", "disposition": "dispose"}],
            "default": {"grade": "A", "disposition": "restock"},
        }
    )
    assert classify(g, item=item(), checks={}, order=ORDER).rule["name"] == "default"


def test_plans_flatten_field_selections_and_fall_back_to_maps() -> None:
    from chalicelib.domain.guidelines import _plan

    flat = _plan(("checks.damaged == true && item.unit_price > 1.0", "'x' in item.tags && order.country == 'CH'"))
    assert flat.flat
    assert flat.fields == (("checks", "damaged"), ("item", "tags"), ("item", "unit_price"), ("order", "country"))
    whole = _plan(("size(checks) > 2", "item.unit_price > 1.0"))
    assert not whole.flat and whole.restrict == {
        "checks": None,
        "item": frozenset({"unit_price"}),
        "order": frozenset(),
    }
    assert not _plan(("has(checks.x)",)).flat
    assert _plan(("'checks.x' == 'y'",)).fields == ()  # text inside strings is not code


def test_unreferenced_answers_do_not_change_the_result() -> None:
    noisy = {"damaged": True, **{f"extra{i}": "x" for i in range(20)}}
    assert classify(GUIDE, item=item(), checks=noisy, order=ORDER).rule["name"] == "damaged"


ANSWERS = st.one_of(st.booleans(), st.sampled_from(["heavy", "light", "opened", "x"]), st.integers(-2, 2))


@settings(max_examples=300, deadline=None)
@given(
    checks=st.dictionaries(st.sampled_from(["damaged", "opened", "stains", "worn", "tags"]), ANSWERS, max_size=5),
    tags=st.lists(st.sampled_from(["hygiene", "apparel", "final"]), max_size=3),
    price=st.floats(0, 500, allow_nan=False),
    country=st.sampled_from(["DE", "CH", "GB"]),
)
def test_flattened_rules_answer_exactly_like_the_rules_as_written(checks, tags, price, country) -> None:
    # Given any answers (missing, wrong types included) and the guidelines we ship and test
    from chalicelib import templates

    guides = [GUIDE, *(Guideline.from_dict(templates.load(n)["guidelines"]) for n in templates.names())]
    it = item(tags=tags, unit_price=price)
    order = {"country": country, "currency": "EUR"}
    for guide in guides:
        # Then both evaluation plans pick the same rule
        fast = classify(guide, item=it, checks=checks, order=order)
        slow = classify(guide, item=it, checks=checks, order=order, flatten=False)
        assert fast == slow
