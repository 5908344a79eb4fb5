"""The runner end to end on the real control plane, as a user runs it:

    opsgate run --cluster kube --kubeconfig .kube/runner.kubeconfig --once

with the repo's blueprints (the frontend pointed at a Deployment of the test's
own, and a short stabilization so the tick verifies in seconds, not a minute).
Every request the runner sends is allowed by docs/rbac.yaml as shipped (the API
server's audit log says so); a conflict makes it read and decide again; a
namespace the manifest does not grant is refused once and reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import moments
from engine.audit import AuditLog
from engine.blueprint import load_blueprints
from engine.cluster.kubernetes import KubernetesCluster
from engine.policy import PolicySession
from engine.runner import Runner
from engine.state import StateStore
from tests.conftest import REPO
from tests.kube.conftest import NAMESPACE, Admin, now, runner_requests


def _blueprints(target: Path, deployment: str, namespace: str = NAMESPACE) -> Path:
    """The repo's blueprints, the frontend's pointed at ``namespace``/``deployment``."""
    import shutil

    shutil.copytree(REPO / "blueprints", target, ignore=shutil.ignore_patterns("schema"))
    path = target / "frontend" / "blueprint.yaml"
    text = path.read_text()
    for old, new in (
        ("deployment: frontend ", f"deployment: {deployment} "),
        ("namespace: shop ", f"namespace: {namespace} "),
        ("stabilization_seconds: 60 ", "stabilization_seconds: 2 "),
    ):
        assert old in text
        text = text.replace(old, new)
    path.write_text(text)
    return target


def _opsgate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def _run_once(
    control_plane: Any, blueprints: Path, state: Path
) -> subprocess.CompletedProcess[str]:
    """``opsgate run --cluster kube --once`` as a user runs it, with the runner's kubeconfig."""
    return _opsgate(
        "run",
        "--cluster",
        "kube",
        "--kubeconfig",
        str(control_plane.runner_kubeconfig),
        "--once",
        "--blueprints",
        str(blueprints),
        "--state-dir",
        str(state),
    )


