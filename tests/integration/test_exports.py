"""CSV exports end to end in moto: POST /v1/exports -> export record + message on the export queue ->
functions/export_worker (multipart upload to S3) -> GET /v1/exports/{id} ready with a presigned URL -> the CSV.

The CSV is compared with the returns it covers as the API shows them (GET /v1/returns/{id}). In-process moto patches
botocore, not HTTP, so the file is read with boto3 at the key the presigned URL names (the URL's signature is
checked for its key and expiry).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib import bootstrap
from chalicelib.adapters.files import S3Files
from chalicelib.domain.exports import ITEM_COLUMNS, RETURN_COLUMNS
from chalicelib.services import exports
from infrastructure import definitions as d
from tests.support import Api, SteppingClock, drain_queue, unique


@pytest.fixture
def clock(aws) -> SteppingClock:
    fake = SteppingClock()
    bootstrap.container().clock = fake
    return fake


@pytest.fixture
def api(aws, clock) -> Any:
    with Client(app) as client:
        yield Api(client)


def _day(at: datetime) -> str:
    return at.strftime("%Y-%m-%d")


def request(api: Api, key: str, kind: str = "returns", **body: Any) -> str:
    now = bootstrap.container().now()
    payload = {"kind": kind, "format": "csv", "from": _day(now - timedelta(days=3)), "to": _day(now), **body}
    out = api.ok("POST", "/v1/exports", key, payload, 202)
    return str(out["id"])


def drain(aws) -> dict[str, Any]:
    return drain_queue(aws.queue_urls[d.EXPORT_QUEUE.name], "export_worker")


def download(aws, url: str) -> list[dict[str, str]]:
    parsed = urlparse(url)
    assert int(parse_qs(parsed.query)["X-Amz-Expires"][0]) == exports.URL_TTL_SECONDS
    key = unquote(parsed.path).split(f"/{aws.bucket_name}/", 1)[-1] if aws.bucket_name in parsed.path else None
    if key is None:  # virtual-hosted style: bucket in the host name
        key = unquote(parsed.path).lstrip("/")
    body = boto3.client("s3").get_object(Bucket=aws.bucket_name, Key=key)["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(body)))


def ready(api: Api, aws, key: str, export_id: str) -> dict[str, Any]:
    assert api.ok("GET", f"/v1/exports/{export_id}", key)["status"] == "pending"
    assert drain(aws) == {"count": 1, "failed": set()}
    out: dict[str, Any] = api.ok("GET", f"/v1/exports/{export_id}", key)
    assert out["status"] == "ready", out
    return out


def test_a_returns_export_equals_the_returns_it_covers_newest_first(api: Api, aws, clock: SteppingClock) -> None:
    t = api.tenant()
    made = []
    for _ in range(3):
        made.append(api.create_return(t))
        clock.advance(1)
    cancelled = api.ok("POST", f"/v1/returns/{made[1]['id']}/cancel", t["m_key"], {}, 200)
    assert cancelled["status"] == "cancelled"
    other = api.tenant()
    api.create_return(other)  # another merchant's return is not in this merchant's export

    export_id = request(api, t["m_key"])
    out = ready(api, aws, t["m_key"], export_id)
    assert out["rows"] == 3 and out["kind"] == "returns" and out["size"] > 0
    assert datetime.fromisoformat(out["expires_at"].replace("Z", "+00:00")) > clock.now
    rows = download(aws, out["url"])
    assert list(rows[0]) == list(RETURN_COLUMNS)
    views = [api.ok("GET", f"/v1/returns/{r['id']}", t["m_key"]) for r in reversed(made)]  # newest created first
    assert [r["return_id"] for r in rows] == [v["id"] for v in views]
    for row, view in zip(rows, views, strict=True):
        assert row["order_number"] == view["order_number"]
        assert row["status"] == view["status"]
        assert row["created_at"] == view["created_at"]
        assert row["updated_at"] == view["updated_at"]
        assert int(row["items"]) == len(view["items"])
        assert int(row["quantity"]) == sum(i["quantity"] for i in view["items"])
        assert row["reasons"] == "too_small"
        assert row["currency"] == "EUR"
    assert {r["status"] for r in rows} >= {"cancelled"}
    # the file's key: under exports/<merchant>/, nothing else written there
    listed = boto3.client("s3").list_objects_v2(Bucket=aws.bucket_name, Prefix="exports/")["Contents"]
    assert [o["Key"] for o in listed] == [f"exports/{t['merchant']['id']}/{export_id}.csv"]


def test_an_export_covers_its_created_at_range_only(api: Api, aws, clock: SteppingClock) -> None:
    t = api.tenant()
    old = api.create_return(t)
    clock.advance(48)
    inside = [api.create_return(t), api.create_return(t)]
    clock.advance(48)
    api.create_return(t)  # after the range
    start = datetime.fromisoformat(inside[0]["created_at"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(inside[1]["created_at"].replace("Z", "+00:00")) + timedelta(seconds=1)
    export_id = request(api, t["m_key"], **{"from": start.isoformat(), "to": end.isoformat()})
    rows = download(aws, ready(api, aws, t["m_key"], export_id)["url"])
    assert {r["return_id"] for r in rows} == {r["id"] for r in inside}
    assert old["id"] not in {r["return_id"] for r in rows}
    # dates are whole days: the day of the first return alone
    export_id = request(api, t["m_key"], **{"from": old["created_at"][:10], "to": old["created_at"][:10]})
    rows = download(aws, ready(api, aws, t["m_key"], export_id)["url"])
    assert [r["return_id"] for r in rows] == [old["id"]]


def test_an_items_export_has_one_row_per_returned_item(api: Api, aws) -> None:
    t = api.tenant()
    two = api.create_return(
        t,
        [
            {"line_item_id": "L1", "quantity": 2, "reason": "too_small"},
            {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
        ],
    )
    one = api.create_return(t)
    export_id = request(api, t["m_key"], kind="items")
    out = ready(api, aws, t["m_key"], export_id)
    rows = download(aws, out["url"])
    assert out["rows"] == 3 and list(rows[0]) == list(ITEM_COLUMNS)
    got = sorted((r["return_id"], r["line_item_id"], r["sku"], r["quantity"], r["unit_price"]) for r in rows)
    assert got == sorted(
        [
            (two["id"], "L1", "SHIRT-M", "2", "29.95"),
            (two["id"], "L2", "JEANS-32", "1", "79.00"),
            (one["id"], "L1", "SHIRT-M", "1", "29.95"),
        ]
    )
    assert all(r["item_status"] == "expected" and r["currency"] == "EUR" for r in rows)


def test_a_large_export_is_uploaded_in_parts(
    api: Api, aws, monkeypatch: pytest.MonkeyPatch, clock: SteppingClock
) -> None:
    import moto.s3.models

    from functions.export_worker import handler

    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 256)  # S3's 5 MiB, scaled down with the parts
    monkeypatch.setattr(handler, "PART_SIZE", 300)
    parts: list[int] = []
    original = S3Files.upload_part

    def counting(self: S3Files, key: str, upload_id: str, number: int, body: bytes) -> str:
        parts.append(len(body))
        return original(self, key, upload_id, number, body)

    monkeypatch.setattr(S3Files, "upload_part", counting)
    t = api.tenant()
    made = [api.create_return(t) for _ in range(8)]
    export_id = request(api, t["m_key"])
    out = ready(api, aws, t["m_key"], export_id)
    rows = download(aws, out["url"])
    assert len(parts) >= 3
    assert all(size >= 300 for size in parts[:-1]) and parts[-1] > 0
    assert sum(parts) == out["size"]
    assert sorted(r["return_id"] for r in rows) == sorted(r["id"] for r in made)


def test_a_redelivered_message_for_a_ready_export_does_nothing(api: Api, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    t = api.tenant()
    api.create_return(t)
    export_id = request(api, t["m_key"])
    first = ready(api, aws, t["m_key"], export_id)
    started: list[str] = []
    monkeypatch.setattr(S3Files, "start_multipart", lambda self, key, ct: started.append(key) or "x")
    boto3.client("sqs").send_message(
        QueueUrl=aws.queue_urls[d.EXPORT_QUEUE.name],
        MessageBody=json.dumps({"merchant_id": t["merchant"]["id"], "export_id": export_id}),
    )
    assert drain(aws) == {"count": 1, "failed": set()}
    assert started == []
    again = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert (again["rows"], again["size"], again["completed_at"]) == (
        first["rows"],
        first["size"],
        first["completed_at"],
    )


def test_a_crashed_run_is_aborted_and_the_retry_starts_clean(api: Api, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    t = api.tenant()
    made = [api.create_return(t) for _ in range(2)]
    export_id = request(api, t["m_key"])
    original = S3Files.upload_part

    def broken(self: S3Files, key: str, upload_id: str, number: int, body: bytes) -> str:
        raise ConnectionError("S3 went away")

    monkeypatch.setattr(S3Files, "upload_part", broken)
    result = drain(aws)
    assert result["count"] == 1 and len(result["failed"]) == 1  # retried by SQS
    s3 = boto3.client("s3")
    assert s3.list_multipart_uploads(Bucket=aws.bucket_name).get("Uploads", []) == []  # aborted
    pending = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert pending["status"] == "pending" and "url" not in pending

    monkeypatch.setattr(S3Files, "upload_part", original)
    c = bootstrap.container()
    done = exports.run_export(c, t["merchant"]["id"], export_id)  # the redelivery
    assert done.status == "ready" and done.attempts == 2
    rows = download(aws, api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])["url"])
    assert sorted(r["return_id"] for r in rows) == sorted(r["id"] for r in made)


def test_an_export_that_keeps_failing_is_failed_after_its_attempts(
    api: Api, aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = api.tenant()
    api.create_return(t)
    export_id = request(api, t["m_key"])

    def broken(self: S3Files, key: str, upload_id: str, number: int, body: bytes) -> str:
        raise ConnectionError("S3 went away")

    monkeypatch.setattr(S3Files, "upload_part", broken)
    c = bootstrap.container()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            exports.run_export(c, t["merchant"]["id"], export_id)
    assert exports.run_export(c, t["merchant"]["id"], export_id).status == "failed"
    out = api.ok("GET", f"/v1/exports/{export_id}", t["m_key"])
    assert out["status"] == "failed" and out["error"] and "url" not in out


def test_another_merchants_export_is_not_found(api: Api, aws) -> None:
    t, other = api.tenant(), api.tenant()
    export_id = request(api, t["m_key"])
    assert api.call("GET", f"/v1/exports/{export_id}", other["m_key"]).status_code == 404
    assert api.call("GET", "/v1/exports/exp_unknown", t["m_key"]).status_code == 404
    assert api.call("GET", f"/v1/exports/{export_id}", None).status_code == 401
    assert (
        api.call(
            "POST", "/v1/exports", t["wh_key"], {"kind": "returns", "from": "2026-01-01", "to": "2026-01-02"}
        ).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"format": "csv", "from": "2026-01-01", "to": "2026-01-02"}, ["kind"]),
        ({"kind": "orders", "from": "2026-01-01", "to": "2026-01-02"}, ["kind"]),
        ({"kind": "returns", "format": "xlsx", "from": "2026-01-01", "to": "2026-01-02"}, ["format"]),
        ({"kind": "returns", "from": "yesterday", "to": "2026-01-02"}, ["from"]),
        ({"kind": "returns", "from": "2026-01-01T10:00:00", "to": "2026-01-02"}, ["from"]),
        ({"kind": "returns", "from": "2026-01-01"}, ["to"]),
        ({"kind": "returns", "from": "2026-01-05", "to": "2026-01-01"}, ["to"]),
        ({"kind": "returns", "from": "2025-01-01", "to": "2026-03-01"}, ["to"]),  # more than 400 days
        ({"kind": "returns", "from": "2026-01-01", "to": "2026-01-02", "extra": 1}, ["extra"]),
    ],
)
def test_bad_requests_are_422_naming_the_field(api: Api, aws, body: dict[str, Any], loc: list[str]) -> None:
    t = api.tenant()
    resp = api.call("POST", "/v1/exports", t["m_key"], body)
    assert resp.status_code == 422, resp.body
    problem = json.loads(resp.body)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert boto3.client("sqs").receive_message(QueueUrl=aws.queue_urls[d.EXPORT_QUEUE.name]).get("Messages") is None


def test_cells_a_spreadsheet_would_run_are_defused(api: Api, aws) -> None:
    t = api.tenant()
    order = api.order(
        t["m_key"],
        items=[
            {
                "line_item_id": "L1",
                "sku": '=HYPERLINK("http://x")',
                "name": "Evil",
                "quantity": 1,
                "unit_price": "1.00",
            },
            {"line_item_id": "L2", "sku": "@SUM(A1)", "name": "Evil", "quantity": 1, "unit_price": "1.00"},
        ],
        order_number=unique("+ORD"),
    )
    ret = api.create_return(
        t,
        [
            {"line_item_id": "L1", "quantity": 1, "reason": "too_small"},
            {"line_item_id": "L2", "quantity": 1, "reason": "too_small"},
        ],
        order=order,
    )
    rows = download(aws, ready(api, aws, t["m_key"], request(api, t["m_key"], kind="items"))["url"])
    assert {r["sku"] for r in rows} == {'\'=HYPERLINK("http://x")', "'@SUM(A1)"}
    assert {r["order_number"] for r in rows} == {"'" + order["order_number"]}
    assert {r["return_id"] for r in rows} == {ret["id"]}


def test_the_worker_reads_by_key_and_index_only(api: Api, aws) -> None:
    """The export reads the list index (Query) and the returns (BatchGetItem): never a Scan."""
    from botocore.client import BaseClient

    t = api.tenant()
    api.create_return(t)
    export_id = request(api, t["m_key"])
    seen: list[str] = []
    original = BaseClient._make_api_call

    def spy(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        seen.append(operation)
        return original(self, operation, params)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BaseClient, "_make_api_call", spy)
        exports.run_export(bootstrap.container(), t["merchant"]["id"], export_id)
    assert "Scan" not in seen
    assert {"Query", "BatchGetItem", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"} <= set(seen)
