"""The in-process environment of the lifecycle run (the same as tests/conftest.py): set before boto3 or the app load."""

from __future__ import annotations

import os

ENV = {
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "BOOMERANG_OPERATOR_KEY": "op_test_0123456789abcdef",  # tests.support.OPERATOR_KEY
    "PORTAL_TOKEN_SECRET": "portal-secret-for-tests-0123456789",
    "EASYPOST_WEBHOOK_SECRET": "whsec-easypost-tests",
    "POWERTOOLS_SERVICE_NAME": "boomerang-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "BoomerangBench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # DynamoDB Streams calls must reach moto (tests/conftest.py)
}


def apply() -> None:
    os.environ.update(ENV)
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_REGION"):
        os.environ.pop(var, None)
