"""Move the messages of a dead-letter queue back to its source queue, once the cause of their failures is fixed.

    python -m infrastructure.redrive --queue tracking|photos|notifications [--max N] [--dry-run] [--local]
    make redrive QUEUE=tracking [MAX=N] [DRY_RUN=1] [LOCAL=1]

The queues are infrastructure/definitions.QUEUES (`boomerang-tracking` and its DLQ `boomerang-tracking-dlq`, ...),
found by name with GetQueueUrl in the account and region of the environment (AWS credentials as for the AWS CLI;
`--local`: the emulation of `make run`). Every consumer is idempotent, so a message is never lost but may, rarely,
be delivered twice: it is deleted from the DLQ only after the source queue accepted it (a failed send leaves it in the
DLQ, visible again when the command ends), and a delete that fails after a successful send leaves a copy behind.
A message that fails again while the command runs and comes back to the DLQ is not moved a second time.
Message bodies are never printed (they may hold personal data).

An operator's command, run from a checkout like `cdk deploy`: it lives here, not in chalicelib/, so it is never
packaged into a Lambda; its output is for the person at the terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

BATCH = 10  # SQS's maximum per ReceiveMessage / SendMessageBatch / DeleteMessageBatch
VISIBILITY_SECONDS = 60  # how long a message being moved stays hidden in the DLQ (if this command dies meanwhile)
LOCAL_REGION = "eu-central-1"  # local mode's default (local/stack.py REGION)
_ATTRIBUTE_FIELDS = ("DataType", "StringValue", "BinaryValue")


@dataclass
class RedriveResult:
    source: str
    dead_letter: str
    dry_run: bool
    read: int = 0  # messages taken from the DLQ (a dry run: that would be moved)
    moved: int = 0  # sent to the source queue and deleted from the DLQ
    failed: int = 0  # the source queue did not accept them: still in the DLQ
    not_deleted: int = 0  # sent, but the delete from the DLQ failed: a copy is left there (consumers are idempotent)
    came_back: int = 0  # moved during this run, failed again and back in the DLQ: left there
    message_ids: list[str] = field(default_factory=list)  # of the messages read (for the log of a dry run)

    def summary(self) -> str:
        if self.dry_run:
            return f"dry run: {self.read} message(s) in {self.dead_letter} would move to {self.source}; nothing moved"
        text = f"moved {self.moved} of {self.read} message(s) from {self.dead_letter} to {self.source}"
        extras = [
            f"{self.failed} not accepted by {self.source}, still in {self.dead_letter}" if self.failed else "",
            f"{self.not_deleted} sent but not deleted from {self.dead_letter} (a copy remains)"
            if self.not_deleted
            else "",
            f"{self.came_back} failed again and came back (left in {self.dead_letter})" if self.came_back else "",
        ]
        return "; ".join([text, *(e for e in extras if e)])


def _attributes(message: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as ReceiveMessage gives them -> as SendMessage takes them."""
    return {
        name: {k: v for k, v in attr.items() if k in _ATTRIBUTE_FIELDS}
        for name, attr in (message.get("MessageAttributes") or {}).items()
    }


