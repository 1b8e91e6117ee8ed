"""When a record that should have reached a final state by now is stuck, and what the sweeper does about it.

Four things can be left `pending` by a process that died (or an AWS call that failed) right after the commit: a
webhook delivery whose retry message was never queued, a refund whose workflow never started, an export whose job
was never queued (or whose worker kept dying), a withdrawal acknowledgement that was never sent. Each such record is
written with a *due time* (the sparse GSI4, in the same write as its state); the scheduled sweeper
(functions/sweeper) looks only at records whose due time has passed, so anything young (in flight) is left alone.

Each pass over a stuck record *claims* it first (a conditional write that moves its due time on by a backoff and
counts the redrive), then acts; a record that keeps not moving is given a final state after MAX_REDRIVES. Pure
policy: no AWS here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

Kind = Literal["delivery", "refund", "export", "acknowledgement", "erasure", "retention"]
KINDS: tuple[Kind, ...] = ("delivery", "refund", "export", "acknowledgement", "erasure", "retention")

#: How long a pending record may wait before it counts as stuck (its normal path had time to move it on).
GRACE: dict[Kind, timedelta] = {
    # a retry message arrives when its attempt is due (delay hops of at most 15 minutes); the dispatcher's
    # visibility timeout is 11 minutes
    "delivery": timedelta(minutes=15),
    # the API starts the workflow right after the commit; soon enough that a late start may still be within the
    # refund's deadline (Settings.refund_deadline_seconds: past it, the workflow fails the refund without sending)
    "refund": timedelta(minutes=1),
    # a queued export runs within seconds; a run lasts at most the worker's 15 minutes
    "export": timedelta(minutes=20),
    # the API sends the acknowledgement while the consumer waits
    "acknowledgement": timedelta(minutes=5),
    # an erasure is run by the sweeper itself (due when requested); a run that died is run again after this
    "erasure": timedelta(minutes=10),
    # a return that ended (services/privacy.py): due when its merchant's retention period has passed
    "retention": timedelta(hours=1),
}
#: Redrives without progress before the record is given a final state (failed). A refund is bounded by time instead
#: (REFUND_GIVE_UP_AFTER past its deadline), an acknowledgement is tried for about a day.
MAX_REDRIVES: dict[Kind, int] = {
    "delivery": 4,
    "refund": 1_000,
    "export": 3,
    "acknowledgement": 10,
    "erasure": 1_000,  # an erasure is never given up: a legal duty, the operator sees it pending
    "retention": 1_000,
}
#: The longest wait between two redrives of one record.
MAX_BACKOFF = timedelta(hours=6)
#: A refund still pending this long after its deadline has no workflow left that would settle it.
REFUND_GIVE_UP_AFTER = timedelta(minutes=30)


def backoff(kind: Kind, redrives: int) -> timedelta:
    """The wait after the `redrives`-th redrive (0: the first): the grace, doubled each time, at most MAX_BACKOFF."""
    return min(GRACE[kind] * (1 << min(redrives, 16)), MAX_BACKOFF)


def exhausted(kind: Kind, redrives: int) -> bool:
    return redrives >= MAX_REDRIVES[kind]


def refund_give_up_at(created_at: datetime, deadline_seconds: int) -> datetime:
    return created_at + timedelta(seconds=deadline_seconds) + REFUND_GIVE_UP_AFTER
