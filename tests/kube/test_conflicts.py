"""Real optimistic concurrency: another client changes the Deployment between the
runner's read and its write. The API server refuses the stale write (409 on the
scale subresource, 422 on the JSON patch's resourceVersion test); the runner
sends it once, records the conflict, and decides again from a fresh read.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.cluster import ConflictError
from engine.cluster.kubernetes import KubernetesCluster
from tests.kube.conftest import NAMESPACE, Admin, now, runner_requests


def _after_read(cluster: KubernetesCluster, method: str, meddle: Any) -> None:
    """Make the runner's ``method`` call run ``meddle`` (the other client) right after it."""
    read = getattr(cluster.apps, method)

    def racing(*args: Any, **kwargs: Any) -> Any:
        answer = read(*args, **kwargs)
        meddle()
        return answer

    setattr(cluster.apps, method, racing)


def test_a_stale_scale_is_refused_and_not_retried(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    _after_read(
        runner_cluster,
        "read_namespaced_deployment_scale",
        lambda: cluster_admin.apps.patch_namespaced_deployment_scale(
            deployment_name, NAMESPACE, {"spec": {"replicas": 5}}
        ),
    )
    since = now()
    with pytest.raises(ConflictError, match="re-read") as raised:
        runner_cluster.apply(target, {"type": "scale", "to": 3})
    assert raised.value.status == 409
    writes = [e for e in runner_requests(control_plane, since) if e["verb"] == "update"]
    assert [e["responseStatus"]["code"] for e in writes] == [409]  # one attempt
    # the other client's change stands; ours was never applied
    assert cluster_admin.wait_rolled_out(deployment_name)["spec"]["replicas"] == 5


def test_a_stale_patch_is_refused_and_not_retried(
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    deployment_name: str,
    control_plane: Any,
) -> None:
    target = cluster_admin.create(deployment_name)
    _after_read(
        runner_cluster,
        "read_namespaced_deployment",
        lambda: cluster_admin.apps.patch_namespaced_deployment(
            deployment_name, NAMESPACE, {"metadata": {"annotations": {"team": "changed-it"}}}
        ),
    )
    since = now()
    with pytest.raises(ConflictError, match="re-read") as raised:
        runner_cluster.apply(
            target, {"type": "adjust_resources", "resource": "memory", "to": "200Mi"}
        )
    assert raised.value.status == 422
    patches = [e for e in runner_requests(control_plane, since) if e["verb"] == "patch"]
    assert [e["responseStatus"]["code"] for e in patches] == [422]
    deployment = cluster_admin.deployment(deployment_name)
    assert deployment["metadata"]["annotations"]["team"] == "changed-it"
    assert cluster_admin.container(deployment_name)["resources"]["requests"]["memory"] == "128Mi"
    assert sorted(cluster_admin.replica_sets(deployment_name)) == [1]


def test_a_write_after_the_controllers_settle_applies(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str
) -> None:
    # the controller-manager's own status writes change resourceVersion too (a write
    # during a rollout conflicts, and is decided again next tick); once they settle,
    # the backend's read right before its write makes an ordinary write go through
    target = cluster_admin.create(deployment_name)
    cluster_admin.apps.patch_namespaced_deployment_scale(
        deployment_name, NAMESPACE, {"spec": {"replicas": 3}}
    )
    cluster_admin.wait_rolled_out(deployment_name)
    runner_cluster.apply(target, {"type": "adjust_resources", "resource": "memory", "to": "200Mi"})
    cluster_admin.wait_rolled_out(deployment_name)
    assert cluster_admin.container(deployment_name)["resources"]["requests"]["memory"] == "200Mi"
    assert cluster_admin.deployment(deployment_name)["spec"]["replicas"] == 3
