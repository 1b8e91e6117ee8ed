"""CEL expressions over the cost budget (issue 13): shared by the unit, API and probe tests."""

from __future__ import annotations

SIXTY = "[" + ", ".join(str(i) for i in range(60)) + "]"


def nested(macro: str, body: str, over: str = SIXTY, depth: int = 5) -> str:
    expr = body
    for var in reversed("abcdefgh"[:depth]):
        expr = f"{over}.{macro}({var}, {expr})"
    return expr


# Five nested comprehensions over 60-element lists: the contract's example of a rule over the budget. The
# short-circuiting ones (`exists(... true)`, `all(... false)`) finish at once when run, the others take minutes.
EVIL = {
    "all": nested("all", "a + b + c + d + e >= 0"),
    "exists": nested("exists", "true"),
    "exists_one": nested("exists_one", "a == e"),
    "map": nested("map", "a") + ".size() > 0",
    "filter": nested("filter", "true") + ".size() > 0",
    "all false": nested("all", "false"),
    "item tags": nested("exists", "a == e", over="item.tags"),
}
