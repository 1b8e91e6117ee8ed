"""Refunds in-process against moto: DynamoDB calls and shop calls per refund, from the click to the settled refund.

Every refund target: the shops (WooCommerce REST, Shopify GraphQL; the real adapters over the real `requests` stack
to the stateful fakes of tests/support/fake_shops.py), and, as a baseline, the manual target (nothing is sent) and
the merchant's refund webhook (a transport answering 200). Per shop, four refunds, each with its own fault script:

- the happy path;
- one 500 on the refund create, then ok (a second attempt, which looks in the shop first);
- a lost answer (the shop applied the refund, the answer never came), then the retry's lookup finds it;
- a lost answer, then the shop cannot be asked on any later attempt nor before the refund is marked failed: the
  refund is failed but `unconfirmed` (its share held), and the state machine's reconciliation finds it.

Set-up (tenants, orders, portal returns, scans, inspections, the processing state machine) is not counted: every
return is completed first, all in parallel. Then each refund is measured alone, one after the other, with a fresh
`bench.counter.DynamoCallCounter`: the click (`POST /v1/returns/{return_id}/refund`, one scope) and every Lambda the
refund state machine runs (a scope per invocation: `lambda send_refund`, `lambda refund_failed`,
`lambda reconcile_refund`), until its execution ended. The shop's requests during that time come from the fake's
record (reads, writes). Counts do not depend on the machine's speed; retries wait 1 s (REFUND_RETRY_*_SECONDS and
the ASL placeholders of `bench.lifecycle.FAST`). Harness effects kept out as in `bench.portal`: moto's rollback copies
of the whole table per transaction item (no transaction may fail meanwhile, or the run is void) and its list of every
model instance; moto's reads are serialized with its writes (local.moto_fixes).

The environment (fake credentials, secrets) must be set before this module is imported: see `bench.env`.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from chalice.test import Client
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bench.counter import DynamoCallCounter, wrap_lambda_router
from bench.lifecycle import CountingApi, in_process_stack
from bench.portal import MotoWithoutRollbackCopies, forget_moto_instances
from tests.support import Api, inspect, wait_for_status

#: the stateful fake shops (tests/support/fake_shops.py); imported by name so that `mypy bench` checks the bench, not
#: the tests' helpers (outside mypy's files, looser typed)
fake_shops: Any = importlib.import_module("tests.support.fake_shops")

CLICK = "POST /v1/returns/{return_id}/refund"
TASKS = ("send_refund", "refund_failed", "reconcile_refund")
#: the refunds' environment (like `bench.lifecycle` sets FEEDBACK_TIMEOUT_SECONDS): attempts 1 s apart
ENV = {"REFUND_RETRY_BASE_SECONDS": "1", "REFUND_RETRY_MAX_WAIT_SECONDS": "1"}
FIRST_ORDER_ID = 5001  # the shop's order ids: one order per refund, 5001, 5002, ...
LINES = {801: (2, "29.95"), 802: (1, "79.00")}
AMOUNT = "59.90"  # both units of line 801 come back
WEBHOOK_URL = "https://refunds.example/boomerang"
WEBHOOK_SECRET = "refund-secret-0123456789"  # noqa: S105  (a fake merchant's)
SHOP_WEBHOOK_SECRET = "whsec_shop_0123456789"  # noqa: S105
CREATES = {"woocommerce": "create_refund", "shopify": "RefundCreate"}

HAPPY, FAILED_ONCE, LOST, UNCONFIRMED = "happy path", "500, then ok", "lost, then found", "unconfirmed, reconciled"


@dataclass(frozen=True)
class Scenario:
    target: str  # manual | webhook | woocommerce | shopify
    case: str
    plan: str
    write_faults: tuple[str, ...] = ()
    write_default: str = "ok"
    read_faults: tuple[str, ...] = ()  # may hold "{lookups}": as many 500s as later attempts (max_attempts - 1)
    expect_creates: int = 1  # refund create requests the shop must see (one applied, whatever else was refused)

    @property
    def name(self) -> str:
        return f"{self.target}: {self.case}"

    @property
    def shop(self) -> bool:
        return self.target in CREATES


def scenarios() -> list[Scenario]:
    out = [
        Scenario("manual", HAPPY, "nothing is sent: the refund is recorded as done"),
        Scenario("webhook", HAPPY, "one signed POST to the merchant's refund webhook, answered 200"),
    ]
    for platform in CREATES:
        out += [
            Scenario(platform, HAPPY, "every request answered"),
            Scenario(
                platform,
                FAILED_ONCE,
                "the first refund create answered 500 (nothing applied), the retry looks, then creates",
                write_faults=("500",),
                expect_creates=2,
            ),
            Scenario(
                platform,
                LOST,
                "the first create applied but its answer lost; the retry's lookup finds it (writes would fail)",
                write_faults=("lost",),
                write_default="500",
            ),
            Scenario(
                platform,
                UNCONFIRMED,
                "answer lost; every later lookup and the check before failing answered 500 (unconfirmed, held); "
                "the reconciliation finds it",
                write_faults=("lost",),
                write_default="500",
                read_faults=("ok", "{lookups}", "500"),
            ),
        ]
    return out


# ----- what one refund cost -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShopCall:
    operation: str
    kind: str  # read | write | dispose (fake_shops' kinds); the webhook's POSTs are writes
    fault: str
    status: int | None


@dataclass
class CaseResult:
    scenario: Scenario
    counter: DynamoCallCounter = field(default_factory=DynamoCallCounter)
    statuses: dict[str, set[int]] = field(default_factory=dict)
    refund: dict[str, Any] = field(default_factory=dict)  # the refund as GET /v1/returns/{id}/refunds shows it
    shop_calls: list[ShopCall] = field(default_factory=list)
    in_shop: int = 0  # refunds of this order in the shop's ledger carrying this refund's marker
    in_shop_total: int = 0  # all refunds of this order in the shop's ledger
    stray: list[str] = field(default_factory=list)  # HTTP requests that went anywhere else
    seconds: float = 0.0
    error: str | None = None

    @property
    def click(self) -> Counter[str]:
        st = self.counter.stats.get(CLICK)
        return st.per_invocation[0] if st and st.per_invocation else Counter()

    def task(self, name: str) -> list[Counter[str]]:
        st = self.counter.stats.get(f"lambda {name}")
        return list(st.per_invocation) if st else []

    @property
    def other_scopes(self) -> list[str]:
        """Scopes besides the click and the refund's tasks (should be none: nothing else ran meanwhile)."""
        known = {CLICK, *(f"lambda {t}" for t in TASKS)}
        return [n for n in self.counter.stats if n not in known]

    @property
    def dynamodb_total(self) -> int:
        return len(self.counter.calls)

    @property
    def attempts(self) -> int:
        return int(self.refund.get("attempts") or 0)

    def shop_reads(self) -> list[ShopCall]:
        return [c for c in self.shop_calls if c.kind == "read"]

    def shop_writes(self) -> list[ShopCall]:
        return [c for c in self.shop_calls if c.kind != "read"]

    def creates(self) -> list[ShopCall]:
        op = CREATES.get(self.scenario.target, "refund webhook")
        return [c for c in self.shop_calls if c.operation == op]


