"""The Kubernetes backend through the real `kubernetes` client against a fake API server.

The fake checks what real API servers check (resourceVersion, patch content
type, JSON-patch tests) and the tests check the exact requests sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from engine.cluster import ClusterError, ConflictError, NotFoundError, Target
from engine.cluster.kubernetes import RESTART_ANNOTATION, KubernetesCluster
from tests.cluster.fake_apiserver import FakeApiServer, fake_apiserver, pod

FRONTEND = Target("frontend", "shop", "frontend")


@pytest.fixture
def api() -> Iterator[FakeApiServer]:
    with fake_apiserver() as server:
        yield server


@pytest.fixture
def cluster(api: FakeApiServer) -> Iterator[KubernetesCluster]:
    configuration = client.Configuration()
    configuration.host = api.url
    api_client = client.ApiClient(configuration)
    yield KubernetesCluster(api_client, timeout=5)
    api_client.close()


def test_observe(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    api.pods.append(pod("frontend-c", ready=False, restarts=4, waiting="CrashLoopBackOff"))
    observation = cluster.observe(FRONTEND)
    assert observation["replicas"] == {"desired": 2, "ready": 2}
    assert observation["resources"] == {
        "cpu": {"request": "100m", "limit": "500m", "usage": "85m"},
        "memory": {"request": "128Mi", "limit": "256Mi", "usage": str(105 * 2**20)},
    }
    assert observation["metrics"] == {"cpu_percent": 85.0, "memory_percent": 82.0}
    assert observation["pods"][2] == {
        "name": "frontend-c",
        "phase": "Running",
        "ready": False,
        "restart_count": 4,
        "reason": "CrashLoopBackOff",
    }
    pods_request = next(r for r in api.requests if r.path == "/api/v1/namespaces/shop/pods")
    assert pods_request.query["labelSelector"] == ["app=frontend"]


def test_observe_without_metrics_server(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    api.metrics = []
    observation = cluster.observe(FRONTEND)
    assert observation["metrics"] == {}  # unknown, never zero
    assert "usage" not in observation["resources"]["cpu"]


def test_scale_uses_the_scale_subresource_with_resource_version(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    applied = cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    assert applied.inverse == {"type": "scale", "to": 2}
    [write] = api.writes()
    assert (write.method, write.path) == (
        "PUT",
        "/apis/apps/v1/namespaces/shop/deployments/frontend/scale",
    )
    assert write.body["metadata"]["resourceVersion"] == "100"
    assert write.body["spec"] == {"replicas": 3}
    assert api.deployment["spec"]["replicas"] == 3


def test_scale_conflict_is_not_retried(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    api.fail_next = [200, 409]  # the read passes (answered by the route), the write conflicts
    api.fail_next = []
    original = api.deployment["metadata"]["resourceVersion"]

    # someone else writes between our read and our write
    def racing_read() -> None:
        api.deployment["metadata"]["resourceVersion"] = str(int(original) + 5)

    scale = cluster.apps.read_namespaced_deployment_scale
    cluster.apps.read_namespaced_deployment_scale = lambda *a, **k: (scale(*a, **k), racing_read())[
        0
    ]  # type: ignore[method-assign]
    with pytest.raises(ConflictError):
        cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    assert len(api.writes()) == 1  # one attempt, no blind retry
    assert api.deployment["spec"]["replicas"] == 2


def test_adjust_resources_is_a_guarded_json_patch(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    applied = cluster.apply(
        FRONTEND, {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "90m"}
    )
    [write] = api.writes()
    assert write.method == "PATCH"
    assert write.content_type == "application/json-patch+json"
    assert write.body == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "100"},
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/resources/requests/cpu",
            "value": "90m",
        },
    ]
    assert applied.inverse == {
        "type": "adjust_resources",
        "resource": "cpu",
        "field": "request",
        "to": "100m",
    }
    cluster.undo(FRONTEND, applied)
    assert (
        api.deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
        == "100m"
    )


def test_stale_resource_version_is_a_conflict(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    read = cluster.apps.read_namespaced_deployment

    def stale_read(*args: object, **kwargs: object) -> object:
        answer = read(*args, **kwargs)
        api.deployment["metadata"]["resourceVersion"] = "999"  # changed after we read it
        return answer

    cluster.apps.read_namespaced_deployment = stale_read  # type: ignore[method-assign]
    with pytest.raises(ConflictError, match="re-read"):
        cluster.apply(FRONTEND, {"type": "adjust_resources", "resource": "memory", "to": "120Mi"})
    assert (
        api.deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][
            "memory"
        ]
        == "128Mi"
    )


def test_restart_uses_the_rollout_annotation_never_deletes(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    applied = cluster.apply(FRONTEND, {"type": "restart_pod", "pod": "frontend-a"})
    assert applied.inverse is None
    [write] = api.writes()
    assert write.method == "PATCH"
    added = write.body[1]
    assert added["op"] == "add"
    assert added["path"] == "/spec/template/metadata/annotations"
    assert RESTART_ANNOTATION in added["value"]
    assert not any(r.method == "DELETE" for r in api.requests)


def test_rollback_restores_the_previous_replica_set_template(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    applied = cluster.apply(FRONTEND, {"type": "rollback"})
    assert applied.inverse == {"type": "rollback", "to_revision": 2}
    template = api.deployment["spec"]["template"]
    assert template["spec"]["containers"][0]["image"] == "shop/frontend:1.9"
    assert "pod-template-hash" not in template["metadata"]["labels"]
    rs_request = next(r for r in api.requests if r.path.endswith("/replicasets"))
    assert rs_request.query["labelSelector"] == ["app=frontend"]


def test_rollback_without_history(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    api.replica_sets = api.replica_sets[1:]
    with pytest.raises(NotFoundError, match="no revision to roll back to"):
        cluster.apply(FRONTEND, {"type": "rollback"})


def test_configmap_patch_and_undo(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    operation = {
        "type": "update_configmap",
        "name": "frontend-config",
        "changes": {"LOG_LEVEL": "DEBUG"},
    }
    applied = cluster.apply(FRONTEND, operation)
    [write] = api.writes()
    assert write.path == "/api/v1/namespaces/shop/configmaps/frontend-config"
    assert write.body[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    assert api.configmap["data"] == {"LOG_LEVEL": "DEBUG"}
    cluster.undo(FRONTEND, applied)
    assert api.configmap["data"] == {"LOG_LEVEL": "INFO"}


def test_strategy_and_probes(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    cluster.apply(FRONTEND, {"type": "update_strategy", "changes": {"max_unavailable": 1}})
    assert api.deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 1
    cluster.apply(
        FRONTEND,
        {"type": "update_health_checks", "probe": "readiness", "changes": {"periodSeconds": 5}},
    )
    assert api.deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] == {
        "periodSeconds": 5
    }


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (404, NotFoundError, "not found"),
        (409, ConflictError, "409"),
        (422, ClusterError, "rejected as invalid"),
        (500, ClusterError, "API server error 500"),
        (403, ClusterError, "check the runner's RBAC"),
    ],
)
def test_api_statuses_map_to_cluster_errors(
    cluster: KubernetesCluster,
    api: FakeApiServer,
    status: int,
    error: type[Exception],
    message: str,
) -> None:
    api.fail_next = [status]
    with pytest.raises(error, match=message) as raised:
        cluster.observe(FRONTEND)
    assert raised.value.status == status  # type: ignore[attr-defined]


def test_protected_operations_are_refused(cluster: KubernetesCluster, api: FakeApiServer) -> None:
    with pytest.raises(ClusterError, match="does not carry out"):
        cluster.apply(FRONTEND, {"type": "delete_deployment", "name": "frontend"})
    assert api.writes() == []


def test_rbac_manifest_is_least_privilege() -> None:
    import yaml

    from tests.conftest import REPO

    documents = list(yaml.safe_load_all((REPO / "docs" / "rbac.yaml").read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds == ["ServiceAccount", "Role", "RoleBinding"]  # namespaced: no ClusterRole
    rules = documents[1]["rules"]
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key]
        assert not {"delete", "deletecollection", "create", "escalate", "bind"} & set(rule["verbs"])
        assert "secrets" not in rule["resources"]
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }
    # everything the backend calls
    for needed in [
        ("apps", "deployments", "get"),
        ("apps", "deployments", "patch"),
        ("apps", "deployments/scale", "get"),
        ("apps", "deployments/scale", "update"),
        ("apps", "replicasets", "list"),
        ("", "pods", "list"),
        ("", "configmaps", "get"),
        ("", "configmaps", "patch"),
        ("metrics.k8s.io", "pods", "list"),
    ]:
        assert needed in granted


def test_conflict_during_execution_is_not_a_failure_count(tmp_path: object) -> None:
    from pathlib import Path

    from engine.audit import AuditLog
    from engine.execute import Context, Executor
    from engine.state import StateStore
    from tests.conftest import REPO
    from tests.test_runner import BLUEPRINTS

    class Conflicting:
        def now(self) -> str:
            return "2026-02-10T12:00:00Z"

        def wait(self, seconds: float) -> None:
            pass

        def observe(self, target: Target) -> dict[str, object]:
            return {"replicas": {"desired": 2, "ready": 2}, "pods": [], "metrics": {}}

        def apply(self, target: Target, operation: dict[str, object]) -> object:
            raise ConflictError("changed", status=409)

        def undo(self, target: Target, applied: object) -> None:
            raise AssertionError("nothing to undo after a conflict")

    directory = Path(str(tmp_path))
    state = StateStore(directory / "state.db")
    audit = AuditLog(directory / "audit.jsonl")
    verdict = {"tier": "allow", "rules": ["r"], "reasons": ["ok"], "dry_run": False}
    executor = Executor(Conflicting(), state, audit, lambda request: verdict)  # type: ignore[arg-type]
    context = Context(FRONTEND, BLUEPRINTS["frontend"], "rev")
    decision = {
        "id": "d",
        "operation": {"type": "scale", "to": 3},
        "tier": "allow",
        "rules": [],
        "reasons": [],
    }
    result = executor.execute(context, decision)
    assert result.outcome == "failed"
    assert state.service_state("frontend")["consecutive_failures"] == 0
    assert [e.status for e in state.journal()] == ["failed"]
    assert next(e for e in audit.events() if e["event"] == "execution_failed")["conflict"] is True
    assert REPO.exists()
    state.close()


def test_prometheus_metrics_when_given(api: FakeApiServer) -> None:
    import json as _json
    from http.server import BaseHTTPRequestHandler
    from urllib.parse import parse_qs, urlsplit

    from tests.loopback import serve

    asked: list[str] = []

    class Prometheus(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)["query"][0]
            asked.append(query)
            value = (
                "180.5" if "histogram_quantile" in query else "NaN" if "code=~" in query else "42"
            )
            body = _json.dumps(
                {"status": "success", "data": {"result": [{"value": [0, value]}]}}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    configuration = client.Configuration()
    configuration.host = api.url
    with serve(Prometheus) as url, client.ApiClient(configuration) as api_client:
        cluster = KubernetesCluster(api_client, prometheus_url=url + "/", timeout=5)
        metrics = cluster.observe(FRONTEND)["metrics"]
    assert metrics["latency_p95_ms"] == 180.5
    assert metrics["throughput_rps"] == 42
    assert "error_rate_percent" not in metrics  # NaN is unknown, never zero
    assert all('namespace="shop",deployment="frontend"' in q for q in asked)


def test_prometheus_down_leaves_metrics_unknown(cluster: KubernetesCluster) -> None:
    cluster.prometheus_url = "http://127.0.0.1:9"
    metrics = cluster.observe(FRONTEND)["metrics"]
    assert "latency_p95_ms" not in metrics
    assert metrics["cpu_percent"] == 85.0


def test_scale_to_whole_number_written_as_float_sends_an_integer(
    cluster: KubernetesCluster, api: FakeApiServer
) -> None:
    cluster.apply(FRONTEND, {"type": "scale", "to": 4.0})
    [write] = api.writes()
    replicas = write.body["spec"]["replicas"]
    assert (replicas, type(replicas)) == (4, int)  # replicas is an int32: no 4.0 on the wire
