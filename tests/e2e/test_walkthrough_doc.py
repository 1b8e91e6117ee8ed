"""docs/walkthrough.md shows exactly the commands `make run` prints (local/banner.py), in the same order."""

from __future__ import annotations

from pathlib import Path

from chalicelib.domain.returns import ReturnStatus
from local.banner import COMMANDS, keys_block

DOC = Path(__file__).resolve().parents[2] / "docs" / "walkthrough.md"


def test_walkthrough_doc_has_the_printed_commands_in_order() -> None:
    doc_lines = DOC.read_text().splitlines()
    position = 0
    for line in (line for line in COMMANDS.splitlines() if line.strip()):
        try:
            position = doc_lines.index(line, position) + 1
        except ValueError:
            raise AssertionError(f"docs/walkthrough.md lacks (or misorders) this printed line:\n{line}") from None


def test_walkthrough_doc_names_every_status_and_key() -> None:
    text = DOC.read_text()
    for status in ReturnStatus:
        assert f"`{status.value}`" in text, status
    creds = {
        "api": "http://127.0.0.1:8000",
        "operator_key": "x",
        "warehouse": {"api_key": "x"},
        "merchant": {"api_key": "x"},
        "easypost_webhook_secret": "x",
    }
    for line in keys_block(creds).splitlines():
        name = line.split("=", 1)[0]
        assert name in text, name
