"""The five demonstrations as end-to-end tests, judged on their audit logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.demos import DEMOS, Prepared, prepared, run_demo
from tests.conftest import REPO, RunCli


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    with prepared(REPO / "blueprints", tmp_path_factory.mktemp("demo")) as scene_set:
        yield scene_set


def events(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("number", sorted(DEMOS))
def test_demo_happens_as_expected(number: int, session: Prepared, tmp_path: Path) -> None:
    told: list[str] = []
    outcome = run_demo(number, session, tmp_path, told.append)
    assert outcome.failures == []
    assert any(line.startswith("expected  ✓") for line in told)
    assert events(outcome.audit_path)  # judged on the audit log, which exists and verifies


def test_demo_1_audit_trail(session: Prepared, tmp_path: Path) -> None:
    outcome = run_demo(1, session, tmp_path, lambda _: None)
    trail = [e for e in events(outcome.audit_path) if e.get("service") == "frontend"]
    scale = [e["event"] for e in trail if e["operation"]["type"] == "scale"]  # type: ignore[index]
    assert scale == ["decision", "execution_started", "execution_succeeded", "verification_passed"]


def test_demo_2_approval_is_answered_through_the_workflow(
    session: Prepared, tmp_path: Path
) -> None:
    outcome = run_demo(2, session, tmp_path, lambda _: None)
    kinds = [
        e["event"] for e in events(outcome.audit_path) if str(e["event"]).startswith("approval_")
    ]
    assert "approval_granted" in kinds and "approval_expired" in kinds


def test_breaking_a_rule_makes_the_demo_fail(
    run_cli: RunCli, blueprint_copy: Path, tmp_path: Path
) -> None:
    path = blueprint_copy / "frontend" / "blueprint.yaml"
    path.write_text(
        path.read_text().replace("scale_up_threshold_percent: 80", "scale_up_threshold_percent: 90")
    )
    result = run_cli("demo", "1", "--blueprints", str(blueprint_copy), "--state-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "frontend scaled 2 → 3 and verified: DID NOT HAPPEN" in result.stderr
    assert "demonstrations not as expected: 1" in result.stderr


def test_demo_all_from_the_command_line(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("demo", "all", "--state-dir", str(tmp_path))
    assert result.exit_code == 0, result.stderr[-2000:]
    assert result.stderr.count("as expected; audit log:") == len(DEMOS)


def test_demo_on_kube_without_a_kubeconfig_says_so_in_one_line(
    run_cli: RunCli, tmp_path: Path
) -> None:
    missing = tmp_path / "runner.kubeconfig"
    result = run_cli(
        "demo", "1", "--cluster", "kube", "--kubeconfig", str(missing), "--state-dir", str(tmp_path)
    )
    assert result.exit_code == 2
    assert f"the runner kubeconfig {missing} does not exist" in result.stderr
    assert "make kube-up" in result.stderr and "Traceback" not in result.stderr
