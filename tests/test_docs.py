"""The generated documents are current: blueprint format, demonstrations."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("script", ["scripts/blueprint_docs.py", "scripts/demo_docs.py"])
def test_generated_docs_are_current(script: str) -> None:
    completed = subprocess.run(
        [sys.executable, script, "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_every_blueprint_field_is_documented() -> None:
    from engine.resources import load_schema

    text = (REPO / "docs" / "BLUEPRINT_FORMAT.md").read_text(encoding="utf-8")
    schema = load_schema("blueprint.schema.json")
    for section in ("metadata", "target", "spec", "governance"):
        assert f"| `{section}` |" in text
    for field in schema["properties"]["spec"]["properties"]["scaling"]["properties"]:
        assert f"| `spec.scaling.{field}` |" in text
