"""Inspection checklists: typed questions the warehouse answers per item, chosen by a CEL `applies_to` over the item.

A merchant's checklists are one settings document (`PUT /v1/settings/checklists`). For an item, every checklist whose
`applies_to` evaluates to true contributes its questions (merged by key, the first checklist wins). An inspection line
is checked against them: required answers present, answers of the right type and among the options, and a photo where
an answer requires one. CEL expressions are compiled once per expression (`guidelines._compiled`, an LRU cache) and
evaluated with one `cel.Context` per item; `cel` itself is imported lazily, as in guidelines.

As with guideline rules, an `applies_to` whose estimated worst-case cost is over the budget
(chalicelib/domain/expression_cost.py) is refused when saved, and one stored before the estimate existed never runs
(`Checklists.skipped`: it does not apply); the item is cut to the bounded sizes before evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.expression_cost import bounded, cost_errors, over_budget
from chalicelib.domain.guidelines import _compiled

QuestionType = Literal["bool", "enum", "text"]
Answer = bool | str
QUESTION_TYPES: tuple[QuestionType, ...] = ("bool", "enum", "text")

# What a CEL evaluation raises on missing data or mismatched types: the checklist then does not apply.
_CEL_RUNTIME_ERRORS = (KeyError, ValueError, TypeError, RuntimeError)


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    type: QuestionType
    options: tuple[str, ...] = ()
    photo_required_when: tuple[Answer, ...] = ()
    required: bool = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Question:
        return cls(
            key=data["key"],
            label=data["label"],
            type=cast(QuestionType, data["type"]),
            options=tuple(data.get("options") or ()),
            photo_required_when=tuple(data.get("photo_required_when") or ()),
            required=bool(data.get("required", True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "type": self.type,
            "options": list(self.options),
            "photo_required_when": list(self.photo_required_when),
            "required": self.required,
        }

    def accepts(self, answer: Any) -> bool:
        """Whether `answer` is a well-typed answer to this question (an enum answer must be one of the options)."""
        if self.type == "bool":
            return isinstance(answer, bool)
        if self.type == "enum":
            return isinstance(answer, str) and answer in self.options
        return isinstance(answer, str)

    def needs_photo(self, answer: Any) -> bool:
        # Compare type and value: JSON `1` must not count as `true` (bool is an int in Python).
        return any(type(value) is type(answer) and value == answer for value in self.photo_required_when)


@dataclass(frozen=True)
class Checklist:
    name: str
    applies_to: str  # CEL over `item`
    questions: tuple[Question, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checklist:
        return cls(
            name=data["name"],
            applies_to=data["applies_to"],
            questions=tuple(Question.from_dict(q) for q in data.get("questions") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "applies_to": self.applies_to,
            "questions": [q.to_dict() for q in self.questions],
        }


@dataclass(frozen=True)
class Checklists:
    """A merchant's checklists settings document, versioned like guidelines."""

    checklists: tuple[Checklist, ...] = ()
    version: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checklists:
        return cls(
            checklists=tuple(Checklist.from_dict(c) for c in data.get("checklists") or ()),
            version=int(data.get("version") or 1),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"checklists": [c.to_dict() for c in self.checklists], "version": self.version}

    @cached_property
    def skipped(self) -> tuple[int, ...]:
        """Indexes of the checklists whose `applies_to` is over the cost budget (stored before it existed): they
        never run, nor apply."""
        return over_budget([c.applies_to for c in self.checklists])


NO_CHECKLISTS = Checklists()


# ----- settings validation --------------------------------------------------------------------------------------
def check_compiles(checklists_dict: dict[str, Any]) -> None:
    """Raise ValidationFailed naming every broken part of a `PUT /v1/settings/checklists` body.

    An `applies_to` that does not compile, a question type other than bool/enum/text, an enum without options (or
    options on a non-enum question), a `photo_required_when` value that is not a possible answer, and a question key
    used twice within one checklist, and an `applies_to` too expensive to evaluate (its estimated worst-case cost
    over the budget, alone or with the ones before it). `loc` is relative to the body, e.g.
    `["checklists", 0, "applies_to"]`.
    """
    errors: list[dict[str, Any]] = []
    costed: list[tuple[list[str | int], str, str]] = []
    checklists = checklists_dict.get("checklists")
    if not isinstance(checklists, list):
        raise ValidationFailed.at(["checklists"], "checklists must be a list")
    for i, checklist in enumerate(checklists):
        loc: list[str | int] = ["checklists", i]
        if not isinstance(checklist, dict):
            errors.append(_error(loc, "a checklist must be an object"))
            continue
        name = checklist.get("name")
        applies_errors = _applies_to_errors(loc, name, checklist.get("applies_to"))
        errors.extend(applies_errors)
        if not applies_errors:
            costed.append(([*loc, "applies_to"], str(name), checklist["applies_to"]))
        questions = checklist.get("questions")
        if not isinstance(questions, list):
            errors.append(_error([*loc, "questions"], f"checklist '{name}': questions must be a list"))
            continue
        seen: set[str] = set()
        for j, question in enumerate(questions):
            q_loc: list[str | int] = [*loc, "questions", j]
            if not isinstance(question, dict):
                errors.append(_error(q_loc, "a question must be an object"))
                continue
            errors.extend(_question_errors(q_loc, question))
            key = question.get("key")
            if isinstance(key, str):
                if key in seen:
                    errors.append(_error([*q_loc, "key"], f"checklist '{name}': question key '{key}' is used twice"))
                seen.add(key)
    errors.extend(cost_errors(costed, "checklist"))
    if errors:
        raise ValidationFailed(f"a checklist is not valid: {errors[0]['msg']}", errors)


