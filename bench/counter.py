"""Count every DynamoDB API request made in this process, attributed to the scope (API request, Lambda) that made it.

Both boto3 and PynamoDB end in `botocore.client.BaseClient._make_api_call` (PynamoDB builds its own botocore session
with `botocore.session.get_session()`, but its `Connection.dispatch` still calls `client._make_api_call`), so patching
that one method sees every request whichever session made the client. A TransactWriteItems or BatchGetItem is one
call, as the contract counts them. Retries inside botocore are not separate calls here (moto never throttles).

Attribution is per thread: the API runs in the caller's thread (chalice.test.Client), while Step Functions runs our
Lambdas in moto's threads; each sets its own scope, so concurrent work never mixes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient
from botocore.endpoint import Endpoint

UNATTRIBUTED = "(outside any scope)"


@dataclass(frozen=True)
class Call:
    scope: str
    operation: str
    table: str | None
    thread: str


@dataclass
class ScopeStats:
    """All the calls of the invocations of one scope (e.g. every `GET /v1/returns/{return_id}` request)."""

    invocations: int = 0
    per_invocation: list[Counter[str]] = field(default_factory=list)

    @property
    def totals(self) -> list[int]:
        return [sum(c.values()) for c in self.per_invocation]

    @property
    def operations(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.per_invocation:
            out.update(c)
        return out


class DynamoCallCounter:
    """`with DynamoCallCounter() as counter:` ... `with counter.scope("POST /v1/x"):` ...

    Outside a `scope`, calls are recorded under UNATTRIBUTED (they still count, e.g. towards `scans`).
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.stats: dict[str, ScopeStats] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._original: Callable[..., Any] | None = None
        self._original_send: Callable[..., Any] | None = None
        #: HTTP attempts per operation, seen one level lower (where moto or the network answers): equal to the
        #: calls unless botocore retried. A cross-check that no request bypassed `_make_api_call`.
        self.attempts: Counter[str] = Counter()

    # ----- installation ---------------------------------------------------------------------------------------
    def install(self) -> DynamoCallCounter:
        if self._original is not None:
            raise RuntimeError("already installed")
        original = BaseClient._make_api_call
        counter = self

        def _make_api_call(client: BaseClient, operation_name: str, api_params: Any) -> Any:
            if client.meta.service_model.service_name == "dynamodb":
                counter.record(operation_name, api_params)
            return original(client, operation_name, api_params)

        original_send = Endpoint._do_get_response

        def _do_get_response(endpoint: Endpoint, request: Any, operation_model: Any, context: Any) -> Any:
            if operation_model.service_model.service_name == "dynamodb":
                with counter._lock:
                    counter.attempts[operation_model.name] += 1
            return original_send(endpoint, request, operation_model, context)

        self._original, self._original_send = original, original_send
        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
        Endpoint._do_get_response = _do_get_response  # type: ignore[method-assign]
        return self

    def uninstall(self) -> None:
        if self._original is not None:
            BaseClient._make_api_call = self._original  # type: ignore[method-assign]
            self._original = None
        if self._original_send is not None:
            Endpoint._do_get_response = self._original_send  # type: ignore[method-assign]
            self._original_send = None

    def __enter__(self) -> DynamoCallCounter:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # ----- recording ------------------------------------------------------------------------------------------
    def _stack(self) -> list[tuple[str, Counter[str]]]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack  # type: ignore[no-any-return]

    def record(self, operation: str, params: Any = None) -> None:
        table = params.get("TableName") if isinstance(params, dict) else None
        stack = self._stack()
        scope = stack[-1][0] if stack else UNATTRIBUTED
        with self._lock:
            self.calls.append(Call(scope, operation, table, threading.current_thread().name))
            if stack:
                stack[-1][1][operation] += 1
            else:
                stats = self.stats.setdefault(UNATTRIBUTED, ScopeStats())
                if not stats.per_invocation:
                    stats.invocations = 1
                    stats.per_invocation.append(Counter())
                stats.per_invocation[0][operation] += 1

    @contextmanager
    def scope(self, name: str) -> Iterator[Counter[str]]:
        """Attribute this thread's calls to `name` (innermost scope wins); yields this invocation's counts."""
        calls: Counter[str] = Counter()
        stack = self._stack()
        stack.append((name, calls))
        try:
            yield calls
        finally:
            stack.pop()
            with self._lock:
                stats = self.stats.setdefault(name, ScopeStats())
                stats.invocations += 1
                stats.per_invocation.append(calls)

    # ----- reading --------------------------------------------------------------------------------------------
    def count(self, operation: str | None = None, scope: str | None = None) -> int:
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (operation is None or c.operation == operation) and (scope is None or c.scope == scope)
            )

    def by_operation(self) -> Counter[str]:
        with self._lock:
            return Counter(c.operation for c in self.calls)

    def scopes_with(self, operation: str) -> Counter[str]:
        with self._lock:
            return Counter(c.scope for c in self.calls if c.operation == operation)


@contextmanager
def wrap_lambda_router(counter: DynamoCallCounter, prefix: str = "lambda ") -> Iterator[None]:
    """Count each handler run through `local.lambda_router.call_handler` (Step Functions' Lambda invocations in
    moto, and the bench's own SQS event source) as one invocation of scope `lambda <name>`."""
    from local import lambda_router

    original = lambda_router.call_handler

    def call_handler(name: str, payload: Any) -> Any:
        with counter.scope(f"{prefix}{name}"):
            return original(name, payload)

    lambda_router.call_handler = call_handler
    try:
        yield
    finally:
        lambda_router.call_handler = original
