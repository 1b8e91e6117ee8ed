"""Starter guidelines and checklists a merchant can copy: one JSON file per product category in this package.

Each template is `{name, description, guidelines, checklists, examples}`: `guidelines` is a `PUT
/v1/settings/guidelines` body, `checklists` a `PUT /v1/settings/checklists` body, and `examples` are dry-run samples
(`{title, item, checks, order, expect: {grade, disposition, clarify, rule}}`) that document what the template does
(tests hold the template to them). Chalice packages `chalicelib/` wholesale, so the JSON files ship with the code.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from chalicelib.domain.errors import NotFound

_SUFFIX = ".json"


def names() -> list[str]:
    """The template names, sorted (e.g. `["apparel", "cosmetics", "electronics", "shoes"]`)."""
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in resources.files(__name__).iterdir()
        if entry.is_file() and entry.name.endswith(_SUFFIX)
    )


def load(name: str) -> dict[str, Any]:
    """A fresh copy of one template (callers may change it); an unknown name raises NotFound."""
    if name not in names():  # never a path built from input that is not one of ours
        raise NotFound(f"no template named '{name}'")
    data: dict[str, Any] = json.loads(resources.files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8"))
    return data
