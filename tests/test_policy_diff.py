"""scripts/policy_diff.py: the same policies compare equal, a changed reason does not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = str(REPO / "scripts" / "policy_diff.py")


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *arguments, "--cases", "60"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_policy_diff_sees_the_same_answers_and_a_changed_one(tmp_path: Path) -> None:
    recorded = tmp_path / "answers.json"
    record = _run("record", str(recorded))
    assert record.returncode == 0, record.stderr
    assert "recorded 60 observations" in record.stdout

    same = _run("compare", str(recorded))
    assert same.returncode == 0, same.stderr
    assert "same answers for all 60 observations and 60 requests" in same.stdout

    changed_policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", changed_policies)
    rule = changed_policies / "opsgate" / "govern" / "safety" / "safety.rego"
    text = rule.read_text(encoding="utf-8")
    assert "circuit breaker open: human reset required" in text
    changed_text = text.replace("human reset required", "a person must reset it")
    rule.write_text(changed_text, encoding="utf-8")
    changed = _run("compare", str(recorded), "--policies", str(changed_policies))
    assert changed.returncode == 1
    assert "answers changed" in changed.stderr
    assert "a person must reset it" in changed.stdout


def test_policy_diff_says_why_it_cannot_compare(tmp_path: Path) -> None:
    missing = _run("compare", str(tmp_path / "nothing.json"))
    assert missing.returncode == 1
    assert "can't read recorded answers" in missing.stderr
    assert "Traceback" not in missing.stderr
