"""GSI4, the sweeper's index (chalicelib/domain/sweeping.py): sparse and keys only.

A record that must still reach a final state carries `gsi4pk` = `DUE#<kind>#<shard>` and `gsi4sk` =
`<due time>#<redrives>` (stored times sort as strings), written in the same write as the state it watches and removed
by the write that ends it. The sweeper Queries each shard for due keys before now (never a Scan), then reads each
record itself (the index is eventually consistent) and claims it with a conditional write on its due key.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import UpdateError

from chalicelib.adapters.dynamodb.keys import parse_stored, stored_time
from chalicelib.adapters.dynamodb.models import DueIndex, DueRecord
from chalicelib.domain.sweeping import Kind

#: Partitions of the index per kind (a hot partition takes about 1,000 writes a second; deliveries can be many).
SHARDS = 4
#: Due records read per Query page.
PAGE = 100


@dataclass(frozen=True)
class Due:
    kind: Kind
    pk: str
    sk: str
    due_sk: str  # the due key as read: the claim is conditional on it
    due_at: datetime
    redrives: int


def due_keys(kind: Kind, pk: str, sk: str, due_at: datetime, redrives: int = 0) -> tuple[str, str]:
    """(gsi4pk, gsi4sk) of the record (pk, sk) due at `due_at`."""
    shard = zlib.crc32(f"{pk}|{sk}".encode()) % SHARDS
    return f"DUE#{kind}#{shard}", f"{stored_time(due_at)}#{redrives}"


def due_records(kind: Kind, before: datetime, limit: int) -> Iterator[Due]:
    """The records of `kind` whose due time is before `before`, oldest first per shard, at most `limit` in all."""
    bound = stored_time(before)
    found = 0
    for shard in range(SHARDS):
        for rec in DueRecord.due.query(f"DUE#{kind}#{shard}", DueIndex.gsi4sk < bound, page_size=PAGE):
            if found >= limit:
                return
            if not rec.gsi4sk:
                continue
            at, _, redrives = rec.gsi4sk.partition("#")
            due_at = parse_stored(at)
            assert due_at is not None
            found += 1
            yield Due(kind, rec.pk, rec.sk, rec.gsi4sk, due_at, int(redrives or 0))


def claim(due: Due, next_due_at: datetime) -> bool:
    """Move the record's due time on and count a redrive, if its due key is still the one read: True if this call
    did (the caller may act); False if the record moved on meanwhile (a final state, progress, another sweeper)."""
    _, gsi4sk = due_keys(due.kind, due.pk, due.sk, next_due_at, due.redrives + 1)
    try:
        DueRecord(due.pk, due.sk).update(
            actions=[DueRecord.gsi4sk.set(gsi4sk)], condition=DueRecord.gsi4sk == due.due_sk
        )
    except UpdateError as exc:
        if getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def is_claimed(due: Due, current_sk: str | None) -> bool:
    """Whether the record's due key (as read again) is still the one `due` was read with."""
    return current_sk == due.due_sk
