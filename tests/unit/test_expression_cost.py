"""The worst-case cost of guideline and checklist expressions, estimated before they run (issue 13, defect 2).

A rule of five nested comprehensions over 60-element lists ran for minutes inside the shared API Lambda. Rules are
now estimated when saved and when tried, and the inputs CEL sees are bounded, so no expression can run long.
"""

from __future__ import annotations

import pytest

from chalicelib import templates
from chalicelib.domain.checklists import Checklists, questions_for
from chalicelib.domain.checklists import check_compiles as check_checklists
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.expression_cost import DOCUMENT_BUDGET, EXPRESSION_BUDGET, bounded, estimate
from chalicelib.domain.guidelines import Guideline, check_rules, classify
from tests.support.expressions import EVIL, nested

ORDER = {"country": "DE", "currency": "EUR"}


def item(**kw: object) -> dict[str, object]:
    return {"sku": "S", "tags": [], "unit_price": 10.0, "quantity": 1, "reason": "too_small", **kw}


def guide(*whens: str) -> Guideline:
    return Guideline.from_dict(
        {
            "rules": [
                {"name": f"r{i}", "when": w, "grade": "C", "disposition": "dispose"} for i, w in enumerate(whens)
            ],
            "default": {"grade": "A", "disposition": "restock"},
        }
    )


@pytest.mark.parametrize("name", list(EVIL))
def test_five_nested_comprehensions_over_sixty_elements_are_over_the_budget(name: str) -> None:
    assert len(EVIL[name]) <= 2000  # what PUT /v1/settings/guidelines takes
    assert estimate(EVIL[name]) > EXPRESSION_BUDGET


@pytest.mark.parametrize("name", list(EVIL))
def test_saving_an_expensive_rule_is_refused_naming_the_rule(name: str) -> None:
    rules = [{"name": f"ok {i}", "when": "checks.damaged == true"} for i in range(3)]
    rules.append({"name": "evil", "when": EVIL[name]})
    with pytest.raises(ValidationFailed) as exc:
        check_rules(rules)
    assert exc.value.errors[0]["loc"] == ["rules", 3, "when"]
    assert "evil" in exc.value.errors[0]["msg"] and "too expensive" in exc.value.errors[0]["msg"]


def test_an_expensive_applies_to_is_refused_naming_the_checklist() -> None:
    question = {"key": "ok", "label": "OK?", "type": "bool"}
    doc = {
        "checklists": [
            {"name": "fine", "applies_to": "'apparel' in item.tags", "questions": [question]},
            {"name": "evil", "applies_to": EVIL["all"], "questions": [question]},
        ]
    }
    with pytest.raises(ValidationFailed) as exc:
        check_checklists(doc)
    assert [e["loc"] for e in exc.value.errors] == [["checklists", 1, "applies_to"]]
    assert "evil" in exc.value.errors[0]["msg"] and "too expensive" in exc.value.errors[0]["msg"]


GROWING = {
    # each map doubles every inner list or string: 2^25 elements or 2^31 characters from a short expression
    "doubling lists": "[[1, 2]]" + ".map(x, x + x)" * 24 + ".size() > 0",
    "doubling strings": "['ab']" + ".map(x, x + x)" * 30 + ".size() > 0",
    "three nested over sixty": nested("all", "true", depth=3),
    "map of a thousand": "[" + ", ".join(["1"] * 1000) + "].map(x, x).size() > 0",
    "unicode regex per tag": "item.tags.exists(t, t.matches('\\\\w{100}'))",
    "pattern from the data": "item.sku.matches(checks.pattern)",
}


@pytest.mark.parametrize("name", list(GROWING))
def test_lists_strings_and_regexes_that_grow_are_over_the_budget(name: str) -> None:
    assert estimate(GROWING[name]) > EXPRESSION_BUDGET


def _shipped_expressions() -> list[str]:
    out = []
    for name in templates.names():
        tpl = templates.load(name)
        out += [r["when"] for r in tpl["guidelines"]["rules"]]
        out += [c["applies_to"] for c in tpl["checklists"]["checklists"]]
    return out


ORDINARY = [
    *_shipped_expressions(),
    "true",
    "1 + 1",
    "checks.damaged == true",
    "'hygiene' in item.tags && checks.opened == true",
    "item.unit_price > 100.0 && order.country == 'CH'",
    "item.sku.startsWith('EL-')",
    "item.unit_price >= 50.0",
    "'apparel' in item.tags",
    "size(checks) > 2",
    "has(checks.x) && checks.x != 'none'",
    "item.tags.exists(t, t.startsWith('final-sale'))",
    "item.tags.all(t, t in ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'])",
    "item.tags.exists(t, t.contains('fragile') || t.endsWith('-glass'))",
    "item.tags.filter(t, t.startsWith('size-')).size() > 1",
    "item.tags.map(t, t + '!').exists(t, t == 'x!')",
    "item.tags.exists_one(t, t == 'outlet')",
    "item.sku.matches('^EL-[0-9]{4}$')",
    "item.sku.matches('(?i)^refurb')",
    "checks.serial.matches('^[A-Z0-9]{8,12}$') && item.unit_price >= 100.0",
    "item.tags.exists(t, t.matches('^EL-.*'))",
    "checks.exists(k, k.startsWith('defect_') && checks[k] == true)",
    "item.tags.exists(t, item.tags.exists(u, u != t && u.startsWith(t)))",
    "[1, 2, 3].map(x, x * 2).all(y, y > 0)",
    "item.quantity > 1 ? checks.all_units_ok == true : checks.ok == true",
    "order.currency in ['EUR', 'CHF', 'GBP'] && string(item.quantity) == '1'",
    "int(item.unit_price) % 2 == 0 && double(item.quantity) * item.unit_price > 500.0",
    "timestamp('2020-01-01T00:00:00Z') < timestamp('2030-01-01T00:00:00Z')",
    "{'a': 1, 'b': 2}[item.reason] == 1",
    "// a comment\n(checks.worn == true) || (checks.stains == r'perm\\d')",
    "!(checks.damaged == true) && -item.unit_price < 0.0 && 0x10 == 16 && 1u + 2u == 3u && .5 < 1.0",
    "b'abc' == b'abc' && '''multi\nline''' != \"x\"",
]


