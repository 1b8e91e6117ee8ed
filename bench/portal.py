"""The customer portal in-process against moto: what a portal return costs in time, and in DynamoDB calls.

Latency: `POST /v1/portal/returns` (a return with a real PDF label written to S3) timed against `GET /v1/health`, the
floor of the stack (routing, middleware, JSON), and against the create-return service call without HTTP
(`returns.request_return` + `returns.to_view`, what the view calls). The three are interleaved in rounds, each round in
a rotated order, so drift on this shared machine hits them equally; only the ratios are meant to be compared.
Orders and portal sessions are prepared first (one order per return, so every return does the same work). Each sample
also records the time moto spent answering it (the emulated AWS: the harness's cost, not the app's) and the full
garbage collections during it. Two harness effects are kept out: moto's growing list of every model instance (each
TransactWriteItems leaves deep copies of the whole table behind, see `forget_moto_instances`), and collections walking
the heap built before timing (moto, imports, set-up data: frozen with `gc.freeze()`).

DynamoDB calls: every portal operation once or more, each request a scope of `bench.counter`, including the variants
that read more (an international GB return with customs, a pre-printed label, a return after a withdrawal).

The environment (fake credentials, secrets) must be set before this module is imported: see `bench.env`.
"""

from __future__ import annotations

import gc
import json
import statistics
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalice.test import Client

from bench.counter import UNATTRIBUTED, DynamoCallCounter, wrap_lambda_router
from bench.lifecycle import CountingApi, in_process_stack
from tests.support import OPERATOR_KEY, Api

REQUESTS = 200
WARMUP = 5
SERVICE_EVERY = 5  # the service-call baseline in every 5th round only: a create costs ~0.35 s here, the budget ~2 min
HEALTH = "GET /v1/health"
CREATE = "POST /v1/portal/returns"
SERVICE = "create-return service call (no HTTP)"
KINDS = (HEALTH, CREATE, SERVICE)

PORTAL_PREFIXES = ("POST /v1/portal/", "GET /v1/portal/", "GET /v1/track/", "lambda ")
SESSION = "POST /v1/portal/merchants/{merchant_slug}/sessions"
ORDER = "GET /v1/portal/order"
METHODS = "GET /v1/portal/methods"
PLAIN = " (label)"
GB = " (GB, customs)"
PREPRINTED = " (preprinted)"
AFTER_WITHDRAWAL = " (after a withdrawal)"
LINE = [{"line_item_id": "L1", "quantity": 1, "reason": "too_small"}]
GB_ADDRESS = {
    "name": "Jane Doe",
    "street": "Baker Street",
    "house_number": "221B",
    "postal_code": "NW1 6XE",
    "city": "London",
    "country": "GB",
}


# ----- statistics (pure) ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Latency:
    samples: tuple[float, ...]  # seconds
    in_moto: tuple[float, ...] = ()  # of each sample, the seconds moto spent answering (the emulated AWS)
    full_collections: int = 0  # the garbage collector's full (generation 2) collections during these samples
    full_collection_seconds: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return p90(self.samples)

    @property
    def outside_moto(self) -> tuple[float, ...]:
        """Each sample without moto's share: our code, botocore's client side, Chalice, the garbage collector."""
        return tuple(s - m for s, m in zip(self.samples, self.in_moto, strict=True))


