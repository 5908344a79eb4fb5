"""The Kubernetes backend against a fake API server, for what a real one won't do on demand.

Everything a real API server answers (objects, 404, 409, 422, 403, every
operation type, RBAC) is tested against one in tests/kube. What stays here:
server errors and silence (500, 503, a timeout), PodMetrics usage in exact
figures beside a pod without any (tests/kube/test_metrics.py reads real ones
from metrics-server, within a tolerance), Prometheus, and the RBAC manifest
read as a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from engine.cluster import ClusterError, ConflictError, Target
from engine.cluster.kubernetes import KubernetesCluster
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


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_map_to_cluster_errors(
    cluster: KubernetesCluster, api: FakeApiServer, status: int
) -> None:
    # a real API server won't fail on demand; 404, 409, 422 and 403 are met for real
    # in tests/kube
    api.fail_next = [status]
    with pytest.raises(ClusterError, match=f"API server error {status}") as raised:
        cluster.observe(FRONTEND)
    assert raised.value.status == status


def test_a_silent_api_server_is_a_timeout(api: FakeApiServer) -> None:
    api.delay = 2.0
    configuration = client.Configuration()
    configuration.host = api.url
    with client.ApiClient(configuration) as api_client:
        cluster = KubernetesCluster(api_client, timeout=0.3)
        with pytest.raises(ClusterError, match="API server timed out") as raised:
            cluster.observe(FRONTEND)
    assert raised.value.status is None


def test_an_absent_api_server_is_unreachable() -> None:
    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"
    configuration.retries = False
    with client.ApiClient(configuration) as api_client:
        cluster = KubernetesCluster(api_client, timeout=1)
        with pytest.raises(ClusterError, match=r"API server unreachable \(connection refused\)$"):
            cluster.observe(FRONTEND)


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
    # update_configmap names any configmap; the API server lets it change only these
    [configmaps] = [rule for rule in rules if "configmaps" in rule["resources"]]
    assert configmaps["resourceNames"] == ["frontend-config", "backend-config"]
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("just: text\n", "not usable"),
        ("", "not usable"),
        ("- a\n- list\n", "not a kubeconfig file"),
    ],
)
def test_a_bad_kubeconfig_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(ClusterError, match=f"^kubeconfig {path}: {message}"):
        KubernetesCluster(kubeconfig=path)


def test_an_unreadable_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="cannot be read"):
        KubernetesCluster(kubeconfig=tmp_path)
