"""The sweeper (functions/sweeper, every 5 minutes): every record that should have reached a final state by now and
has not ends in one (chalicelib/domain/sweeping.py).

It Queries the due keys of GSI4 (never a Scan), reads each record again (the index lags), claims it by moving its
due time on, and hands it to the service that owns it: a webhook delivery's retry is queued again, a refund's
workflow started (or the refund failed once no workflow can settle it), an export queued again (or failed), a
withdrawal acknowledgement sent, a customer's erasure run (or resumed), an ended return past its merchant's
retention period pseudonymised (services/privacy.py). Records that are young (in flight) are not due, so nothing
touches them; a second run finds the claimed ones due later. One record that fails does not stop the others (the
next run tries again).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from chalicelib.bootstrap import Container
from chalicelib.domain.sweeping import KINDS, Kind
from chalicelib.observability import logger

#: Records handled per kind and run (the rest are due next run); keeps a run well inside the function's timeout.
LIMIT_PER_KIND = 200


def _redrivers() -> dict[Kind, Callable[[Container, Any], str]]:
    from chalicelib.services.exports import redrive_export
    from chalicelib.services.privacy import run_erasure, sweep_retention
    from chalicelib.services.refunds import redrive_refund
    from chalicelib.services.subscriptions import redrive_delivery
    from chalicelib.services.withdrawals import redrive_acknowledgement

    return {
        "delivery": redrive_delivery,
        "refund": redrive_refund,
        "export": redrive_export,
        "acknowledgement": redrive_acknowledgement,
        "erasure": run_erasure,
        "retention": sweep_retention,
    }


def sweep(c: Container, limit: int = LIMIT_PER_KIND) -> dict[str, int]:
    """One pass over everything due. Returns counts by `<kind>:<outcome>` (and `<kind>:error`)."""
    from chalicelib.adapters.dynamodb.due import due_records

    c.store  # noqa: B018 - binds the models to the configured table
    redrivers = _redrivers()
    outcome: Counter[str] = Counter()
    now = c.now()
    for kind in KINDS:
        for due in list(due_records(kind, now, limit)):
            try:
                result = redrivers[kind](c, due)
            except Exception:
                logger.exception("sweeping a record failed", kind=kind, pk=due.pk, sk=due.sk)
                result = "error"
            outcome[f"{kind}:{result}"] += 1
    logger.info("swept", extra={"outcome": dict(sorted(outcome.items()))})
    return dict(outcome)
