"""The Kubernetes backend against a real API server, with the runner's identity.

Each operation type the backend carries out (an ``apply_<type>`` method) is
applied through ``.kube/.../runner.kubeconfig`` (a token of the ServiceAccount
that docs/rbac.yaml binds), the real controllers roll it out (kwok makes the
pods Running and Ready), the verification engine reads the real pods, and the
inverse is applied. Every assertion on the outcome reads the cluster back with
the admin identity; the API server's audit log shows what the runner sent, and
that each of its requests was allowed.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from engine import operations
from engine.cluster import ClusterError, ConflictError, NotFoundError
from engine.cluster.kubernetes import RESTART_ANNOTATION, KubernetesCluster
from engine.verify import verify, verify_rollback
from tests.kube.conftest import NAMESPACE, Admin, now, runner_requests
from tests.test_runner import BLUEPRINTS

FRONTEND_BLUEPRINT = BLUEPRINTS["frontend"]


def _requests(plane: Any, since: datetime) -> list[tuple[str, str, str]]:
    """(verb, resource[/subresource], name) of the runner's requests since ``since``,
    after checking that the authorizer allowed every one of them."""
    events = runner_requests(plane, since)
    refused = [e["requestURI"] for e in events if _decision(e) != "allow"]
    assert refused == [], "docs/rbac.yaml does not allow what the runner needs"
    return [
        (
            e["verb"],
            e["objectRef"]["resource"]
            + (f"/{e['objectRef']['subresource']}" if e["objectRef"].get("subresource") else ""),
            e["objectRef"].get("name", ""),
        )
        for e in events
    ]


def _decision(event: dict[str, Any]) -> str:
    return str((event.get("annotations") or {}).get("authorization.k8s.io/decision"))


def _hash(pod_or_set: dict[str, Any]) -> str:
    return str(pod_or_set["metadata"]["labels"]["pod-template-hash"])


def test_every_executable_type_has_a_test_here() -> None:
    # a new apply_<type> method needs its real-cluster test in this module
    executable = {e.name for e in operations.catalog().values() if e.executable}
    tested = {
        "scale",
        "adjust_resources",
        "restart_pod",
        "rollback",
        "update_configmap",
        "update_strategy",
        "update_health_checks",
    }
    assert executable == tested
    assert all(hasattr(KubernetesCluster, f"apply_{name}") for name in executable)


def test_observe_reads_what_the_controllers_made(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name, replicas=3)
    since = now()
    observation = runner_cluster.observe(target)
    pods = cluster_admin.pods(deployment_name)
    assert observation["replicas"] == {"desired": 3, "ready": 3}
    assert sorted(p["name"] for p in observation["pods"]) == sorted(
        p["metadata"]["name"] for p in pods
    )
    assert all(
        (p["phase"], p["ready"], p["restart_count"], p["reason"]) == ("Running", True, 0, None)
        for p in observation["pods"]
    )
    assert observation["resources"] == {
        "cpu": {"request": "100m", "limit": "500m"},
        "memory": {"request": "128Mi", "limit": "256Mi"},
    }
    # new pods with no usage set have no PodMetrics: the usage is unknown, never zero
    assert observation["metrics"] == {}
    assert sorted(_requests(control_plane, since)) == [
        ("get", "deployments", deployment_name),
        ("list", "pods", ""),
        ("list", "pods", ""),  # metrics.k8s.io pods: allowed, answered without these pods
    ]


def test_observe_a_missing_deployment(runner_cluster: KubernetesCluster) -> None:
    from engine.cluster import Target

    with pytest.raises(NotFoundError, match="not found") as raised:
        runner_cluster.observe(Target("ghost", NAMESPACE, "ghost"))
    assert raised.value.status == 404


def test_scale_through_the_scale_subresource_verify_and_undo(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    before = runner_cluster.observe(target)
    since = now()
    operation = {"type": "scale", "to": 4}
    applied = runner_cluster.apply(target, operation)
    assert applied.inverse == {"type": "scale", "to": 2}
    assert _requests(control_plane, since) == [
        ("get", "deployments/scale", deployment_name),
        ("update", "deployments/scale", deployment_name),
    ]
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 4
    assert len(cluster_admin.pods(deployment_name)) == 4

    verification = verify(operation, runner_cluster.observe(target), before, FRONTEND_BLUEPRINT)
    checks = {c.name: c.passed for c in verification.checks}
    assert checks["replicas"] is True and checks["pods_ready"] is True

    runner_cluster.undo(target, applied)
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 2
    assert len(cluster_admin.pods(deployment_name)) == 2
    assert verify_rollback(applied.inverse or {}, runner_cluster.observe(target)).outcome == "pass"


def test_adjust_resources_rolls_out_a_new_replica_set_verify_and_undo(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    [original] = cluster_admin.replica_sets(deployment_name).values()
    before = runner_cluster.observe(target)
    since = now()
    operation = {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "150m"}
    applied = runner_cluster.apply(target, operation)
    assert applied.inverse == {**operation, "to": "100m"}
    assert _requests(control_plane, since) == [
        ("get", "deployments", deployment_name),
        ("patch", "deployments", deployment_name),
    ]
    cluster_admin.wait_rolled_out(deployment_name)
    assert cluster_admin.container(deployment_name)["resources"]["requests"]["cpu"] == "150m"
    sets = cluster_admin.replica_sets(deployment_name)
    assert sorted(sets) == [1, 2]
    new = sets[2]
    assert (
        new["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "150m"
    )
    assert {_hash(p) for p in cluster_admin.pods(deployment_name)} == {_hash(new)}

    verification = verify(operation, runner_cluster.observe(target), before, FRONTEND_BLUEPRINT)
    checks = {c.name: c.passed for c in verification.checks}
    assert checks["pods_ready"] is True and checks["no_new_crash"] is True
    assert checks["utilization"] is None  # no metrics here: unknown, so the outcome is partial
    assert verification.outcome == "partial"

    runner_cluster.undo(target, applied)
    cluster_admin.wait_rolled_out(deployment_name)
    assert cluster_admin.container(deployment_name)["resources"]["requests"]["cpu"] == "100m"
    # the controller brings the first ReplicaSet back (as revision 3), not a new one
    assert {_hash(p) for p in cluster_admin.pods(deployment_name)} == {_hash(original)}


def test_a_change_the_api_server_finds_invalid_is_refused(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    target = cluster_admin.create(deployment_name)
    generation = cluster_admin.deployment(deployment_name)["metadata"]["generation"]
    # a request above the limit: the API server's validation refuses it, not opsgate
    with pytest.raises(ClusterError, match="rejected as invalid") as raised:
        runner_cluster.apply(target, {"type": "adjust_resources", "resource": "cpu", "to": "900m"})
    assert raised.value.status == 422
    assert cluster_admin.deployment(deployment_name)["metadata"]["generation"] == generation
    assert cluster_admin.container(deployment_name)["resources"]["requests"]["cpu"] == "100m"


def test_restart_is_a_rollout_never_a_deletion(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    old_pods = {p["metadata"]["name"] for p in cluster_admin.pods(deployment_name)}
    before = runner_cluster.observe(target)
    since = now()
    operation = {"type": "restart_pod", "pod": sorted(old_pods)[0]}
    applied = runner_cluster.apply(target, operation)
    assert applied.inverse is None
    sent = _requests(control_plane, since)
    assert [verb for verb, _, _ in sent] == ["get", "patch"]
    assert not any(verb in ("delete", "deletecollection") for verb, _, _ in sent)
    cluster_admin.wait_rolled_out(deployment_name)
    template = cluster_admin.deployment(deployment_name)["spec"]["template"]
    assert RESTART_ANNOTATION in template["metadata"]["annotations"]
    new_pods = {p["metadata"]["name"] for p in cluster_admin.pods(deployment_name)}
    assert len(new_pods) == 2 and not new_pods & old_pods  # every pod replaced by the controller
    verification = verify(operation, runner_cluster.observe(target), before, FRONTEND_BLUEPRINT)
    assert verification.outcome == "pass"
    with pytest.raises(ClusterError, match="can't be undone"):
        runner_cluster.undo(target, applied)


def test_rollback_to_the_previous_replica_set_and_undo(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    # a second revision, made by someone else: a new image
    cluster_admin.apps.patch_namespaced_deployment(
        deployment_name,
        NAMESPACE,
        {
            "spec": {
                "template": {"spec": {"containers": [{"name": "app", "image": "shop/app:2.0"}]}}
            }
        },
    )
    cluster_admin.wait_rolled_out(deployment_name)
    sets = cluster_admin.replica_sets(deployment_name)
    assert sorted(sets) == [1, 2]
    since = now()
    applied = runner_cluster.apply(target, {"type": "rollback"})
    assert applied.inverse == {"type": "rollback", "to_revision": 2}
    assert [(v, r) for v, r, _ in _requests(control_plane, since)] == [
        ("get", "deployments"),
        ("list", "replicasets"),
        ("patch", "deployments"),
    ]
    rolled = cluster_admin.wait_rolled_out(deployment_name)
    assert (
        rolled["spec"]["template"]["spec"]["containers"][0]["image"]
        == sets[1]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert rolled["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert {_hash(p) for p in cluster_admin.pods(deployment_name)} == {_hash(sets[1])}
    assert (
        verify({"type": "rollback"}, runner_cluster.observe(target), {}, FRONTEND_BLUEPRINT).outcome
        == "pass"
    )

    runner_cluster.undo(target, applied)
    undone = cluster_admin.wait_rolled_out(deployment_name)
    assert undone["spec"]["template"]["spec"]["containers"][0]["image"] == "shop/app:2.0"
    assert {_hash(p) for p in cluster_admin.pods(deployment_name)} == {_hash(sets[2])}


def test_rollback_without_an_earlier_revision(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    target = cluster_admin.create(deployment_name)
    with pytest.raises(NotFoundError, match="no revision to roll back to"):
        runner_cluster.apply(target, {"type": "rollback"})
    assert sorted(cluster_admin.replica_sets(deployment_name)) == [1]


def test_configmap_update_and_undo(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, control_plane: Any
) -> None:
    # frontend-config (made by kube_local up) is one of the ConfigMaps docs/rbac.yaml names
    configmaps = cluster_admin.core
    configmaps.patch_namespaced_config_map(
        "frontend-config", NAMESPACE, {"data": {"LOG_LEVEL": "INFO", "OLD": "x"}}
    )
    target = cluster_admin.create("frontend-cm")
    since = now()
    operation = {
        "type": "update_configmap",
        "name": "frontend-config",
        "changes": {"LOG_LEVEL": "DEBUG", "OLD": None},
    }
    applied = runner_cluster.apply(target, operation)
    assert _requests(control_plane, since) == [
        ("get", "configmaps", "frontend-config"),
        ("patch", "configmaps", "frontend-config"),
    ]
    data = configmaps.read_namespaced_config_map("frontend-config", NAMESPACE).data
    assert data == {"LOG_LEVEL": "DEBUG"}
    runner_cluster.undo(target, applied)
    data = configmaps.read_namespaced_config_map("frontend-config", NAMESPACE).data
    assert data == {"LOG_LEVEL": "INFO", "OLD": "x"}


def test_strategy_change_and_undo(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    target = cluster_admin.create(deployment_name)
    operation = {"type": "update_strategy", "changes": {"max_unavailable": 1, "max_surge": "50%"}}
    applied = runner_cluster.apply(target, operation)
    strategy = cluster_admin.deployment(deployment_name)["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": "50%", "maxUnavailable": 1}
    # the strategy is not part of the pod template: no new ReplicaSet
    assert sorted(cluster_admin.replica_sets(deployment_name)) == [1]
    runner_cluster.undo(target, applied)
    strategy = cluster_admin.deployment(deployment_name)["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_probe_change_rolls_out_verify_and_undo(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    target = cluster_admin.create(deployment_name)
    before = runner_cluster.observe(target)
    operation = {
        "type": "update_health_checks",
        "probe": "readiness",
        "changes": {"periodSeconds": 5, "failureThreshold": 2},
    }
    applied = runner_cluster.apply(target, operation)
    cluster_admin.wait_rolled_out(deployment_name)
    probe = cluster_admin.container(deployment_name)["readinessProbe"]
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (5, 2)
    assert sorted(cluster_admin.replica_sets(deployment_name)) == [1, 2]
    verification = verify(operation, runner_cluster.observe(target), before, FRONTEND_BLUEPRINT)
    checks = {c.name: c.passed for c in verification.checks}
    assert checks == {"pods_ready": True, "no_new_crash": True}
    assert verification.outcome == "pass"
    runner_cluster.undo(target, applied)
    cluster_admin.wait_rolled_out(deployment_name)
    probe = cluster_admin.container(deployment_name)["readinessProbe"]
    # the API server had defaulted failureThreshold to 3: the inverse puts 3 back
    assert (probe["periodSeconds"], probe["failureThreshold"]) == (10, 3)


def test_pods_that_cannot_run_fail_verification(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    # a request no node can hold: the new pod stays Pending, the real readiness says so
    target = cluster_admin.create(deployment_name, cpu=("100m", "64"))
    before = runner_cluster.observe(target)
    operation = {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "40"}
    applied = runner_cluster.apply(target, operation)
    pending: list[Any] = []
    for _ in range(50):
        pending = [
            p for p in cluster_admin.pods(deployment_name) if p["status"]["phase"] == "Pending"
        ]
        if pending:
            break
        time.sleep(0.1)
    assert pending, "the scheduler should leave the new pod Pending"
    verification = verify(operation, runner_cluster.observe(target), before, FRONTEND_BLUEPRINT)
    assert verification.outcome == "fail"
    [failed] = [c for c in verification.checks if c.passed is False]
    assert failed.name == "pods_ready"
    assert pending[0]["metadata"]["name"] in failed.observed
    # the deployment controller may write the Deployment between our read and our patch:
    # the write is refused (ConflictError) and, as the runner's next tick does, read again
    for attempt in range(5):
        try:
            runner_cluster.undo(target, applied)
            break
        except ConflictError:
            if attempt == 4:
                raise
            time.sleep(0.2)
    cluster_admin.wait_rolled_out(deployment_name)
    assert verify_rollback(applied.inverse or {}, runner_cluster.observe(target)).outcome == "pass"


def test_a_whole_number_written_as_a_float_scales(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    # replicas is an int32: the API server would refuse 4.0 on the wire
    target = cluster_admin.create(deployment_name)
    runner_cluster.apply(target, {"type": "scale", "to": 4.0})
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 4


@pytest.mark.parametrize(
    "operation",
    [
        {"type": "delete_deployment", "name": "frontend"},
        {"type": "delete_pod", "name": "frontend-1"},
        {"type": "modify_secret", "name": "db-credentials"},
        {"type": "modify_rbac", "name": "opsgate-runner"},
        {"type": "modify_network_policy", "name": "frontend-ingress"},
        {"type": "no_such_type"},
    ],
    ids=lambda o: o["type"],
)
def test_forbidden_types_send_nothing(
    operation: dict[str, Any],
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    control_plane: Any,
) -> None:
    from engine.cluster import Target

    since = now()
    with pytest.raises(ClusterError, match="does not carry out") as raised:
        runner_cluster.apply(Target("frontend", NAMESPACE, "frontend"), operation)
    assert raised.value.status == 422
    assert runner_requests(control_plane, since) == []  # refused before any request
    assert cluster_admin.deployment("frontend")["spec"]["replicas"] == 2