@pytest.mark.parametrize("expr", ORDINARY)
def test_ordinary_rules_stay_within_the_budget(expr: str) -> None:
    assert estimate(expr) <= EXPRESSION_BUDGET
    check_rules([{"name": "ordinary", "when": expr}])


def test_every_shipped_template_together_fits_the_guideline_budget() -> None:
    for name in templates.names():
        tpl = templates.load(name)
        assert sum(estimate(r["when"]) for r in tpl["guidelines"]["rules"]) <= DOCUMENT_BUDGET


def test_rules_that_together_exceed_the_budget_are_refused_at_the_first_one_over() -> None:
    rule = "item.tags.exists(t, t in [" + ", ".join(f"'t{i}'" for i in range(40)) + "])"
    per_rule = estimate(rule)
    assert per_rule <= EXPRESSION_BUDGET
    fitting = DOCUMENT_BUDGET // per_rule
    rules = [{"name": f"r{i}", "when": rule} for i in range(fitting + 2)]
    with pytest.raises(ValidationFailed) as exc:
        check_rules(rules)
    assert exc.value.errors[0]["loc"] == ["rules", fitting, "when"]
    check_rules(rules[:fitting])


def test_an_expression_nested_beyond_what_can_be_analysed_is_over_the_budget() -> None:
    assert estimate("!" * 5000 + "true") > EXPRESSION_BUDGET


# ----- stored rules over the budget (saved before the estimate existed) -------------------------------------------
def test_a_stored_rule_over_the_budget_does_not_match_at_classification() -> None:
    # Given a guideline stored before the estimate existed, its first rule over the budget (with no tags it would
    # be true at once: all over an empty list), then an ordinary rule
    g = guide(nested("all", "false", over="item.tags"), "checks.damaged == true")
    assert g.skipped == (0,)
    # Then the expensive rule never runs nor matches; the next one does
    c = classify(g, item=item(tags=[]), checks={"damaged": True}, order=ORDER)
    assert c.rule == {"name": "r1", "index": 1}
    assert classify(g, item=item(), checks={}, order=ORDER, flatten=False).rule["name"] == "default"


def test_a_stored_checklist_over_the_budget_does_not_apply() -> None:
    question = {"key": "q", "label": "Q", "type": "bool"}
    lists = Checklists.from_dict(
        {
            "checklists": [
                {"name": "evil", "applies_to": nested("all", "false", over="item.tags"), "questions": [question]},
                {"name": "all", "applies_to": "true", "questions": [{**question, "key": "r"}]},
            ]
        }
    )
    assert lists.skipped == (0,)
    assert [q.key for q in questions_for(lists, item(tags=[]))] == ["r"]


# ----- bounded inputs -----------------------------------------------------------------------------------------------
def test_the_inputs_cel_sees_are_bounded_as_the_estimate_assumes() -> None:
    # Given an item stored with more tags and longer strings than the API takes (imported before the limits)
    tags = [f"t{i}" for i in range(500)]
    big = item(tags=tags, sku="S" * 10_000)
    checks = {f"c{i}": "x" * 10_000 for i in range(500)}
    out = bounded({"item": big, "checks": checks, "order": ORDER})
    assert len(out["item"]["tags"]) == 50 and len(out["item"]["sku"]) == 2000
    assert len(out["checks"]) == 100 and all(len(v) == 2000 for v in out["checks"].values())
    assert out["order"] == ORDER
    # Then a rule sees only the bounded input: the 51st tag is beyond what is evaluated
    g = guide("'t49' in item.tags", "'t50' in item.tags")
    assert classify(g, item=big, checks={}, order=ORDER).rule["name"] == "r0"
    assert classify(guide("'t50' in item.tags"), item=big, checks={}, order=ORDER).rule["name"] == "default"
    assert classify(guide("size(item.tags) == 50"), item=big, checks={}, order=ORDER, flatten=False).rule["index"] == 0


def test_ordinary_inputs_pass_unchanged() -> None:
    it = item(tags=["a", "b"])
    checks = {"damaged": True, "stains": "none", "weight": 1.5, "n": 3}
    assert bounded({"item": it, "checks": checks, "order": ORDER}) == {"item": it, "checks": checks, "order": ORDER}
