"""The bench's own instruments: the DynamoDB call counter, the Scan detectors, route and import-time parsing.

A wrong counter would make `make bench` pass or fail for the wrong reasons, so it is tested against moto with a
known number of requests of every kind the repository uses (including PynamoDB's own botocore session).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from moto import mock_aws
from pynamodb.attributes import UnicodeAttribute
from pynamodb.models import Model

from bench.coldstart import parse_importtime
from bench.counter import UNATTRIBUTED, DynamoCallCounter, wrap_lambda_router
from bench.lifecycle import route_matcher
from bench.portal import Latency, p90, rotated_rounds
from bench.static import find_scans

TABLE = "bench-counter-test"
REGION = "eu-central-1"


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield client


def _item(pk: str, sk: str = "A") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def test_every_request_counts_once_and_a_transaction_or_batch_is_one(ddb: Any) -> None:
    with DynamoCallCounter() as counter, counter.scope("POST /x") as this_request:
        ddb.put_item(TableName=TABLE, Item=_item("p1"))
        ddb.put_item(TableName=TABLE, Item=_item("p2"))
        ddb.get_item(TableName=TABLE, Key=_item("p1"))
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": TABLE, "Item": _item(f"t{i}")}} for i in range(3)]
        )
        ddb.batch_get_item(RequestItems={TABLE: {"Keys": [_item("p1"), _item("p2"), _item("t0")]}})
        ddb.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p1"}})

    expected = {"PutItem": 2, "GetItem": 1, "TransactWriteItems": 1, "BatchGetItem": 1, "Query": 1}
    assert dict(this_request) == expected
    assert counter.count() == 6
    assert counter.count("TransactWriteItems") == 1
    assert dict(counter.by_operation()) == expected
    assert counter.stats["POST /x"].invocations == 1
    assert counter.stats["POST /x"].totals == [6]
    assert counter.attempts == counter.by_operation()  # nothing bypassed the counter, no retries
    assert {c.table for c in counter.calls if c.operation in {"PutItem", "GetItem", "Query"}} == {TABLE}
    assert counter.scopes_with("Scan") == Counter()


def test_a_scan_is_detected_and_attributed(ddb: Any) -> None:
    with DynamoCallCounter() as counter:
        with counter.scope("GET /reports"):
            ddb.get_item(TableName=TABLE, Key=_item("nope"))
            ddb.scan(TableName=TABLE)
        ddb.scan(TableName=TABLE, Limit=1)  # outside any scope: still counted

    assert counter.count("Scan") == 2
    assert counter.scopes_with("Scan") == Counter({"GET /reports": 1, UNATTRIBUTED: 1})
    assert counter.stats[UNATTRIBUTED].operations == Counter({"Scan": 1})


def test_pynamodb_requests_are_counted_though_it_has_its_own_botocore_session(ddb: Any) -> None:
    class Thing(Model):
        class Meta:
            table_name = TABLE
            region = REGION

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)

    with DynamoCallCounter() as counter, counter.scope("lambda pynamo") as calls:
        Thing(pk="a", sk="A").save()
        Thing.get("a", "A")
        assert Thing.count("a") == 1  # a Query
        assert len(list(Thing.scan())) == 1

    assert dict(calls) == {"PutItem": 1, "GetItem": 1, "Query": 1, "Scan": 1}
    assert counter.scopes_with("Scan") == Counter({"lambda pynamo": 1})


def test_other_services_do_not_count_and_uninstall_restores_botocore(ddb: Any) -> None:
    original = BaseClient._make_api_call
    with DynamoCallCounter() as counter:
        assert BaseClient._make_api_call is not original
        boto3.client("s3", region_name=REGION).list_buckets()
        boto3.client("sqs", region_name=REGION).list_queues()
    assert BaseClient._make_api_call is original
    ddb.get_item(TableName=TABLE, Key=_item("after"))  # after uninstall: not seen
    assert counter.count() == 0
    assert counter.attempts == Counter()


def test_each_thread_counts_towards_its_own_scope(ddb: Any) -> None:
    """The API runs in the caller's thread while Step Functions runs Lambdas in moto's threads, concurrently."""
    started, release = threading.Event(), threading.Event()

    with DynamoCallCounter() as counter:

        def lambda_thread() -> None:
            with counter.scope("lambda worker"):
                ddb.get_item(TableName=TABLE, Key=_item("w"))
                started.set()
                release.wait(5)
                ddb.put_item(TableName=TABLE, Item=_item("w"))

        worker = threading.Thread(target=lambda_thread)
        with counter.scope("GET /api"):
            worker.start()
            assert started.wait(5)
            ddb.get_item(TableName=TABLE, Key=_item("api"))  # while the worker's scope is open
            release.set()
            worker.join(5)

    assert counter.stats["GET /api"].operations == Counter({"GetItem": 1})
    assert counter.stats["lambda worker"].operations == Counter({"GetItem": 1, "PutItem": 1})
    assert UNATTRIBUTED not in counter.stats


def test_lambda_router_wrapper_counts_each_invocation(ddb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from local import lambda_router

    def fake_call_handler(name: str, payload: Any) -> Any:
        for _ in range(payload["reads"]):
            ddb.get_item(TableName=TABLE, Key=_item(name))
        return {"ok": True}

    monkeypatch.setattr(lambda_router, "call_handler", fake_call_handler)
    with DynamoCallCounter() as counter, wrap_lambda_router(counter):
        assert lambda_router.call_handler("classify_items", {"reads": 2}) == {"ok": True}
        lambda_router.call_handler("classify_items", {"reads": 1})
    assert lambda_router.call_handler is fake_call_handler
    assert counter.stats["lambda classify_items"].invocations == 2
    assert counter.stats["lambda classify_items"].totals == [2, 1]


def test_static_check_finds_scans_in_code_but_not_in_comments(tmp_path: Path) -> None:
    pkg = tmp_path / "chalicelib"
    pkg.mkdir()
    (pkg / "repo.py").write_text(
        "def a(table):\n"
        "    return table.scan(Limit=1)\n"
        "def b(client):\n"
        "    return client._make_api_call('Scan', {})\n"
        "def c(model):\n"
        "    return model.rate_limited_scan()\n"
        "# never call .scan( here\n"
        "def receive_scan(barcode): ...\n"
    )
    (tmp_path / "functions").mkdir()
    found = find_scans(tmp_path)
    assert [(f.path, f.line) for f in found] == [
        ("chalicelib/repo.py", 2),
        ("chalicelib/repo.py", 4),
        ("chalicelib/repo.py", 6),
    ]


def test_route_matcher_prefers_literal_segments() -> None:
    match = route_matcher(
        {
            "/v1/returns": {},
            "/v1/returns/{return_id}": {},
            "/v1/returns/{return_id}/refunds": {},
            "/v1/portal/returns/{return_id}": {},
            "/v1/portal/order": {},
        }
    )
    assert match("/v1/returns/ret_1") == "/v1/returns/{return_id}"
    assert match("/v1/returns/ret_1/refunds") == "/v1/returns/{return_id}/refunds"
    assert match("/v1/returns?status=delivered") == "/v1/returns"
    assert match("/v1/portal/order") == "/v1/portal/order"
    assert match("/v1/unknown") == "/v1/unknown"


def test_importtime_parser_recovers_the_tree() -> None:
    stderr = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |        100 |     pydantic.types\n"
        "import time:       200 |        300 |   pydantic\n"
        "import time:      5000 |       5300 | chalicelib.api.schemas\n"
        "import time:        10 |         10 | chalice\n"
    )
    nodes = parse_importtime(stderr)
    assert nodes["pydantic"].parent == "chalicelib.api.schemas"
    assert nodes["pydantic.types"].parent == "pydantic"
    assert nodes["chalicelib.api.schemas"].parent is None
    assert nodes["chalicelib.api.schemas"].self_us == 5000
    assert nodes["chalicelib.api.schemas"].cumulative_us == 5300
    assert nodes["chalice"].depth == 0


def test_rotated_rounds_put_every_kind_in_every_position_equally_often() -> None:
    plan = rotated_rounds(["a", "b", "c"], 6)
    rounds = [plan[i : i + 3] for i in range(0, len(plan), 3)]
    assert rounds[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    for position in range(3):
        assert Counter(r[position] for r in rounds) == {"a": 2, "b": 2, "c": 2}


def test_rotated_rounds_take_a_sparse_kind_only_every_nth_round() -> None:
    plan = rotated_rounds(["h", "c", "s"], 10, {"s": 5})
    assert Counter(plan) == {"h": 10, "c": 10, "s": 2}
    assert plan[:3] == ["h", "c", "s"]  # round 0 has all three
    assert plan[3:5] == ["c", "h"]  # round 1: two kinds, rotated
    assert rotated_rounds(["h"], 0) == []


def test_latency_median_p90_and_the_share_outside_moto() -> None:
    samples = tuple(float(n) for n in range(1, 11))
    lat = Latency(samples, in_moto=tuple(0.5 for _ in samples))
    assert lat.median == 5.5
    assert lat.p90 == pytest.approx(9.1)  # between the 9th and the 10th sample, never beyond the largest
    assert p90([7.0]) == 7.0
    assert lat.outside_moto[0] == 0.5 and lat.outside_moto[-1] == 9.5
    with pytest.raises(ValueError):
        _ = Latency((1.0, 2.0), in_moto=(1.0,)).outside_moto


# ----- bench/fast_moto.py: moto's speed changes, its answers do not ----------------------------------------------
def _workload(client: Any) -> list[Any]:
    """Writes and reads of every operation fast_moto touches, paging through one partition both ways; the answers."""
    out: list[Any] = []

    def keep(answer: dict[str, Any]) -> None:
        out.append({k: v for k, v in answer.items() if k != "ResponseMetadata"})

    for part in ("P1", "P2", "P3"):
        for n in range(7):
            keep(client.put_item(TableName=TABLE, Item={**_item(part, f"2026-01-0{n}#r{n}"), "n": {"N": str(n)}}))
    keep(
        client.update_item(
            TableName=TABLE,
            Key=_item("P1", "2026-01-03#r3"),
            UpdateExpression="SET tags = :t ADD n :one",
            ExpressionAttributeValues={":t": {"L": [{"S": "x"}, {"M": {"k": {"BOOL": True}}}]}, ":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
    )
    keep(client.get_item(TableName=TABLE, Key=_item("P1", "2026-01-03#r3")))
    keep(client.get_item(TableName=TABLE, Key=_item("nope", "x")))
    for forward in (True, False):
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = client.query(
                TableName=TABLE,
                KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":p": {"S": "P2"}, ":lo": {"S": "2026-01-01"}, ":hi": {"S": "2026-01-05~"}},
                ScanIndexForward=forward,
                Limit=2,
                **kwargs,
            )
            keep(page)
            start = page.get("LastEvaluatedKey")
            if not start:
                break
    keep(client.query(TableName=TABLE, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "-"}}))
    keys = [_item(p, f"2026-01-0{n}#r{n}") for p in ("P1", "P3") for n in (1, 4)]
    got = client.batch_get_item(RequestItems={TABLE: {"Keys": keys}})
    got["Responses"][TABLE].sort(key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    keep(got)
    keep(client.batch_write_item(RequestItems={TABLE: [{"DeleteRequest": {"Key": _item("P3", "2026-01-00#r0")}}]}))

    def put_p4() -> dict[str, Any]:
        item = {"TableName": TABLE, "Item": _item("P4", "x"), "ConditionExpression": "attribute_not_exists(pk)"}
        answer: dict[str, Any] = client.transact_write_items(TransactItems=[{"Put": item}])
        return answer

    keep(put_p4())
    try:
        put_p4()  # refused: the item exists
    except client.exceptions.TransactionCanceledException as exc:
        keep({"error": exc.response["Error"], "reasons": exc.response.get("CancellationReasons")})
    keep(client.delete_item(TableName=TABLE, Key=_item("P4", "x"), ReturnValues="ALL_OLD"))
    return out


def test_fast_moto_gives_the_same_answers_as_moto(ddb: Any) -> None:
    from bench import fast_moto

    plain = _workload(ddb)
    for table in ("P1", "P2", "P3"):  # a fresh start for the second run
        for n in range(7):
            ddb.delete_item(TableName=TABLE, Key=_item(table, f"2026-01-0{n}#r{n}"))
    fast_moto.install()
    try:
        fast = _workload(ddb)
    finally:
        fast_moto.uninstall()
    assert fast == plain
    assert sum(1 for a in plain if "Items" in a) == 7  # 5 items in pages of 2, both ways (3 pages each), one empty