def _applies_to_errors(loc: list[str | int], name: Any, applies_to: Any) -> list[dict[str, Any]]:
    if not isinstance(applies_to, str) or not applies_to.strip():
        return [_error([*loc, "applies_to"], f"checklist '{name}': applies_to must be a CEL expression")]
    try:
        _compiled(applies_to)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "does not compile"
        return [_error([*loc, "applies_to"], f"checklist '{name}': {first_line}")]
    return []


def _question_errors(loc: list[str | int], question: dict[str, Any]) -> list[dict[str, Any]]:
    key = question.get("key")
    if not isinstance(key, str) or not key:
        return [_error([*loc, "key"], "a question needs a key")]
    if not isinstance(question.get("label"), str) or not question["label"]:
        return [_error([*loc, "label"], f"question '{key}' needs a label")]
    qtype = question.get("type")
    if qtype not in QUESTION_TYPES:
        return [_error([*loc, "type"], f"question '{key}': type must be one of bool, enum, text")]
    options = question.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, str) and o for o in options):
        return [_error([*loc, "options"], f"question '{key}': options must be a list of strings")]
    if qtype == "enum" and not options:
        return [_error([*loc, "options"], f"question '{key}': an enum question needs options")]
    if qtype != "enum" and options:
        return [_error([*loc, "options"], f"question '{key}': only enum questions have options")]
    if len(set(options)) != len(options):
        return [_error([*loc, "options"], f"question '{key}': an option is listed twice")]
    photo_when = question.get("photo_required_when") or []
    if not isinstance(photo_when, list):
        return [_error([*loc, "photo_required_when"], f"question '{key}': photo_required_when must be a list")]
    probe = Question(key=key, label=question["label"], type=qtype, options=tuple(options))
    return [
        _error(
            [*loc, "photo_required_when", k],
            f"question '{key}': {json.dumps(value)} is not a possible answer ({_expected(probe)})",
        )
        for k, value in enumerate(photo_when)
        if not probe.accepts(value)
    ]


# ----- which questions an item gets ----------------------------------------------------------------------------
def questions_for(checklists: Checklists, item: dict[str, Any]) -> list[Question]:
    """The questions for `item` ({sku, tags, unit_price (float), quantity, reason}), in checklist order.

    Every checklist whose `applies_to` evaluates to true contributes; an expression that fails (missing data, wrong
    types), yields a non-bool or is over the cost budget does not apply. A key asked by two checklists is asked
    once, as the first asks it.
    """
    import cel  # lazy: see guidelines

    ctx = cel.Context(variables=bounded({"item": item}))
    merged: dict[str, Question] = {}
    skipped = checklists.skipped
    for idx, checklist in enumerate(checklists.checklists):
        if idx in skipped:
            continue
        try:
            applies = _compiled(checklist.applies_to).execute(ctx)
        except _CEL_RUNTIME_ERRORS:
            applies = False
        if applies is True:
            for question in checklist.questions:
                merged.setdefault(question.key, question)
    return list(merged.values())


# ----- inspection validation -----------------------------------------------------------------------------------
def validate_inspection(
    checklists: Checklists,
    items: Sequence[tuple[str, dict[str, Any]]],
    lines: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Errors of an inspection against the checklists, in line order, then question order; empty when it passes.

    `items` pairs each line_item_id of the return with its CEL item; `lines` are the request's `items` (index i is
    `["items", i, ...]` in `loc`). Each error is `{loc, msg, line_item_id, question}`. A required question needs an
    answer only when something was received (`received_quantity > 0`); an answer that is given must fit its
    question whatever the quantity. Extra check keys no question asks for are free-form and allowed. A line whose
    line_item_id is not in `items` is left to the caller (it is not this function's to report).
    """
    by_id = dict(items)
    questions_by_id: dict[str, list[Question]] = {}
    errors: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        line_item_id = line.get("line_item_id")
        if not isinstance(line_item_id, str) or line_item_id not in by_id:
            continue
        if line_item_id not in questions_by_id:
            questions_by_id[line_item_id] = questions_for(checklists, by_id[line_item_id])
        errors.extend(_line_errors(i, line_item_id, line, questions_by_id[line_item_id]))
    return errors


def _line_errors(
    i: int, line_item_id: str, line: dict[str, Any], questions: Iterable[Question]
) -> list[dict[str, Any]]:
    checks = line.get("checks")
    if not isinstance(checks, dict):
        checks = {}
    received = line.get("received_quantity")
    something_received = isinstance(received, int | float) and not isinstance(received, bool) and received > 0
    has_photos = bool(line.get("photos"))
    errors: list[dict[str, Any]] = []

    def add(loc_tail: list[str | int], question: Question, msg: str) -> None:
        errors.append(
            {"loc": ["items", i, *loc_tail], "msg": msg, "line_item_id": line_item_id, "question": question.key}
        )

    for q in questions:
        answer = checks.get(q.key)
        if _unanswered(q, answer):
            if q.required and something_received:
                add(["checks", q.key], q, f"'{q.key}' needs an answer: {q.label}")
            continue
        if not q.accepts(answer):
            add(["checks", q.key], q, f"'{q.key}' must be {_expected(q)}, not {json.dumps(answer)}")
        elif q.needs_photo(answer) and not has_photos:
            add(["photos"], q, f"'{q.key}' answered {json.dumps(answer)} needs at least one photo")
    return errors


def _unanswered(question: Question, answer: Any) -> bool:
    # A blank text (a serial number left empty) is no answer.
    return answer is None or (question.type == "text" and isinstance(answer, str) and not answer.strip())


def _expected(question: Question) -> str:
    if question.type == "bool":
        return "true or false"
    if question.type == "enum":
        return "one of " + ", ".join(question.options)
    return "text"


def _error(loc: list[str | int], msg: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg}
