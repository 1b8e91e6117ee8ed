"""One full return lifecycle in-process against moto, every DynamoDB request counted per API operation and Lambda.

The environment (fake credentials, secrets) must be set before this module is imported: see `bench.env`.
Mirrors tests/integration/test_lifecycle.py: tenant set-up, order, portal session, portal return, signed EasyPost
webhooks fed to the SQS consumer, scan, photo, inspection, the processing state machine (moto's threads), feedback,
a one-click refund (refund state machine), plus the read endpoints a client polls.
"""

from __future__ import annotations

import contextlib
import re
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from chalice.test import Client
from moto import mock_aws
from moto.core.config import DefaultConfig

from bench.counter import DynamoCallCounter, wrap_lambda_router
from tests.support import OPERATOR_KEY, Api, SteppingClock, easypost_event, sqs_event

if TYPE_CHECKING:
    from local.provision import Resources

MOTO_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FAST = {
    "RefundRetryIntervalSeconds": 1,
    "RefundRetryBackoffRate": 1,
    "RefundReconcileWaitSeconds": 1,
    "TaskRetryIntervalSeconds": 1,
}
EASYPOST_SECRET_ENV = "EASYPOST_WEBHOOK_SECRET"  # noqa: S105  (the variable's name, not a secret)
POLLING = " (polling)"


def route_matcher(routes: dict[str, Any]) -> Callable[[str], str]:
    """Map a concrete path (`/v1/returns/ret_1`) to its route template (`/v1/returns/{return_id}`)."""
    compiled = [
        (re.compile("^" + re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(t)) + "$"), t)
        for t in sorted(routes, key=lambda t: (t.count("{"), -len(t)))  # literal segments win over variables
    ]

    def match(path: str) -> str:
        path = path.split("?", 1)[0]
        for pattern, template in compiled:
            if pattern.match(path):
                return template
        return path

    return match


