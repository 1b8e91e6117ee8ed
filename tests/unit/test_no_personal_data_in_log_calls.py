"""No log call passes a customer's personal data: no field named for it, no value read from it.

The e2e log scan (tests/e2e/test_lifecycle_http.py, test_no_personal_data_in_any_log_line) sees what one lifecycle
logs; this reads every log call in the source, also on paths the lifecycle does not take (errors, other carriers,
shops). Log ids and counts; a field or value named email, name, address, phone, street or comment is refused.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from tests.unit.test_logging_fields import LEVELS, LOGGER_NAMES, ROOT, _literal_keys, _python_files, _receiver, _scopes

#: Words that name a customer's personal data, as a part of an identifier (`customer_email`, `shipping_address`).
PERSONAL = frozenset({"email", "emails", "address", "addresses", "phone", "street", "comment", "comments"})
#: A person's name. A bare `name` value is a carrier's or a rule's (`carrier=self.name`), so values are refused
#: for these only; a field *named* `name` (or `customer_name`) is refused whatever it carries.
PERSON_NAMES = frozenset({"first_name", "last_name", "full_name", "customer_name", "recipient_name"})


def _personal(identifier: str, *, field: bool) -> bool:
    parts = set(identifier.lower().split("_"))
    return bool(parts & PERSONAL) or identifier.lower() in PERSON_NAMES or (field and "name" in parts)


def _identifiers(node: ast.AST) -> Iterator[str]:
    """The names and attributes a value reads (`order.email` -> order, email)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.Attribute):
            yield sub.attr
        elif (
            isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) and isinstance(sub.slice.value, str)
        ):
            yield sub.slice.value  # order["email"]


def personal_data_in(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: what` for every log call that names or reads a customer's personal data."""
    tree = ast.parse(source, filename)
    found: set[str] = set()
    for scope_node, scope in _scopes(tree):
        for call in ast.walk(scope_node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            if call.func.attr not in LEVELS or _receiver(call.func) not in LOGGER_NAMES:
                continue
            values: list[ast.expr] = list(call.args)  # the message, f-strings and %-arguments included
            for kw in call.keywords:
                if kw.arg is None or kw.arg == "extra":  # **fields, extra={...}
                    keys = list(_literal_keys(kw.value, scope))
                    node = scope.get(kw.value.id, kw.value) if isinstance(kw.value, ast.Name) else kw.value
                    if isinstance(node, ast.Dict):
                        values += [v for v in node.values if v is not None]
                    elif isinstance(node, ast.Call):
                        values += [k.value for k in node.keywords]
                else:
                    keys = [(kw.arg, kw.value.lineno)]
                    values.append(kw.value)
                found.update(f"{filename}:{line}: field {key}" for key, line in keys if _personal(key, field=True))
            for value in values:
                found.update(
                    f"{filename}:{value.lineno}: value {ident}"
                    for ident in _identifiers(value)
                    if _personal(ident, field=False)
                )
    return sorted(found)


def test_no_log_call_in_the_code_names_or_reads_personal_data() -> None:
    problems: list[str] = []
    files = list(_python_files())
    assert len(files) > 100  # the walk found the code base
    for path in files:
        problems += personal_data_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    assert problems == [], "log calls with personal data (log ids and counts instead):\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        'logger.info("session opened", email=email)',
        'logger.info("session opened", customer=order.email)',
        'logger.info("label made", to=order["shipping_address"])',
        'logger.warning("x", extra={"phone": p})',
        'def f():\n    fields = dict(street=s)\n    logger.error("x", **fields)',
        'def f():\n    fields = {"who": ret.customer_email}\n    logger.error("x", extra=fields)',
        'logger.info(f"refund for {order.email}")',
        'logger.info("comment: %s", item.comment)',
        'log.info("x", customer_name=n)',
        'self.logger.info("x", recipient=addr.last_name)',
    ],
)
def test_the_check_finds_personal_data(source: str) -> None:
    assert personal_data_in(source)


@pytest.mark.parametrize(
    "source",
    [
        'logger.info("carrier label created", carrier=self.name, return_id=request.return_id)',
        'logger.info("x", merchant_id=m.id, items=len(order.items))',
        'logger.info("emails sent", count=2)',
        "other.info(email=e)",
    ],
)
def test_the_check_passes_ids_and_counts(source: str) -> None:
    assert personal_data_in(source) == []