def _events(state: Path, kind: str) -> list[dict[str, Any]]:
    lines = (state / "audit.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e.get("event") == kind]


def test_run_once_restores_the_minimum_with_only_allowed_calls(
    tmp_path: Path, cluster_admin: Admin, deployment_name: str, control_plane: Any
) -> None:
    cluster_admin.create(deployment_name, replicas=1)  # someone scaled it below min_replicas 2
    blueprints = _blueprints(tmp_path / "blueprints", deployment_name)
    state = tmp_path / "state"
    since = now()
    ran = _run_once(control_plane, blueprints, state)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr + ran.stdout
    # the cluster, read back as admin: two replicas, both Running and Ready
    deployment = cluster_admin.wait_rolled_out(deployment_name)
    assert deployment["spec"]["replicas"] == 2
    assert all(p["status"]["phase"] == "Running" for p in cluster_admin.pods(deployment_name))
    # opsgate's own record: executed and verified against the real pods
    [started] = _events(state, "execution_started")
    assert started["operation"] == {"type": "scale", "from": 1, "to": 2}
    # new pods, no usage driven: no PodMetrics, utilization unknown, so the outcome is partial
    [verified] = _events(state, "verification_partial")
    checks = {c["name"]: c["passed"] for c in verified["verification"]["checks"]}
    assert checks["replicas"] is True and checks["pods_ready"] is True
    # the API server's record: every request of the runner allowed by docs/rbac.yaml
    events = runner_requests(control_plane, since)
    decisions = {
        (e["verb"], e["objectRef"]["resource"], e["annotations"]["authorization.k8s.io/decision"])
        for e in events
    }
    assert all(d == "allow" for _, _, d in decisions), decisions
    sent = {
        (e["verb"], e["objectRef"]["resource"], e["objectRef"].get("subresource")) for e in events
    }
    assert {
        ("get", "deployments", None),
        ("list", "pods", None),
        ("get", "deployments", "scale"),
        ("update", "deployments", "scale"),
    } <= sent
    assert not {verb for verb, _, _ in sent} & {"delete", "create", "deletecollection"}


def test_a_namespace_the_manifest_does_not_grant_is_refused_once(
    tmp_path: Path, control_plane: Any
) -> None:
    blueprints = _blueprints(tmp_path / "blueprints", "frontend", namespace="unlisted")
    state = tmp_path / "state"
    since = now()
    ran = _run_once(control_plane, blueprints, state)
    assert "Traceback" not in ran.stderr + ran.stdout
    message = "deployment unlisted/frontend: not allowed (403): check the runner's RBAC"
    assert message in ran.stdout + ran.stderr
    [error] = [e for e in _events(state, "error") if e.get("service") == "frontend"]
    assert message in error["error"]
    refused = [
        e
        for e in runner_requests(control_plane, since)
        if e["objectRef"].get("namespace") == "unlisted"
    ]
    assert [(e["verb"], e["responseStatus"]["code"]) for e in refused] == [("get", 403)]


@pytest.fixture
def runner_on(tmp_path: Path, control_plane: Any) -> Iterator[Any]:
    """Build a Runner on blueprints whose frontend is a given Deployment (real OPA)."""
    made: list[Any] = []

    def build(deployment: str) -> tuple[Runner, KubernetesCluster, AuditLog]:
        blueprints = _blueprints(tmp_path / "blueprints", deployment)
        session = PolicySession(blueprints).__enter__()
        cluster = KubernetesCluster(kubeconfig=control_plane.runner_kubeconfig)
        state = StateStore(tmp_path / "state.db")
        audit = AuditLog(tmp_path / "audit.jsonl")
        made.append((session, state, cluster))
        loaded = {b.name: b.effective for b in load_blueprints([blueprints]).blueprints}
        runner = Runner(
            blueprints=loaded, session=session, cluster=cluster, state=state, audit=audit
        )
        return runner, cluster, audit

    yield build
    for session, state, cluster in made:
        state.close()
        cluster.api.close()
        session.__exit__(None, None, None)


def test_after_a_conflict_the_runner_reads_and_decides_again(
    runner_on: Any, cluster_admin: Admin, deployment_name: str, control_plane: Any
) -> None:
    cluster_admin.create(deployment_name, replicas=1)
    runner, cluster, audit = runner_on(deployment_name)
    read = cluster.apps.read_namespaced_deployment_scale
    meddled: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        answer = read(*args, **kwargs)
        if not meddled:  # another client scales it to 3 between our read and our write
            meddled.append(1)
            cluster_admin.apps.patch_namespaced_deployment_scale(
                deployment_name, NAMESPACE, {"spec": {"replicas": 3}}
            )
        return answer

    cluster.apps.read_namespaced_deployment_scale = racing
    since = now()
    first = runner.tick()
    [failed] = [e for e in audit.events() if e["event"] == "execution_failed"]
    assert failed["conflict"] is True and failed["status"] == 409
    assert [r.outcome for r in first.results] == ["failed"]
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 3

    # next tick: read again, 3 >= min_replicas 2, nothing to do; the other client's 3 stands
    second = runner.tick()
    assert second.results == []
    assert second.observations["frontend"]["replicas"] == {"desired": 3, "ready": 3}
    assert cluster_admin.deployment(deployment_name)["spec"]["replicas"] == 3
    writes = [e for e in runner_requests(control_plane, since) if e["verb"] in ("update", "patch")]
    assert [e["responseStatus"]["code"] for e in writes] == [409]


def test_a_change_after_the_tick_observed_is_not_overridden(
    runner_on: Any, cluster_admin: Admin, deployment_name: str, control_plane: Any
) -> None:
    # the tick sees 1 replica and decides 1 → 2; before it acts, another client scales
    # to 3. Scaling to 2 is still allowed (min 2, max 5), but it was worked out from a
    # 1 that is gone: the runner must not apply it over the other client's 3
    cluster_admin.create(deployment_name, replicas=1)
    runner, cluster, audit = runner_on(deployment_name)
    observe = cluster.observe
    seen: list[int] = []

    def then_someone_scales(target: Any) -> Any:
        observation = observe(target)
        if target.deployment == deployment_name and not seen:
            seen.append(1)
            cluster_admin.apps.patch_namespaced_deployment_scale(
                deployment_name, NAMESPACE, {"spec": {"replicas": 3}}
            )
        return observation

    cluster.observe = then_someone_scales  # type: ignore[method-assign]
    since = now()
    report = runner.tick()
    assert [(r.outcome, r.operation) for r in report.results] == [
        ("failed", {"type": "scale", "from": 1, "to": 2})
    ]
    [failed] = [e for e in audit.events() if e["event"] == "execution_failed"]
    assert failed["conflict"] is True
    assert "shows 3 now, not the 1 this was decided on" in failed["error"]
    assert not [
        e for e in runner_requests(control_plane, since) if e["verb"] in ("update", "patch")
    ]
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 3
    assert runner.tick().results == []  # decided again from 3: nothing to do
    assert cluster_admin.deployment(deployment_name)["spec"]["replicas"] == 3


def test_twenty_services_are_applied_in_one_tick_and_verified_after_one_period(
    tmp_path: Path, cluster_admin: Admin, deployment_name: str, control_plane: Any
) -> None:
    """Issue 11, point 6: a real cluster's stabilization time no longer stalls the loop.
    Twenty services each below min_replicas are all scaled in the first tick, before any
    verification, and all verified once one stabilization period has passed."""
    import shutil

    blueprints = tmp_path / "blueprints"
    blueprints.mkdir()
    shutil.copy(REPO / "blueprints" / "governance.yaml", blueprints / "governance.yaml")
    template = (REPO / "blueprints" / "frontend" / "blueprint.yaml").read_text()
    names = [f"{deployment_name[:50]}-{n}" for n in range(20)]
    for name in names:
        cluster_admin.create(name, replicas=1)  # below min_replicas 2
        text = template
        for old, new in (
            ("name: frontend ", f"name: {name} "),
            ("deployment: frontend ", f"deployment: {name} "),
            # time for the pods of twenty rollouts at once to become Ready on kwok
            ("stabilization_seconds: 60 ", "stabilization_seconds: 15 "),
        ):
            assert old in text
            text = text.replace(old, new)
        (blueprints / f"{name}.yaml").write_text(text)
    state = tmp_path / "state"
    ran = _run_once(control_plane, blueprints, state)
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    kinds = [e["event"] for e in events]
    applied = [i for i, kind in enumerate(kinds) if kind == "execution_succeeded"]
    verified = [i for i, kind in enumerate(kinds) if kind.startswith("verification_")]
    assert len(applied) == 20 and len(verified) == 20
    assert max(applied) < min(verified)  # every change applied before any was judged
    assert {events[i]["service"] for i in applied} == set(names)
    failed = [
        (events[j]["service"], [c for c in events[j]["verification"]["checks"] if not c["passed"]])
        for j in verified
        if events[j]["event"] == "verification_failed"
    ]
    assert failed == []
    # each judged at or after its due time, all within one stabilization period of the tick
    for i in applied:
        due = events[i]["verify_at"]
        judged = next(events[j] for j in verified if events[j]["service"] == events[i]["service"])
        assert moments.parse(judged["time"]) >= moments.parse(due)
    # one period, not twenty: the last judgement comes well within two periods of the first apply
    first = moments.parse(events[min(applied)]["time"])
    last = moments.parse(events[max(verified)]["time"])
    assert (last - first).total_seconds() < 2 * 15
    # the cluster, read back as admin
    for name in names:
        assert cluster_admin.wait_rolled_out(name)["spec"]["replicas"] == 2
