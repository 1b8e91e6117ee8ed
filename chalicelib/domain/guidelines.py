"""Merchant guidelines: ordered CEL rules that grade an item and pick its disposition.

`common-expression-language` is imported lazily (about 0.2 s): only where rules are compiled or run.

The library has no cost limit and cannot be interrupted, so a rule's worst-case cost is estimated before it runs
(chalicelib/domain/expression_cost.py): a rule over the budget is refused when saved or tried (`check_rules`), and
one stored before the estimate existed never runs (`Guideline.skipped`: it does not match). The variables are cut to
the sizes the estimate assumes before every evaluation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.expression_cost import MAX_STRING, bound_value, bounded, cost_errors, is_container, over_budget
from chalicelib.domain.returns import Disposition, Grade


@dataclass(frozen=True)
class Rule:
    name: str
    when: str
    grade: Grade
    disposition: Disposition
    clarify: bool = False
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Guideline:
    rules: tuple[Rule, ...]
    default_grade: Grade
    default_disposition: Disposition
    feedback_sla_hours: int = 72
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Guideline:
        return cls(
            rules=tuple(
                Rule(
                    name=r["name"],
                    when=r["when"],
                    grade=Grade(r["grade"]),
                    disposition=Disposition(r["disposition"]),
                    clarify=bool(r.get("clarify", False)),
                    steps=tuple(r.get("steps") or ()),
                )
                for r in data.get("rules", [])
            ),
            default_grade=Grade(data["default"]["grade"]),
            default_disposition=Disposition(data["default"]["disposition"]),
            feedback_sla_hours=int(data.get("feedback_sla_hours") or 72),
            version=int(data.get("version") or 1),
        )

    @cached_property
    def expressions(self) -> tuple[str, ...]:
        return tuple(r.when for r in self.rules)

    @cached_property
    def skipped(self) -> tuple[int, ...]:
        """Indexes of the rules over the cost budget (stored before it existed): they never run, nor match."""
        return over_budget(self.expressions)

    @cached_property
    def runnable(self) -> tuple[str, ...]:
        """The expressions that run: a rule over the budget is `false`."""
        skipped = set(self.skipped)
        return tuple("false" if idx in skipped else expr for idx, expr in enumerate(self.expressions))

    @cached_property
    def plan(self) -> _Plan:
        """The compiled evaluation plan (CEL compiled once per expression, reused for every item)."""
        return _plan(self.runnable)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "name": r.name,
                    "when": r.when,
                    "grade": r.grade.value,
                    "disposition": r.disposition.value,
                    "clarify": r.clarify,
                    "steps": list(r.steps),
                }
                for r in self.rules
            ],
            "default": {"grade": self.default_grade.value, "disposition": self.default_disposition.value},
            "feedback_sla_hours": self.feedback_sla_hours,
            "version": self.version,
        }


DEFAULT_GUIDELINE = Guideline(rules=(), default_grade=Grade.A, default_disposition=Disposition.RESTOCK)


@lru_cache(maxsize=1024)
def _compiled(expr: str) -> Any:
    import cel  # lazy: see module docstring

    return cel.compile(expr)


def _compile_errors(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    errors = []
    for idx, rule in enumerate(rules):
        try:
            _compiled(rule["when"])
        except (ValueError, RuntimeError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else "does not compile"
            errors.append({"loc": ["rules", idx, "when"], "msg": f"rule '{rule['name']}': {first_line}"})
    return errors


def check_compiles(rules: list[dict[str, Any]]) -> None:
    """Raise ValidationFailed naming every rule whose `when` does not compile."""
    errors = _compile_errors(rules)
    if errors:
        raise ValidationFailed("a guideline rule does not compile", errors)


def check_rules(rules: list[dict[str, Any]]) -> None:
    """Raise ValidationFailed naming every rule whose `when` does not compile or is too expensive to evaluate
    (its estimated worst-case cost over the budget, alone or with the rules before it)."""
    errors = _compile_errors(rules)
    if errors:
        raise ValidationFailed("a guideline rule does not compile", errors)
    errors = cost_errors(((["rules", idx, "when"], r["name"], r["when"]) for idx, r in enumerate(rules)), "rule")
    if errors:
        raise ValidationFailed(f"a guideline rule is too expensive: {errors[0]['msg']}", errors)


@dataclass(frozen=True)
class Classification:
    grade: Grade
    disposition: Disposition
    clarify: bool
    rule: dict[str, Any]  # {"name", "index"}; index -1 for the default
    steps: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "grade": self.grade.value,
            "disposition": self.disposition.value,
            "clarify": self.clarify,
            "rule": self.rule,
            "steps": list(self.steps),
        }


_VARS = ("item", "checks", "order")
_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")
_FIELD = re.compile(r"(?<![.\w])(item|checks|order)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE = re.compile(r"(?<![.\w])(item|checks|order)\b")
_UNSAFE = re.compile(r"\bhas\s*\(|__|\b[rRbB]['\"]|'''|\"\"\"")


@dataclass(frozen=True)
class _Plan:
    """How a guideline's rules are evaluated.

    Converting Python values into CEL values dominates the cost (about 3 us per map key with
    common-expression-language 0.10; evaluating a compiled rule takes under 1 us). So where every rule only
    selects fields (`checks.damaged`, `item.unit_price`), the rules are compiled with each field as its own
    scalar variable (`checks__damaged`) and CEL gets just those scalars: a missing answer is an undeclared
    variable, an error, so the rule does not match - as with a missing map key. Otherwise (a whole map used,
    `has()`, raw strings) the maps are passed, restricted to the fields the rules name where that is known.
    """

    flat: bool
    programs: tuple[Any, ...]
    fields: tuple[tuple[str, str], ...]  # flat mode: (variable, field) pairs to hand over
    restrict: dict[str, frozenset[str] | None]  # map mode: fields per variable (None: all)

    @cached_property
    def names(self) -> tuple[tuple[str, str, str], ...]:
        return tuple((var, name, f"{var}__{name}") for var, name in self.fields)


def _code_segments(expr: str) -> list[tuple[bool, str]]:
    """(is_code, text) pieces: string literals are never rewritten or inspected."""
    out, pos = [], 0
    for m in _STRING.finditer(expr):
        out.append((True, expr[pos : m.start()]))
        out.append((False, m.group(0)))
        pos = m.end()
    out.append((True, expr[pos:]))
    return out


def _flatten(expr: str) -> tuple[str, set[tuple[str, str]]] | None:
    """The expression with `var.field` as `var__field`, and the pairs used; None if that is not safe."""
    if _UNSAFE.search(expr):
        return None
    pieces, fields = [], set()
    for is_code, segment in _code_segments(expr):
        if not is_code:
            pieces.append(segment)
            continue
        if _WHOLE.search(_FIELD.sub("", segment)):
            return None  # a variable used as a whole (`size(checks)`, `checks["x"]`)
        fields.update(_FIELD.findall(segment))
        pieces.append(_FIELD.sub(lambda m: f"{m.group(1)}__{m.group(2)}", segment))
    return "".join(pieces), fields


@lru_cache(maxsize=256)
def _plan(expressions: tuple[str, ...], flatten: bool = True) -> _Plan:
    flattened = [_flatten(e) for e in expressions] if flatten else [None]
    if all(f is not None for f in flattened):
        try:
            programs = tuple(_compiled(f[0]) for f in flattened if f is not None)
            fields = sorted({pair for f in flattened if f is not None for pair in f[1]})
            return _Plan(True, programs, tuple(fields), {})
        except (ValueError, RuntimeError):
            pass  # a rewrite CEL does not accept: evaluate the rules as written
    restrict: dict[str, set[str] | None] = {v: set() for v in _VARS}
    for expr in expressions:
        if _UNSAFE.search(expr):
            restrict = dict.fromkeys(_VARS)
            break
        for is_code, text in _code_segments(expr):
            if not is_code:
                continue
            for var, name in _FIELD.findall(text):
                known = restrict[var]
                if known is not None:
                    known.add(name)
            for var in _WHOLE.findall(_FIELD.sub("", text)):
                restrict[var] = None
    return _Plan(
        False,
        tuple(_compiled(e) for e in expressions),
        (),
        {k: (frozenset(v) if v is not None else None) for k, v in restrict.items()},
    )


def _variables(plan: _Plan, data: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The CEL variables of `plan`, cut to the bounds the cost estimate assumes (expression_cost.bounded)."""
    if plan.flat:
        scalars: dict[str, Any] = {}
        for var, name, flat_name in plan.names:
            values = data[var]
            if name not in values:
                continue
            value = values[name]
            kind = type(value)  # the common scalars inline: this runs for every field of every item
            if kind is bool or kind is float or kind is int or (kind is str and len(value) <= MAX_STRING):
                scalars[flat_name] = value
            elif var != "checks" or not is_container(value):
                scalars[flat_name] = bound_value(value)
        return scalars
    out: dict[str, Any] = {}
    for var in _VARS:
        fields = plan.restrict[var]
        out[var] = data[var] if fields is None else {k: v for k, v in data[var].items() if k in fields}
    return bounded(out)


def classify(
    guideline: Guideline,
    *,
    item: dict[str, Any],
    checks: dict[str, Any],
    order: dict[str, Any],
    flatten: bool = True,
) -> Classification:
    """First rule that evaluates to true wins; a rule failing on missing data, or over the cost budget, does not
    match. The variables are cut to the bounds of chalicelib/domain/expression_cost.py first."""
    import cel

    plan = guideline.plan if flatten else _plan(guideline.runnable, False)
    ctx = cel.Context(variables=_variables(plan, {"item": item, "checks": checks, "order": order}))
    for idx, (rule, program) in enumerate(zip(guideline.rules, plan.programs, strict=True)):
        try:
            matched = program.execute(ctx)
        except (KeyError, ValueError, TypeError, RuntimeError):
            matched = False
        if matched is True:
            return Classification(
                rule.grade, rule.disposition, rule.clarify, {"name": rule.name, "index": idx}, rule.steps
            )
    return Classification(
        guideline.default_grade, guideline.default_disposition, False, {"name": "default", "index": -1}
    )
