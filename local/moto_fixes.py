"""Make moto's DynamoDB keep DynamoDB's isolation when several threads write at once (local mode and tests).

moto's TransactWriteItems deep-copies the table, applies the items one by one and, if one fails, puts the copy
back: a write another thread made meanwhile is undone, and a copy taken while another thread mutates the table
can fail with an unrelated error. Real DynamoDB isolates transactions and serializes writes per item. Our
workflows run in moto's Step Functions threads beside the API's, so writes are serialized here, with one lock.
Never used in deployed code.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.RLock()
_installed = False
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in WRITES:
            original = getattr(DynamoDBBackend, name)

            def serialized(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with _lock:
                    return __original(*args, **kwargs)

            setattr(DynamoDBBackend, name, functools.wraps(original)(serialized))
        _installed = True
