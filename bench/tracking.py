"""Tracking ingestion throughput in-process against moto: signed EasyPost webhooks queued on the tracking queue, then
drained through `functions.tracking_consumer.handler` in batches of 10 (as Lambda's SQS event source would), against
the floor of the same emulation: plain PutItem of as many items into the same table.

Each round runs in a fresh emulation (every round starts from the same empty table and queues). It writes `returns`
returns straight to the table (no label: not what is measured), posts one or two events per return (in_transit;
every other return also delivered) to `POST /v1/webhooks/easypost` (signature checked, queued), drains a few warm-up
events untimed, then times two phases in alternating order: draining the queue (receive, handler, delete) and the
PutItem baseline (as many items as events). An event costs a tracking-number Query, a GetItem, one
TransactWriteItems (return, event marker, timeline) and a PutEvents; a baseline item one PutItem. Medians over the
rounds; only ratios are meant to be compared. Moto answers in this thread, and most of the time is its own: each
phase also records the seconds spent inside moto (`bench.portal.Attribution`), so the table shows both. Harness
effects kept out as in `bench.portal`: moto's rollback copies of the whole table per transaction item, moto's list
of every model instance, collections walking the heap built before timing.

The environment (fake credentials, secrets) must be set before this module is imported: see `bench.env`.
"""

from __future__ import annotations

import gc
import statistics
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from chalice.test import Client

from bench.lifecycle import EASYPOST_SECRET_ENV, in_process_stack
from bench.portal import Attribution, MotoWithoutRollbackCopies, forget_moto_instances
from tests.support import Api, easypost_event

RETURNS = 100  # 150 events a round; moto's SQS costs grow with the queue's depth, so more mostly times moto
ROUNDS = 3
WARMUP = 5  # returns whose events are drained, untimed, before each round's timed phases
BATCH = 10  # Lambda's SQS batch for the tracking consumer (definitions.TRACKING_QUEUE.batch_size)
DRAIN = "drain through the tracking consumer"
PUT = "PutItem baseline"


@dataclass
class TrackingResult:
    returns: int
    rounds: int
    events: int = 0  # per round
    drain_seconds: list[float] = field(default_factory=list)  # receive + handler + delete, per round
    handler_seconds: list[float] = field(default_factory=list)  # the handler alone, per round
    put_seconds: list[float] = field(default_factory=list)
    drain_in_moto: list[float] = field(default_factory=list)  # of each drain, the seconds moto spent answering
    put_in_moto: list[float] = field(default_factory=list)
    batch_failures: int = 0  # records the consumer reported failed (should be none)
    wrong_status: int = 0  # returns not at the status their events lead to, after the drain
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    plan: str = ""

    def per_second(self, seconds: list[float]) -> float:
        return self.events / statistics.median(seconds) if seconds else 0.0

    @property
    def events_per_second(self) -> float:
        return self.per_second(self.drain_seconds)

    @property
    def handler_events_per_second(self) -> float:
        return self.per_second(self.handler_seconds)

    @property
    def items_per_second(self) -> float:
        return self.per_second(self.put_seconds)

    @property
    def ratio(self) -> float:
        """Events per second / items per second: the share of a bare write's speed an event is ingested at."""
        return self.events_per_second / self.items_per_second if self.items_per_second else 0.0

    @staticmethod
    def outside(seconds: list[float], in_moto: list[float]) -> list[float]:
        """Each phase without moto's share: our code, botocore's client side, Powertools, the garbage collector."""
        return [s - m for s, m in zip(seconds, in_moto, strict=True)]

    @property
    def events_per_second_outside_moto(self) -> float:
        return self.per_second(self.outside(self.drain_seconds, self.drain_in_moto))

    @property
    def items_per_second_outside_moto(self) -> float:
        return self.per_second(self.outside(self.put_seconds, self.put_in_moto))

    @property
    def ok(self) -> bool:
        return not self.errors and self.batch_failures == 0 and self.wrong_status == 0 and bool(self.drain_seconds)


def _returns(tenant: dict[str, Any], n: int, tag: str) -> list[tuple[str, str]]:
    """`n` returns in `label_created`, each with its own tracking number: (return id, tracking number)."""
    from chalicelib import bootstrap
    from chalicelib.domain.returns import Return, ReturnItem

    c = bootstrap.container()
    now = datetime.now(UTC) - timedelta(days=1)
    out = []
    for i in range(n):
        return_id = f"ret_bench_{tag}_{i:04d}"
        ret = Return.request(
            return_id=return_id,
            merchant_id=tenant["merchant"]["id"],
            warehouse_id=tenant["warehouse"]["id"],
            order_number=f"BENCH-{tag}-{i:04d}",
            currency="EUR",
            customer_country="DE",
            locale="de",
            items=[
                ReturnItem(
                    line_item_id="L1",
                    sku="SHIRT-M",
                    name="Shirt M",
                    quantity=1,
                    unit_price=Decimal("9.95"),
                    reason="too_small",
                )
            ],
            tracking_token=f"tok_bench_{tag}_{i:04d}",
            actor="bench",
            at=now,
        )
        number = f"BT{tag}{i:06d}"
        ret.attach_label(carrier="sandbox", tracking_number=number, label_key=None, actor="bench", at=now)
        c.store.save_return(ret)
        out.append((return_id, number))
    return out


