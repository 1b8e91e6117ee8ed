"""Play Lambda's DynamoDB stream event source mapping of the transactional outbox (local mode and tests only).

In AWS, the table's stream invokes functions/event_publisher with the new outbox records (infrastructure/definitions
.OUTBOX: its filter, partial batch failures). moto's own stream -> Lambda mapping does not do for us: it always runs
the function in Docker, empties the stream once delivered, ignores the filter, and delivers the records of a
transaction that is then cancelled. So nothing is mapped in moto (local/provision.py only enables the stream) and
`OutboxRelay` reads the stream itself, as Lambda does:

- under moto_fixes' write lock, so that no transaction is half applied while the stream is read;
- with a fresh shard iterator for every read (AFTER_SEQUENCE_NUMBER of the checkpoint, TRIM_HORIZON before the
  first): moto rolls a cancelled transaction back by putting a copy of the table (and its stream) in place, which
  orphans any iterator handed out before;
- records filtered with OUTBOX.filter_pattern(), reshaped as Lambda delivers them (eventSourceARN, the region,
  ApproximateCreationDateTime in epoch seconds, JSON only), in batches of OUTBOX.batch_size;
- `batchItemFailures` honoured as Lambda does: the checkpoint stays before the first failed record, and the next
  read starts there (later records of that batch are delivered again: at least once).

Tests call `drain()` where a test needs the events on the bus (tests/support.drain_outbox); local mode runs an
`OutboxPoller` thread that drains every POLL_SECONDS.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infrastructure import definitions as d
from local import lambda_router, moto_fixes

POLL_SECONDS = 0.5
READ_LIMIT = 1000  # records per GetRecords (DynamoDB Streams' maximum)


def matches(pattern: dict[str, Any], data: Any) -> bool:
    """Whether `data` matches a Lambda/EventBridge event pattern, for the operators OUTBOX's filter uses: exact
    values, `prefix` and `exists`, nested objects (unsupported operators raise, so the filter cannot outgrow this)."""
    if not isinstance(data, dict):
        return False
    for key, rule in pattern.items():
        present, value = key in data, data.get(key)
        if isinstance(rule, dict):
            if not present or not matches(rule, value):
                return False
        elif not any(_matches_one(alternative, present, value) for alternative in rule):
            return False
    return True


def _matches_one(alternative: Any, present: bool, value: Any) -> bool:
    if isinstance(alternative, dict):
        if set(alternative) == {"exists"}:
            return present == bool(alternative["exists"])
        if set(alternative) == {"prefix"}:
            return present and isinstance(value, str) and value.startswith(alternative["prefix"])
        raise ValueError(f"filter operator not emulated: {alternative}")
    return present and value == alternative


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()  # binary attributes: base64, as in Lambda's event
    raise TypeError(f"not JSON: {type(value).__name__}")


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A record as GetRecords returns it (boto3) -> as Lambda hands it to the function."""
    change = dict(raw["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    record: dict[str, Any] = json.loads(
        json.dumps({**raw, "awsRegion": region, "eventSourceARN": stream_arn, "dynamodb": change}, default=_jsonable)
    )
    return record


@dataclass
class Drained:
    delivered: int = 0  # outbox records handed to the publisher (again, after a failure)
    failed: int = 0  # of those, reported as not published (delivered again by the next drain)


class OutboxRelay:
    """Reads one table stream from TRIM_HORIZON on, remembering how far it got (one per stream: `relay_for`)."""

    def __init__(self, stream_arn: str, function: str = d.OUTBOX.consumer) -> None:
        import boto3
        from botocore.config import Config

        # Account-based endpoints would send the streams calls where moto (in-process) does not answer.
        self.streams = boto3.session.Session().client(
            "dynamodbstreams", config=Config(account_id_endpoint_mode="disabled")
        )
        self.region: str = self.streams.meta.region_name
        self.stream_arn = stream_arn
        self.function = function
        self.pattern = d.OUTBOX.filter_pattern()
        self.checkpoint: str | None = None  # sequence number of the last record done with
        self.lock = threading.Lock()

    def drain(self) -> Drained:
        """Deliver every outbox record written since the last drain (until the stream is read or a batch fails)."""
        total = Drained()
        with self.lock:
            while True:
                records = self._read()
                if not records:
                    return total
                delivered, failed = self._deliver(records)
                total.delivered += delivered
                total.failed += failed
                if failed or len(records) < READ_LIMIT:
                    return total

    def _read(self) -> list[dict[str, Any]]:
        position: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self.checkpoint}
            if self.checkpoint
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        with moto_fixes.no_writes():
            # moto keeps one shard per stream (so one checkpoint does)
            (shard,) = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]
            iterator = self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard["ShardId"], **position)
            records: list[dict[str, Any]] = self.streams.get_records(
                ShardIterator=iterator["ShardIterator"], Limit=READ_LIMIT
            )["Records"]
        return records

    def _deliver(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        """Hand the matching records to the publisher in batches; move the checkpoint over what is done."""
        selected = [
            (index, lambda_record(r, self.stream_arn, self.region))
            for index, r in enumerate(records)
            if matches(self.pattern, r)
        ]
        delivered = 0
        for start in range(0, len(selected), d.OUTBOX.batch_size):
            batch = selected[start : start + d.OUTBOX.batch_size]
            failed = self._invoke([record for _, record in batch])
            delivered += len(batch)
            if failed:
                first = min(index for index, record in batch if record["dynamodb"]["SequenceNumber"] in failed)
                if first > 0:
                    self.checkpoint = records[first - 1]["dynamodb"]["SequenceNumber"]
                return delivered, len(failed)
        self.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
        return delivered, 0

    def _invoke(self, batch: list[dict[str, Any]]) -> set[str]:
        """The sequence numbers the function reports as failed (all of the batch if the invocation fails)."""
        numbers = {r["dynamodb"]["SequenceNumber"] for r in batch}
        try:
            result = lambda_router.call_handler(self.function, {"Records": batch}) or {}
        except Exception as exc:
            _say(f"{self.function}: batch of {len(batch)} failed ({type(exc).__name__}); delivered again next time")
            return numbers
        failed = {str(f["itemIdentifier"]) for f in result.get("batchItemFailures", [])} & numbers
        if failed:
            _say(f"{self.function}: {len(failed)} of {len(batch)} events not published; delivered again next time")
        return failed


_relays: dict[str, OutboxRelay] = {}
_relays_lock = threading.Lock()


def relay_for(stream_arn: str) -> OutboxRelay:
    """The relay of a stream (its checkpoint lives as long as the process, or until `forget`)."""
    with _relays_lock:
        if stream_arn not in _relays:
            _relays[stream_arn] = OutboxRelay(stream_arn)
        return _relays[stream_arn]


def forget() -> None:
    """Drop every relay and its checkpoint (tests: each test has a new emulated account)."""
    with _relays_lock:
        _relays.clear()


class OutboxPoller(threading.Thread):
    """Local mode: drain the outbox every `interval` seconds."""

    def __init__(self, stream_arn: str, stop: threading.Event, interval: float = POLL_SECONDS) -> None:
        super().__init__(name="outbox-relay", daemon=True)
        self.relay = relay_for(stream_arn)
        self.stop_event = stop
        self.interval = interval
        self.delivered = 0

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            try:
                self.delivered += self.relay.drain().delivered
            except Exception as exc:  # the emulation going away at shutdown, or a bug: try again next time
                if self.stop_event.is_set():
                    return
                _say(f"reading the stream failed ({type(exc).__name__}: {exc}); retrying")


def start_outbox_poller(stream_arn: str, stop: threading.Event) -> OutboxPoller:
    poller = OutboxPoller(stream_arn, stop)
    poller.start()
    return poller


def _say(text: str) -> None:
    sys.stderr.write(f"outbox {text}\n")
