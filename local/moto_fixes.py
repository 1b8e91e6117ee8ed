"""Make moto's DynamoDB keep DynamoDB's isolation when several threads write at once (local mode and tests).

moto's TransactWriteItems deep-copies the table, applies the items one by one and, if one fails, puts the copy
back: a write another thread made meanwhile is undone, and a copy taken while another thread mutates the table
can fail with an unrelated error. Real DynamoDB isolates transactions and serializes writes per item. Our
workflows run in moto's Step Functions threads beside the API's, so writes (and reads, which mutate moto's table
too) are serialized here, with one lock.
Never used in deployed code.

The table's stream (the outbox's transport): moto's TransactWriteItems deep-copies the stream's records along with the
table, every time, which grows with every write ever made. Stream records are never changed once written, so the copy
shares them (a copy of the list only): the same rollback, at a fraction of the cost. `no_writes()` lets a reader of
the stream (local/outbox.py) see no transaction half applied.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

_lock = threading.RLock()
_installed = False
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")
#: Reads too: moto's GetItem of a missing item in a table with a sort key inserts an empty partition into the
#: table's items (a defaultdict), which breaks whatever iterates over them in another thread meanwhile (the copy a
#: TransactWriteItems takes, an index Query: "dictionary changed size during iteration"). BatchGetItem and
#: TransactGetItems read through get_item.
READS = ("get_item", "query", "scan")


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        from moto.dynamodb.models import DynamoDBBackend

        for name in WRITES + READS:
            original = getattr(DynamoDBBackend, name)

            def serialized(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with _lock:
                    return __original(*args, **kwargs)

            setattr(DynamoDBBackend, name, functools.wraps(original)(serialized))
        _share_stream_records()
        _installed = True


class _StreamRecords(list):  # type: ignore[type-arg]
    """A stream shard's records: a deep copy of the table copies the list, not the (immutable) records."""

    def __deepcopy__(self, memo: dict[int, Any]) -> _StreamRecords:
        return _StreamRecords(self)


def _share_stream_records() -> None:
    from moto.dynamodb.models.table import StreamShard

    original_init = StreamShard.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.items = _StreamRecords(self.items)

    StreamShard.__init__ = functools.wraps(original_init)(init)  # type: ignore[method-assign]


@contextlib.contextmanager
def no_writes() -> Iterator[None]:
    """Hold every DynamoDB write of the emulation (the same lock as above) for the duration of the block."""
    with _lock:
        yield