def p90(samples: Sequence[float]) -> float:
    """The 90th percentile, interpolated between the two nearest samples (`inclusive`: within min..max)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[-1]


def rotated_rounds(kinds: Sequence[str], rounds: int, every: Mapping[str, int] | None = None) -> list[str]:
    """`rounds` rounds of every kind once, each round rotated one further (round r starts at its (r mod size)-th
    kind), so neither a steady drift nor what ran just before favours one kind. A kind in `every` (kind -> n) takes
    part only in every n-th round, starting with the first."""
    every = every or {}
    out: list[str] = []
    for r in range(rounds):
        members = [k for k in kinds if r % every.get(k, 1) == 0]
        out.extend(members[(r + i) % len(members)] for i in range(len(members)))
    return out


# ----- the run -------------------------------------------------------------------------------------------------------
@dataclass
class PortalResult:
    counter: DynamoCallCounter = field(default_factory=DynamoCallCounter)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    latency: dict[str, Latency] = field(default_factory=dict)
    requests: int = 0
    steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    latency_seconds: float = 0.0
    latency_plan: str = ""

    def portal_scopes(self) -> list[str]:
        """The measured scopes in order of first use (set-up requests are not scoped)."""
        return [n for n in self.counter.stats if n != UNATTRIBUTED and n.startswith(PORTAL_PREFIXES)]


def _recent() -> str:
    return (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(line: str, sku: str, qty: int, price: str, **extra: Any) -> dict[str, Any]:
    return {"line_item_id": line, "sku": sku, "name": f"Article {sku}", "quantity": qty, "unit_price": price, **extra}


def count_operations(setup: Api, api: CountingApi, steps: list[str]) -> None:
    """Each portal operation through the API; only `api`'s requests are scopes (set-up goes through `setup`)."""
    steps.append(
        "tenant A (default routing): session, order, methods, photo, 3 plain-label returns, read, track, cancel"
    )
    a = setup.tenant()
    first = None
    for _ in range(3):
        order = setup.order(a["m_key"], delivered_at=_recent())
        token = api.session(a["slug"], order)
        api.ok("GET", "/v1/portal/order", token)
        api.ok("GET", "/v1/portal/methods", token)
        with api.labelled(PLAIN):
            ret = api.ok("POST", "/v1/portal/returns", token, {"items": LINE}, 201)
        assert ret["label"] and ret["customs"] is None, ret
        first = first or (token, ret)
    assert first is not None
    token, ret = first
    api.ok("POST", "/v1/portal/photos", token, {"content_type": "image/jpeg", "line_item_id": "L2"}, 201)
    api.ok("GET", f"/v1/portal/returns/{ret['id']}", token)
    api.ok("GET", f"/v1/track/{ret['tracking_token']}")
    assert api.ok("POST", f"/v1/portal/returns/{ret['id']}/cancel", token, {})["status"] == "cancelled"

    steps.append("tenant B (routing: label + preprinted everywhere): a GB return with customs, a pre-printed one")
    b = setup.tenant()
    routing = {
        "routes": [
            {"countries": ["*"], "carriers": ["sandbox"], "methods": [{"type": "label"}, {"type": "preprinted"}]}
        ]
    }
    setup.ok("PUT", f"/v1/admin/warehouses/{b['warehouse']['id']}/routing", OPERATOR_KEY, routing)
    gb_order = setup.order(
        b["m_key"],
        delivered_at=_recent(),
        shipping_address=GB_ADDRESS,
        currency="GBP",
        items=[_item("L1", "JACKET", 1, "120.00", hs_code="620193", country_of_origin="IT", weight_grams=900)],
    )
    token = api.session(b["slug"], gb_order)
    methods = api.ok("GET", "/v1/portal/methods", token)["items"]
    assert methods and methods[0]["customs_required"], methods
    with api.labelled(GB):
        ret = api.ok("POST", "/v1/portal/returns", token, {"items": LINE}, 201)
    assert ret["customs"] and ret["customs"]["required"], ret["customs"]
    pre_order = setup.order(
        b["m_key"], delivered_at=_recent(), return_tracking_numbers=["PRE-0001"], items=[_item("L1", "A", 2, "20.00")]
    )
    token = api.session(b["slug"], pre_order)
    with api.labelled(PREPRINTED):
        ret = api.ok("POST", "/v1/portal/returns", token, {"items": LINE, "method_id": "preprinted"}, 201)
    assert ret["tracking_number"] == "PRE-0001" and ret["label"] is None, ret

    steps.append("tenant A: a withdrawal (confirmed), then a return for that order (linked to the withdrawal)")
    order = setup.order(a["m_key"], delivered_at=_recent())
    w = api.ok(
        "POST",
        f"/v1/portal/merchants/{a['slug']}/withdrawals",
        None,
        {"order_number": order["order_number"], "email": order["email"], "name": "Erika Mustermann", "confirm": True},
        201,
    )
    token = api.session(a["slug"], order)
    with api.labelled(AFTER_WITHDRAWAL):
        ret = api.ok("POST", "/v1/portal/returns", token, {"items": LINE}, 201)
    assert ret["withdrawal_id"] == w["id"], (ret["withdrawal_id"], w)


