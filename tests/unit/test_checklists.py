"""Inspection checklists: settings validation naming the field, questions chosen by CEL over the item, and an
inspection checked against them (missing answers, wrong types, unknown options, photos required by an answer)."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import guidelines
from chalicelib.domain.checklists import (
    Checklist,
    Checklists,
    Question,
    check_compiles,
    questions_for,
    validate_inspection,
)
from chalicelib.domain.errors import ValidationFailed

APPAREL: dict[str, Any] = {
    "name": "Apparel",
    "applies_to": "'apparel' in item.tags",
    "questions": [
        {"key": "tags_attached", "label": "Tags attached?", "type": "bool"},
        {"key": "stains", "label": "Stains?", "type": "bool", "photo_required_when": [True]},
        {
            "key": "packaging",
            "label": "Packaging",
            "type": "enum",
            "options": ["original", "damaged", "missing"],
            "photo_required_when": ["damaged"],
        },
        {"key": "note", "label": "Anything else", "type": "text", "required": False},
    ],
}
ELECTRONICS: dict[str, Any] = {
    "name": "Electronics",
    "applies_to": "item.sku.startsWith('EL-')",
    "questions": [
        {"key": "powers_on", "label": "Powers on?", "type": "bool"},
        {"key": "serial_number", "label": "Serial number", "type": "text"},
    ],
}
EXPENSIVE: dict[str, Any] = {
    "name": "Expensive",
    "applies_to": "item.unit_price >= 100.0",
    "questions": [
        {"key": "tags_attached", "label": "Security tag attached?", "type": "bool", "required": False},
        {"key": "box_sealed", "label": "Box sealed?", "type": "bool"},
    ],
}
BODY: dict[str, Any] = {"checklists": [APPAREL, ELECTRONICS, EXPENSIVE]}
CHECKLISTS = Checklists.from_dict(BODY)


def item(**kw: Any) -> dict[str, Any]:
    return {"sku": "SKU-1", "tags": [], "unit_price": 20.0, "quantity": 1, "reason": "too_small", **kw}


def line(line_item_id: str = "L1", received: int = 1, photos: list[str] | None = None, **checks: Any) -> dict[str, Any]:
    return {"line_item_id": line_item_id, "received_quantity": received, "checks": checks, "photos": photos or []}


CLEAN_APPAREL = {"tags_attached": True, "stains": False, "packaging": "original"}


def errors_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as exc:
        check_compiles(body)
    return exc.value.errors


def one_checklist(*questions: dict[str, Any], applies_to: str = "true") -> dict[str, Any]:
    return {"checklists": [{"name": "c", "applies_to": applies_to, "questions": list(questions)}]}


# ----- model ---------------------------------------------------------------------------------------------------
def test_from_dict_fills_defaults_and_to_dict_round_trips() -> None:
    # Given a body with the optional fields left out
    checklists = Checklists.from_dict({"checklists": [ELECTRONICS]})
    # Then the defaults apply
    question = checklists.checklists[0].questions[0]
    assert question == Question(key="powers_on", label="Powers on?", type="bool")
    assert (question.options, question.photo_required_when, question.required) == ((), (), True)
    assert checklists.version == 1
    # And to_dict reads back into the same value
    assert Checklists.from_dict(checklists.to_dict()) == checklists
    assert CHECKLISTS.to_dict()["checklists"][0]["questions"][1] == {
        "key": "stains",
        "label": "Stains?",
        "type": "bool",
        "options": [],
        "photo_required_when": [True],
        "required": True,
    }


def test_version_is_kept() -> None:
    assert Checklists.from_dict({**BODY, "version": 7}).to_dict()["version"] == 7


def test_checklist_from_dict_keeps_question_order() -> None:
    checklist = Checklist.from_dict(APPAREL)
    assert [q.key for q in checklist.questions] == ["tags_attached", "stains", "packaging", "note"]
    assert checklist.questions[3].required is False


# ----- check_compiles ------------------------------------------------------------------------------------------
def test_valid_settings_pass() -> None:
    check_compiles(BODY)
    check_compiles({"checklists": []})


def test_an_applies_to_that_does_not_compile_is_named() -> None:
    # Given a second checklist whose CEL is broken
    body = {"checklists": [APPAREL, {**ELECTRONICS, "name": "Broken", "applies_to": "item.tags.("}]}
    # Then the error names it by position and by name
    [error] = errors_of(body)
    assert error["loc"] == ["checklists", 1, "applies_to"]
    assert "Broken" in error["msg"]


def test_an_empty_applies_to_is_named() -> None:
    [error] = errors_of({"checklists": [{**APPAREL, "applies_to": "  "}]})
    assert error["loc"] == ["checklists", 0, "applies_to"]


def test_an_enum_question_needs_options() -> None:
    [error] = errors_of(one_checklist({"key": "k", "label": "K", "type": "enum"}))
    assert error["loc"] == ["checklists", 0, "questions", 0, "options"]
    assert "needs options" in error["msg"]


def test_options_belong_to_enum_questions_only() -> None:
    [error] = errors_of(one_checklist({"key": "k", "label": "K", "type": "bool", "options": ["yes"]}))
    assert error["loc"] == ["checklists", 0, "questions", 0, "options"]


def test_an_option_listed_twice_is_named() -> None:
    [error] = errors_of(one_checklist({"key": "k", "label": "K", "type": "enum", "options": ["a", "a"]}))
    assert error["loc"] == ["checklists", 0, "questions", 0, "options"]


def test_an_unknown_question_type_is_named() -> None:
    [error] = errors_of(one_checklist({"key": "k", "label": "K", "type": "number"}))
    assert error["loc"] == ["checklists", 0, "questions", 0, "type"]


@pytest.mark.parametrize(
    ("question", "bad_index"),
    [
        ({"key": "k", "label": "K", "type": "bool", "photo_required_when": [True, "yes"]}, 1),
        ({"key": "k", "label": "K", "type": "bool", "photo_required_when": [1]}, 0),
        ({"key": "k", "label": "K", "type": "enum", "options": ["a", "b"], "photo_required_when": ["b", "c"]}, 1),
        ({"key": "k", "label": "K", "type": "text", "photo_required_when": [False]}, 0),
    ],
    ids=["bool-string", "bool-int", "enum-not-an-option", "text-bool"],
)
def test_photo_required_when_must_be_possible_answers(question: dict[str, Any], bad_index: int) -> None:
    [error] = errors_of(one_checklist(question))
    assert error["loc"] == ["checklists", 0, "questions", 0, "photo_required_when", bad_index]
    assert "'k'" in error["msg"]


def test_photo_required_when_accepts_valid_answers() -> None:
    check_compiles(
        one_checklist(
            {"key": "b", "label": "B", "type": "bool", "photo_required_when": [True, False]},
            {"key": "e", "label": "E", "type": "enum", "options": ["x", "y"], "photo_required_when": ["y"]},
            {"key": "t", "label": "T", "type": "text", "photo_required_when": ["n/a"]},
        )
    )


def test_a_question_key_used_twice_in_one_checklist_is_named() -> None:
    body = one_checklist(
        {"key": "a", "label": "A", "type": "bool"},
        {"key": "b", "label": "B", "type": "bool"},
        {"key": "a", "label": "A again", "type": "text"},
    )
    [error] = errors_of(body)
    assert error["loc"] == ["checklists", 0, "questions", 2, "key"]
    assert "'a'" in error["msg"]


def test_the_same_key_in_two_checklists_is_allowed() -> None:
    check_compiles(BODY)  # APPAREL and EXPENSIVE both ask tags_attached


def test_every_problem_is_reported_at_once() -> None:
    body = {
        "checklists": [
            {"name": "x", "applies_to": "(", "questions": [{"key": "e", "label": "E", "type": "enum"}]},
            {"name": "y", "applies_to": "true", "questions": [{"key": "k", "label": "", "type": "bool"}]},
        ]
    }
    assert [e["loc"] for e in errors_of(body)] == [
        ["checklists", 0, "applies_to"],
        ["checklists", 0, "questions", 0, "options"],
        ["checklists", 1, "questions", 0, "label"],
    ]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["checklists"]),
        ({"checklists": ["x"]}, ["checklists", 0]),
        ({"checklists": [{"name": "n", "applies_to": "true"}]}, ["checklists", 0, "questions"]),
        ({"checklists": [{"name": "n", "applies_to": "true", "questions": [{"label": "L"}]}]}, None),
    ],
    ids=["no-list", "not-an-object", "no-questions", "no-key"],
)
def test_malformed_settings_are_named_not_crashing(body: dict[str, Any], loc: list[Any] | None) -> None:
    [error] = errors_of(body)
    assert error["loc"] == (loc or ["checklists", 0, "questions", 0, "key"])


# ----- questions_for -------------------------------------------------------------------------------------------
def test_questions_by_tag() -> None:
    keys = [q.key for q in questions_for(CHECKLISTS, item(tags=["apparel"]))]
    assert keys == ["tags_attached", "stains", "packaging", "note"]


def test_questions_by_sku() -> None:
    assert [q.key for q in questions_for(CHECKLISTS, item(sku="EL-PHONE"))] == ["powers_on", "serial_number"]


def test_an_item_no_checklist_applies_to_gets_no_questions() -> None:
    assert questions_for(CHECKLISTS, item(tags=["furniture"])) == []
    assert questions_for(Checklists(), item()) == []


def test_several_checklists_merge_and_the_first_wins_a_shared_key() -> None:
    # Given an expensive apparel item: APPAREL and EXPENSIVE both apply, both ask tags_attached
    questions = questions_for(CHECKLISTS, item(tags=["apparel"], unit_price=250.0))
    # Then the questions come in checklist order, tags_attached once, as APPAREL asks it (required)
    assert [q.key for q in questions] == ["tags_attached", "stains", "packaging", "note", "box_sealed"]
    assert questions[0].label == "Tags attached?" and questions[0].required


@pytest.mark.parametrize(
    "applies_to",
    ["item.color == 'red'", "item.unit_price > 'x'", "1 + 1", "'apparel'"],
    ids=["missing-field", "type-error", "number", "string"],
)
def test_a_failing_or_non_boolean_applies_to_does_not_apply(applies_to: str) -> None:
    checklists = Checklists.from_dict({"checklists": [{**APPAREL, "applies_to": applies_to}]})
    assert questions_for(checklists, item(tags=["apparel"])) == []


# ----- validate_inspection -------------------------------------------------------------------------------------
APPAREL_ITEM = [("L1", item(tags=["apparel"]))]


def test_a_complete_inspection_passes() -> None:
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**CLEAN_APPAREL)]) == []


def test_a_missing_required_answer_names_the_item_and_question() -> None:
    # Given an inspection that leaves out `packaging`
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(tags_attached=True, stains=False)])
    # Then exactly that answer is named, with its line_item_id and question key
    assert errors == [
        {
            "loc": ["items", 0, "checks", "packaging"],
            "msg": "'packaging' needs an answer: Packaging",
            "line_item_id": "L1",
            "question": "packaging",
        }
    ]


def test_a_null_answer_is_missing() -> None:
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**{**CLEAN_APPAREL, "stains": None})])
    assert [e["question"] for e in errors] == ["stains"]


def test_an_optional_question_may_be_left_out() -> None:
    # `note` is required: false
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**CLEAN_APPAREL)]) == []


def test_a_missing_item_needs_no_answers() -> None:
    # Given nothing of the item arrived
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(received=0)]) == []


def test_an_answer_given_for_a_missing_item_must_still_fit() -> None:
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(received=0, packaging="shiny")])
    assert [e["loc"] for e in errors] == [["items", 0, "checks", "packaging"]]


@pytest.mark.parametrize(
    ("key", "answer", "expected"),
    [
        ("tags_attached", "yes", "true or false"),
        ("tags_attached", 1, "true or false"),
        ("packaging", "shiny", "one of original, damaged, missing"),
        ("packaging", True, "one of original, damaged, missing"),
        ("note", 42, "text"),
    ],
    ids=["bool-string", "bool-int", "enum-unknown-option", "enum-bool", "text-number"],
)
def test_an_answer_of_the_wrong_kind_is_named(key: str, answer: Any, expected: str) -> None:
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**{**CLEAN_APPAREL, key: answer})])
    assert [(e["loc"], e["question"]) for e in errors] == [(["items", 0, "checks", key], key)]
    assert expected in errors[0]["msg"]


def test_a_blank_required_text_is_missing() -> None:
    errors = validate_inspection(
        CHECKLISTS, [("L9", item(sku="EL-TV"))], [line("L9", powers_on=True, serial_number="   ")]
    )
    assert [(e["loc"], e["line_item_id"]) for e in errors] == [(["items", 0, "checks", "serial_number"], "L9")]


def test_an_answer_that_requires_a_photo_needs_one() -> None:
    # Given stains = true (photo_required_when [true]) and no photo
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**{**CLEAN_APPAREL, "stains": True})])
    # Then the photos of that line are named, and the message names the question
    assert [(e["loc"], e["question"]) for e in errors] == [(["items", 0, "photos"], "stains")]
    assert "'stains'" in errors[0]["msg"]


def test_an_enum_answer_that_requires_a_photo_needs_one() -> None:
    errors = validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**{**CLEAN_APPAREL, "packaging": "damaged"})])
    assert [(e["loc"], e["question"]) for e in errors] == [(["items", 0, "photos"], "packaging")]


def test_a_photo_satisfies_the_requirement() -> None:
    checks = {**CLEAN_APPAREL, "stains": True, "packaging": "damaged"}
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(photos=["returns/r1/p1.jpg"], **checks)]) == []


def test_answers_that_do_not_require_a_photo_need_none() -> None:
    checks = {**CLEAN_APPAREL, "stains": False, "packaging": "missing"}
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**checks)]) == []


def test_unknown_check_keys_are_free_form() -> None:
    checks = {**CLEAN_APPAREL, "smells_of_lavender": "a bit", "weight_grams": 412}
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line(**checks)]) == []


def test_an_item_without_a_checklist_accepts_any_checks() -> None:
    assert validate_inspection(CHECKLISTS, [("L1", item(tags=["books"]))], [line(anything=True)]) == []


def test_a_line_for_an_item_not_in_the_return_is_left_to_the_caller() -> None:
    assert validate_inspection(CHECKLISTS, APPAREL_ITEM, [line("L-unknown")]) == []


def test_errors_come_in_line_then_question_order_with_the_request_index() -> None:
    # Given three lines: a clean one, one missing two answers, one with a wrong answer and a photo lacking
    items = [("A", item(tags=["apparel"])), ("B", item(tags=["apparel"], unit_price=300.0)), ("C", item(sku="EL-1"))]
    lines = [
        line("C", powers_on="no", serial_number="X1"),
        line("B", **CLEAN_APPAREL),
        line("A", **{**CLEAN_APPAREL, "stains": True, "tags_attached": "yes"}),
    ]
    errors = validate_inspection(CHECKLISTS, items, lines)
    # Then errors follow the request's order, each naming the request index and the line_item_id
    assert [(e["loc"], e["line_item_id"]) for e in errors] == [
        (["items", 0, "checks", "powers_on"], "C"),
        (["items", 1, "checks", "box_sealed"], "B"),
        (["items", 2, "checks", "tags_attached"], "A"),
        (["items", 2, "photos"], "A"),
    ]
    # And the same input gives the same answer
    assert validate_inspection(CHECKLISTS, items, lines) == errors


def test_each_expression_compiles_once_and_each_item_gets_one_context(monkeypatch: pytest.MonkeyPatch) -> None:
    import cel

    # Given a cold compile cache and a counter on cel.Context
    contexts: list[Any] = []
    real_context = cel.Context

    def counting_context(*args: Any, **kwargs: Any) -> Any:
        contexts.append(kwargs)
        return real_context(*args, **kwargs)

    monkeypatch.setattr(cel, "Context", counting_context)
    guidelines._compiled.cache_clear()
    # When 200 lines of 50 items are validated
    items = [(f"L{n}", item(tags=["apparel"], unit_price=float(n * 5))) for n in range(50)]
    lines = [line(f"L{n % 50}", **CLEAN_APPAREL) for n in range(200)]
    validate_inspection(CHECKLISTS, items, lines)
    # Then each of the three applies_to expressions compiled once, and each item had one context
    assert guidelines._compiled.cache_info().misses == 3
    assert len(contexts) == 50


def test_a_photo_rule_matches_the_answer_by_type_and_value() -> None:
    question = Question(key="stains", label="Stains?", type="bool", photo_required_when=(True,))
    assert question.needs_photo(True)
    assert not question.needs_photo(1)  # JSON 1 is not true
    assert not question.needs_photo(False)
