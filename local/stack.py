"""`python -m local`: the whole system on this machine, in one process.

moto in server mode (in-process, Step Functions executing our ASL, Lambda tasks routed to functions/),
every resource of infrastructure/definitions.py provisioned, SQS pollers and the outbox relay (local/outbox.py)
playing the event source mappings, the Chalice app on 127.0.0.1:<port>, demo data seeded through the API.
When all that is ready, <state dir>/credentials.json appears (written atomically); it is removed again on Ctrl-C /
SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from infrastructure.definitions import LOG_LEVEL
from local.emulation import PortInUse

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REGION = "eu-central-1"
#: Retry intervals of the state machines (ASL ${Placeholders}), seconds: short, so local mode feels live.
LOCAL_INTERVALS = {"TaskRetryIntervalSeconds": 1, "RefundRetryIntervalSeconds": 2, "RefundReconcileWaitSeconds": 10}


def state_machine_settings() -> dict[str, int]:
    """LOCAL_INTERVALS, each overridable by an env var of its name in upper snake case
    (e.g. TASK_RETRY_INTERVAL_SECONDS=2)."""
    from infrastructure.definitions import STATE_MACHINES

    names = {k for sm in STATE_MACHINES for k in sm.settings}
    out = dict(LOCAL_INTERVALS)
    for name in names:
        env_name = "".join(f"_{ch}" if ch.isupper() else ch.upper() for ch in name).lstrip("_")
        if os.environ.get(env_name):
            out[name] = int(os.environ[env_name])
    return out


FEEDBACK_TIMEOUT_SECONDS = "300"
#: How send_refund spaces its attempts (Settings.refund_*); each overridable by the same env var.
LOCAL_REFUND_RETRIES = {"REFUND_RETRY_BASE_SECONDS": "2", "REFUND_RETRY_MAX_WAIT_SECONDS": "4"}


def say(text: str) -> None:
    sys.stderr.write(f"local {text}\n")
    sys.stderr.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000), help="API port (8000)")
    parser.add_argument(
        "--moto-port", type=int, default=int(os.environ.get("MOTO_PORT") or 5000), help="AWS emulation port (5000)"
    )
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("LOCAL_STATE_DIR") or str(ROOT / ".local"),
        help="where credentials.json, outbox/ and walkthrough.sh go (.local; env LOCAL_STATE_DIR)",
    )
    return parser.parse_args(argv)


def prepare_environment(args: argparse.Namespace, state_dir: Path) -> dict[str, str]:
    """Everything the AWS SDK and the app's settings read, before boto3 or the app is imported.

    Credentials are always fake: local mode must never reach a real AWS account.
    """
    env = os.environ
    for name in [k for k in env if k.startswith("AWS_ENDPOINT_URL_")] + ["AWS_PROFILE", "AWS_SESSION_TOKEN"]:
        env.pop(name, None)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",  # fake: the emulation's
            "AWS_ENDPOINT_URL": f"http://{HOST}:{args.moto_port}",
            "MOTO_PORT": str(args.moto_port),  # Step Functions service tasks call localhost:$MOTO_PORT
            # botocore's account-based endpoints: the streams calls of the outbox relay must reach moto
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        }
    )
    if not env.get("AWS_DEFAULT_REGION"):
        env["AWS_DEFAULT_REGION"] = env.get("AWS_REGION") or REGION
    env.setdefault("POWERTOOLS_SERVICE_NAME", "boomerang")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Boomerang")
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    env.setdefault("POWERTOOLS_LOG_LEVEL", LOG_LEVEL)  # the deployed level

    # The operator key must be known to seed and to print: a configured hash alone is not enough here.
    env.pop("OPERATOR_KEY_SHA256", None)
    app_secrets = {
        "BOOMERANG_OPERATOR_KEY": env.get("BOOMERANG_OPERATOR_KEY") or f"op_local_{secrets.token_urlsafe(24)}",
        "PORTAL_TOKEN_SECRET": env.get("PORTAL_TOKEN_SECRET") or secrets.token_urlsafe(32),
        "EASYPOST_WEBHOOK_SECRET": env.get("EASYPOST_WEBHOOK_SECRET") or f"whsec_local_{secrets.token_hex(16)}",
        **{
            name: env.get(name) or f"whsec_local_{secrets.token_hex(16)}"
            for name in ("SHIPPO_WEBHOOK_SECRET", "AFTERSHIP_WEBHOOK_SECRET", "SENDCLOUD_WEBHOOK_SECRET")
        },
    }
    env.update(app_secrets)
    env.update(
        {
            "OUTBOX_DIR": str(state_dir / "outbox"),
            "PUBLIC_BASE_URL": f"http://{HOST}:{args.port}",
            "FEEDBACK_TIMEOUT_SECONDS": env.get("FEEDBACK_TIMEOUT_SECONDS") or FEEDBACK_TIMEOUT_SECONDS,
            # refund attempts 2, 4, 4 ... s apart, so a dead refund target fails in about half a minute
            **{name: env.get(name) or value for name, value in LOCAL_REFUND_RETRIES.items()},
            # webhook subscriptions may point at a receiver on this machine (never in a deployed stage)
            "WEBHOOKS_ALLOW_LOOPBACK": env.get("WEBHOOKS_ALLOW_LOOPBACK") or "true",
        }
    )
    return app_secrets


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def wait_healthy(api: str, timeout: float = 15) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{api}/v1/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API at {api} did not come up")
        time.sleep(0.1)


class LocalStack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state_dir = Path(args.state_dir).resolve()
        self.credentials_path = self.state_dir / "credentials.json"
        self.script_path = self.state_dir / "walkthrough.sh"
        self.stop_event = threading.Event()
        self.moto: Any = None
        self.api_server: Any = None
        self.pollers: list[Any] = []
        self.scheduler: Any = None

    # ----- start --------------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.credentials_path.unlink(missing_ok=True)  # a stale file would claim readiness
        app_secrets = prepare_environment(self.args, self.state_dir)

        from local import netwatch

        netwatch.install()  # the security probes' connection audit and host table (only when asked for)

        from local.emulation import ensure_port_free, start_moto

        ensure_port_free(HOST, self.args.port, "API")
        moto_url = f"http://{HOST}:{self.args.moto_port}"
        self.moto = start_moto(HOST, self.args.moto_port)
        say(f"AWS emulation (moto) on {moto_url}")

        from local import lambda_router, moto_fixes

        lambda_router.install()
        moto_fixes.install()

        import boto3

        from local.provision import provision

        resources = provision(boto3.session.Session(), settings_overrides=state_machine_settings())
        os.environ.update(resources.env())
        say("resources provisioned (table, bucket, queues, bus, functions, state machines)")

        from chalicelib import bootstrap

        bootstrap.reset()  # settings are read from the environment set above

        from local.server import ApiServer

        api = f"http://{HOST}:{self.args.port}"
        self.api_server = ApiServer(HOST, self.args.port)
        self.api_server.start()
        wait_healthy(api)
        say(f"API on {api}")

        from local.pollers import start_pollers

        self.pollers = start_pollers(resources.queue_urls, self.stop_event)

        from local.outbox import start_outbox_poller

        self.pollers.append(start_outbox_poller(resources.stream_arn, self.stop_event))  # domain events -> the bus

        from local.pollers import start_scheduler

        self.scheduler = start_scheduler(self.stop_event)

        from local.seed import seed

        seeded = seed(api, app_secrets["BOOMERANG_OPERATOR_KEY"])
        creds = {
            "api": api,
            "moto": moto_url,
            "operator_key": app_secrets["BOOMERANG_OPERATOR_KEY"],
            "warehouse": seeded.warehouse,
            "merchant": seeded.merchant,
            "orders": seeded.orders,
            "easypost_webhook_secret": app_secrets["EASYPOST_WEBHOOK_SECRET"],
            "shippo_webhook_secret": app_secrets["SHIPPO_WEBHOOK_SECRET"],
            "aftership_webhook_secret": app_secrets["AFTERSHIP_WEBHOOK_SECRET"],
            "sendcloud_webhook_secret": app_secrets["SENDCLOUD_WEBHOOK_SECRET"],
            "outbox": os.environ["OUTBOX_DIR"],
        }
        from local import banner

        write_atomically(self.script_path, banner.script(creds), 0o700)
        write_atomically(self.credentials_path, json.dumps(creds, indent=2) + "\n")  # last: "ready"
        say(f"demo data seeded; ready in {time.monotonic() - started:.1f} s")
        return creds

    # ----- stop ---------------------------------------------------------------------------------------
    def stop(self) -> None:
        self.credentials_path.unlink(missing_ok=True)
        self.stop_event.set()  # the pollers finish their current long poll meanwhile
        if self.api_server is not None:
            self.api_server.stop()
        for p in self.pollers:
            p.join(timeout=5)
        if self.scheduler is not None:
            self.scheduler.join(timeout=5)
        if self.moto is not None:
            self.moto.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stack = LocalStack(args)
    state = {"ready": False}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if stack.stop_event.is_set():
            return  # already stopping
        stack.stop_event.set()
        if not state["ready"]:
            raise KeyboardInterrupt  # interrupt start-up where it is

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    try:
        creds = stack.start()
        state["ready"] = True
        from local import banner

        sys.stdout.write(banner.render(creds, str(stack.credentials_path), str(stack.script_path)))
        sys.stdout.flush()
        while not stack.stop_event.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    except PortInUse as exc:
        say(f"cannot start: {exc}")
        code = 1
    except Exception:
        say("start-up failed:\n" + traceback.format_exc())
        code = 1
    finally:
        state["ready"] = True  # no KeyboardInterrupt in the middle of stopping
        say("stopping")
        stack.stop()
        say("stopped")
    return code
