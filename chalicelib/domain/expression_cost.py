"""The worst-case cost of a CEL expression, estimated from its text before it ever runs (issue 13).

`common-expression-language` 0.10 evaluates in Rust without a cost limit, an AST or a way to interrupt it: a rule of
five nested `.all` over 60-element lists ran for minutes. So every guideline rule and checklist `applies_to` is
estimated here when it is saved or tried, and the inputs CEL sees are bounded (`bounded`) to the sizes the estimate
assumes. Together they bound the time any expression can take; there is no deadline at run time.

The estimate parses the expression (the CEL grammar, below) and walks it with, for every value, an upper bound of
its size (`Shape`: length of a list, map or string, and the shape of its elements). One unit is about one step of
the evaluator (0.2 to 0.4 us measured on the machine the tests run on):

- a literal, a variable, a field, an operator or a call: 1, plus its operands;
- a comprehension (`all`, `exists`, `exists_one`, `map`, `filter`): the range's size times its body's cost, and for
  `map` and `filter` half the square of the range's size times the cost of copying an element (the library copies
  the list it builds at every step, and copies lists deeply);
- copying a value (into a list or map literal, `+`): 1 per value it holds (deeply) and 1 per 200 characters;
- comparing, `contains` and the like: 1 per value compared and 1 per 1,000 characters; `in` on a list: its size
  times that;
- `matches`: the pattern's compile cost (`_regex_cost`; Unicode classes such as `\\w` compile into large automata,
  repetition counts multiply) plus 1 per 20 characters matched. A pattern that is not a literal is priced as if it
  were the worst pattern the input may hold, which exceeds the budget: patterns must be literals.

An expression this parser cannot read (CEL syntax the library accepts but this module does not know) is priced by its
length alone when it has no comprehension, and as over the budget when it has one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# ----- budgets and input bounds -----------------------------------------------------------------------------------
EXPRESSION_BUDGET = 50_000  # one rule or applies_to: about 10-20 ms
DOCUMENT_BUDGET = 200_000  # all rules of a guideline (all applies_to of the checklists) for one item: 40-80 ms

MAX_LIST = 50  # elements of any list CEL sees (the API takes 50 tags per item)
MAX_MAP = 100  # entries of any map (the API takes 100 checks per item)
MAX_STRING = 2000  # characters of any string (the API takes 2,000 per check answer)
MAX_DEPTH = 3  # nesting of lists and maps in a value; deeper values are dropped (null)

CHAR_UNIT = 1000  # characters compared or searched per unit
COPY_UNIT = 200  # characters copied per unit (plus a unit per value copied: see Shape.copy_cost)
SCAN_UNIT = 20  # characters a regex scans per unit
DYNAMIC_PATTERN = 10 * EXPRESSION_BUDGET  # a regex that is not a literal: over the budget
UNREADABLE = 10 * DOCUMENT_BUDGET  # nested too deeply to analyse, or a comprehension this module cannot read


@dataclass(frozen=True)
class Shape:
    """An upper bound of a value: `size` is the length of a string, list or map (1 for a scalar); `elem` bounds an
    element of a list (a key or value of a map); `fields` are the known fields of a map."""

    size: int = 1
    elem: Shape | None = None
    fields: tuple[tuple[str, Shape], ...] = ()
    keyed: bool = False  # a map: copying one costs about three times a list of its values (keys, hashing)

    def element(self) -> Shape:
        return self.elem if self.elem is not None else ANY

    def field(self, name: str) -> Shape:
        for key, shape in self.fields:
            if key == name:
                return shape
        return self.element()

    def weight(self, depth: int = 0) -> int:
        """How many scalars and characters the value holds at most."""
        if self.elem is None or depth > MAX_DEPTH:
            return self.size
        return self.size * max(1, self.elem.weight(depth + 1))

    def count(self, depth: int = 0) -> int:
        """How many values (lists, strings, scalars) the value holds at most, itself included."""
        if self.elem is None or depth > MAX_DEPTH:
            return 1
        return 1 + self.size * self.elem.count(depth + 1)

    def copy_cost(self) -> int:
        """Units to copy the value: the library copies lists deeply (a list of lists put into a new list, a `map`
        result growing by one element per step)."""
        return (self.count() + self.weight() // COPY_UNIT) * (3 if self.keyed else 1)


SCALAR = Shape()
STRING = Shape(MAX_STRING)  # any string of the input
ANY = Shape(MAX_STRING)  # unknown: `element()` of it is ANY again (elem None)
ITEM = Shape(
    MAX_MAP,
    STRING,
    (
        ("sku", STRING),
        ("tags", Shape(MAX_LIST, STRING)),
        ("unit_price", SCALAR),
        ("quantity", SCALAR),
        ("reason", STRING),
    ),
    keyed=True,
)
# answers are bool, number or text (schemas.CheckValue); lists and maps among them are dropped (`bounded`)
CHECKS = Shape(MAX_MAP, STRING, keyed=True)
ORDER = Shape(MAX_MAP, STRING, (("country", STRING), ("currency", STRING)), keyed=True)
VARIABLES = {"item": ITEM, "checks": CHECKS, "order": ORDER}


def _join(a: Shape, b: Shape) -> Shape:
    elem = None if a.elem is None or b.elem is None else _join(a.elem, b.elem)
    return Shape(max(a.size, b.size), elem, keyed=a.keyed or b.keyed)


# ----- bounding the inputs ----------------------------------------------------------------------------------------
def bounded(variables: dict[str, Any]) -> dict[str, Any]:
    """The CEL variables cut to the bounds the estimate assumes (the same values for every input the API takes).

    Lists keep their first MAX_LIST elements, maps their first MAX_MAP entries, strings their first MAX_STRING
    characters; answers in `checks` that are lists or maps (the API takes none) are left out, as missing answers.
    """
    out: dict[str, Any] = {}
    for name, value in variables.items():
        if name == "checks" and isinstance(value, dict):
            entries = value.items() if len(value) <= MAX_MAP else list(value.items())[:MAX_MAP]
            out[name] = {k: bound_value(v) for k, v in entries if _fits_key(k) and not is_container(v)}
        else:
            out[name] = bound_value(value)
    return out


def bound_value(value: Any, depth: int = MAX_DEPTH) -> Any:
    """One value cut to the bounds (the same object when it fits: the common case is cheap)."""
    kind = type(value)
    if kind is str:
        return value if len(value) <= MAX_STRING else value[:MAX_STRING]
    if kind is bool or kind is int or kind is float or value is None:
        return value
    if (
        kind is list
        and depth > 0
        and len(value) <= MAX_LIST
        and all(type(v) is str and len(v) <= MAX_STRING for v in value)
    ):
        return value  # tags
    if isinstance(value, str | bytes):
        return value[:MAX_STRING]
    if isinstance(value, list | tuple):
        return [bound_value(v, depth - 1) for v in value[:MAX_LIST]] if depth > 0 else None
    if isinstance(value, dict):
        entries = list(value.items())[:MAX_MAP]
        return {k: bound_value(v, depth - 1) for k, v in entries if _fits_key(k)} if depth > 0 else None
    return value


def is_container(value: Any) -> bool:
    """A list or map: answers in `checks` never are (the API takes bool, number, text); such an answer is left out."""
    return isinstance(value, list | tuple | dict)


def _fits_key(key: Any) -> bool:
    return not isinstance(key, str | bytes) or len(key) <= MAX_STRING


# ----- the estimate -----------------------------------------------------------------------------------------------
@lru_cache(maxsize=2048)
def estimate(expr: str) -> int:
    """The worst-case cost of evaluating `expr` over bounded inputs, in units (see the module docstring)."""
    try:
        tree = _Parser(_tokens(expr)).parse()
    except _Unreadable:
        return _fallback(expr)
    except RecursionError:
        return UNREADABLE
    try:
        return _Analysis().cost(tree, VARIABLES)[0]
    except RecursionError:
        return UNREADABLE


_MACRO_CALL = re.compile(r"\.\s*(all|exists|exists_one|existsOne|map|filter)\s*\(")


def _fallback(expr: str) -> int:
    return UNREADABLE if _MACRO_CALL.search(expr) else 4 * len(expr)


def over_budget(expressions: Sequence[str]) -> tuple[int, ...]:
    """Indexes of the expressions that do not run: each over EXPRESSION_BUDGET, and those that would take the
    running total of the others over DOCUMENT_BUDGET (in order: the first ones fit)."""
    skipped, total = [], 0
    for idx, expr in enumerate(expressions):
        cost = estimate(expr)
        if cost > EXPRESSION_BUDGET or total + cost > DOCUMENT_BUDGET:
            skipped.append(idx)
        else:
            total += cost
    return tuple(skipped)


def cost_errors(entries: Iterable[tuple[list[str | int], str, str]], what: str) -> list[dict[str, Any]]:
    """Problem `errors` for (loc, name, expression) entries over the budgets; `what` names them (`rule`)."""
    errors, total = [], 0
    for loc, name, expr in entries:
        cost = estimate(expr)
        if cost > EXPRESSION_BUDGET:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"{what} '{name}' is too expensive to evaluate: its estimated worst-case cost "
                    f"{_units(cost)} exceeds the budget of {EXPRESSION_BUDGET:,} (nested comprehensions multiply the "
                    "sizes of their lists; regex patterns must be literals)",
                }
            )
        elif total + cost > DOCUMENT_BUDGET:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"{what} '{name}' is too expensive together with the ones before it: their estimated "
                    f"worst-case cost {_units(total + cost)} exceeds the budget of {DOCUMENT_BUDGET:,} per item",
                }
            )
        else:
            total += cost
    return errors


def _units(cost: int) -> str:
    return f"{cost:,}" if cost < 10**12 else "beyond 10^12"


# ----- tokens -----------------------------------------------------------------------------------------------------
class _Unreadable(Exception):
    pass


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?
        (?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<num>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|[-+*/%!<>?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # str, num, ident, op, end
    text: str


def _tokens(expr: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise _Unreadable(expr[pos : pos + 10])
        kind = m.lastgroup or "ws"
        text = m.group(0)
        # `.5` is a number only where an operand starts; after an operand `.` selects a field
        if kind == "num" and text.startswith(".") and out and (out[-1].kind != "op" or out[-1].text in ")]}"):
            kind, text = "op", "."
        if kind != "ws":
            out.append(_Tok(kind, text))
        pos += len(text)
    out.append(_Tok("end", ""))
    return out


# ----- the syntax tree: tuples ------------------------------------------------------------------------------------
# ("lit", Shape) ("ident", name) ("select", operand, field) ("index", operand, index) ("list", items)
# ("map", [(key, value)]) ("op", operator, operands) ("call", name, target | None, args)
Node = tuple[Any, ...]

_RELATIONS = {"==", "!=", "<", "<=", ">", ">=", "in"}


class _Parser:
    """Recursive descent over the CEL grammar (cel-spec langdef.md), enough for what `cel.compile` accepts."""

    def __init__(self, tokens: list[_Tok]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.pos + offset, len(self.toks) - 1)]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.peek()
        if text is not None and tok.text != text:
            raise _Unreadable(f"expected {text}")
        self.pos += 1
        return tok

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok.kind in ("op", "ident") and tok.text in texts

    def parse(self) -> Node:
        node = self.expr()
        if self.peek().kind != "end":
            raise _Unreadable("trailing input")
        return node

    def expr(self) -> Node:
        cond = self.binary(0)
        if self.at("?"):
            self.take()
            yes = self.binary(0)
            self.take(":")
            return ("op", "?:", [cond, yes, self.expr()])
        return cond

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!=", "<", "<=", ">", ">=", "in"),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.at(*self._LEVELS[level]):
            op = self.take().text
            node = ("op", op, [node, self.binary(level + 1)])
        return node

    def unary(self) -> Node:
        if self.at("!", "-"):
            op = self.take().text
            return ("op", op, [self.unary()])
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.at("."):
                self.take()
                name = self.take()
                if name.kind != "ident":
                    raise _Unreadable("expected a field name")
                node = ("call", name.text, node, self.args(")")) if self.at("(") else ("select", node, name.text)
            elif self.at("["):
                self.take()
                index = self.expr()
                self.take("]")
                node = ("index", node, index)
            elif self.at("{"):
                raise _Unreadable("message construction")
            else:
                return node

    def args(self, close: str) -> list[Node]:
        self.take()  # the opening bracket
        items: list[Node] = []
        while not self.at(close):
            items.append(self.expr())
            if not self.at(","):
                break
            self.take()
        self.take(close)
        return items

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            return ("lit", SCALAR)
        if tok.kind == "str":
            self.take()
            return ("lit", Shape(max(1, len(tok.text))), _literal_text(tok.text))
        if tok.kind == "ident":
            self.take()
            if tok.text in ("true", "false", "null"):
                return ("lit", SCALAR)
            if self.at("("):
                return ("call", tok.text, None, self.args(")"))
            return ("ident", tok.text)
        if self.at("."):  # `.name`: the name in the root scope
            self.take()
            return self.primary()
        if self.at("("):
            self.take()
            node = self.expr()
            self.take(")")
            return node
        if self.at("["):
            return ("list", self.args("]"))
        if self.at("{"):
            self.take()
            entries: list[tuple[Node, Node]] = []
            while not self.at("}"):
                key = self.expr()
                self.take(":")
                entries.append((key, self.expr()))
                if not self.at(","):
                    break
                self.take()
            self.take("}")
            return ("map", entries)
        raise _Unreadable(f"unexpected {tok.text!r}")


def _literal_text(token: str) -> str | None:
    """The text of a string literal as a regex would see it, or None (bytes, escapes we do not decode)."""
    prefix = ""
    while token[0] in "rRbB":
        prefix += token[0].lower()
        token = token[1:]
    if "b" in prefix:
        return None
    quote = 3 if token[:3] in ("'''", '"""') else 1
    body = token[quote:-quote]
    if "r" in prefix:
        return body
    return body.replace("\\\\", "\\")  # `'\\d'` in CEL is the regex `\d`


