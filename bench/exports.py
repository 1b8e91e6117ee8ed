"""An export of many returns in-process against moto: time, the export code's peak memory, the CSV's size.

The returns are seeded in bulk (BatchWriteItem of the return records and their `all` list-index items, the shapes the
repository writes: `_return_to_record`, `_write_index`), not through the API. Then the export worker's code runs
directly (`services.exports.run_export`, what functions/export_worker calls for a message) under `tracemalloc`, for a
small and a large number of returns: constant memory means the peak does not grow with the number of returns.

tracemalloc counts Python allocations in this process, which here include moto answering the requests (the emulated
AWS): the figure is therefore an upper bound for the export code alone. The environment must be set first (bench.env).
"""

from __future__ import annotations

import csv
import io
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

SIZES = (300, 1_500)  # in moto: ~14 ms per return seeded and exported (see the docstring); 100,000 takes hours
PEAK_LIMIT_MIB = 64


@dataclass
class ExportRun:
    returns: int
    seed_seconds: float
    export_seconds: float
    peak_mib: float
    csv_bytes: int
    rows: int
    parts: int


def _return(merchant_id: str, n: int, created: datetime) -> Any:
    from chalicelib.domain.returns import ItemStatus, Return, ReturnItem, ReturnStatus

    return Return(
        id=f"ret_bench{n:010d}",
        merchant_id=merchant_id,
        warehouse_id="wh_bench",
        order_number=f"ORD-{n:08d}",
        currency="EUR",
        customer_country="DE",
        locale="de",
        status=ReturnStatus.REQUESTED if n % 3 else ReturnStatus.RECEIVED,
        created_at=created,
        updated_at=created,
        items=[
            ReturnItem(
                line_item_id="L1",
                sku=f"SKU-{n % 500}",
                name="Shirt",
                quantity=1 + n % 2,
                unit_price=Decimal("29.95"),
                reason="too_small" if n % 2 else "damaged",
                status=ItemStatus.EXPECTED,
            )
        ],
        tracking_token=f"tok{n}",
        carrier="sandbox",
        tracking_number=f"SB{n:012d}",
    )


def seed(merchant_id: str, count: int, start: datetime) -> float:
    """`count` returns, one second apart from `start`, with their `all` index items: BatchWriteItem, 25 a call."""
    from chalicelib.adapters.dynamodb.models import PointerRecord, ReturnRecord
    from chalicelib.adapters.dynamodb.repository import _client, _index_pk, _iso, _return_to_record

    client = _client()
    table = ReturnRecord.Meta.table_name
    began = time.perf_counter()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        request: dict[str, Any] = {table: list(batch)}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        batch.clear()

    for n in range(count):
        ret = _return(merchant_id, n, start + timedelta(seconds=n))
        rec = _return_to_record(ret)
        index = PointerRecord(
            pk=_index_pk(merchant_id, "all"), sk=f"{_iso(ret.created_at)}#{ret.id}", created_at=_iso(ret.updated_at)
        )
        for item in (rec, index):
            batch.append({"PutRequest": {"Item": item.serialize()}})
            if len(batch) == 25:
                flush()
    if batch:
        flush()
    return time.perf_counter() - began


def export(count: int) -> ExportRun:
    """A fresh merchant with `count` returns; one export of them all, measured."""
    from chalicelib.adapters.files import S3Files
    from chalicelib.bootstrap import container
    from chalicelib.domain.exports import RETURN_COLUMNS
    from chalicelib.services import exports

    c = container()
    _ = c.store  # binds the models to the table (the seed writes through their connection)
    merchant_id = f"mer_bench{count}"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seed_seconds = seed(merchant_id, count, start)
    requested = exports.request_export(c, merchant_id, "returns", start, start + timedelta(seconds=count))
    parts = 0
    original = S3Files.upload_part

    def counting(self: S3Files, key: str, upload_id: str, number: int, body: bytes) -> str:
        nonlocal parts
        parts += 1
        return original(self, key, upload_id, number, body)

    S3Files.upload_part = counting  # type: ignore[method-assign]
    try:
        tracemalloc.start()
        began = time.perf_counter()
        done = exports.run_export(c, merchant_id, requested["id"])
        seconds = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        S3Files.upload_part = original  # type: ignore[method-assign]
    assert done.status == "ready", done
    body = c.files.get(done.key)
    reader = csv.reader(io.StringIO(body.decode()))
    assert next(reader) == list(RETURN_COLUMNS)
    rows = sum(1 for _ in reader)
    assert rows == count == done.rows, (rows, count, done.rows)
    return ExportRun(count, seed_seconds, seconds, peak / 2**20, len(body), rows, parts)


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Each size in the same emulated account (each its own merchant), smallest first."""
    from bench.lifecycle import in_process_stack

    runs = []
    with in_process_stack():
        for count in sizes:
            runs.append(export(count))
    small, large = runs[0], runs[-1]
    growth = large.peak_mib / small.peak_mib if small.peak_mib else float("inf")
    return {
        "runs": [r.__dict__ for r in runs],
        "peak_limit_mib": PEAK_LIMIT_MIB,
        "peak_growth": growth,
        "returns_ratio": large.returns / small.returns,
        "constant_memory": large.peak_mib <= PEAK_LIMIT_MIB and growth < 2,
    }


def report(checks: list[Any], check: Any) -> dict[str, Any]:
    """For `make bench`: print the runs and add the constant-memory check (`check` is bench.__main__.Check)."""
    r = run()
    print("\n(x) Export: returns seeded in bulk, the export worker's code under tracemalloc (moto included)")
    for x in r["runs"]:
        print(
            f"    {x['returns']:>7,} returns: export {x['export_seconds']:6.1f} s, peak {x['peak_mib']:5.1f} MiB, "
            f"CSV {x['csv_bytes'] / 2**20:6.2f} MiB in {x['parts']} part(s) (seed {x['seed_seconds']:.0f} s)"
        )
    checks.append(
        check(
            f"export peak memory <= {PEAK_LIMIT_MIB} MiB and not growing with the returns",
            r["constant_memory"],
            f"peak x{r['peak_growth']:.2f} for x{r['returns_ratio']:.0f} returns",
        )
    )
    return r


if __name__ == "__main__":
    import json
    import sys

    from bench import env

    env.apply()
    sizes = tuple(int(a) for a in sys.argv[1:]) or SIZES
    print(json.dumps(run(sizes), indent=2))
