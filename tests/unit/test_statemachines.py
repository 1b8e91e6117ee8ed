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
    # At most 6 attempts, and failed within 5 minutes of the click: sum of waits + every attempt's timeout.
    sm = d.REFUND
    definition = substituted(sm.name)
    send = definition["States"]["SendRefund"]
    retry = next(r for r in send["Retry"] if "RefundTargetError" in r["ErrorEquals"])
    attempts = retry["MaxAttempts"] + 1
    assert attempts == 6
    waits = sum(retry["IntervalSeconds"] * retry["BackoffRate"] ** i for i in range(retry["MaxAttempts"]))
    assert waits + attempts * send["TimeoutSeconds"] < 300
