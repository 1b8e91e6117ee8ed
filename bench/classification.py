"""Guideline classification cost: 1,000 items against a 50-rule guideline in CEL (compiled once, cached), side by
side in the same run with the same rules as plain Python lambdas (same first-match and missing-data semantics)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

RULES = 50
ITEMS = 1000
ROUNDS = 5
TAGS = ["apparel", "shoes", "electronics", "cosmetics", "outlet", "premium"]
COUNTRIES = ["DE", "AT", "CH", "FR", "GB"]


def rules() -> list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], bool]]]:
    """(name, CEL expression, equivalent Python predicate over item, checks, order)."""
    out: list[tuple[str, str, Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], bool]]] = []
    for i in range(RULES):
        q, tag, price, country = f"q{i % 10}", TAGS[i % len(TAGS)], float(20 + (i * 7) % 180), COUNTRIES[i % 5]
        kind = i % 3
        if kind == 0:
            expr = f"checks.{q} == true && item.unit_price > {price}"
            out.append((f"r{i}", expr, lambda it, ch, o, q=q, price=price: ch[q] is True and it["unit_price"] > price))
        elif kind == 1:
            expr = f"'{tag}' in item.tags && checks.{q} == 'heavy'"
            out.append((f"r{i}", expr, lambda it, ch, o, q=q, tag=tag: tag in it["tags"] and ch[q] == "heavy"))
        else:
            expr = f"order.country == '{country}' && item.quantity >= {1 + i % 4} && checks.{q} != false"
            out.append(
                (
                    f"r{i}",
                    expr,
                    lambda it, ch, o, q=q, c=country, n=1 + i % 4: (
                        o["country"] == c and it["quantity"] >= n and ch[q] is not False
                    ),
                )
            )
    return out


def samples(seed: int = 7) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    rnd = random.Random(seed)
    out = []
    for n in range(ITEMS):
        item = {
            "sku": f"SKU{n}",
            "tags": rnd.sample(TAGS, 2),
            "unit_price": round(rnd.uniform(5, 250), 2),
            "quantity": rnd.randint(1, 4),
            "reason": "too_small",
        }
        checks: dict[str, Any] = {}
        for k in range(10):
            if rnd.random() < 0.9:  # some answers missing: a rule failing on missing data does not match
                checks[f"q{k}"] = rnd.choice([False, False, False, "light", "heavy", True])
        out.append((item, checks, {"country": rnd.choice(COUNTRIES), "currency": "EUR"}))
    return out


def run() -> dict[str, Any]:
    from chalicelib.domain import guidelines as g

    spec = rules()
    guideline = g.Guideline.from_dict(
        {
            "rules": [{"name": n, "when": e, "grade": "B", "disposition": "refurbish"} for n, e, _ in spec],
            "default": {"grade": "A", "disposition": "restock"},
        }
    )
    data = samples()
    predicates = [(n, f) for n, _, f in spec]

    def cel_all() -> list[str]:
        return [g.classify(guideline, item=i, checks=c, order=o).rule["name"] for i, c, o in data]

    def cel_maps() -> list[str]:  # the rules evaluated as written, over (restricted) maps: for comparison
        return [g.classify(guideline, item=i, checks=c, order=o, flatten=False).rule["name"] for i, c, o in data]

    def python_all() -> list[str]:
        names = []
        for i, c, o in data:
            name = "default"
            for n, f in predicates:
                try:
                    if f(i, c, o):
                        name = n
                        break
                except (KeyError, TypeError):
                    continue
            names.append(name)
        return names

    g._compiled.cache_clear()
    assert cel_all() == python_all() == cel_maps(), "CEL and the Python lambdas disagree"  # warm-up, same answers
    compiled_after_warmup = g._compiled.cache_info()
    cel_times, py_times, map_times = [], [], []
    for _ in range(ROUNDS):  # interleaved: all see the same machine noise
        t = time.perf_counter()
        python_all()
        py_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        cel_all()
        cel_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        cel_maps()
        map_times.append(time.perf_counter() - t)
    info = g._compiled.cache_info()
    cel_us = statistics.median(cel_times) / ITEMS * 1e6
    py_us = statistics.median(py_times) / ITEMS * 1e6
    map_us = statistics.median(map_times) / ITEMS * 1e6
    matched = sum(1 for n in python_all() if n != "default")
    return {
        "items": ITEMS,
        "rules": RULES,
        "rounds": ROUNDS,
        "matched_a_rule": matched,
        "cel_us_per_item": round(cel_us, 2),
        "python_us_per_item": round(py_us, 2),
        "ratio": round(cel_us / py_us, 2),
        "cel_maps_us_per_item": round(map_us, 2),
        "flat": g._plan(tuple(r.when for r in guideline.rules)).flat,
        "compiled": compiled_after_warmup.currsize,
        "compiles_during_timing": info.misses - compiled_after_warmup.misses,
    }
