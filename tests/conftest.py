"""Test environment: fake AWS credentials, no endpoint override, moto with Step Functions executing our ASL."""

from __future__ import annotations

import os

# Before anything imports boto3 or the app.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "BOOMERANG_OPERATOR_KEY": "op_test_0123456789abcdef",
        "PORTAL_TOKEN_SECRET": "portal-secret-for-tests-0123456789",
        "EASYPOST_WEBHOOK_SECRET": "whsec-easypost-tests",
        "POWERTOOLS_SERVICE_NAME": "boomerang-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "BoomerangTests",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # the deployed level (infrastructure/definitions.LOG_LEVEL, asserted in tests/infrastructure): a log call
        # that fails only when its line is written must fail here too
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # botocore's account-based endpoints would send DynamoDB Streams calls where moto does not intercept them
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
)
for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
    os.environ.pop(var, None)

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from chalicelib import bootstrap  # noqa: E402
from local import lambda_router, moto_fixes, outbox  # noqa: E402
from local.provision import Resources, provision  # noqa: E402
from tests.support import iam_audit  # noqa: E402

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FAST = {
    "RefundRetryIntervalSeconds": 1,
    "RefundRetryBackoffRate": 1,
    "RefundReconcileWaitSeconds": 1,
    "TaskRetryIntervalSeconds": 1,
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Resources]:
    """A fresh emulated account with every Boomerang resource, and the app's settings pointing at it.

    Domain events reach the bus only when a test drains the outbox (tests.support.drain_outbox): explicitly.
    """
    with mock_aws(config=MOTO_CONFIG), iam_audit.audited() as audit:  # type: ignore[arg-type]
        lambda_router.install()
        moto_fixes.install()
        resources = provision(boto3.session.Session(), settings_overrides=FAST)
        for key, value in resources.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("FEEDBACK_TIMEOUT_SECONDS", "60")
        # refund attempts 1 s apart (the contract's bounds with production values: tests/unit/test_statemachines)
        monkeypatch.setenv("REFUND_RETRY_BASE_SECONDS", "1")
        monkeypatch.setenv("REFUND_RETRY_MAX_WAIT_SECONDS", "1")
        monkeypatch.setenv("REFUND_DEADLINE_SECONDS", "60")
        bootstrap.reset()
        yield resources
        _stop_executions(resources)
        outbox.forget()
        bootstrap.reset()
    # least privilege, checked against the code paths this test ran (infrastructure/definitions.py FUNCTIONS.needs)
    iam_audit.record(audit)
    assert not audit.denied, "AccessDenied in AWS: " + "; ".join(sorted({str(a) for a in audit.denied}))


def _stop_executions(resources: Resources) -> None:
    """Executions still waiting (e.g. for merchant feedback) would run on in moto's threads after the test."""
    sfn = boto3.client("stepfunctions")
    for arn in resources.state_machine_arns.values():
        for ex in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
            _stop(sfn, ex["executionArn"])


def _stop(sfn: Any, execution_arn: str) -> None:
    """moto cannot stop an execution whose worker thread has not set up its environment yet (AttributeError on a
    busy machine, seen in CI): wait for it briefly, then leave it (the mock is torn down right after)."""
    import time

    for _attempt in range(20):
        try:
            sfn.stop_execution(executionArn=execution_arn)
            return
        except AttributeError:
            time.sleep(0.05)


@pytest.fixture(autouse=True)
def every_label_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every label a test makes is rendered and its barcode scanned back to its tracking number (issue 4: labels
    must decode with a real decoder). A label that does not scan fails the request that made it."""
    from chalicelib.adapters.carriers.base import Label, LabelRequest
    from chalicelib.adapters.carriers.sandbox import SandboxCarrier
    from tests.support import assert_label_scans

    original = SandboxCarrier.create_label

    def checked(self: SandboxCarrier, request: LabelRequest) -> Label:
        label = original(self, request)
        assert_label_scans(label.content, label.tracking_number, label.qr_payload)
        return label

    monkeypatch.setattr(SandboxCarrier, "create_label", checked)