class CountingApi(Api):
    """tests.support.Api whose every request is one scope: `METHOD /route/{template}` (plus an optional label)."""

    def __init__(self, client: Client, counter: DynamoCallCounter, routes: dict[str, Any]) -> None:
        super().__init__(client)
        self.counter = counter
        self.template = route_matcher(routes)
        self.label = ""
        self.statuses: dict[str, set[int]] = {}

    def call(
        self,
        method: str,
        path: str,
        key: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        name = f"{method} {self.template(path)}{self.label}"
        with self.counter.scope(name):
            resp = super().call(method, path, key, body, headers, raw)
        self.statuses.setdefault(name, set()).add(resp.status_code)
        return resp

    def labelled(self, label: str) -> _Label:
        return _Label(self, label)


class _Label:
    def __init__(self, api: CountingApi, label: str) -> None:
        self.api, self.label = api, label

    def __enter__(self) -> None:
        self.api.label = self.label

    def __exit__(self, *exc: object) -> None:
        self.api.label = ""


@dataclass
class LifecycleResult:
    counter: DynamoCallCounter
    statuses: dict[str, set[int]]
    steps: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


class Lifecycle:
    def __init__(self, api: CountingApi, counter: DynamoCallCounter, queue_url: str, machines: list[str]) -> None:
        self.api = api
        self.counter = counter
        self.queue_url = queue_url
        self.machines = machines
        self.steps: list[str] = []

    def step(self, text: str) -> None:
        self.steps.append(text)

    def drain_tracking_queue(self) -> int:
        """Play the SQS event source mapping: receive a batch, hand it to the consumer, delete what succeeded."""
        from local import lambda_router

        sqs = boto3.client("sqs")
        msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        event = sqs_event(msgs)
        result = lambda_router.call_handler("tracking_consumer", event)  # the bench's wrapper counts it
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        assert not failed, f"tracking consumer failed {failed}"
        for m in msgs:
            sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(msgs)

    def wait_for(self, key: str, return_id: str, status: str, timeout: float = 40) -> dict[str, Any]:
        deadline = time.time() + timeout
        with self.api.labelled(POLLING):
            while True:
                ret = self.api.ok("GET", f"/v1/returns/{return_id}", key)
                if ret["status"] == status:
                    return dict(ret)
                assert time.time() < deadline, f"still {ret['status']}, wanted {status}: {ret['timeline']}"
                time.sleep(0.2)

    def wait_for_executions(self, timeout: float = 40) -> None:
        """Leave no state machine running when the mock goes away."""
        sfn = boto3.client("stepfunctions")
        deadline = time.time() + timeout
        while time.time() < deadline:
            running = [
                e
                for arn in self.machines
                for e in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
            ]
            if not running:
                return
            time.sleep(0.2)
        raise AssertionError(f"state machines still running after {timeout}s")

    def run(self, clock: SteppingClock, easypost_secret: str) -> None:
        from chalicelib.domain.signatures import easypost_signature

        api = self.api
        api.ok("GET", "/v1/health")

        self.step("tenant set-up (operator: warehouse, merchant; merchant: policy, guidelines, refunds)")
        t = api.tenant()
        m_key, wh_key = t["m_key"], t["wh_key"]
        api.ok(
            "PUT",
            "/v1/settings/policy",
            m_key,
            {
                "return_window_days": 30,
                "non_returnable_tags": ["final-sale"],
                "reasons": [{"code": "too_small", "label": "Too small"}, {"code": "damaged", "label": "Damaged"}],
            },
        )
        api.ok(
            "PUT",
            "/v1/settings/guidelines",
            m_key,
            {
                "rules": [
                    {
                        "name": "damaged needs a look",
                        "when": "checks.damaged == true",
                        "grade": "B",
                        "disposition": "refurbish",
                        "clarify": True,
                    }
                ],
                "default": {"grade": "A", "disposition": "restock"},
            },
        )
        api.ok("PUT", "/v1/settings/refunds", m_key, {"target": "manual", "auto_refund": False})

        self.step("order, portal session, portal return")
        order = api.order(m_key)
        token = api.session(t["slug"], order)
        api.ok("GET", "/v1/portal/order", token)
        ret = api.ok(
            "POST",
            "/v1/portal/returns",
            token,
            {
                "items": [
                    {"line_item_id": "L1", "quantity": 2, "reason": "too_small"},
                    {"line_item_id": "L2", "quantity": 1, "reason": "damaged"},
                ]
            },
            201,
        )
        rid, tn = ret["id"], ret["tracking_number"]
        api.ok("GET", f"/v1/portal/returns/{rid}", token)
        api.ok("GET", f"/v1/track/{ret['tracking_token']}")

        self.step("carrier: two signed EasyPost webhooks, then the tracking consumer drains the queue")
        for n, status, hours in ((1, "in_transit", 5), (2, "delivered", 20)):
            body = easypost_event(f"evt_{n}", tn, status, clock.advance(hours))
            sig = easypost_signature(easypost_secret, body)
            resp = api.call("POST", "/v1/webhooks/easypost", raw=body, headers={"X-Hmac-Signature": sig})
            assert resp.status_code // 100 == 2, (resp.status_code, resp.body)
        assert self.drain_tracking_queue() == 2
        assert api.ok("GET", f"/v1/returns/{rid}", m_key)["status"] == "delivered"
        api.ok("GET", "/v1/returns?status=delivered&limit=10", m_key)

        self.step("warehouse: scan, photo upload, inspection -> processing state machine")
        clock.advance(2)
        assert api.ok("POST", "/v1/warehouse/scans", wh_key, {"barcode": tn})["status"] == "received"
        api.ok(
            "POST",
            f"/v1/warehouse/returns/{rid}/photos",
            wh_key,
            {"content_type": "image/jpeg", "line_item_id": "L2"},
            201,
        )
        api.ok(
            "POST",
            f"/v1/warehouse/returns/{rid}/inspection",
            wh_key,
            {
                "items": [
                    {"line_item_id": "L1", "received_quantity": 2, "checks": {"damaged": False}},
                    {"line_item_id": "L2", "received_quantity": 1, "checks": {"damaged": True}},
                ]
            },
            202,
        )
        self.wait_for(m_key, rid, "awaiting_feedback")

        self.step("merchant: feedback (approve), then a one-click refund -> refund state machine")
        api.ok("POST", f"/v1/returns/{rid}/feedback", m_key, {"decision": "approve"})
        self.wait_for(m_key, rid, "completed")
        first = api.ok("POST", f"/v1/returns/{rid}/refund", m_key, {}, 202, headers={"Idempotency-Key": "bench-1"})
        done = self.wait_for(m_key, rid, "refunded")
        assert done["refund"]["status"] == "succeeded", done["refund"]
        with api.labelled(" (same Idempotency-Key again)"):
            again = api.ok("POST", f"/v1/returns/{rid}/refund", m_key, {}, 202, headers={"Idempotency-Key": "bench-1"})
        assert again["refund_id"] == first["refund_id"], (first, again)
        api.ok("GET", f"/v1/returns/{rid}/refunds", m_key)
        token = api.session(t["slug"], order)  # the first portal session has expired by now (clock moved on)
        assert api.ok("GET", f"/v1/portal/returns/{rid}", token)["status"] == "refunded"
        self.wait_for_executions()
        self.step("done: return refunded, no state machine running")


@contextlib.contextmanager
def in_process_stack(clock: Callable[[], Any] | None = None) -> Iterator[Resources]:
    """moto as AWS with our resources provisioned, our Lambdas routed in-process and the app's container pointed at
    them (with `clock` as its clock, if given); the environment is restored afterwards."""
    import os

    from chalicelib import bootstrap
    from local import lambda_router, moto_fixes
    from local.provision import provision

    assert os.environ.get("BOOMERANG_OPERATOR_KEY") == OPERATOR_KEY, "bench.env.apply() must run first"
    saved_env = dict(os.environ)
    with mock_aws(config=MOTO_CONFIG):
        lambda_router.install()
        moto_fixes.install()
        resources = provision(boto3.session.Session(), settings_overrides=FAST)
        os.environ.update(resources.env())
        os.environ["FEEDBACK_TIMEOUT_SECONDS"] = "60"
        bootstrap.reset()
        if clock is not None:
            bootstrap.container().clock = clock
        try:
            yield resources
        finally:
            bootstrap.reset()
            os.environ.clear()
            os.environ.update(saved_env)


def run_lifecycle() -> LifecycleResult:
    """Provision moto, run the lifecycle with the counter installed, and return what was counted."""
    import os

    from app import app

    started = time.perf_counter()
    counter = DynamoCallCounter()
    statuses: dict[str, set[int]] = {}
    steps: list[str] = []
    error: str | None = None
    clock = SteppingClock()
    with in_process_stack(clock) as resources, counter, wrap_lambda_router(counter), Client(app) as client:
        api = CountingApi(client, counter, app.routes)
        lifecycle = Lifecycle(
            api,
            counter,
            resources.queue_urls["boomerang-tracking"],
            list(resources.state_machine_arns.values()),
        )
        try:
            lifecycle.run(clock, os.environ[EASYPOST_SECRET_ENV])
        except Exception:
            error = traceback.format_exc(limit=6)
            with contextlib.suppress(AssertionError):
                lifecycle.wait_for_executions(timeout=20)
        statuses = api.statuses
        steps = lifecycle.steps
    return LifecycleResult(counter, statuses, steps, error, time.perf_counter() - started)
