"""Bench only: two shortcuts in moto's DynamoDB that change its speed, not its answers, so that a bench over 100,000
returns measures our code rather than the emulator.

1. Responses of item operations are `json.dumps` of moto's result instead of moto 5.2's generic serializer, which
   walks the botocore model member by member: an export of 2,000 returns spent 30 of its 43 s there. DynamoDB speaks
   JSON 1.0 and moto already holds these results in wire shape (AttributeValue maps), so the bodies are equal.
2. A Query on the table itself (not an index) looks at the queried partition only. moto walks every item of the
   table for each Query page, which makes paging through one partition quadratic (5,000 returns: 0.8 s a page).

tests/unit/test_bench_tools.py runs the same small export with and without them and checks every answer is equal.
Never used by tests of the product or by local mode.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

#: The item operations whose results are plain JSON (no datetimes, no binary blobs in our items).
OPERATIONS = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)
_original: Any = None
_original_query: Any = None


def install() -> None:
    """Idempotent; `uninstall` restores moto's serializer."""
    global _original, _original_query
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.table import Table

    if _original is not None:
        return
    _original = ActionResult.execute_result
    _original_query = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's positional order: range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
        # projection_expressions, index_name, ...
        if len(args) < 7 or args[6] is not None or hash_key is None or not self.range_key_attr:
            return _original_query(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())  # .get: never insert into moto's defaultdict
        start, forward = args[3], args[4]
        if start is not None:
            after = start.get(self.range_key_attr, {}).get("S")
            if after is None or any(it.range_key.type != "S" for it in partition):
                return _original_query(self, hash_key, *args, **kwargs)
            # what moto's own loop would skip item by item: everything up to the start key in the query's order
            partition = [
                it for it in partition if (it.range_key.value > after if forward else it.range_key.value < after)
            ]
            args = (*args[:3], None, *args[4:])
        self.all_items = lambda: partition  # the instance attribute hides the method for this call only
        try:
            return _original_query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]

    def execute_result(self: Any, context: Any) -> Any:
        if context.service_model.service_name == "dynamodb" and context.operation_model.name in OPERATIONS:
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(self.result)
        return _original(self, context)

    ActionResult.execute_result = execute_result  # type: ignore[method-assign]


def uninstall() -> None:
    global _original, _original_query
    from moto.core.responses import ActionResult
    from moto.dynamodb.models.table import Table

    if _original is not None:
        ActionResult.execute_result = _original  # type: ignore[method-assign]
        Table.query = _original_query  # type: ignore[method-assign]
        _original = _original_query = None


@contextlib.contextmanager
def installed() -> Iterator[None]:
    """The shortcuts for the duration of the block."""
    install()
    try:
        yield
    finally:
        uninstall()
