"""The cold-start baseline: a Lambda handler that imports only boto3 and the Powertools Logger."""

from __future__ import annotations

from typing import Any

import boto3  # noqa: F401  (imported for its cost, like a real handler)
from aws_lambda_powertools import Logger

logger = Logger(service="baseline")


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return event
