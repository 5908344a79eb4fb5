"""docs/rbac.yaml, exactly as shipped, on a real API server.

The control plane applies the manifest and the runner's kubeconfig carries a
token of its ServiceAccount, so what is refused here is refused by the API
server's RBAC authorizer (its audit log records the decision), not by opsgate.
What the runner needs is shown allowed in test_backend.py and test_run.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from engine.audit import AuditLog
from engine.cluster import ClusterError, Target
from engine.cluster.kubernetes import KubernetesCluster
from engine.execute import Context, Executor
from engine.state import StateStore
from tests.kube.conftest import NAMESPACE, Admin, now, runner_requests
from tests.test_runner import BLUEPRINTS

OTHER = "elsewhere"


@pytest.fixture(scope="module")
def protected(cluster_admin: Admin) -> Iterator[dict[str, str]]:
    """Objects the runner must not touch, made by the admin."""
    core, apps = cluster_admin.core, cluster_admin.apps
    core.create_namespace({"metadata": {"name": OTHER}})
    apps.create_namespaced_deployment(OTHER, _manifest("intruder", OTHER))
    core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": "db-credentials"}, "stringData": {"password": "s3cret"}}
    )
    core.create_namespaced_config_map(
        NAMESPACE, {"metadata": {"name": "payment-keys"}, "data": {"MODE": "live"}}
    )
    client.NetworkingV1Api(cluster_admin.api).create_namespaced_network_policy(
        NAMESPACE,
        {
            "metadata": {"name": "frontend-ingress"},
            "spec": {
                "podSelector": {"matchLabels": {"app": "frontend"}},
                "policyTypes": ["Ingress"],
            },
        },
    )
    pod = cluster_admin.pods("frontend")[0]["metadata"]["name"]
    yield {"pod": pod}
    core.delete_namespace(OTHER)


def _manifest(name: str, namespace: str) -> dict[str, Any]:
    import kube_local

    return kube_local.deployment_manifest(name, namespace)


# what the runner's identity tries, and how the admin checks nothing changed
Attempt = Callable[[Any, dict[str, str]], object]
FORBIDDEN: dict[str, Attempt] = {
    "delete a deployment": lambda api, _: client.AppsV1Api(api).delete_namespaced_deployment(
        "frontend", NAMESPACE
    ),
    "create a deployment": lambda api, _: client.AppsV1Api(api).create_namespaced_deployment(
        NAMESPACE, _manifest("rogue", NAMESPACE)
    ),
    "delete a pod": lambda api, objects: client.CoreV1Api(api).delete_namespaced_pod(
        objects["pod"], NAMESPACE
    ),
    "read a secret": lambda api, _: client.CoreV1Api(api).read_namespaced_secret(
        "db-credentials", NAMESPACE
    ),
    "list secrets": lambda api, _: client.CoreV1Api(api).list_namespaced_secret(NAMESPACE),
    "read a deployment in another namespace": lambda api, _: client.AppsV1Api(
        api
    ).read_namespaced_deployment("intruder", OTHER),
    "scale a deployment in another namespace": lambda api, _: client.AppsV1Api(
        api
    ).patch_namespaced_deployment_scale("intruder", OTHER, {"spec": {"replicas": 5}}),
    "list pods in another namespace": lambda api, _: client.CoreV1Api(api).list_namespaced_pod(
        OTHER
    ),
    "grant itself a role": lambda api, _: client.RbacAuthorizationV1Api(
        api
    ).create_namespaced_role_binding(
        NAMESPACE,
        {
            "metadata": {"name": "escalate"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "admin",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "opsgate-runner", "namespace": NAMESPACE}
            ],
        },
    ),
    "widen its own role": lambda api, _: client.RbacAuthorizationV1Api(api).patch_namespaced_role(
        "opsgate-runner",
        NAMESPACE,
        {"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    ),
    "read its own role": lambda api, _: client.RbacAuthorizationV1Api(api).read_namespaced_role(
        "opsgate-runner", NAMESPACE
    ),
    "change a network policy": lambda api, _: client.NetworkingV1Api(
        api
    ).patch_namespaced_network_policy(
        "frontend-ingress", NAMESPACE, {"spec": {"policyTypes": ["Egress"]}}
    ),
    "create a network policy": lambda api, _: client.NetworkingV1Api(
        api
    ).create_namespaced_network_policy(
        NAMESPACE, {"metadata": {"name": "open"}, "spec": {"podSelector": {}}}
    ),
    "change a configmap the manifest does not name": lambda api, _: client.CoreV1Api(
        api
    ).patch_namespaced_config_map("payment-keys", NAMESPACE, {"data": {"MODE": "test"}}),
    "read a configmap the manifest does not name": lambda api, _: client.CoreV1Api(
        api
    ).read_namespaced_config_map("payment-keys", NAMESPACE),
}


@pytest.mark.parametrize("attempt", list(FORBIDDEN), ids=lambda a: a.replace(" ", "-"))
def test_the_api_server_refuses(
    attempt: str,
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    protected: dict[str, str],
    control_plane: Any,
) -> None:
    since = now()
    with pytest.raises(ApiException) as raised:
        FORBIDDEN[attempt](runner_cluster.api, protected)
    assert raised.value.status == 403
    [event] = runner_requests(control_plane, since)
    assert event["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert event["responseStatus"]["code"] == 403


def test_nothing_forbidden_changed(
    cluster_admin: Admin, protected: dict[str, str], runner_cluster: KubernetesCluster
) -> None:
    # read back with the admin identity after every refusal above (same module, run after them)
    for attempt in FORBIDDEN.values():
        with pytest.raises(ApiException):
            attempt(runner_cluster.api, protected)
    core = cluster_admin.core
    assert cluster_admin.deployment("frontend")["spec"]["replicas"] == 2
    assert cluster_admin.deployment("intruder", OTHER)["spec"]["replicas"] == 2
    assert any(p["metadata"]["name"] == protected["pod"] for p in cluster_admin.pods("frontend"))
    names = [
        d.metadata.name for d in cluster_admin.apps.list_namespaced_deployment(NAMESPACE).items
    ]
    assert "rogue" not in names
    assert core.read_namespaced_config_map("payment-keys", NAMESPACE).data == {"MODE": "live"}
    rbac = client.RbacAuthorizationV1Api(cluster_admin.api)
    assert [b.metadata.name for b in rbac.list_namespaced_role_binding(NAMESPACE).items] == [
        "opsgate-runner"
    ]
    assert len(rbac.read_namespaced_role("opsgate-runner", NAMESPACE).rules) == 6
    policy = client.NetworkingV1Api(cluster_admin.api).read_namespaced_network_policy(
        "frontend-ingress", NAMESPACE
    )
    assert policy.spec.policy_types == ["Ingress"]
    assert [
        p.metadata.name
        for p in client.NetworkingV1Api(cluster_admin.api)
        .list_namespaced_network_policy(NAMESPACE)
        .items
    ] == ["frontend-ingress"]


def test_a_refused_write_is_one_clear_audited_failure(
    tmp_path: Path,
    runner_cluster: KubernetesCluster,
    cluster_admin: Admin,
    protected: dict[str, str],
    control_plane: Any,
) -> None:
    # OPA would allow this key change; the API server refuses the configmap the
    # manifest does not name: one attempt, a clear error in the audit log, no retry
    state = StateStore(tmp_path / "state.db")
    audit = AuditLog(tmp_path / "audit.jsonl")
    verdict = {"tier": "allow", "rules": ["r"], "reasons": ["ok"], "dry_run": False}
    executor = Executor(runner_cluster, state, audit, lambda request: verdict)
    context = Context(Target("frontend", NAMESPACE, "frontend"), BLUEPRINTS["frontend"], "rev")
    decision = {
        "id": "d-403",
        "operation": {"type": "update_configmap", "name": "payment-keys", "changes": {"MODE": "x"}},
        "tier": "allow",
        "rules": [],
        "reasons": [],
    }
    since = now()
    result = executor.execute(context, decision)
    state.close()
    assert result.outcome == "failed"
    assert result.detail == (
        f"configmap {NAMESPACE}/payment-keys: not allowed (403): check the runner's RBAC"
    )
    [failed] = [e for e in audit.events() if e["event"] == "execution_failed"]
    assert failed["status"] == 403 and "check the runner's RBAC" in failed["error"]
    assert not [e for e in audit.events() if e["event"].startswith("rollback")]
    refused = [
        e
        for e in runner_requests(control_plane, since)
        if e["objectRef"]["resource"] == "configmaps"
    ]
    assert [(e["verb"], e["responseStatus"]["code"]) for e in refused] == [("get", 403)]
    assert cluster_admin.core.read_namespaced_config_map("payment-keys", NAMESPACE).data == {
        "MODE": "live"
    }


def test_refusals_map_to_one_clear_error(
    runner_cluster: KubernetesCluster, protected: dict[str, str]
) -> None:
    with pytest.raises(ClusterError) as raised:
        runner_cluster.observe(Target("intruder", OTHER, "intruder"))
    assert raised.value.status == 403
    assert str(raised.value) == (
        f"deployment {OTHER}/intruder: not allowed (403): check the runner's RBAC"
    )
