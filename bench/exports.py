"""An export of many returns in-process against moto: time, the export code's peak memory, the CSV's size.

The returns are seeded in bulk (the return records and their `all` list-index items, the shapes the repository
writes: `_return_to_record`, `_write_index`, put straight into moto's table), not through the API. Then the export
worker's code runs directly (`services.exports.run_export`, what functions/export_worker calls for a message) under
`tracemalloc`, for 1,000 and 100,000 returns: constant memory means the peak does not grow with the number of returns.

moto runs with bench/fast_moto.py's shortcuts (same answers, checked by a unit test): without them moto's response
serializer and its whole-table walk per Query page make 100,000 returns take hours.

tracemalloc counts Python allocations in this process, which include moto answering the requests, and moto keeps what
it stores: each uploaded 5 MiB part holds about 10 MiB in this process until the upload completes (copies of the
request body; real S3 holds them on its side). So per part two figures: its peak, and its working peak, the peak above
what was held when the part began (the part buffer, botocore's copies of the request, one page of ids and one batch of
returns, moto's transient answers). Constant memory: no part's working peak above the first part's by more than 25%,
and the streaming peak (all parts) within a quarter of the export worker's 512 MB. The whole run's peak also holds
moto assembling the parts at completion. 1,000 returns fit in one small part and are shown for scale. The time is
measured under tracemalloc, which slows allocation-heavy code: an upper bound. The environment must be set first
(bench.env).
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

SIZES = (1_000, 100_000)  # ~1.3 ms per return to seed and ~4 ms to export, in moto with bench/fast_moto.py
PEAK_LIMIT_MIB = 128  # a quarter of functions/export_worker's 512 MB (infrastructure/definitions.py)
PART_GROWTH_LIMIT = 1.25


@dataclass
class ExportRun:
    returns: int
    seed_seconds: float
    export_seconds: float
    peak_mib: float  # while streaming
    peak_with_completion_mib: float
    part_peaks_mib: list[float]  # while each part was written and uploaded, in order
    part_working_mib: list[float]  # the same, above what was held when the part began
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
    """`count` returns, one second apart from `start`, with their `all` index items, put straight into moto's table
    (its backend's put_item, the AttributeValue maps PynamoDB would send): bulk seeding without the emulated HTTP."""
    import os

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.adapters.dynamodb.keys import stored_time
    from chalicelib.adapters.dynamodb.models import PointerRecord, ReturnRecord
    from chalicelib.adapters.dynamodb.repository import _index_pk, _return_to_record

    backend = dynamodb_backends[os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)][os.environ["AWS_DEFAULT_REGION"]]
    table = ReturnRecord.Meta.table_name
    began = time.perf_counter()
    for n in range(count):
        ret = _return(merchant_id, n, start + timedelta(seconds=n))
        rec = _return_to_record(ret)
        index = PointerRecord(
            pk=_index_pk(merchant_id, "all"),
            sk=f"{stored_time(ret.created_at)}#{ret.id}",
            created_at=stored_time(ret.updated_at),
        )
        for item in (rec, index):
            backend.put_item(table, item.serialize())
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
    streaming_peak = 0
    part_peaks: list[float] = []
    part_working: list[float] = []
    held = 0  # traced memory when the current part began
    upload_part, complete = S3Files.upload_part, S3Files.complete_multipart

    def counting(self: S3Files, key: str, upload_id: str, number: int, body: bytes) -> str:
        nonlocal parts, held
        parts += 1
        etag = upload_part(self, key, upload_id, number, body)
        current, peak = tracemalloc.get_traced_memory()
        part_peaks.append(peak / 2**20)
        part_working.append((peak - held) / 2**20)
        held = current
        tracemalloc.reset_peak()  # the next part's peak on its own
        return etag

    def completing(self: S3Files, key: str, upload_id: str, etags: list[str]) -> None:
        nonlocal streaming_peak
        streaming_peak = max(part_peaks) if part_peaks else 0  # every row is out; moto has not assembled the parts
        complete(self, key, upload_id, etags)

    S3Files.upload_part = counting  # type: ignore[method-assign]
    S3Files.complete_multipart = completing  # type: ignore[method-assign]
    try:
        tracemalloc.start()
        began = time.perf_counter()
        done = exports.run_export(c, merchant_id, requested["id"])
        seconds = time.perf_counter() - began
        peak = max(tracemalloc.get_traced_memory()[1] / 2**20, streaming_peak)
        tracemalloc.stop()
    finally:
        S3Files.upload_part, S3Files.complete_multipart = upload_part, complete  # type: ignore[method-assign]
    assert done.status == "ready", done
    body = c.files.get(done.key)
    reader = csv.reader(io.StringIO(body.decode()))
    assert next(reader) == list(RETURN_COLUMNS)
    rows = sum(1 for _ in reader)
    assert rows == count == done.rows, (rows, count, done.rows)
    return ExportRun(
        count, seed_seconds, seconds, streaming_peak, peak, part_peaks, part_working, len(body), rows, parts
    )


def run(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    """Each size in the same emulated account (each its own merchant), smallest first."""
    from bench import fast_moto
    from bench.lifecycle import in_process_stack

    runs = []
    with fast_moto.installed(), in_process_stack():
        for count in sizes:
            runs.append(export(count))
    small, large = runs[0], runs[-1]
    first, later = large.part_working_mib[0], large.part_working_mib[1:]
    growth = max(later) / first if later else 1.0
    return {
        "runs": [r.__dict__ for r in runs],
        "peak_limit_mib": PEAK_LIMIT_MIB,
        "peak_growth": growth,
        "returns_ratio": large.returns / small.returns,
        "part_growth_limit": PART_GROWTH_LIMIT,
        "constant_memory": large.peak_mib <= PEAK_LIMIT_MIB and growth <= PART_GROWTH_LIMIT,
    }


def report(checks: list[Any], check: Any) -> dict[str, Any]:
    """For `make bench`: print the runs and add the constant-memory check (`check` is bench.__main__.Check)."""
    r = run()
    print("\n(x) Export: returns seeded in bulk, the export worker's code under tracemalloc (moto included)")
    for x in r["runs"]:
        print(
            f"    {x['returns']:>7,} returns: export {x['export_seconds']:6.1f} s "
            f"({x['export_seconds'] / x['returns'] * 1000:.2f} ms a return), "
            f"peak {x['peak_mib']:5.1f} MiB streaming / {x['peak_with_completion_mib']:5.1f} MiB with moto's "
            f"completion, CSV {x['csv_bytes'] / 2**20:6.2f} MiB in {x['parts']} part(s) "
            f"(seed {x['seed_seconds']:.0f} s); per part: peak "
            + " / ".join(f"{p:.1f}" for p in x["part_peaks_mib"])
            + ", working "
            + " / ".join(f"{p:.1f}" for p in x["part_working_mib"])
        )
    checks.append(
        check(
            f"export peak <= {PEAK_LIMIT_MIB} MiB, working memory not growing part after part",
            r["constant_memory"],
            f"{r['runs'][-1]['returns']:,} returns: peak {r['runs'][-1]['peak_mib']:.1f} MiB; working per part "
            + " / ".join(f"{p:.1f}" for p in r["runs"][-1]["part_working_mib"])
            + f" MiB (later/first x{r['peak_growth']:.2f})",
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
