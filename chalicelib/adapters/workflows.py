"""Step Functions: start executions (named, so a retry cannot start a second one) and answer task tokens."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.adapters.aws_clients import client


class StepFunctionsWorkflows:
    def __init__(self, processing_arn: str, refund_arn: str) -> None:
        self.processing_arn = processing_arn
        self.refund_arn = refund_arn

    def _start(self, arn: str, name: str, payload: dict[str, Any]) -> str:
        sfn = client("stepfunctions")
        try:
            resp = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))
        except sfn.exceptions.ExecutionAlreadyExists:
            # Same name: the first start won; this one is a retry of it.
            return f"{arn.replace(':stateMachine:', ':execution:')}:{name}"
        return str(resp["executionArn"])

    def start_processing(self, return_id: str, payload: dict[str, Any]) -> str:
        return self._start(self.processing_arn, f"{return_id}-processing", payload)

    def start_refund(self, refund_id: str, payload: dict[str, Any]) -> str:
        return self._start(self.refund_arn, refund_id, payload)

    def send_task_success(self, token: str, output: dict[str, Any]) -> None:
        client("stepfunctions").send_task_success(taskToken=token, output=json.dumps(output))
