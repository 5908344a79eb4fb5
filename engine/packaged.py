"""Files shipped with the package: the JSON Schema, the policy library and its operation catalog.

In a source checkout they are read from the repository itself, where their
users edit them; an installed wheel carries copies under ``engine/_embedded``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent
_EMBEDDED = _PACKAGE_DIR / "_embedded"
_REPO_ROOT = _PACKAGE_DIR.parent


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[-1]


def repo_root() -> Path:
    """Return the directory that holds ``engine/`` (the checkout root)."""
    return _REPO_ROOT


def schema_dir() -> Path:
    """Return the directory holding the blueprint JSON Schemas."""
    return _first_existing(_REPO_ROOT / "blueprints" / "schema", _EMBEDDED / "schema")


def policies_dir() -> Path:
    """Return the directory of the embedded default policy library."""
    return _first_existing(_REPO_ROOT / "policies", _EMBEDDED / "policies")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load one JSON Schema shipped with opsgate by file name."""
    with (schema_dir() / name).open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def operation_catalog() -> dict[str, dict[str, Any]]:
    """Return the operation catalog the policies read (type → its entry)."""
    path = policies_dir() / "opsgate" / "catalog" / "data.json"
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    operations: dict[str, dict[str, Any]] = document["operations"]
    return operations
