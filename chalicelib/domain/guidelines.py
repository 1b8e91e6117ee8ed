"""Merchant guidelines: ordered CEL rules that grade an item and pick its disposition.

`common-expression-language` is imported lazily (about 0.2 s): only where rules are compiled or run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chalicelib.domain.errors import ValidationFailed
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


def check_compiles(rules: list[dict[str, Any]]) -> None:
    """Raise ValidationFailed naming every rule whose `when` does not compile."""
    errors = []
    for idx, rule in enumerate(rules):
        try:
            _compiled(rule["when"])
        except (ValueError, RuntimeError) as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else "does not compile"
            errors.append({"loc": ["rules", idx, "when"], "msg": f"rule '{rule['name']}': {first_line}"})
    if errors:
        raise ValidationFailed("a guideline rule does not compile", errors)


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


def classify(
    guideline: Guideline, *, item: dict[str, Any], checks: dict[str, Any], order: dict[str, Any]
) -> Classification:
    """First rule that evaluates to true wins; a rule failing on missing data does not match."""
    import cel

    ctx = cel.Context(variables={"item": item, "checks": checks, "order": order})
    for idx, rule in enumerate(guideline.rules):
        try:
            matched = _compiled(rule.when).execute(ctx)
        except (KeyError, ValueError, TypeError, RuntimeError):
            matched = False
        if matched is True:
            return Classification(
                rule.grade, rule.disposition, rule.clarify, {"name": rule.name, "index": idx}, rule.steps
            )
    return Classification(
        guideline.default_grade, guideline.default_disposition, False, {"name": "default", "index": -1}
    )
