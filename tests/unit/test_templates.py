"""Starter templates: each is a valid guidelines body and a valid checklists body, classifies samples of its category
the way a returns-floor lead would (and as its own examples document), and its checklist accepts a complete
inspection while naming a dropped answer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chalicelib import templates
from chalicelib.api.schemas import GuidelinesIn
from chalicelib.domain import checklists as cl
from chalicelib.domain import guidelines as gl
from chalicelib.domain.errors import NotFound
from chalicelib.domain.returns import Disposition, Grade

NAMES = ["apparel", "cosmetics", "electronics", "shoes"]
ORDER = {"country": "DE", "currency": "EUR"}
EXAMPLES = [(name, example) for name in NAMES for example in templates.load(name)["examples"]]


def guideline(name: str) -> gl.Guideline:
    return gl.Guideline.from_dict(templates.load(name)["guidelines"])


def checklists(name: str) -> cl.Checklists:
    return cl.Checklists.from_dict(templates.load(name)["checklists"])


def classify(name: str, tags: list[str], checks: dict[str, Any], unit_price: float = 49.0) -> gl.Classification:
    item = {"sku": f"{name.upper()}-1", "tags": tags, "unit_price": unit_price, "quantity": 1, "reason": "changed_mind"}
    return gl.classify(guideline(name), item=item, checks=checks, order=ORDER)


# ----- loader --------------------------------------------------------------------------------------------------
def test_the_four_categories_are_shipped() -> None:
    assert templates.names() == NAMES


def test_an_unknown_template_is_not_found() -> None:
    with pytest.raises(NotFound):
        templates.load("furniture")
    with pytest.raises(NotFound):
        templates.load("../config")


def test_load_returns_a_fresh_copy() -> None:
    templates.load("apparel")["guidelines"]["rules"].clear()
    assert templates.load("apparel")["guidelines"]["rules"]


@pytest.mark.parametrize("name", NAMES)
def test_a_template_has_the_documented_shape(name: str) -> None:
    template = templates.load(name)
    assert set(template) == {"name", "description", "guidelines", "checklists", "examples"}
    assert template["name"] == name
    assert len(template["description"]) > 100
    assert set(template["checklists"]) == {"checklists"}


# ----- valid settings bodies -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_guidelines_compile_and_are_a_valid_settings_body(name: str) -> None:
    body = templates.load(name)["guidelines"]
    gl.check_compiles(body["rules"])
    GuidelinesIn.model_validate(body)  # exactly what PUT /v1/settings/guidelines accepts (extra fields forbidden)
    assert gl.Guideline.from_dict(body).rules


@pytest.mark.parametrize("name", NAMES)
def test_checklists_compile(name: str) -> None:
    body = templates.load(name)["checklists"]
    cl.check_compiles(body)
    assert cl.Checklists.from_dict(body).checklists


@pytest.mark.parametrize("name", NAMES)
def test_rules_ask_only_what_the_checklist_answers(name: str) -> None:
    # A rule naming a check no question asks, or an option the question does not offer, could never match.
    template = templates.load(name)
    questions = {q["key"]: q for c in template["checklists"]["checklists"] for q in c["questions"]}
    for rule in template["guidelines"]["rules"]:
        referenced = set(re.findall(r"checks\.(\w+)", rule["when"]))
        assert referenced, f"rule {rule['name']!r} asks nothing of the checklist"
        assert referenced <= set(questions), (rule["name"], referenced - set(questions))
        for key in referenced:
            for literal in _quoted_after(rule["when"], f"checks.{key}"):
                assert literal in questions[key].get("options", []), (rule["name"], key, literal)


def _quoted_after(expr: str, prefix: str) -> list[str]:
    """The string literals compared with `prefix` (`checks.k == 'x'` and `checks.k in ['x', 'y']`)."""
    found: list[str] = []
    rest = expr
    while prefix in rest:
        rest = rest[rest.index(prefix) + len(prefix) :]
        head = rest.lstrip()
        if head.startswith("== '"):
            found.append(head[4:].split("'", 1)[0])
        elif head.startswith("in ["):
            found.extend(part.strip().strip("'") for part in head[4:].split("]", 1)[0].split(","))
    return found


def test_question_keys_differ_between_templates_so_they_can_be_combined() -> None:
    seen: dict[str, str] = {}
    for name in NAMES:
        for checklist in checklists(name).checklists:
            for question in checklist.questions:
                assert question.key not in seen, f"{question.key!r} is in {seen.get(question.key)} and {name}"
                seen[question.key] = name


# ----- classification as documented ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[f"{n}: {e['title']}" for n, e in EXAMPLES])
def test_each_example_classifies_as_documented(name: str, example: dict[str, Any]) -> None:
    result = gl.classify(guideline(name), item=example["item"], checks=example["checks"], order=example["order"])
    assert {
        "grade": result.grade.value,
        "disposition": result.disposition.value,
        "clarify": result.clarify,
        "rule": result.rule["name"],
    } == example["expect"]


@pytest.mark.parametrize("name", NAMES)
def test_an_uninspected_item_never_goes_straight_back_to_stock(name: str) -> None:
    # No answers at all (every rule fails on missing data): the default, which is never A restock.
    result = classify(name, [name], {})
    assert result.rule["name"] == "default"
    assert (result.grade, result.disposition) != (Grade.A, Disposition.RESTOCK)


APPAREL_CLEAN = {
    "tags_attached": True,
    "worn_signs": False,
    "stains": "none",
    "odour": False,
    "smoke_or_perfume": False,
    "damage": "none",
    "packaging": "original",
}


def test_apparel_as_new_is_restocked() -> None:
    assert classify("apparel", ["apparel"], APPAREL_CLEAN).grade == Grade.A


@pytest.mark.parametrize("stains", ["removable", "permanent"])
def test_apparel_with_stains_is_not_a(stains: str) -> None:
    assert classify("apparel", ["apparel"], {**APPAREL_CLEAN, "stains": stains}).grade != Grade.A


def test_apparel_stain_that_stays_is_recycled_not_restocked() -> None:
    result = classify("apparel", ["apparel"], {**APPAREL_CLEAN, "stains": "permanent"})
    assert (result.grade, result.disposition) == (Grade.C, Disposition.RECYCLE)


def test_apparel_tags_off_is_refurbished_with_floor_steps() -> None:
    result = classify("apparel", ["apparel"], {**APPAREL_CLEAN, "tags_attached": False})
    assert (result.grade, result.disposition) == (Grade.B, Disposition.REFURBISH)
    assert {"steam", "lint roll", "fold", "repackage", "relabel"} <= set(result.steps)


def test_apparel_worn_cheap_is_donated_but_worn_expensive_asks_the_merchant() -> None:
    cheap = classify("apparel", ["apparel"], {**APPAREL_CLEAN, "worn_signs": True}, unit_price=29.0)
    dear = classify("apparel", ["apparel"], {**APPAREL_CLEAN, "worn_signs": True}, unit_price=180.0)
    assert (cheap.grade, cheap.disposition, cheap.clarify) == (Grade.C, Disposition.DONATE, False)
    assert dear.clarify and dear.grade != Grade.A


SHOES_CLEAN = {
    "pair_matches": True,
    "sole_wear": "none",
    "upper_condition": "as_new",
    "shoe_odour": False,
    "laces_and_insoles": True,
    "box_condition": "original",
}


def test_shoes_as_new_are_restocked_and_a_missing_box_is_refurbished() -> None:
    assert classify("shoes", ["shoes"], SHOES_CLEAN).disposition == Disposition.RESTOCK
    rebox = classify("shoes", ["shoes"], {**SHOES_CLEAN, "box_condition": "missing"})
    assert (rebox.grade, rebox.disposition) == (Grade.B, Disposition.REFURBISH)
    assert "replace shoe box" in rebox.steps


def test_shoes_worn_soles_are_c_and_a_mismatched_pair_asks_the_merchant() -> None:
    assert classify("shoes", ["shoes"], {**SHOES_CLEAN, "sole_wear": "heavy"}).grade == Grade.C
    mismatched = classify("shoes", ["shoes"], {**SHOES_CLEAN, "pair_matches": False})
    assert mismatched.clarify and mismatched.disposition != Disposition.RESTOCK


ELECTRONICS_SEALED = {
    "seal_intact": True,
    "serial_number": "SN-0001",
    "serial_check": "matches",
    "powers_on": "not_tested_sealed",
    "account_locked": False,
    "screen": "no_screen_or_sealed",
    "physical_damage": False,
    "liquid_damage": False,
    "accessories": "complete",
}
ELECTRONICS_OPENED = {**ELECTRONICS_SEALED, "seal_intact": False, "powers_on": "yes", "screen": "flawless"}


def test_electronics_sealed_is_restocked_opened_is_wiped() -> None:
    assert classify("electronics", ["electronics"], ELECTRONICS_SEALED).grade == Grade.A
    opened = classify("electronics", ["electronics"], ELECTRONICS_OPENED)
    assert (opened.grade, opened.disposition) == (Grade.B, Disposition.REFURBISH)
    assert "factory reset and data wipe" in opened.steps


@pytest.mark.parametrize("unit_price", [25.0, 900.0])
def test_electronics_not_powering_on_is_never_restocked(unit_price: float) -> None:
    checks = {**ELECTRONICS_OPENED, "powers_on": "no"}
    result = classify("electronics", ["electronics"], checks, unit_price=unit_price)
    assert result.disposition != Disposition.RESTOCK and result.grade != Grade.A


def test_electronics_serial_mismatch_asks_the_merchant() -> None:
    result = classify("electronics", ["electronics"], {**ELECTRONICS_SEALED, "serial_check": "mismatch"})
    assert result.clarify and result.disposition != Disposition.RESTOCK


COSMETICS_SEALED = {
    "hygiene_seal_intact": True,
    "signs_of_use": False,
    "leaking": False,
    "expiry": "more_than_6_months",
    "batch_code": "L2407A",
    "outer_packaging": "original",
}


@pytest.mark.parametrize(
    "change",
    [{"hygiene_seal_intact": False}, {"signs_of_use": True}, {"leaking": True}, {"expiry": "expired"}],
    ids=["opened", "used", "leaking", "expired"],
)
def test_cosmetics_hygiene_failures_are_disposed(change: dict[str, Any]) -> None:
    result = classify("cosmetics", ["cosmetics"], {**COSMETICS_SEALED, **change}, unit_price=120.0)
    assert (result.grade, result.disposition, result.clarify) == (Grade.C, Disposition.DISPOSE, False)
    assert result.rule["index"] >= 0  # a named rule is the reason in the disposal register


def test_cosmetics_sealed_and_in_date_is_restocked() -> None:
    result = classify("cosmetics", ["beauty"], COSMETICS_SEALED)
    assert (result.grade, result.disposition) == (Grade.A, Disposition.RESTOCK)


# ----- checklist against complete and incomplete inspections ---------------------------------------------------
@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[f"{n}: {e['title']}" for n, e in EXAMPLES])
def test_each_example_is_a_complete_inspection(name: str, example: dict[str, Any]) -> None:
    line = {"line_item_id": "L1", "received_quantity": 1, "checks": example["checks"], "photos": ["p/1.jpg"]}
    assert cl.validate_inspection(checklists(name), [("L1", example["item"])], [line]) == []


@pytest.mark.parametrize("name", NAMES)
def test_dropping_any_required_answer_is_named(name: str) -> None:
    example = templates.load(name)["examples"][0]
    questions = cl.questions_for(checklists(name), example["item"])
    required = [q.key for q in questions if q.required]
    assert required
    for key in required:
        # Given the documented sample with one required answer left out
        checks = {k: v for k, v in example["checks"].items() if k != key}
        line = {"line_item_id": "L7", "received_quantity": 1, "checks": checks, "photos": ["p/1.jpg"]}
        # Then exactly that question is named
        errors = cl.validate_inspection(checklists(name), [("L7", example["item"])], [line])
        assert [(e["loc"], e["line_item_id"], e["question"]) for e in errors] == [
            (["items", 0, "checks", key], "L7", key)
        ]


@pytest.mark.parametrize(
    ("name", "tags"),
    [("apparel", ["clothing"]), ("shoes", ["footwear"]), ("electronics", ["electronics"]), ("cosmetics", ["skincare"])],
)
def test_checklists_apply_by_category_tag_only(name: str, tags: list[str]) -> None:
    item = {"sku": "X-1", "tags": tags, "unit_price": 10.0, "quantity": 1, "reason": "changed_mind"}
    assert cl.questions_for(checklists(name), item)
    assert cl.questions_for(checklists(name), {**item, "tags": ["furniture"]}) == []