# ----- the analysis -----------------------------------------------------------------------------------------------
_COMPREHENSIONS = {"all", "exists", "exists_one", "existsOne", "map", "filter"}
_STRING_TESTS = {"contains", "startsWith", "endsWith"}
_CONVERSIONS = {"int", "uint", "double", "string", "bytes", "bool", "dyn", "type", "timestamp", "duration"}


class _Analysis:
    def cost(self, node: Node, scope: dict[str, Shape]) -> tuple[int, Shape]:
        kind = node[0]
        if kind == "lit":
            return 1, node[1]
        if kind == "ident":
            return 1, scope.get(node[1], ANY)
        if kind == "select":
            cost, shape = self.cost(node[1], scope)
            return cost + 1, shape.field(node[2])
        if kind == "index":
            c1, s1 = self.cost(node[1], scope)
            c2, _ = self.cost(node[2], scope)
            return c1 + c2 + 1, s1.element()
        if kind == "list":
            total, elem = 1, None
            for item in node[1]:
                c, s = self.cost(item, scope)
                total += c + s.copy_cost()
                elem = s if elem is None else _join(elem, s)
            return total, Shape(max(1, len(node[1])), elem or SCALAR)
        if kind == "map":
            total, elem = 1, None
            for key, value in node[1]:
                ck, sk = self.cost(key, scope)
                cv, sv = self.cost(value, scope)
                total += ck + cv + sk.copy_cost() + sv.copy_cost()
                joined = _join(sk, sv)
                elem = joined if elem is None else _join(elem, joined)
            return total, Shape(max(1, len(node[1])), elem or SCALAR, keyed=True)
        if kind == "op":
            return self.operator(node[1], node[2], scope)
        return self.call(node[1], node[2], node[3], scope)

    def operator(self, op: str, operands: list[Node], scope: dict[str, Shape]) -> tuple[int, Shape]:
        costs, shapes = zip(*(self.cost(o, scope) for o in operands), strict=True)
        base = 1 + sum(costs)
        if op == "?:":
            return base, _join(shapes[1], shapes[2])
        if op == "+":
            a, b = shapes
            work = a.copy_cost() + b.copy_cost()
            elem = None if a.elem is None and b.elem is None else _join(a.element(), b.element())
            return base + work, Shape(a.size + b.size, elem)
        if op == "in":
            needle, haystack = shapes
            return base + haystack.size * _compare_cost(needle, haystack.element()), SCALAR
        if op in _RELATIONS:
            return base + _compare_cost(shapes[0], shapes[1]), SCALAR
        return base, SCALAR  # ! - && || * / %

    def call(self, name: str, target: Node | None, args: list[Node], scope: dict[str, Shape]) -> tuple[int, Shape]:
        if name == "has" and target is None and len(args) == 1:
            return 1 + self.cost(args[0], scope)[0], SCALAR
        if target is not None and name in _COMPREHENSIONS and 2 <= len(args) <= 3 and args[0][0] == "ident":
            return self.comprehension(name, target, args[0][1], args[1:], scope)
        operands = ([target] if target is not None else []) + args
        measured = [self.cost(o, scope) for o in operands]
        base = 1 + sum(c for c, _ in measured)
        shapes = [s for _, s in measured]
        if name == "size":
            return base, SCALAR
        if name in _STRING_TESTS:
            return base + sum(s.weight() for s in shapes) // CHAR_UNIT, SCALAR
        if name == "matches" and len(operands) == 2:
            pattern = operands[1]
            text = pattern[2] if pattern[0] == "lit" and len(pattern) > 2 else None
            compile_cost = _regex_cost(text) if text is not None else DYNAMIC_PATTERN
            return base + compile_cost + shapes[0].weight() // SCAN_UNIT, SCALAR
        if name in _CONVERSIONS:
            work = sum(s.weight() for s in shapes) // CHAR_UNIT
            if name == "dyn":
                return base + work, shapes[0] if shapes else ANY
            if name in ("string", "bytes"):
                return base + work, Shape(max([32, *(s.weight() for s in shapes)]))
            return base + work, SCALAR
        # anything else (timestamp accessors, functions the library may add): its operands, read once
        return base + sum(s.weight() for s in shapes) // CHAR_UNIT, ANY

    def comprehension(
        self, name: str, target: Node, var: str, body: list[Node], scope: dict[str, Shape]
    ) -> tuple[int, Shape]:
        range_cost, range_shape = self.cost(target, scope)
        n = range_shape.size
        inner = {**scope, var: range_shape.element()}
        measured = [self.cost(b, inner) for b in body]
        per_step = 1 + sum(c for c, _ in measured)
        cost = range_cost + 1 + n * per_step
        # `map` and `filter` copy the list they build at every step: n * n / 2 element copies
        if name == "map":
            return cost + n * n // 2 * measured[-1][1].copy_cost(), Shape(n, measured[-1][1])
        if name == "filter":
            return cost + n * n // 2 * range_shape.element().copy_cost(), Shape(n, range_shape.element())
        return cost, SCALAR


