"""No log call in deployed or local code names a structured field like a LogRecord attribute.

`logger.info("...", created=True)` raises KeyError ("Attempt to overwrite 'created' in LogRecord") from inside the
logging module, but only when the level lets the line through: at WARNING (the level the suite once ran at) the call
returned early, and a real Shopify order webhook answered 500 in production's INFO. This check reads every logging
call in the source, so it holds whatever level a test runs at; SafeLogger is the second line of defence.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.observability import RESERVED_LOG_FIELDS, SafeLogger, safe_fields

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("app.py", "chalicelib", "functions", "local", "infrastructure", "bench")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical", "log"})
#: Receivers that are loggers in this code base (`logger`, `log`, `self.logger`, `LOGGER`).
LOGGER_NAMES = frozenset({"logger", "log", "LOGGER", "_logger", "_log"})


def _python_files() -> Iterator[Path]:
    for name in SOURCES:
        path = ROOT / name
        if path.is_file():
            yield path
        else:
            yield from (p for p in path.rglob("*.py") if not {"node_modules", "cdk.out", "build"} & set(p.parts))


def _receiver(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        value = func.value
        if isinstance(value, ast.Name):
            return value.id
        if isinstance(value, ast.Attribute):
            return value.attr
    return None


def _literal_keys(node: ast.expr | None, scope: dict[str, ast.expr]) -> Iterator[tuple[str, int]]:
    """Constant string keys of a dict literal, `dict(k=...)`, or a name bound to one in the same function."""
    if isinstance(node, ast.Name) and node.id in scope:
        node = scope[node.id]
    if isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                yield from _literal_keys(value, scope)
            elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield key.value, key.lineno
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        for kw in node.keywords:
            if kw.arg is not None:
                yield kw.arg, kw.value.lineno


def _scopes(tree: ast.AST) -> Iterator[tuple[ast.AST, dict[str, ast.expr]]]:
    """Each function (and the module) with its simple `name = {...}` assignments."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef):
            scope: dict[str, ast.expr] = {}
            for sub in ast.walk(node):
                if isinstance(sub, ast.Assign) and len(sub.targets) == 1 and isinstance(sub.targets[0], ast.Name):
                    scope[sub.targets[0].id] = sub.value
            yield node, scope


def reserved_fields_in(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: field` for every log call that passes a reserved field name."""
    tree = ast.parse(source, filename)
    found: set[str] = set()
    for scope_node, scope in _scopes(tree):
        for call in ast.walk(scope_node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if call.func.attr not in LEVELS or _receiver(call.func) not in LOGGER_NAMES:
                continue
            for kw in call.keywords:
                if kw.arg is None or kw.arg == "extra":  # **fields, extra={...}
                    keys = list(_literal_keys(kw.value, scope))
                else:
                    keys = [(kw.arg, kw.value.lineno)]
                found.update(f"{filename}:{line}: {key}" for key, line in keys if key in RESERVED_LOG_FIELDS)
    return sorted(found)


def test_no_log_call_in_the_code_uses_a_reserved_field_name() -> None:
    problems: list[str] = []
    files = list(_python_files())
    assert len(files) > 100  # the walk found the code base
    for path in files:
        problems += reserved_fields_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == [], "log fields named like LogRecord attributes (rename them):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        'logger.info("shop order taken", created=created)',
        'logger.warning("x", extra={"name": n})',
        'def f():\n    log = {"module": m}\n    logger.info("x", extra=log)',
        'def f():\n    fields = dict(filename=f)\n    logger.error("x", **fields)',
        'self.logger.info("x", msg="m")',
        'logger.info("x", extra={**base, "message": "m"})',
    ],
)
def test_the_check_finds_reserved_fields(source: str) -> None:
    assert reserved_fields_in(source)


@pytest.mark.parametrize(
    "source",
    ['logger.info("x", outcome="created", items=2)', 'logger.info("x", extra={"error": e})', "other.info(created=1)"],
)
def test_the_check_passes_ordinary_fields(source: str) -> None:
    assert reserved_fields_in(source) == []


def test_safe_logger_keeps_a_reserved_field_under_another_name(capsys: pytest.CaptureFixture[str]) -> None:
    log = SafeLogger(service="logging-fields-test", level="INFO")
    log.info("shop order taken", created=True, extra={"module": "x", "items": 2})
    out = capsys.readouterr().out
    assert '"created_field":true' in out.replace(" ", "")
    assert '"module_field":"x"' in out.replace(" ", "")
    assert '"location":"test_safe_logger_keeps_a_reserved_field_under_another_name:' in out  # the caller, not us


def test_the_reserved_names_are_the_ones_logging_refuses() -> None:
    std = logging.getLogger("logging-fields-test-std")
    for name in sorted(RESERVED_LOG_FIELDS - {"taskName"}):  # taskName is reserved from Python 3.12 on
        with pytest.raises(KeyError):
            std.makeRecord("n", logging.INFO, "f", 1, "m", None, None, extra={name: 1})
    assert safe_fields({"created": 1, "items": 2}) == {"created_field": 1, "items": 2}
