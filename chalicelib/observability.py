"""Powertools singletons. Logger and Metrics are cheap; the Tracer (aws_xray_sdk, ~0.3 s) is built on demand."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="boomerang")
metrics = Metrics(namespace="Boomerang", service="boomerang")


@lru_cache(maxsize=1)
def tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer(service="boomerang")
