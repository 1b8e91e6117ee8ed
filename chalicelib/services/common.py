"""Shared service plumbing: commit an aggregate (a unit of work), tenant checks, optimistic retries.

Committing also publishes: the repository writes each domain event with its timeline entry in the transaction of
the change, and the table's stream relays it to the bus (docs/adr/0005-transactional-outbox.md).
"""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.returns import Return


def commit(c: Container, ret: Return, **kwargs: Any) -> None:
    c.store.save_return(ret, **kwargs)


def check_tenant(ret: Return, *, merchant_id: str | None = None, warehouse_id: str | None = None) -> None:
    """Another tenant's return is indistinguishable from a missing one."""
    from chalicelib.domain.errors import NotFound

    if (merchant_id is not None and ret.merchant_id != merchant_id) or (
        warehouse_id is not None and ret.warehouse_id != warehouse_id
    ):
        raise NotFound(f"return '{ret.id}' not found")


def change_return(c: Container, return_id: str, change: Any, *, updates: Any = None, attempts: int = 5) -> Return:
    """Read, change, conditional write; a lost race reads again and re-applies the change.

    `change(ret)` mutates the aggregate and returns False when there is nothing to do (then nothing is written).
    `updates(ret)`, if given, returns extra updates for the same transaction (e.g. billing counters).
    """
    from chalicelib.domain.errors import ConcurrentModification

    for _attempt in range(attempts):
        ret = c.store.get_return(return_id)
        if change(ret) is False:
            return ret
        try:
            commit(c, ret, updates=tuple(updates(ret)) if updates else ())
        except ConcurrentModification:
            continue
        return ret
    raise ConcurrentModification(f"return {return_id} kept changing")