@dataclass
class RefundsResult:
    cases: list[CaseResult] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_attempts: int = 0
    setup_seconds: float = 0.0
    seconds: float = 0.0


# ----- the merchant's refund webhook --------------------------------------------------------------------------------
class WebhookTarget(BaseAdapter):
    """The merchant's refund webhook as a `requests` transport: records each POST, answers 200."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.calls: list[ShopCall] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        raw = request.body
        body = json.loads(raw) if raw else {}
        kind = "restock" if isinstance(body, dict) and body.get("type") == "restock" else "refund webhook"
        with self.lock:
            self.calls.append(ShopCall(kind, "write", "ok", 200))
        response = requests.Response()
        response.status_code = 200
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
        response.raw = io.BytesIO(b'{"ok": true}')
        response.url = request.url or ""
        response.request = request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        return None


# ----- the run ----------------------------------------------------------------------------------------------------
@dataclass
class _Prepared:
    scenario: Scenario
    tenant: dict[str, Any]
    return_id: str
    order_id: int | None  # the shop's order id (shops only)


def run_refunds() -> RefundsResult:
    """Provision moto, complete one return per scenario (not counted), then each refund alone, counted."""
    from app import app
    from chalicelib import bootstrap

    started = time.perf_counter()
    result = RefundsResult()
    forget_moto_instances()  # what the sections before left in moto's list of model instances
    with (
        in_process_stack() as resources,
        MotoWithoutRollbackCopies() as moto_tx,
        Client(app) as client,
    ):
        os.environ.update(ENV)  # restored by in_process_stack
        bootstrap.reset()
        result.max_attempts = bootstrap.container().settings.refund_max_attempts
        shops: dict[str, Any] = {
            "woocommerce": fake_shops.FakeWooCommerce(base_url="https://woo.example"),
            "shopify": fake_shops.FakeShopify(shop_domain="bench.myshopify.com"),
        }
        session = fake_shops.install_shop(*shops.values())  # after the reset, which forgets overrides
        webhook = WebhookTarget()
        session.mount(WEBHOOK_URL.rsplit("/", 1)[0] + "/", webhook)
        sfn = boto3.client("stepfunctions")
        machines = list(resources.state_machine_arns.values())
        refund_machine = bootstrap.container().settings.refund_state_machine_arn
        setup = Api(client)
        try:
            prepared = _prepare(setup, shops, scenarios(), result)
            _wait_for_executions(sfn, machines)
            failed = _failed_executions(sfn, machines)
            assert not failed, f"set-up: {len(failed)} state machine execution(s) failed: {failed}"
        except Exception:
            result.errors.append(traceback.format_exc(limit=6))
            prepared = []
        result.setup_seconds = time.perf_counter() - started
        forget_moto_instances()
        for p in prepared:
            case = CaseResult(p.scenario)
            result.cases.append(case)
            try:
                _measure(case, p, setup, client, app.routes, shops, webhook, session, sfn, refund_machine, result)
            except Exception:
                case.error = traceback.format_exc(limit=6)
                result.errors.append(case.error)
                _wait_for_executions(sfn, machines, timeout=30, fail=False)
        if moto_tx.failures:
            result.errors.append(f"{moto_tx.failures} TransactWriteItems failed: without moto's rollback, void")
    result.seconds = time.perf_counter() - started
    return result


def _prepare(api: Api, shops: dict[str, Any], plan: list[Scenario], result: RefundsResult) -> list[_Prepared]:
    """A tenant per target (shop connected, refunds into it), an order and a completed return per scenario."""
    result.steps.append(
        f"set-up, not counted: a tenant per target (manual, webhook, {', '.join(shops)}), an order and a portal "
        f"return of 2 units per refund ({len(plan)}), scanned, inspected, completed by the processing state machine"
    )
    tenants: dict[str, dict[str, Any]] = {}
    for target in dict.fromkeys(s.target for s in plan):
        t = api.tenant()
        if target in shops:
            fake = shops[target]
            api.ok("PUT", "/v1/settings/shop", t["m_key"], _shop_settings(target, fake))
            refunds: dict[str, Any] = {"target": "shop", "auto_refund": False}
        elif target == "webhook":
            refunds = {"target": "webhook", "auto_refund": False, "webhook_url": WEBHOOK_URL}
            refunds["webhook_secret"] = WEBHOOK_SECRET
        else:
            refunds = {"target": "manual", "auto_refund": False}
        api.ok("PUT", "/v1/settings/refunds", t["m_key"], refunds)
        tenants[target] = t
    prepared = []
    order_ids = iter(range(FIRST_ORDER_ID, FIRST_ORDER_ID + len(plan)))
    for s in plan:
        t = tenants[s.target]
        order_id = None
        extra: dict[str, Any] = {}
        if s.shop:
            order_id = next(order_ids)
            shops[s.target].add_order(order_id, LINES)
            extra = {"external_id": str(order_id)}
        order = api.order(t["m_key"], items=_items_with_ids() if s.shop else _items(), **extra)
        token = api.session(t["slug"], order)
        lines = [{"line_item_id": "L1", "quantity": 2, "reason": "too_small"}]
        ret = api.ok("POST", "/v1/portal/returns", token, {"items": lines}, 201)
        api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": ret["tracking_number"]})
        inspect(api, t, ret, [{"line_item_id": "L1", "received_quantity": 2, "checks": {}}])
        prepared.append(_Prepared(s, t, ret["id"], order_id))
    for p in prepared:  # the processing state machines ran meanwhile, in moto's threads
        wait_for_status(api, p.tenant["m_key"], p.return_id, "completed", timeout=60)
    return prepared


def _shop_settings(platform: str, fake: Any) -> dict[str, Any]:
    if platform == "woocommerce":
        return {
            "platform": "woocommerce",
            "base_url": fake.base_url,
            "consumer_key": fake.consumer_key,
            "consumer_secret": fake.consumer_secret,
            "webhook_secret": SHOP_WEBHOOK_SECRET,
        }
    return {
        "platform": "shopify",
        "shop_domain": fake.shop_domain,
        "access_token": fake.access_token,
        "webhook_secret": SHOP_WEBHOOK_SECRET,
        "location_id": "66001",
    }


def _items() -> list[dict[str, Any]]:
    return [
        {"line_item_id": "L1", "sku": "SHIRT-M", "name": "Shirt M", "quantity": 2, "unit_price": "29.95"},
        {"line_item_id": "L2", "sku": "JEANS-32", "name": "Jeans 32", "quantity": 1, "unit_price": "79.00"},
    ]


def _items_with_ids() -> list[dict[str, Any]]:
    return [{**item, "external_id": str(801 + n)} for n, item in enumerate(_items())]


def _measure(
    case: CaseResult,
    p: _Prepared,
    setup: Api,
    client: Client,
    routes: dict[str, Any],
    shops: dict[str, Any],
    webhook: WebhookTarget,
    session: requests.Session,
    sfn: Any,
    refund_machine: str,
    result: RefundsResult,
) -> None:
    """The click and the refund state machine's run, counted; the shop's requests meanwhile from its record."""
    s = p.scenario
    fake = shops.get(s.target)
    if fake is not None:
        fake.faults = list(s.write_faults)
        fake.default_fault = s.write_default
        reads: list[str] = []
        for f in s.read_faults:
            reads += ["500"] * (result.max_attempts - 1) if f == "{lookups}" else [f]
        fake.read_faults = reads
        fake.read_default_fault = "ok"
    seen = len(fake.requests) if fake is not None else len(webhook.calls)
    stray = len(session.no_network.stray)  # type: ignore[attr-defined]
    started = time.perf_counter()
    with case.counter, wrap_lambda_router(case.counter):
        api = CountingApi(client, case.counter, routes)
        out = api.ok(
            "POST", f"/v1/returns/{p.return_id}/refund", p.tenant["m_key"], {}, 202, headers={"Idempotency-Key": "k1"}
        )
        refund_id = str(out["refund_id"])
        status = _wait_for_execution(sfn, refund_machine, refund_id)
    case.seconds = time.perf_counter() - started
    case.statuses = api.statuses
    items = setup.ok("GET", f"/v1/returns/{p.return_id}/refunds", p.tenant["m_key"])["items"]
    case.refund = next(r for r in items if r["id"] == refund_id)
    case.refund["execution"] = status
    if fake is not None:
        from chalicelib.adapters.shops.base import carries_marker

        case.shop_calls = [ShopCall(r.operation, r.kind, r.fault, r.status) for r in fake.requests[seen:]]
        ledger = [e for e in fake.ledger() if e.order_id == str(p.order_id)]
        case.in_shop_total = len(ledger)
        case.in_shop = sum(1 for e in ledger if carries_marker(e.note, refund_id) and str(e.amount) == AMOUNT)
    else:
        case.shop_calls = [c for c in webhook.calls[seen:] if c.operation != "restock"]
        case.in_shop = case.in_shop_total = len(case.shop_calls) if s.target == "webhook" else 0
    case.stray = list(session.no_network.stray[stray:])  # type: ignore[attr-defined]


def _wait_for_execution(sfn: Any, machine: str, name: str, timeout: float = 60) -> str:
    """The refund state machine's execution `name` (the refund id) once it ended: its status."""
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{name}"
    deadline = time.time() + timeout
    while True:
        status = str(sfn.describe_execution(executionArn=arn)["status"])
        if status != "RUNNING":
            return status
        assert time.time() < deadline, f"refund execution {name} still running after {timeout}s"
        time.sleep(0.1)


def _failed_executions(sfn: Any, machines: list[str]) -> list[str]:
    """The failed executions of `machines`: their name and the failed task's error."""
    out = []
    for arn in machines:
        for e in sfn.list_executions(stateMachineArn=arn, statusFilter="FAILED")["executions"]:
            events = sfn.get_execution_history(executionArn=e["executionArn"], reverseOrder=True)["events"]
            task: dict[str, Any] = next(
                (ev["taskFailedEventDetails"] for ev in events if "taskFailedEventDetails" in ev), {}
            )
            out.append(f"{e['name']}: {task.get('error', '?')} {str(task.get('cause', ''))[:200]}")
    return out


def _wait_for_executions(sfn: Any, machines: list[str], timeout: float = 60, *, fail: bool = True) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        running = [
            e
            for arn in machines
            for e in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]
        ]
        if not running:
            return
        time.sleep(0.2)
    if fail:
        raise AssertionError(f"state machines still running after {timeout}s")
