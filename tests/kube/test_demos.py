"""The five demonstrations on the real control plane, as `opsgate demo N --cluster kube`.

Each scene is set with the admin identity and the runner acts with its own
(docs/rbac.yaml). Each demonstration is judged three ways: its own expected
outcomes (on opsgate's audit log), the API server's audit log of the runner's
requests, and the cluster's state read back with the admin kubeconfig.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from engine.demo_scene import DEMO_SERVICES, KubernetesScene
from engine.demos import KubeAccess, Prepared, prepared, run_demo
from tests.conftest import REPO
from tests.kube.conftest import Admin, now, runner_requests

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


@pytest.fixture(scope="module")
def kube_session(
    control_plane: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prepared]:
    access = KubeAccess(control_plane.runner_kubeconfig, control_plane.admin_kubeconfig)
    with prepared(REPO / "blueprints", tmp_path_factory.mktemp("demo-kube"), kube=access) as made:
        yield made
    # leave frontend and backend as `up` made them for the tests after these: at
    # min_replicas, nobody's load, no PodMetrics (tests/kube/test_metrics.py relies on it)
    scene = KubernetesScene(control_plane.admin_kubeconfig, made.workspace.blueprints)
    try:
        scene.reset()
        scene.clear_usage()
        deadline = time.monotonic() + 60
        while any(_pod_metrics(scene, name) for name in DEMO_SERVICES):
            assert time.monotonic() < deadline, "the demonstrations' PodMetrics stayed"
            time.sleep(1)
    finally:
        scene.close()


def _pod_metrics(scene: KubernetesScene, name: str) -> list[Any]:
    listed = scene.admin.custom.list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", "shop", "pods", label_selector=f"app={name}"
    )
    return list(listed["items"])


def _run(number: int, session: Prepared, directory: Path) -> tuple[list[str], Path]:
    told: list[str] = []
    outcome = run_demo(number, session, directory, told.append)
    assert outcome.failures == [], "\n".join(told)
    return told, outcome.audit_path


def _events(path: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == kind]


def _sent(control_plane: Any, since: Any) -> list[tuple[str, str, str | None, str | None, int]]:
    """(verb, resource, subresource, name, status) of each request of the runner since then,
    every one of them allowed by the RBAC manifest."""
    events = runner_requests(control_plane, since)
    assert all(e["annotations"]["authorization.k8s.io/decision"] == "allow" for e in events)
    return [
        (
            e["verb"],
            e["objectRef"]["resource"],
            e["objectRef"].get("subresource"),
            e["objectRef"].get("name"),
            e["responseStatus"]["code"],
        )
        for e in events
    ]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ready_pods(cluster_admin: Admin, name: str) -> list[dict[str, Any]]:
    return [
        p
        for p in cluster_admin.pods(name)
        if p["status"]["phase"] == "Running"
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]


def test_demo_1_frontend_really_goes_from_2_to_3_ready_pods(
    kube_session: Prepared, control_plane: Any, cluster_admin: Admin, tmp_path: Path
) -> None:
    since = now()
    told, audit = _run(1, kube_session, tmp_path)
    assert "expected  ✓ frontend scaled 2 → 3 ready pods and verified" in told
    [started] = _events(audit, "execution_started")
    assert started["operation"] == {"type": "scale", "from": 2, "to": 3}
    # the API server: the runner read, then wrote the scale subresource of frontend once
    writes = [s for s in _sent(control_plane, since) if s[0] in WRITES]
    assert writes == [("update", "deployments", "scale", "frontend", 200)]
    # the cluster, read back as admin
    deployment = cluster_admin.wait_rolled_out("frontend")
    assert deployment["spec"]["replicas"] == 3
    assert len(_ready_pods(cluster_admin, "frontend")) == 3


def test_demo_2_the_backends_4th_replica_waits_for_a_signed_approval(
    kube_session: Prepared, control_plane: Any, cluster_admin: Admin, tmp_path: Path
) -> None:
    since = now()
    told, audit = _run(2, kube_session, tmp_path)
    [requested] = _events(audit, "approval_requested")
    [granted] = _events(audit, "approval_granted")
    assert granted["justification"] == "launch traffic; DB pool raised"
    [started] = _events(audit, "execution_started")
    assert started["operation"] == {"type": "scale", "from": 3, "to": 4}
    assert started["approval_id"] == requested["approval_id"] == granted["approval_id"]
    # the setup's 3rd replica was the admin's (not audited); the runner wrote once, 3 → 4,
    # only after the approval was granted
    events = [e for e in runner_requests(control_plane, since) if e["verb"] in WRITES]
    assert [
        (e["verb"], e["objectRef"].get("subresource"), e["objectRef"]["name"]) for e in events
    ] == [("update", "scale", "backend")]
    assert _moment(events[0]["requestReceivedTimestamp"]) >= _moment(granted["time"])
    assert any("not waited for in real time" in line for line in told)
    deployment = cluster_admin.wait_rolled_out("backend")
    assert deployment["spec"]["replicas"] == 4
    assert len(_ready_pods(cluster_admin, "backend")) == 4


def test_demo_3_the_deletion_is_blocked_before_any_api_call(
    kube_session: Prepared, control_plane: Any, cluster_admin: Admin, tmp_path: Path
) -> None:
    since = now()
    _, audit = _run(3, kube_session, tmp_path)
    [blocked] = _events(audit, "blocked")
    assert blocked["operation"]["type"] == "delete_deployment"
    assert _events(audit, "execution_started") == []
    # the API server: no DELETE was ever sent, nor any other write; only reads
    sent = _sent(control_plane, since)
    assert sent, "the runner read the frontend before the verdict"
    assert {verb for verb, *_ in sent} <= {"get", "list"}
    # the cluster, read back as admin: the Deployment is there, untouched
    deployment = cluster_admin.wait_rolled_out("frontend")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["metadata"].get("deletionTimestamp") is None


def test_demo_4_a_bad_rollout_is_rolled_back_to_the_previous_replica_set(
    kube_session: Prepared, control_plane: Any, cluster_admin: Admin, tmp_path: Path
) -> None:
    cluster_admin.wait_rolled_out("frontend")
    since = now()
    told, audit = _run(4, kube_session, tmp_path)
    assert any("stays Pending: frontend-" in line for line in told)
    kinds = [
        e["event"]
        for e in map(json.loads, audit.read_text().splitlines())
        if (e.get("operation") or {}).get("type") == "adjust_resources"
    ]
    assert kinds == [
        "execution_started",
        "execution_succeeded",
        "verification_failed",
        "rollback_started",
        "rollback_succeeded",
    ]
    # the API server: the change and its undo, two patches of the Deployment, no delete
    writes = [s for s in _sent(control_plane, since) if s[0] in WRITES]
    assert writes == [("patch", "deployments", None, "frontend", 200)] * 2
    # the cluster, read back as admin: the template is the previous ReplicaSet's again, its
    # pods (and only they) run, and every node is schedulable again
    deployment = cluster_admin.wait_rolled_out("frontend")
    sets = cluster_admin.replica_sets("frontend")
    assert len(sets) >= 2
    bad = sets[max(r for r, s in sets.items() if s["spec"]["replicas"] == 0)]
    assert bad["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == (
        "110m"
    )
    [current] = [s for s in sets.values() if s["spec"]["replicas"] == 2]
    template = json.loads(json.dumps(current["spec"]["template"]))
    template["metadata"]["labels"].pop("pod-template-hash")
    assert deployment["spec"]["template"] == template
    assert template["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "100m"
    hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in cluster_admin.pods("frontend")}
    assert hashes == {current["metadata"]["labels"]["pod-template-hash"]}
    assert len(_ready_pods(cluster_admin, "frontend")) == 2
    assert not any(n.spec.unschedulable for n in cluster_admin.core.list_node().items), (
        "nodes left cordoned"
    )


def test_demo_5_only_the_frontend_changes(
    kube_session: Prepared, control_plane: Any, cluster_admin: Admin, tmp_path: Path
) -> None:
    since = now()
    _, audit = _run(5, kube_session, tmp_path)
    assert {e["service"] for e in _events(audit, "decision")} == {"frontend"}
    writes = [s for s in _sent(control_plane, since) if s[0] in WRITES]
    assert writes == [("update", "deployments", "scale", "frontend", 200)]
    # both observed through the runner's identity
    read = {(verb, name) for verb, resource, _, name, _ in _sent(control_plane, since)}
    assert {("get", "frontend"), ("get", "backend")} <= read
    assert cluster_admin.wait_rolled_out("frontend")["spec"]["replicas"] == 3
    assert cluster_admin.wait_rolled_out("backend")["spec"]["replicas"] == 2
    assert len(_ready_pods(cluster_admin, "backend")) == 2
