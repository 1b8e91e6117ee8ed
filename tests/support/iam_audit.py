"""Every AWS call a Lambda handler makes in the tests, checked against what infrastructure/definitions.py grants it.

IAM evaluation in miniature: botocore's `BaseClient._make_api_call` (where boto3 and PynamoDB both end) is wrapped;
a call made below a `functions/<name>/handler.py` frame (in any thread: Step Functions runs our Lambdas in moto's)
is turned into the IAM actions and resource names AWS would authorize (a TransactWriteItems item by item, a
HeadObject as s3:GetObject, an UploadPart as s3:PutObject ...) and checked with `definitions.allows` against that
function's `needs`. A call its grants do not allow is a denial: the function would fail in AWS with AccessDenied.
So the suites that run the functions cross-check the grants against the code paths they exercise.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from botocore.client import BaseClient

from infrastructure import definitions as d

FUNCTION_NEEDS = {fn.name: fn.needs for fn in d.FUNCTIONS}
SECRETS_PREFIX = "/boomerang/"  # the tests' settings (chalicelib.config default)


@dataclass(frozen=True)
class Access:
    function: str
    action: str
    resource: str
    name: str

    def __str__(self) -> str:
        return f"{self.function}: {self.action} on {self.resource} {self.name!r}"


def _function_of(frame: FrameType | None) -> str | None:
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if path.endswith("/handler.py") and "/functions/" in path:
            name = path.rsplit("/", 2)[-2]
            if name in FUNCTION_NEEDS:
                return name
        frame = frame.f_back
    return None


def _pk(item: dict[str, Any] | None) -> str:
    value = (item or {}).get(d.TABLE.pk, {})
    return str(value.get("S", "")) if isinstance(value, dict) else str(value)


_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_S3 = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}


def accesses(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(action, resource kind, name) AWS authorizes for one API call."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":
            out = []
            for entry in params.get("TransactItems", []):
                ((kind, body),) = entry.items()
                out.append((f"dynamodb:{_TRANSACT[kind]}", d.On.TABLE, _pk(body.get("Item") or body.get("Key"))))
            return out
        if operation == "TransactGetItems":
            return [("dynamodb:GetItem", d.On.TABLE, _pk(e["Get"]["Key"])) for e in params.get("TransactItems", [])]
        if operation == "BatchGetItem":
            return [
                ("dynamodb:BatchGetItem", d.On.TABLE, _pk(key))
                for table in params.get("RequestItems", {}).values()
                for key in table.get("Keys", [])
            ]
        if operation == "BatchWriteItem":
            return [
                (
                    "dynamodb:BatchWriteItem",
                    d.On.TABLE,
                    _pk((r.get("PutRequest") or r.get("DeleteRequest") or {}).get("Item")),
                )
                for table in params.get("RequestItems", {}).values()
                for r in table
            ]
        if operation == "Query":
            values = params.get("ExpressionAttributeValues", {})
            pk = next((str(v.get("S", "")) for v in values.values() if isinstance(v, dict) and "S" in v), "")
            return [("dynamodb:Query", d.On.TABLE, pk)]
        return [(f"dynamodb:{operation}", d.On.TABLE, _pk(params.get("Item") or params.get("Key")))]
    if service == "s3":
        action = _S3.get(operation, f"s3:{operation}")
        return [(action, d.On.BUCKET, "" if action == "s3:ListBucket" else str(params.get("Key", "")))]
    if service == "ssm":
        return [(f"ssm:{operation}", d.On.PARAMETERS, str(params.get("Name", "")).removeprefix(SECRETS_PREFIX))]
    if service == "sqs":
        name = str(params.get("QueueUrl") or params.get("QueueName") or "").rsplit("/", 1)[-1]
        return [(f"sqs:{operation}", d.On.QUEUE, name)]
    if service == "events":
        return [(f"events:{operation}", d.On.EVENT_BUS, "")]
    if service == "stepfunctions":
        arn = str(params.get("stateMachineArn", ""))
        name = arn.rsplit(":", 1)[-1] if arn else d.PROCESSING.name  # a task token: only processing waits for one
        return [(f"states:{operation}", d.On.STATE_MACHINE, name)]
    if service in {"ses", "sesv2"}:
        return [(f"ses:{operation}", d.On.MAIL, str(params.get("Source", "")))]
    return [(f"{service}:{operation}", service, "")]


class Audit:
    def __init__(self) -> None:
        self.seen: list[Access] = []
        self.denied: list[Access] = []
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        original = BaseClient._make_api_call
        self._original = original
        audit = self

        def _make_api_call(client: BaseClient, operation_name: str, api_params: Any) -> Any:
            function = _function_of(sys._getframe(1))
            if function is not None:
                audit.check(function, client.meta.service_model.service_name, operation_name, api_params)
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            BaseClient._make_api_call = self._original  # type: ignore[method-assign]
            self._original = None

    def check(self, function: str, service: str, operation: str, params: dict[str, Any]) -> None:
        for action, resource, name in accesses(service, operation, params or {}):
            access = Access(function, action, resource, name)
            with self._lock:
                self.seen.append(access)
                if not d.allows(FUNCTION_NEEDS[function], action, resource, name):
                    self.denied.append(access)

    def used(self, function: str) -> set[str]:
        return {a.action for a in self.seen if a.function == function}


_current: Audit | None = None


def current() -> Audit | None:
    """The audit of the running test (the `aws` fixture's)."""
    return _current


@contextmanager
def audited() -> Iterator[Audit]:
    global _current
    audit = Audit()
    audit.install()
    _current = audit
    try:
        yield audit
    finally:
        _current = None
        audit.uninstall()


def record(audit: Audit) -> None:
    """With IAM_AUDIT_LOG=<file>, append what each function used (to derive or review FUNCTIONS' needs)."""
    import os

    path = os.environ.get("IAM_AUDIT_LOG")
    if path:
        with open(path, "a") as out:
            for line in sorted({f"{a.function}\t{a.action}\t{a.resource}\t{a.name}" for a in audit.seen}):
                out.write(line + "\n")
