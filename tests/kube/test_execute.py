"""The executor on the real control plane: apply, wait, verify on the real pods, and
roll back what verification fails, each step in the journal and the audit log."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.audit import AuditLog
from engine.cluster.kubernetes import KubernetesCluster
from engine.execute import Context, Executor
from engine.state import StateStore
from tests.kube.conftest import Admin
from tests.test_runner import BLUEPRINTS

ALLOW = {"tier": "allow", "rules": ["r"], "reasons": ["ok"], "dry_run": False}


@pytest.fixture
def quick_blueprint() -> dict[str, Any]:
    """The frontend's blueprint with a two-second stabilization (60 s in the repo)."""
    blueprint = copy.deepcopy(BLUEPRINTS["frontend"])
    blueprint["spec"]["reliability"]["stabilization_seconds"] = 2
    return blueprint


@pytest.fixture
def executor(
    tmp_path: Path, runner_cluster: KubernetesCluster
) -> Iterator[tuple[Executor, StateStore, AuditLog]]:
    state = StateStore(tmp_path / "state.db")
    audit = AuditLog(tmp_path / "audit.jsonl")
    yield Executor(runner_cluster, state, audit, lambda request: ALLOW), state, audit
    state.close()


def _decision(operation: dict[str, Any]) -> dict[str, Any]:
    return {"id": "d1", "operation": operation, "tier": "allow", "rules": [], "reasons": []}


def test_a_rollout_whose_pods_never_run_is_rolled_back(
    executor: tuple[Executor, StateStore, AuditLog],
    quick_blueprint: dict[str, Any],
    cluster_admin: Admin,
    deployment_name: str,
) -> None:
    run, state, audit = executor
    # a request no kwok node can hold: the new ReplicaSet's pod stays Pending
    target = cluster_admin.create(deployment_name, cpu=("100m", "64"))
    [original] = cluster_admin.replica_sets(deployment_name).values()
    operation = {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "40"}
    result = run.execute(Context(target, quick_blueprint, "rev"), _decision(operation))
    assert result.outcome == "rolled_back"
    assert "pods_ready" in result.detail
    events = [e["event"] for e in audit.events() if e.get("service") == deployment_name]
    assert events == [
        "execution_started",
        "execution_succeeded",
        "verification_failed",
        "rollback_started",
        "rollback_succeeded",
    ]
    assert [e.status for e in state.journal()] == ["rolled_back"]
    # read back as admin: the request is back, and only the first ReplicaSet's pods run
    rolled = cluster_admin.wait_rolled_out(deployment_name)
    assert rolled["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "100m",
        "memory": "128Mi",
    }
    pods = cluster_admin.pods(deployment_name)
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {
        original["metadata"]["labels"]["pod-template-hash"]
    }
    assert all(p["status"]["phase"] == "Running" for p in pods)


def test_a_scale_is_applied_and_verified_on_ready_pods(
    executor: tuple[Executor, StateStore, AuditLog],
    quick_blueprint: dict[str, Any],
    cluster_admin: Admin,
    deployment_name: str,
) -> None:
    run, state, audit = executor
    target = cluster_admin.create(deployment_name)
    result = run.execute(
        Context(target, quick_blueprint, "rev"), _decision({"type": "scale", "from": 2, "to": 3})
    )
    # no usage driven, so no PodMetrics: utilization is unknown, the rest passed on the real pods
    assert result.outcome == "partial"
    assert result.verification is not None
    checks = {c.name: c.passed for c in result.verification.checks}
    assert checks["replicas"] is True and checks["pods_ready"] is True
    assert [e.status for e in state.journal()] == ["completed"]
    assert [e["event"] for e in audit.events() if e.get("service") == deployment_name] == [
        "execution_started",
        "execution_succeeded",
        "verification_partial",
    ]
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 3
    assert len(cluster_admin.pods(deployment_name)) == 3