def measure_latency(api: Api, requests: int, warmup: int, service_every: int = SERVICE_EVERY) -> dict[str, Latency]:
    """Prepare an order (and for HTTP a portal session) per return, then time the three kinds interleaved."""
    from chalicelib import bootstrap
    from chalicelib.services import returns

    every = {SERVICE: service_every}
    warm = rotated_rounds(KINDS, warmup, every)
    plan = warm + rotated_rounds(KINDS, requests, every)
    t = api.tenant()
    body = json.dumps({"items": LINE}).encode()
    tokens = [api.session(t["slug"], api.order(t["m_key"], delivered_at=_recent())) for _ in range(plan.count(CREATE))]
    orders = [api.order(t["m_key"], delivered_at=_recent())["order_number"] for _ in range(plan.count(SERVICE))]
    merchant_id, warehouse_id = t["merchant"]["id"], t["warehouse"]["id"]
    http = api.client.http

    def health() -> None:
        resp = http.request("GET", "/v1/health", headers={"Content-Type": "application/json"})
        assert resp.status_code == 200, resp.body

    def create() -> None:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {tokens.pop()}"}
        resp = http.request("POST", "/v1/portal/returns", headers=headers, body=body)
        assert resp.status_code == 201, (resp.status_code, resp.body)

    def service() -> None:  # what the view calls, without routing, middleware, validation and JSON
        c = bootstrap.container()
        ret, timeline = returns.request_return(
            c,
            merchant_id=merchant_id,
            order_number=orders.pop(),
            lines=[dict(x) for x in LINE],
            actor="customer",
            warehouse_id=warehouse_id,
        )
        assert ret.label_key, ret
        returns.to_view(c, ret, timeline, audience="customer")

    runs: dict[str, Callable[[], None]] = {HEALTH: health, CREATE: create, SERVICE: service}
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    in_moto: dict[str, list[float]] = {k: [] for k in KINDS}
    watch = Attribution()
    clock = time.perf_counter
    forget_moto_instances()
    gc.collect()
    gc.freeze()  # what exists now (moto, the imports, the set-up data) is never walked by a collection while timing
    try:
        with watch, MotoWithoutRollbackCopies() as moto_tx:
            for n, kind in enumerate(plan):
                run = runs[kind]
                timed = n >= len(warm)  # the warm-up runs are not samples
                watch.start(kind if timed else None)
                started = clock()
                run()
                elapsed = clock() - started
                moto = watch.stop()
                if timed:
                    samples[kind].append(elapsed)
                    in_moto[kind].append(moto)
                forget_moto_instances()
                assert not moto_tx.failures, f"a TransactWriteItems failed during {kind}: the timings are void"
    finally:
        gc.unfreeze()
    return {
        k: Latency(tuple(samples[k]), tuple(in_moto[k]), watch.collections[k], watch.collection_seconds[k])
        for k in KINDS
    }


def forget_moto_instances() -> None:
    """Drop moto's references to every model instance it ever made (kept for its dashboard only).

    moto's TransactWriteItems deep-copies the table once per item for a rollback, and each copy, with all its items,
    stays in `instances_tracked` until the mock ends: memory and the garbage collector's full collections grow with
    every transaction, so later samples would be slower than earlier ones. Called between samples, never timed.
    """
    from moto.core.model_instances import reset_model_data

    reset_model_data()


