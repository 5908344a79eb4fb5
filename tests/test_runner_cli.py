"""The runner's commands: run, approvals, breaker, audit, execute, verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cluster.simulated import SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.errors import OpsgateError
from tests.conftest import REPO, RunCli

TRACE = REPO / "blueprints" / "examples" / "traces" / "demo-ramp.csv"


def _state(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def _run(run_cli: RunCli, tmp_path: Path, *extra: str) -> str:
    result = run_cli("run", "--state-dir", _state(tmp_path), "--pause", "0", *extra)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def test_run_once_on_a_fresh_checkout(run_cli: RunCli, tmp_path: Path) -> None:
    out = _run(run_cli, tmp_path, "--once")
    assert "nothing to do" in out
    state = tmp_path / "state"
    assert sorted(p.name for p in state.iterdir()) >= ["audit.jsonl", "cluster.json", "state.db"]


def test_run_with_trace_then_approve_from_another_shell(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--load", str(TRACE), "--ticks", "4")
    listed = run_cli("approvals", "list", "--state-dir", _state(tmp_path), "--json")
    assert listed.exit_code == 0
    requests = json.loads(listed.stdout)
    scale = next(
        r for r in requests if r["service"] == "backend" and r["operation"]["type"] == "scale"
    )
    shown = run_cli("approvals", "show", scale["id"][:8], "--state-dir", _state(tmp_path), "--json")
    assert json.loads(shown.stdout)["reasons"][0].startswith("cpu ")
    refused = run_cli(
        "approvals",
        "approve",
        scale["id"],
        "--by",
        "mallory",
        "--reason",
        "x",
        "--state-dir",
        _state(tmp_path),
    )
    assert refused.exit_code == 1
    assert "mallory may not answer" in refused.stderr
    granted = run_cli(
        "approvals",
        "approve",
        scale["id"],
        "--by",
        "sre-lead",
        "--reason",
        "launch",
        "--state-dir",
        _state(tmp_path),
    )
    assert granted.exit_code == 0
    again = run_cli(
        "approvals", "reject", scale["id"], "--by", "sre-lead", "--state-dir", _state(tmp_path)
    )
    assert again.exit_code == 1
    assert "already granted" in again.stderr
    _run(run_cli, tmp_path, "--load", str(TRACE), "--ticks", "1")
    cluster = SimulatedCluster.load(tmp_path / "state" / "cluster.json")
    assert cluster.service("backend")["replicas"] == 4
    verified = run_cli("audit", "verify", "--state-dir", _state(tmp_path))
    assert verified.exit_code == 0
    assert "chain intact" in verified.stderr
    shown = run_cli(
        "audit", "show", "--state-dir", _state(tmp_path), "--service", "backend", "--json"
    )
    kinds = [e["event"] for e in json.loads(shown.stdout)]
    assert "approval_granted" in kinds and "execution_succeeded" in kinds


def test_audit_verify_finds_tampering(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--load", str(TRACE), "--ticks", "2")
    log = tmp_path / "state" / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:1] + lines[2:]))
    result = run_cli("audit", "verify", "--state-dir", _state(tmp_path))
    assert result.exit_code == 1
    assert "audit.jsonl:2: does not follow the line before it" in result.stderr


def test_audit_prune_keeps_recent_events(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--once")
    result = run_cli("audit", "prune", "--state-dir", _state(tmp_path))
    assert result.exit_code == 0
    assert "pruned 0 events older than 400 days" in result.stderr  # ledger keeps 400 days


def test_execute_exit_codes(run_cli: RunCli, tmp_path: Path) -> None:
    base = ["execute", "--state-dir", _state(tmp_path), "--service", "frontend", "--operation"]
    blocked = run_cli(*base, '{"type": "delete_pod", "name": "frontend-r1-1"}')
    assert blocked.exit_code == 4
    assert json.loads(blocked.stdout)["suggestion"]["operation"]["type"] == "restart_pod"
    needs = run_cli(*base, '{"type": "scale", "to": 7}')
    assert needs.exit_code == 3
    done = run_cli(*base, '{"type": "scale", "to": 3}')
    assert done.exit_code == 0
    assert json.loads(done.stdout)["outcome"] == "succeeded"
    deferred = run_cli(*base, '{"type": "scale", "to": 4}')
    assert deferred.exit_code == 5
    unknown = run_cli(
        "execute", "--state-dir", _state(tmp_path), "--service", "nope", "--operation", "{}"
    )
    assert unknown.exit_code == 2


def test_breaker_list_and_reset(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--once")
    not_open = run_cli(
        "breaker", "reset", "frontend", "--by", "sre-lead", "--state-dir", _state(tmp_path)
    )
    assert not_open.exit_code == 1
    assert "not open" in not_open.stderr
    from engine.state import StateStore

    store = StateStore(tmp_path / "state" / "state.db")
    store.open_breaker("frontend", "t", "rollback failed")
    store.close()
    listed = run_cli("breaker", "list", "--state-dir", _state(tmp_path), "--json")
    assert json.loads(listed.stdout)[0]["breaker_open"] == 1
    reset = run_cli(
        "breaker", "reset", "frontend", "--by", "sre-lead", "--state-dir", _state(tmp_path)
    )
    assert reset.exit_code == 0
    events = run_cli("audit", "show", "--state-dir", _state(tmp_path), "--json")
    reset_event = next(e for e in json.loads(events.stdout) if e["event"] == "breaker_reset")
    assert reset_event["actor"] == "sre-lead"


def test_verify_command(run_cli: RunCli, tmp_path: Path) -> None:
    before = {"replicas": {"desired": 2, "ready": 2}, "metrics": {"cpu_percent": 85}, "pods": []}
    after = {
        "replicas": {"desired": 3, "ready": 3},
        "metrics": {"cpu_percent": 57, "latency_p95_ms": 120},
        "pods": [
            {"name": f"p{i}", "phase": "Running", "ready": True, "restart_count": 0}
            for i in range(3)
        ],
    }
    for name, value in (("before", before), ("after", after)):
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    args = [
        "verify",
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
        "--before",
        str(tmp_path / "before.json"),
        "--after",
        str(tmp_path / "after.json"),
    ]
    passed = run_cli(*args)
    assert passed.exit_code == 0
    assert json.loads(passed.stdout)["outcome"] == "pass"
    after["metrics"]["latency_p95_ms"] = 300
    (tmp_path / "after.json").write_text(json.dumps(after))
    failed = run_cli(*args)
    assert failed.exit_code == 6


def test_run_kube_without_configuration(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run_cli("run", "--cluster", "kube", "--once", "--state-dir", _state(tmp_path))
    assert result.exit_code == 1
    assert "no Kubernetes configuration" in result.stderr


def test_run_kube_refuses_a_load_trace(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--cluster", "kube", "--once", "--state-dir", _state(tmp_path), "--load", str(TRACE)
    )
    assert result.exit_code == 2
    assert "simulated cluster only" in result.stderr


def test_approvals_without_state(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("approvals", "list", "--state-dir", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert "no runner state" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seconds,service\n0,frontend\n", "trace header lacks rps"),
        ("seconds,service,rps\nsoon,frontend,5\n", ":2: seconds must be a number (got 'soon')"),
        ("seconds,service,rps\n0,frontend,-5\n", ":2: rps must not be negative"),
        ("seconds,service,rps,fault,value\n0,frontend,,meteor,1\n", ":2: unknown fault 'meteor'"),
        ("seconds,service,rps\n0,,5\n", ":2: service is missing"),
        ("seconds,service,rps\n0,frontend,\n", ":2: a row sets rps, a fault, or both"),
        ("seconds,service,rps\n", "the trace has no rows"),
    ],
)
def test_bad_traces(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(OpsgateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LoadTrace.read(path)


def test_trace_for_unknown_service_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("seconds,service,rps\n0,payments,5\n")
    result = run_cli("run", "--once", "--state-dir", _state(tmp_path), "--load", str(path))
    assert result.exit_code == 2
    assert "no blueprint for payments" in result.stderr
