"""Cold start: wall time of importing each Lambda entry point in a fresh interpreter, against a baseline handler.

Every sample is its own `python -c` process that times only the import (interpreter start-up is the same for all
and is reported apart). Targets are run interleaved, round after round, so they share the machine's noise; the
median per target is compared with the baseline's median.
"""

from __future__ import annotations

import ast
import os
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.definitions import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "bench.baseline_handler"
API = "app"
FIRST_PARTY = ("app", "chalicelib", "functions", "bench", "infrastructure", "local")

#: What a Lambda's environment provides (fake credentials: nothing may call AWS at import time anyway).
CHILD_ENV = {
    "AWS_DEFAULT_REGION": "eu-central-1",
    "AWS_REGION": "eu-central-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "BOOMERANG_OPERATOR_KEY": "op_bench_0123456789abcdef",
    "PORTAL_TOKEN_SECRET": "portal-secret-for-bench-0123456789",
    "EASYPOST_WEBHOOK_SECRET": "whsec-easypost-bench",
    "POWERTOOLS_SERVICE_NAME": "boomerang-bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "TABLE_NAME": "boomerang-bench",
}

PROBE = (
    "import time, sys\n"
    "t, c = time.perf_counter(), time.process_time()\n"
    "import {module}\n"
    "sys.stdout.write(repr((time.perf_counter() - t, time.process_time() - c)))\n"
)


def targets() -> list[str]:
    return [BASELINE, API, *(f"functions.{f.name}.handler" for f in FUNCTIONS)]


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env.update(CHILD_ENV)
    return env


def _import_seconds(module: str, env: dict[str, str]) -> tuple[float, float, float]:
    """(import wall time measured inside the child, its CPU time, wall time of the whole child process)."""
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{out.stderr[-2000:]}")
    seconds, cpu = ast.literal_eval(out.stdout.strip())
    return float(seconds), float(cpu), wall


@dataclass
class TargetResult:
    module: str
    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)
    process_samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_samples)

    @property
    def process_median(self) -> float:
        return statistics.median(self.process_samples)


def measure(rounds: int = 7, modules: list[str] | None = None) -> dict[str, TargetResult]:
    modules = modules or targets()
    env = child_env()
    for module in modules:  # warm-up: compile .pyc files and fill the page cache; not counted
        _import_seconds(module, env)
    results = {m: TargetResult(m) for m in modules}
    for _ in range(rounds):
        for module in modules:
            seconds, cpu, wall = _import_seconds(module, env)
            results[module].samples.append(seconds)
            results[module].cpu_samples.append(cpu)
            results[module].process_samples.append(wall)
    return results


# ----- what makes an import slow ---------------------------------------------------------------------------------
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)")


@dataclass(frozen=True)
class ImportNode:
    module: str
    self_us: int
    cumulative_us: int
    depth: int
    parent: str | None


def parse_importtime(stderr: str) -> dict[str, ImportNode]:
    """Parse `python -X importtime` output (post-order: children are printed before their parent)."""
    rows: list[tuple[str, int, int, int]] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m:
            rows.append((m.group(4), int(m.group(1)), int(m.group(2)), len(m.group(3)) // 2))
    parents: dict[str, str | None] = {}
    stack: list[tuple[str, int]] = []
    for name, _self, _cum, depth in rows:
        while stack and stack[-1][1] > depth:
            child, _ = stack.pop()
            parents[child] = name
        stack.append((name, depth))
    return {name: ImportNode(name, self_us, cum_us, depth, parents.get(name)) for name, self_us, cum_us, depth in rows}


def _is_first_party(module: str) -> bool:
    return module.split(".", 1)[0] in FIRST_PARTY


@dataclass(frozen=True)
class HeavyImport:
    importer: str  # the first-party module whose import statement pulled it in
    imported: str  # the module imported (third-party, or a first-party module with a high own cost)
    milliseconds: float  # cumulative (median over runs)


@dataclass
class ImportProfile:
    module: str
    runs: int
    total_ms: float
    third_party: list[HeavyImport]
    first_party_self: list[HeavyImport]


def profile_imports(module: str, runs: int = 5) -> ImportProfile:
    """What importing `module` costs beyond the baseline: imported after the baseline handler in one process, so
    only what the baseline did not already load shows up. Best (minimum) of `runs` processes per module: noise only
    ever adds time. Note a garbage collection is charged to whichever module happens to be importing then."""
    env = child_env()
    parsed: list[dict[str, ImportNode]] = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {BASELINE}\nimport {module}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{out.stderr[-2000:]}")
        nodes = parse_importtime(out.stderr)
        # keep only what came after the baseline's own top-level import
        names = list(nodes)
        cut = names.index(BASELINE) + 1 if BASELINE in names else 0
        parsed.append({n: nodes[n] for n in names[cut:]})

    def best(name: str, attr: str) -> float:
        return min(getattr(p[name], attr) for p in parsed if name in p) / 1000

    first = parsed[0]
    third: dict[tuple[str, str], float] = defaultdict(float)
    for name, node in first.items():
        if _is_first_party(name) or node.parent is None or not _is_first_party(node.parent):
            continue
        third[(node.parent, name.split(".", 1)[0])] += best(name, "cumulative_us")
    own = [HeavyImport(first[n].parent or "", n, best(n, "self_us")) for n in first if _is_first_party(n)]
    return ImportProfile(
        module=module,
        runs=runs,
        total_ms=best(module, "cumulative_us") if module in first else 0.0,
        third_party=sorted(
            (HeavyImport(imp, pkg, ms) for (imp, pkg), ms in third.items()), key=lambda h: -h.milliseconds
        ),
        first_party_self=sorted(own, key=lambda h: -h.milliseconds),
    )
