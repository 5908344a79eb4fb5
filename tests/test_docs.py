"""The generated documents are current: blueprint format, demonstrations, operations."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "script",
    ["scripts/blueprint_docs.py", "scripts/demo_docs.py", "scripts/operation_docs.py"],
)
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
    from engine.packaged import load_schema

    text = (REPO / "docs" / "BLUEPRINT_FORMAT.md").read_text(encoding="utf-8")
    schema = load_schema("blueprint.schema.json")
    for section in ("metadata", "target", "spec", "governance"):
        assert f"| `{section}` |" in text
    for field in schema["properties"]["spec"]["properties"]["scaling"]["properties"]:
        assert f"| `spec.scaling.{field}` |" in text


def test_governance_table_lists_every_operation_with_its_tier() -> None:
    from engine.packaged import operation_catalog

    text = (REPO / "docs" / "GOVERNANCE.md").read_text(encoding="utf-8")
    for name, entry in operation_catalog().items():
        assert f"| `{name}` | {entry['floor']} |" in text, name


def test_agent_operations_lists_every_role_command() -> None:
    from engine.cli import cli

    text = (REPO / "docs" / "AGENT_OPERATIONS.md").read_text(encoding="utf-8")
    for command in ("validate", "compile", "decide", "enforce", "execute", "verify"):
        assert command in cli.commands
        assert f"opsgate {command}" in text


def test_troubleshooting_lists_every_error_message() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from error_messages import messages
    finally:
        sys.path.pop(0)
    text = (REPO / "docs" / "TROUBLESHOOTING.md").read_text(encoding="utf-8")
    found = messages()
    assert len(found) > 100
    missing = {phrase: where for phrase, where in found.items() if phrase not in text}
    assert missing == {}


def test_nothing_refers_to_a_design_file_outside_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".rego", ".yaml", ".toml"))
        and "DESIGN.md" in (REPO / name).read_text(encoding="utf-8", errors="replace")
        and name != "tests/test_docs.py"
    ]
    assert found == []


def test_no_file_holds_a_merge_conflict_marker() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    markers = ("<" * 7 + " ", ">" * 7 + " ")
    found = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".rego", ".yaml", ".toml", ".json", ".cfg"))
        and (REPO / name).exists()
        and any(
            line.startswith(markers)
            for line in (REPO / name).read_text(encoding="utf-8", errors="replace").splitlines()
        )
    ]
    assert found == []
