"""`boomerang`: the command line for operators and merchants, a client of the HTTP API (SQS for redrive, the table for
backfill).

    python -m infrastructure.cli [--api URL] [--key KEY] [--local] COMMAND ...
    make cli ARGS="returns list --sku SHIRT-M"

    returns list [--status S] [--sku S] [--reason R] [--grade G] [--carrier C] [--order-number N] [--email E]
                 [--attention KIND] [--from T] [--to T] [--limit N] [--json]
    returns show RETURN_ID [--json]
    attention [--json]
    export --kind returns|items --from T --to T [--out FILE]   (waits with a progress line, then downloads)
    keys add MERCHANT_ID | keys revoke MERCHANT_ID KEY_ID      (the operator's key)
    redrive QUEUE [--dry-run] [--max N]                        (infrastructure/redrive.py)
    backfill MERCHANT_ID [--table NAME] [--no-index] [--no-reports]
                 (the list index and report counters of returns written before they existed; straight against the
                 table, with AWS credentials like redrive: TABLE_NAME or --table, `--local` for `make run`)

The API address and key come from --api/--key, else BOOMERANG_API_URL/BOOMERANG_API_KEY; `--local` takes both from
.local/credentials.json (`make run`; the merchant key of the demo tenant, or the operator key for `keys`).
Problems from the API are printed as their title and detail, and the exit status is 1. Like redrive, it lives here
and not in chalicelib/: it is never packaged into a Lambda, and its output is for the person at the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
LOCAL_CREDENTIALS = ROOT / ".local" / "credentials.json"
EXPORT_POLL_SECONDS = 1.0
EXPORT_TIMEOUT_SECONDS = 1800.0


class ApiError(Exception):
    """The API answered with a problem (or not at all)."""


class Client:
    """The HTTP API with one key; `session` may be any requests.Session (tests mount an in-process transport)."""

    def __init__(self, api: str, key: str, session: requests.Session | None = None) -> None:
        self.api = api.rstrip("/")
        self.key = key
        self.session = session or requests.Session()

    def call(self, method: str, path: str, body: Any = None, *, expect: tuple[int, ...] = (200,)) -> Any:
        try:
            resp = self.session.request(
                method,
                f"{self.api}{path}",
                headers={"Authorization": f"Bearer {self.key}", "Accept": "application/json"},
                json=body,
                timeout=30,
            )
        except requests.RequestException as exc:
            raise ApiError(f"{self.api} could not be reached ({type(exc).__name__})") from None
        if resp.status_code not in expect:
            try:
                problem = resp.json()
                text = f"{problem.get('title', resp.status_code)}: {problem.get('detail', '')}".rstrip(": ")
                errors = problem.get("errors") or []
                text += "".join(f"\n  {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
            except ValueError:
                text = f"HTTP {resp.status_code}"
            raise ApiError(text)
        return resp.json() if resp.content else None

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every item of a list, following next_cursor."""
        cursor = None
        while True:
            query = {k: v for k, v in {**params, "cursor": cursor}.items() if v is not None}
            page = self.call("GET", f"{path}?{urlencode(query)}")
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return


# ----- commands ---------------------------------------------------------------------------------------------
_FILTERS = ("status", "sku", "reason", "grade", "carrier", "order_number", "email", "attention")