class MotoWithoutRollbackCopies:
    """While timing: moto's TransactWriteItems without the deep copy of the whole table it takes, once per item, to
    roll back a failed transaction (6 copies for a portal return, a cost growing with every item the run has written,
    so later samples would be slower than earlier ones). No transaction is allowed to fail meanwhile (`failures`):
    without the copies moto could not roll one back, and the measurement is declared void."""

    def __init__(self) -> None:
        self.failures = 0
        self._restore: list[Callable[[], None]] = []

    def __enter__(self) -> MotoWithoutRollbackCopies:
        from moto.dynamodb.models import DynamoDBBackend
        from moto.dynamodb.models.table import Table

        original = DynamoDBBackend.transact_write_items  # local.moto_fixes' serialized version
        watch = self

        def transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
            try:
                original(backend, transact_items)
            except Exception:
                watch.failures += 1
                raise

        def same_table(table: Table, memo: dict[int, Any]) -> Table:
            return table

        DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign,assignment]
        Table.__deepcopy__ = same_table  # type: ignore[attr-defined]
        self._restore = [
            lambda: setattr(DynamoDBBackend, "transact_write_items", original),
            lambda: delattr(Table, "__deepcopy__"),
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        while self._restore:
            self._restore.pop()()


class Attribution:
    """While a sample is timed: the seconds spent inside moto (the emulated AWS answering the app in this thread:
    the harness's cost, not ours) and the garbage collector's full collections, per kind."""

    def __init__(self) -> None:
        self.collections: Counter[str] = Counter()
        self.collection_seconds: dict[str, float] = defaultdict(float)
        self._kind: str | None = None
        self._moto = 0.0
        self._gc_started = 0.0
        self._thread = threading.get_ident()
        self._original: Callable[..., Any] | None = None

    def start(self, kind: str | None) -> None:
        self._kind, self._moto = kind, 0.0

    def stop(self) -> float:
        self._kind = None
        return self._moto

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2 or self._kind is None:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.collections[self._kind] += 1
            self.collection_seconds[self._kind] += time.perf_counter() - self._gc_started

    def __enter__(self) -> Attribution:
        from moto.core.botocore_stubber import BotocoreStubber

        original = self._original = BotocoreStubber.process_request
        watch = self

        def process_request(stubber: BotocoreStubber, request: Any) -> Any:
            if watch._kind is None or threading.get_ident() != watch._thread:
                return original(stubber, request)
            started = time.perf_counter()
            try:
                return original(stubber, request)
            finally:
                watch._moto += time.perf_counter() - started

        BotocoreStubber.process_request = process_request  # type: ignore[method-assign,assignment]
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        gc.callbacks.remove(self._on_gc)
        if self._original is not None:
            BotocoreStubber.process_request = self._original  # type: ignore[method-assign]
            self._original = None


def run_portal(requests: int = REQUESTS, warmup: int = WARMUP, service_every: int = SERVICE_EVERY) -> PortalResult:
    """Provision moto, count the portal operations (counter installed), then time the create-return (counter off)."""
    from app import app

    started = time.perf_counter()
    result = PortalResult(requests=requests)
    with in_process_stack(), Client(app) as client:
        setup = Api(client)
        with result.counter, wrap_lambda_router(result.counter):
            api = CountingApi(client, result.counter, app.routes)
            try:
                count_operations(setup, api, result.steps)
            except Exception:
                result.errors.append(traceback.format_exc(limit=6))
            result.statuses = api.statuses
        result.latency_plan = (
            f"{requests} rounds of health + portal return (+ the service call every {service_every}th round), each "
            f"round rotated, after {warmup} warm-up rounds; an order and a portal session prepared per return"
        )
        latency_started = time.perf_counter()
        try:
            result.latency = measure_latency(setup, requests, warmup, service_every)
        except Exception:
            result.errors.append(traceback.format_exc(limit=6))
        result.latency_seconds = time.perf_counter() - latency_started
    result.seconds = time.perf_counter() - started
    return result