def _compare_cost(a: Shape, b: Shape) -> int:
    return min(a.count(), b.count()) + min(a.weight(), b.weight()) // CHAR_UNIT


# ----- regular expressions ----------------------------------------------------------------------------------------
# What one atom costs to compile, in units: Unicode classes build large automata (`\\w+` took about 1.3 ms per call
# with the library, `\\w{100}` 12 ms); a case-insensitive flag and `.` a little; ASCII sets and literals almost nothing.
_HEAVY_ESCAPES = {
    "w": 5000,
    "W": 5000,
    "p": 5000,
    "P": 5000,
    "b": 5000,
    "B": 5000,
    "d": 300,
    "D": 300,
    "s": 300,
    "S": 300,
}
_DOT = 300
_FLAG = 1000
_REGEX_BASE = 50
_COUNT = re.compile(r"\{(\d+)(?:,(\d*))?\}")


def _regex_cost(pattern: str) -> int:
    """Compile cost of a literal pattern: atoms weighted as above, repetition counts multiplying what they repeat."""
    stack: list[int] = [0]  # cost of the group being read
    last = 0  # cost of the last atom (or group), which a quantifier repeats
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            last = _HEAVY_ESCAPES.get(nxt, 1)
            i += 2
            if nxt in "pP" and i < len(pattern) and pattern[i] == "{":
                close = pattern.find("}", i)
                i = close + 1 if close > 0 else len(pattern)
            stack[-1] += last
            continue
        if ch == "[":
            close, j = -1, i + 1
            while j < len(pattern):
                if pattern[j] == "\\":
                    j += 2
                    continue
                if pattern[j] == "]" and j > i + 1:
                    close = j
                    break
                j += 1
            body = pattern[i + 1 : close if close > 0 else len(pattern)]
            last = 1 + len(body) + sum(_HEAVY_ESCAPES.get(c, 0) for c in re.findall(r"\\(.)", body))
            if body.startswith("^") or "[:" in body:
                last += _DOT
            stack[-1] += last
            i = close + 1 if close > 0 else len(pattern)
            continue
        if ch == "(":
            if pattern.startswith("(?", i):
                flags = pattern[i + 2 : max(i + 2, pattern.find(")", i))].split(":", maxsplit=1)[0]
                if "i" in flags:
                    stack[-1] += _FLAG
            stack.append(0)
            last = 0
            i += 1
            continue
        if ch == ")" and len(stack) > 1:
            last = stack.pop()
            stack[-1] += last
            i += 1
            continue
        m = _COUNT.match(pattern, i)
        if m is not None:
            high = m.group(2)
            times = max(int(m.group(1)), int(high) if high else 0)
            stack[-1] += last * max(0, times - 1)
            last *= max(1, times)
            i = m.end()
            continue
        if ch == ".":
            last = _DOT
        elif ch in "*+?|^$":
            last = last if ch in "*+?" else 0
            i += 1
            continue
        else:
            last = 1
        stack[-1] += last
        i += 1
    return _REGEX_BASE + len(pattern) + sum(stack)