def list_returns(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    params: dict[str, Any] = {name: getattr(args, name) for name in _FILTERS}
    params.update({"created_from": args.created_from, "created_to": args.created_to, "limit": 100})
    rows = []
    for ret in client.pages("/v1/returns", params):
        rows.append(ret)
        if args.limit and len(rows) >= args.limit:
            break
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return 0
    _table(
        out,
        ["id", "order", "status", "created", "items", "refund"],
        [
            [
                r["id"],
                r["order_number"],
                r["status"],
                r["created_at"],
                str(sum(i["quantity"] for i in r["items"])),
                (r.get("refund") or {}).get("status") or "-",
            ]
            for r in rows
        ],
    )
    return 0


def show_return(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    ret = client.call("GET", f"/v1/returns/{args.return_id}")
    if args.json:
        json.dump(ret, out, indent=2)
        out.write("\n")
        return 0
    out.write(
        f"{ret['id']}  order {ret['order_number']}  {ret['status']}  ({ret['carrier'] or '-'} "
        f"{ret['tracking_number'] or ''})\n"
    )
    _table(
        out,
        ["line", "sku", "qty", "reason", "received", "grade", "disposition", "status"],
        [
            [
                i["line_item_id"],
                i["sku"],
                str(i["quantity"]),
                i["reason"],
                str(i.get("received_quantity") or "-"),
                i.get("grade") or "-",
                i.get("disposition") or "-",
                i["status"],
            ]
            for i in ret["items"]
        ],
    )
    out.write("\n")
    for entry in ret["timeline"]:
        out.write(f"{entry['at']}  {entry['type']}\n")
    return 0


def attention(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    view = client.call("GET", "/v1/attention")
    if args.json:
        json.dump(view, out, indent=2)
        out.write("\n")
        return 0
    _table(
        out,
        ["kind", "return / parcel", "order", "since", "sla left (h)", "detail"],
        [
            [
                e["kind"],
                e.get("return_id") or e.get("parcel_id") or "",
                e.get("order_number") or "",
                e["since"],
                "-" if e.get("sla_left_hours") is None else str(e["sla_left_hours"]),
                e.get("detail") or "",
            ]
            for e in view["items"]
        ],
    )
    return 0


def export(
    client: Client,
    args: argparse.Namespace,
    out: TextIO,
    *,
    progress: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Ask for an export, wait for it with a progress line on stderr, download the CSV to --out (or stdout)."""
    progress = progress or sys.stderr
    body = {"kind": args.kind, "format": "csv", "from": args.created_from, "to": args.created_to}
    export_id = client.call("POST", "/v1/exports", body, expect=(202,))["id"]
    started = time.monotonic()
    spinner = "|/-\\"
    tick = 0
    while True:
        state = client.call("GET", f"/v1/exports/{export_id}")
        if state["status"] != "pending":
            break
        if time.monotonic() - started > EXPORT_TIMEOUT_SECONDS:
            raise ApiError(f"export {export_id} still pending after {EXPORT_TIMEOUT_SECONDS:.0f} s")
        progress.write(f"\rexport {export_id} {spinner[tick % 4]} {time.monotonic() - started:5.0f} s")
        progress.flush()
        tick += 1
        sleep(EXPORT_POLL_SECONDS)
    progress.write(f"\rexport {export_id}: {state['status']} ({state.get('rows', '?')} rows)          \n")
    if state["status"] != "ready":
        raise ApiError(f"export {export_id} failed: {state.get('error') or 'no reason given'}")
    resp = client.session.get(state["url"], timeout=60, stream=True)
    resp.raise_for_status()
    target = open(args.out, "wb") if args.out else None  # noqa: SIM115 - closed below
    written = 0
    try:
        for chunk in resp.iter_content(chunk_size=1 << 16):
            written += len(chunk)
            if target:
                target.write(chunk)
            else:
                out.write(chunk.decode())
            progress.write(f"\rdownloaded {written / 1e6:7.1f} MB")
    finally:
        if target:
            target.close()
    progress.write("\n")
    return 0


def keys(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "add":
        key = client.call("POST", f"/v1/admin/merchants/{args.merchant_id}/keys", expect=(201,))
        out.write(f"key id {key['id']}\napi key {key['api_key']}\n(shown once: store it now)\n")
    else:
        client.call("DELETE", f"/v1/admin/merchants/{args.merchant_id}/keys/{args.key_id}", expect=(204,))
        out.write(f"key {args.key_id} revoked\n")
    return 0


def _table(out: TextIO, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for cells in [headers, ["-" * w for w in widths], *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip() + "\n")
    if not rows:
        out.write("(none)\n")


# ----- entry point ------------------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m infrastructure.cli", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--api", help="API address (default: BOOMERANG_API_URL)")
    p.add_argument("--key", help="API key (default: BOOMERANG_API_KEY)")
    p.add_argument("--local", action="store_true", help="address and keys of `make run` (.local/credentials.json)")
    sub = p.add_subparsers(dest="command", required=True)

    returns = sub.add_parser("returns", help="list or show returns").add_subparsers(dest="action", required=True)
    lst = returns.add_parser("list", help="returns, newest first, filtered")
    for name in _FILTERS:
        lst.add_argument(f"--{name.replace('_', '-')}", dest=name)
    lst.add_argument("--from", dest="created_from", help="created at or after (ISO 8601, UTC)")
    lst.add_argument("--to", dest="created_to", help="created at or before")
    lst.add_argument("--limit", type=int, default=None, help="at most N returns")
    lst.add_argument("--json", action="store_true")
    show = returns.add_parser("show", help="one return with items and timeline")
    show.add_argument("return_id")
    show.add_argument("--json", action="store_true")

    att = sub.add_parser("attention", help="what needs the merchant")
    att.add_argument("--json", action="store_true")

    exp = sub.add_parser("export", help="CSV export of returns or items, downloaded when ready")
    exp.add_argument("--kind", choices=("returns", "items"), default="returns")
    exp.add_argument("--from", dest="created_from", required=True)
    exp.add_argument("--to", dest="created_to", required=True)
    exp.add_argument("--out", help="file to write (default: stdout)")

    k = sub.add_parser("keys", help="add or revoke a merchant's API key (operator)")
    k.add_argument("action", choices=("add", "revoke"))
    k.add_argument("merchant_id")
    k.add_argument("key_id", nargs="?")

    b = sub.add_parser("backfill", help="a merchant's list index and report counters (chalicelib/services/backfill.py)")
    b.add_argument("merchant_id")
    b.add_argument("--table", help="the table's name (default: TABLE_NAME; with --local, local mode's)")
    b.add_argument("--no-index", action="store_true", help="leave the list index alone")
    b.add_argument("--no-reports", action="store_true", help="leave the report counters alone")

    r = sub.add_parser("redrive", help="a dead-letter queue's messages back to its queue")
    r.add_argument("queue")
    r.add_argument("--dry-run", action="store_true")
    r.add_argument("--max", type=int)
    return p


def _credentials(args: argparse.Namespace) -> tuple[str, str]:
    api, key = args.api or os.environ.get("BOOMERANG_API_URL"), args.key or os.environ.get("BOOMERANG_API_KEY")
    if args.local:
        creds = json.loads(LOCAL_CREDENTIALS.read_text())
        api = api or creds["api"]
        key = key or (creds["operator_key"] if args.command == "keys" else creds["merchant"]["api_key"])
    if not api or not key:
        raise ApiError(
            "no API address or key: give --api and --key, set BOOMERANG_API_URL and BOOMERANG_API_KEY, "
            "or use --local with `make run`"
        )
    return api, key


COMMANDS: dict[str, Callable[..., int]] = {
    "attention": attention,
    "export": export,
    "keys": keys,
}


#: local mode's table (local/provision.py) and the settings the backfill never uses but the app's settings require
LOCAL_TABLE = "boomerang-table"
_UNUSED_SETTINGS = (
    "BUCKET_NAME",
    "TRACKING_QUEUE_URL",
    "EVENT_BUS_NAME",
    "PROCESSING_STATE_MACHINE_ARN",
    "REFUND_STATE_MACHINE_ARN",
)


def backfill(args: argparse.Namespace, out: TextIO) -> int:
    """Runs in this process against the table (never through the API: it may take long)."""
    if args.local:
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{os.environ.get('MOTO_PORT') or '5000'}",
                "AWS_ACCESS_KEY_ID": "local",  # the emulation's: local mode never reaches a real account
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION") or "eu-central-1",
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            }
        )
    table = args.table or os.environ.get("TABLE_NAME") or (LOCAL_TABLE if args.local else None)
    if not table:
        sys.stderr.write("error: no table: give --table or set TABLE_NAME (the stack's table)\n")
        return 1
    os.environ["TABLE_NAME"] = table
    for name in _UNUSED_SETTINGS:
        os.environ.setdefault(name, "unused-by-backfill")
    from chalicelib import bootstrap
    from chalicelib.domain.errors import NotFound
    from chalicelib.services.backfill import backfill as run

    bootstrap.reset()
    try:
        result = run(
            bootstrap.container(), args.merchant_id, index=not args.no_index, report_counters=not args.no_reports
        )
    except NotFound as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    events = ", ".join(f"{n} {k}" for k, n in sorted(result["events"].items())) or "none"
    out.write(f"{result['returns']} returns: {result['indexed']} indexed again; report events: {events}\n")
    return 0


def main(argv: list[str] | None = None, *, session: requests.Session | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    if args.command == "backfill":
        return backfill(args, out)
    if args.command == "redrive":
        from infrastructure import redrive

        extra = ["--dry-run"] if args.dry_run else []
        extra += ["--max", str(args.max)] if args.max else []
        extra += ["--local"] if args.local else []
        return redrive.main(["--queue", args.queue, *extra])
    if args.command == "keys" and args.action == "revoke" and not args.key_id:
        parser().error("keys revoke needs MERCHANT_ID KEY_ID")
    try:
        client = Client(*_credentials(args), session=session)
        if args.command == "returns":
            return (list_returns if args.action == "list" else show_return)(client, args, out)
        return COMMANDS[args.command](client, args, out)
    except ApiError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
