"""docs/RULES.md is generated from the policy METADATA and must be current."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_rule_reference_is_current_and_ids_are_consistent() -> None:
    completed = subprocess.run(
        [sys.executable, "scripts/rule_docs.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    text = (REPO / "docs" / "RULES.md").read_text(encoding="utf-8")
    for rule_id in (
        "opsgate.decide.scaling.scale_up",
        "opsgate.govern.scaling.above_maximum",
        "opsgate.govern.safety.breaker_open",
        "opsgate.govern.parameters.unknown_type",
    ):
        assert f"`{rule_id}`" in text