def redrive(
    sqs: Any,
    source_url: str,
    dead_letter_url: str,
    *,
    max_messages: int | None = None,
    dry_run: bool = False,
    wait_seconds: int = 1,
    say: Callable[[str], None] = print,
) -> RedriveResult:
    """Move up to `max_messages` (all: None) messages from `dead_letter_url` to `source_url`, body and message
    attributes unchanged; each is deleted from the DLQ only after the source queue accepted it. Stops when the DLQ is
    empty, at `max_messages`, or when sending fails altogether."""
    result = RedriveResult(
        source=source_url.rsplit("/", 1)[-1], dead_letter=dead_letter_url.rsplit("/", 1)[-1], dry_run=dry_run
    )
    held: list[str] = []  # receipt handles of messages left in the DLQ: visible again at the end
    sent: set[str] = set()  # message ids the source queue gave the messages moved by this run
    try:
        while max_messages is None or result.read < max_messages:
            want = BATCH if max_messages is None else min(BATCH, max_messages - result.read)
            messages: list[dict[str, Any]] = sqs.receive_message(
                QueueUrl=dead_letter_url,
                MaxNumberOfMessages=want,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=VISIBILITY_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            again = [m for m in messages if m["MessageId"] in sent]
            result.came_back += len(again)
            held.extend(m["ReceiptHandle"] for m in again)
            batch = [m for m in messages if m["MessageId"] not in sent]
            result.read += len(batch)
            result.message_ids.extend(m["MessageId"] for m in batch)
            if dry_run:
                held.extend(m["ReceiptHandle"] for m in batch)
                for m in batch:
                    receives = (m.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
                    say(f"  {m['MessageId']} (received {receives} times)")
                continue
            if batch and not _move(sqs, source_url, dead_letter_url, batch, result, held, sent, say):
                break
    finally:
        _release(sqs, dead_letter_url, held)
    return result


def _move(
    sqs: Any,
    source_url: str,
    dead_letter_url: str,
    batch: list[dict[str, Any]],
    result: RedriveResult,
    held: list[str],
    sent: set[str],
    say: Callable[[str], None],
) -> bool:
    """Send one batch to the source queue, then delete what it accepted from the DLQ. False: stop (sending failed)."""
    entries = []
    for i, m in enumerate(batch):
        entry: dict[str, Any] = {"Id": str(i), "MessageBody": m["Body"]}
        attributes = _attributes(m)
        if attributes:
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    try:
        response = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
    except Exception as exc:  # nothing known to be sent: everything stays in the DLQ
        say(f"sending to {result.source} failed ({type(exc).__name__}): stopping; the messages stay in the DLQ")
        result.failed += len(batch)
        held.extend(m["ReceiptHandle"] for m in batch)
        return False
    accepted = {e["Id"]: e["MessageId"] for e in response.get("Successful", [])}
    for e in response.get("Failed", []):
        say(f"  {batch[int(e['Id'])]['MessageId']} not accepted by {result.source}: {e.get('Code')}")
    result.failed += len(batch) - len(accepted)
    held.extend(m["ReceiptHandle"] for i, m in enumerate(batch) if str(i) not in accepted)
    sent.update(accepted.values())
    if not accepted:
        return True
    deletes = [{"Id": i, "ReceiptHandle": batch[int(i)]["ReceiptHandle"]} for i in accepted]
    try:
        failed_deletes = len(sqs.delete_message_batch(QueueUrl=dead_letter_url, Entries=deletes).get("Failed", []))
    except Exception as exc:
        say(f"deleting from {result.dead_letter} failed ({type(exc).__name__}): the sent messages remain there too")
        failed_deletes = len(deletes)
    result.not_deleted += failed_deletes
    result.moved += len(deletes) - failed_deletes
    return True


def _release(sqs: Any, dead_letter_url: str, handles: list[str]) -> None:
    """Messages left in the DLQ become visible again now, not after VISIBILITY_SECONDS."""
    for start in range(0, len(handles), BATCH):
        chunk = handles[start : start + BATCH]
        try:
            sqs.change_message_visibility_batch(
                QueueUrl=dead_letter_url,
                Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
            )
        except Exception as exc:  # they become visible after VISIBILITY_SECONDS anyway
            print(f"could not make {len(chunk)} message(s) visible again now ({type(exc).__name__})", file=sys.stderr)


def queues() -> dict[str, Any]:
    """Short name (the queue's name without `boomerang-`) -> its definition."""
    from infrastructure import definitions as d

    return {q.name.removeprefix("boomerang-"): q for q in d.QUEUES}


def main(argv: list[str] | None = None, sqs: Any = None) -> int:
    known = queues()
    parser = argparse.ArgumentParser(
        prog="python -m infrastructure.redrive", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--queue", required=True, choices=sorted(known), help="whose dead-letter queue to redrive")
    parser.add_argument("--max", type=int, default=None, metavar="N", help="move at most N messages (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="count and list the messages, move nothing")
    parser.add_argument("--local", action="store_true", help="the emulation of `make run` (localhost:$MOTO_PORT)")
    args = parser.parse_args(argv)
    if args.max is not None and args.max < 1:
        parser.error("--max must be at least 1")
    if sqs is None:
        sqs = _client(local=args.local)
    queue = known[args.queue]
    source_url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    dead_letter_url = sqs.get_queue_url(QueueName=queue.dlq_name)["QueueUrl"]
    result = redrive(sqs, source_url, dead_letter_url, max_messages=args.max, dry_run=args.dry_run)
    print(result.summary())
    return 0 if result.failed == 0 and result.not_deleted == 0 else 1


def _client(*, local: bool) -> Any:
    import boto3

    if not local:
        return boto3.session.Session().client("sqs")
    port = os.environ.get("MOTO_PORT") or "5000"
    return boto3.session.Session(
        aws_access_key_id="local",  # the emulation's: local mode never reaches a real account
        aws_secret_access_key="local",  # noqa: S106
        region_name=os.environ.get("AWS_DEFAULT_REGION") or LOCAL_REGION,
    ).client("sqs", endpoint_url=f"http://127.0.0.1:{port}")


if __name__ == "__main__":
    sys.exit(main())