def _post_events(api: Api, secret: str, returns: list[tuple[str, str]], tag: str) -> dict[str, str]:
    """Every return in_transit, every other one also delivered, through the real webhook endpoint. Returns the status
    each return must reach."""
    from chalicelib.domain.signatures import easypost_signature

    at = datetime.now(UTC)
    expected = {}
    for i, (return_id, number) in enumerate(returns):
        statuses = ["in_transit", "delivered"] if i % 2 == 0 else ["in_transit"]
        for h, status in enumerate(statuses, start=1):
            stamp = (at + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
            body = easypost_event(f"evt_{tag}_{i}_{status}", number, status, stamp)
            resp = api.call(
                "POST",
                "/v1/webhooks/easypost",
                raw=body,
                headers={"X-Hmac-Signature": easypost_signature(secret, body)},
            )
            assert resp.status_code == 200, (resp.status_code, resp.body)
        expected[return_id] = statuses[-1]
    return expected


def _drain(sqs: Any, queue_url: str, queue_arn: str, region: str) -> tuple[float, float, int, int]:
    """Receive batches of 10, hand each to the consumer, delete what succeeded, until the queue is empty.
    Returns (seconds, seconds in the handler, records, failed records)."""
    from local.lambda_router import call_handler
    from local.pollers import lambda_event

    clock = time.perf_counter
    in_handler = 0.0
    records = failed = 0
    started = clock()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=0, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        event = lambda_event(messages, queue_arn, region)
        t0 = clock()
        result = call_handler("tracking_consumer", event)
        in_handler += clock() - t0
        failures = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failures]
        if done:
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        records += len(messages)
        failed += len(failures)
    return clock() - started, in_handler, records, failed


def _put_items(ddb: Any, table: str, n: int, tag: str) -> float:
    """`n` items of about an event marker's size, one PutItem each."""
    clock = time.perf_counter
    started = clock()
    for i in range(n):
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": f"BENCHPUT#{tag}#{i:05d}"},
                "sk": {"S": f"CARRIEREVT#easypost#evt_{tag}_{i}"},
                "data": {"S": '{"status": "in_transit"}'},
                "created_at": {"S": "2026-01-01T00:00:00.000000Z"},
            },
        )
    return clock() - started


def run_tracking(returns: int = RETURNS, rounds: int = ROUNDS) -> TrackingResult:
    """`rounds` rounds, each in a fresh emulation (so every round starts from the same empty table and queues)."""
    started = time.perf_counter()
    result = TrackingResult(returns=returns, rounds=rounds)
    result.plan = (
        f"{rounds} rounds, each in a fresh emulation: {returns} returns with one or two EasyPost events each (posted "
        f"to the webhook, queued), then the drain (batches of {BATCH}) and as many PutItems, in alternating order"
    )
    for r in range(rounds):
        try:
            _round(result, r, drain_first=r % 2 == 0)
        except Exception:
            result.errors.append(traceback.format_exc(limit=6))
            break
    result.seconds = time.perf_counter() - started
    return result


def _round(result: TrackingResult, r: int, *, drain_first: bool) -> None:
    import os

    from app import app

    with in_process_stack() as resources, Client(app) as client:
        api = Api(client)
        tenant = api.tenant()
        sqs, ddb = boto3.client("sqs"), boto3.client("dynamodb")
        queue_url = resources.queue_urls["boomerang-tracking"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        tag = f"{r:02d}"
        with MotoWithoutRollbackCopies() as moto_tx:
            secret = os.environ[EASYPOST_SECRET_ENV]
            made = _returns(tenant, result.returns + WARMUP, tag)
            # warm-up, not timed: the first events through a fresh process pay for imports and first-use caches
            _post_events(api, secret, made[:WARMUP], f"{tag}w")
            _drain(sqs, queue_url, queue_arn, sqs.meta.region_name)
            expected = _post_events(api, secret, made[WARMUP:], tag)
            events = sum(2 if status == "delivered" else 1 for status in expected.values())
            result.events = events
            watch = Attribution()
            forget_moto_instances()
            gc.collect()
            gc.freeze()  # what exists now is never walked by a collection while timing
            try:
                with watch:
                    for phase in (DRAIN, PUT) if drain_first else (PUT, DRAIN):
                        watch.start(phase)
                        if phase == DRAIN:
                            seconds, in_handler, records, failed = _drain(
                                sqs, queue_url, queue_arn, sqs.meta.region_name
                            )
                            result.drain_in_moto.append(watch.stop())
                            assert records == events, f"drained {records} records, expected {events}"
                            result.drain_seconds.append(seconds)
                            result.handler_seconds.append(in_handler)
                            result.batch_failures += failed
                        else:
                            result.put_seconds.append(_put_items(ddb, resources.table_name, events, tag))
                            result.put_in_moto.append(watch.stop())
                        forget_moto_instances()
            finally:
                gc.unfreeze()
            assert not moto_tx.failures, "a TransactWriteItems failed: the timings are void"
        result.wrong_status += _check(expected)


def _check(expected: dict[str, str]) -> int:
    """How many returns are not at the status their events lead to."""
    from chalicelib import bootstrap

    store = bootstrap.container().store
    return sum(store.get_return(return_id).status.value != status for return_id, status in expected.items())
