"""`make demo` (scripts/demo.sh) shows each step of the runner; checked on its audit log."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import REPO


def test_demo_script_shows_every_step(tmp_path: Path) -> None:
    state = tmp_path / "demo-state"
    completed = subprocess.run(
        ["bash", "scripts/demo.sh", str(state)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]

    def seen(kind: str, service: str, operation_type: str) -> bool:
        return any(
            e["event"] == kind
            and e.get("service") == service
            and e["operation"]["type"] == operation_type
            for e in events
            if "operation" in e
        )

    assert seen("verification_passed", "frontend", "scale")  # autonomous scale-up
    assert seen("approval_requested", "backend", "scale")  # approval request
    assert seen("approval_granted", "backend", "scale")
    assert seen("execution_succeeded", "backend", "scale")
    assert seen("blocked", "frontend", "delete_deployment")  # forbidden operation blocked
    assert seen("rollback_succeeded", "frontend", "adjust_resources")  # rollback
    assert "chain intact" in completed.stderr
    assert f"audit log: {state}/audit.jsonl" in completed.stdout
