"""Lambda assets for functions/, built without Docker (no `BundlingOptions`, no `PythonFunction`).

Two build products under infrastructure/build/, both handed to `lambda_.Code.from_asset`:

- `deps-<hash>.zip`: the shared layer, `python/` holding the runtime requirements (requirements.txt) as
  Lambda-platform wheels, installed with `pip install --target --platform manylinux... --only-binary=:all:` (so no
  compiler and no Docker). The name carries a hash of requirements.txt and of the pip options, and the zip only
  appears once the install completed (built under a temporary name, then renamed), so repeated synths skip pip. It
  is zipped here, once, because staging a directory of ~4,000 files into cdk.out costs CDK ~20 s on every synth,
  while a zip file asset is copied as one file and uploaded as is.
- `code-<hash>/`: `chalicelib/` and `functions/`, the one small code asset every function shares
  (handler `functions.<name>.handler.handler`). Rebuilt when any source file changes (the name carries their hash).

Keeping the requirements out of the code asset means a code change uploads a few hundred kilobytes, not the wheels.
The Chalice API is packaged by `chalice package` itself (see stack.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = Path(__file__).resolve().parent / "build"
REQUIREMENTS = ROOT / "requirements.txt"
CODE_PACKAGES = ("chalicelib", "functions")

# The Lambda platform the wheels are for: keep in step with the runtime in stack.py. The python3.11 runtime runs on
# Amazon Linux 2 (glibc 2.26), so a wheel must be manylinux2014 (glibc 2.17) up to manylinux_2_26; pip takes
# --platform literally, so every tag is listed (as `chalice package` does for the API).
PYTHON_VERSION = "3.11"
LAMBDA_GLIBC_MINOR = 26
PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(17, LAMBDA_GLIBC_MINOR + 1)), "manylinux2014_x86_64")
PIP_OPTIONS = (
    *(option for platform in PLATFORMS for option in ("--platform", platform)),
    "--implementation",
    "cp",
    "--python-version",
    PYTHON_VERSION,
    "--only-binary=:all:",
    "--no-compile",
    "--disable-pip-version-check",
    "--no-input",
    "--quiet",
)
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")


class AssetBuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class LambdaAssets:
    dependencies_zip: Path  # the layer: python/...
    dependencies_hash: str
    code_dir: Path  # contains chalicelib/ and functions/


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def _source_files(root: Path, packages: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            rel = path.relative_to(root)
            skipped = any(p in {"__pycache__", ".mypy_cache"} for p in rel.parts) or path.suffix in {".pyc", ".pyo"}
            if path.is_file() and not skipped:
                files.append(path)
    return files


def _publish(tmp: Path, final: Path) -> None:
    """Move a completed build into place; another process may have won the race with the same content."""
    try:
        tmp.rename(final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(kind: str, keep: Path) -> None:
    """Remove older builds of the same kind (they are only a cache)."""
    for old in BUILD_DIR.glob(f"{kind}-*"):
        if old == keep or old.name.startswith(f"{kind}-tmp"):
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def build_dependencies(requirements: Path = REQUIREMENTS) -> tuple[Path, str]:
    """The layer zip with the runtime requirements for the Lambda platform; pip runs only on a cache miss."""
    digest = _digest(requirements.read_bytes(), " ".join(PIP_OPTIONS).encode())
    final = BUILD_DIR / f"deps-{digest}.zip"
    if final.is_file():
        return final, digest
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="deps-tmp-", dir=BUILD_DIR))
    try:
        command = [sys.executable, "-m", "pip", "install", *PIP_OPTIONS, "--target", str(tmp / "python")]
        result = subprocess.run([*command, "-r", str(requirements)], capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            output = "\n".join(
                line for line in (result.stdout + result.stderr).splitlines() if "is ignored: it is neither" not in line
            )
            raise AssetBuildError(
                f"pip install of {requirements.name} for the Lambda platform failed. Every pinned package needs a "
                f"wheel for CPython {PYTHON_VERSION} on Amazon Linux 2 (one of {', '.join(PLATFORMS)}, or pure "
                f"Python); a wheel tagged only manylinux_2_27 or later does not load on the python{PYTHON_VERSION} "
                f"runtime.\n{output}"
            )
        # botocore comes along for pynamodb; it stays, so the layer runs exactly the versions requirements.txt pins.
        for cache in (tmp / "python").rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)
        archive = Path(shutil.make_archive(str(tmp / "layer"), "zip", root_dir=tmp, base_dir="python"))
        try:
            archive.rename(final)
        except OSError:
            if not final.is_file():  # another synth published the same content first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune("deps", final)
    return final, digest


def build_code(root: Path = ROOT) -> Path:
    """chalicelib/ and functions/ copied into one directory named by a hash of their content."""
    files = _source_files(root, CODE_PACKAGES)
    digest = _digest(*(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() for f in files))
    final = BUILD_DIR / f"code-{digest}"
    if final.is_dir():
        return final
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="code-tmp-", dir=BUILD_DIR))
    for package in CODE_PACKAGES:
        shutil.copytree(root / package, tmp / package, ignore=IGNORED)
    os.chmod(tmp, 0o755)  # noqa: S103 - mkdtemp makes it 0700; the asset's files must be readable by Lambda
    _publish(tmp, final)
    _prune("code", final)
    return final


def build_lambda_assets() -> LambdaAssets:
    dependencies_zip, dependencies_hash = build_dependencies()
    return LambdaAssets(dependencies_zip, dependencies_hash, build_code())
