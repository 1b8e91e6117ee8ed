"""Structure of every ASL definition: targets exist, Retry/Catch everywhere, bounded waits, placeholders covered."""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from infrastructure import definitions as d

MACHINES = {sm.name: sm for sm in d.STATE_MACHINES}
FUNCTION_NAMES = {f.name for f in d.FUNCTIONS}


def states_of(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]  # type: ignore[no-any-return]


def substituted(name: str) -> dict[str, Any]:
    sm = MACHINES[name]
    arns = {fn: f"arn:aws:lambda:eu-central-1:123456789012:function:boomerang-{fn}" for fn in FUNCTION_NAMES}
    return json.loads(sm.definition(arns))


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_placeholder_is_covered_and_substituted(name: str) -> None:
    sm = MACHINES[name]
    raw = (d.STATEMACHINES / sm.file).read_text()
    placeholders = set(re.findall(r"\$\{(\w+)\}", raw))
    assert placeholders == set(sm.functions) | set(sm.settings)
    assert "${" not in json.dumps(substituted(name))
    assert set(sm.functions.values()) <= FUNCTION_NAMES


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_targets_exist_and_every_state_is_reachable(name: str) -> None:
    definition = substituted(name)
    states = states_of(definition)
    assert definition["StartAt"] in states
    edges: dict[str, set[str]] = {}
    for state_name, state in states.items():
        assert re.fullmatch(r"[A-Z][A-Za-z]+", state_name), state_name
        targets = {state.get("Next"), state.get("Default")}
        targets |= {c["Next"] for c in state.get("Choices", [])}
        targets |= {c["Next"] for c in state.get("Catch", [])}
        targets.discard(None)
        assert targets <= set(states), (state_name, targets - set(states))
        edges[state_name] = {t for t in targets if t}
        if state["Type"] not in ("Succeed", "Fail", "Choice"):
            assert "Next" in state or state.get("End") is True, state_name
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(edges[current])
    assert seen == set(states), set(states) - seen


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_task_retries_transient_errors_catches_and_is_bounded(name: str) -> None:
    for state_name, state in states_of(substituted(name)).items():
        if state["Type"] != "Task":
            continue
        assert state.get("Retry"), f"{state_name} has no Retry"
        assert any("States.ALL" in c["ErrorEquals"] for c in state.get("Catch", [])), f"{state_name} has no Catch"
        assert "TimeoutSeconds" in state or "TimeoutSecondsPath" in state, f"{state_name} is unbounded"
        for retry in state["Retry"]:
            assert retry["MaxAttempts"] >= 1 and retry["BackoffRate"] >= 1 and retry["IntervalSeconds"] >= 1
        if state["Resource"].endswith(".waitForTaskToken"):
            assert "$$.Task.Token" in json.dumps(state["Parameters"])
            assert "States.Timeout" in {e for c in state["Catch"] for e in c["ErrorEquals"]}


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_every_lambda_task_points_at_a_handler_that_exists(name: str) -> None:
    for state in states_of(substituted(name)).values():
        if state["Type"] == "Task" and ":lambda:" in state["Resource"]:
            fn = state["Parameters"]["FunctionName"].rsplit("boomerang-", 1)[1]
            module = importlib.import_module(f"functions.{fn}.handler")
            assert callable(module.handler)


def test_refund_retries_fit_the_contract_bounds() -> None:
    # At most 6 attempts, and failed within 5 minutes of the click, even when every attempt takes as long as a
    # send_refund task may run. send_refund decides the waits (RetryPolicy); the state machine only waits.
    from chalicelib.config import Settings
    from chalicelib.domain.refunds import RetryPolicy

    defaults = Settings.model_fields
    policy = RetryPolicy(
        max_attempts=defaults["refund_max_attempts"].default,
        deadline_seconds=defaults["refund_deadline_seconds"].default,
        base_seconds=defaults["refund_retry_base_seconds"].default,
        max_wait_seconds=defaults["refund_retry_max_wait_seconds"].default,
        attempt_seconds=min(60, defaults["refund_deadline_seconds"].default // 5),
    )
    send = substituted(d.REFUND.name)["States"]["SendRefund"]
    assert not any("RefundTargetError" in r["ErrorEquals"] for r in send["Retry"])
    fn = next(f for f in d.FUNCTIONS if f.name == "send_refund")
    assert policy.attempt_seconds >= fn.timeout_seconds  # an attempt is bounded by the Lambda's timeout
    for retry_after in (None, 0.5, 30.0, 200.0):
        elapsed, attempts = 0.0, 0
        while True:
            attempts += 1
            elapsed += policy.attempt_seconds
            wait = policy.next_wait(attempts, elapsed, retry_after)
            if wait is None:
                break
            assert retry_after is None or wait >= retry_after
            elapsed += wait
        assert attempts <= 6
        assert elapsed <= 300


def test_a_failed_refund_tells_the_merchant_the_error_message_not_the_lambda_stack_trace() -> None:
    from functions.refund_failed.handler import DEFAULT_MESSAGE, failure_message

    cause = json.dumps(
        {
            "errorType": "ShopError",
            "errorMessage": "WooCommerce: the store address must start with https://.",
            "stackTrace": ['  File "/var/task/chalicelib/bootstrap.py", line 181, in shop\n'],
        }
    )
    assert failure_message({"Error": "ShopError", "Cause": cause}) == (
        "WooCommerce: the store address must start with https://."
    )
    assert failure_message({"Error": "RefundTargetError", "Cause": "HTTP 503"}) == "HTTP 503"
    assert failure_message({"Error": "States.Timeout"}) == "States.Timeout"
    assert failure_message({}) == DEFAULT_MESSAGE
