"""Static check: no DynamoDB Scan in the code that serves requests (chalicelib/, functions/)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: `.scan(`, PynamoDB's `.rate_limited_scan(` / `.parallel_scan(`, and the operation name as a string literal.
PATTERNS = (
    re.compile(r"\.(?:rate_limited_|parallel_)?scan\s*\("),
    re.compile(r"""["']Scan["']"""),
)
DEFAULT_DIRS = ("chalicelib", "functions")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    text: str


def find_scans(root: Path, dirs: tuple[str, ...] = DEFAULT_DIRS) -> list[Finding]:
    findings: list[Finding] = []
    for d in dirs:
        for path in sorted((root / d).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                code = line.split("#", 1)[0]
                if any(p.search(code) for p in PATTERNS):
                    findings.append(Finding(str(path.relative_to(root)), number, line.strip()))
    return findings
