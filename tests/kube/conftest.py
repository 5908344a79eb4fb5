"""The real-cluster tier: one local control plane per test run (scripts/kube_local.py).

Started once per session in a directory of its own under .kube/, stopped by
PID when the session ends (an interrupted run included; the processes also
die with pytest if it is killed). Skipped, with the reason, when the pinned
binaries are not built (`make kube-tools`; `make test` builds them).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from engine.cluster import Target
from engine.cluster.kubernetes import KubernetesCluster
from tests.conftest import REPO

sys.path.append(str(REPO / "scripts"))  # the repo scripts are not a package
import kube_local

NAMESPACE = kube_local.NAMESPACE


def _stale_roots() -> None:
    """Remove the directories of earlier test runs whose pytest is gone."""
    for root in (REPO / ".kube").glob("pytest-*"):
        try:
            os.kill(int(root.name.split("-", 1)[1]), 0)
        except (ValueError, ProcessLookupError):
            kube_local.ControlPlane(root).down()
            shutil.rmtree(root, ignore_errors=True)
        except PermissionError:
            continue


@pytest.fixture(scope="session")
def control_plane() -> Iterator[kube_local.ControlPlane]:
    """The local control plane (etcd, apiserver, controllers, scheduler, kwok, metrics-server),
    ready."""
    missing = kube_local.missing_binaries()
    if missing:
        pytest.skip(f"local control plane not built ({', '.join(missing)}): run make kube-tools")
    _stale_roots()
    plane = kube_local.ControlPlane(REPO / ".kube" / f"pytest-{os.getpid()}", die_with_parent=True)
    try:
        plane.up()
    except kube_local.KubeLocalError as e:
        plane.down()
        pytest.fail(f"local control plane did not start: {e}")
    try:
        yield plane
    finally:
        plane.down()
        shutil.rmtree(plane.root, ignore_errors=True)


@pytest.fixture(scope="session")
def admin(control_plane: kube_local.ControlPlane) -> Iterator[Any]:
    """An ApiClient with the admin identity: what the tests read the cluster's state with."""
    with control_plane.admin_client() as api:
        yield api


@pytest.fixture
def runner_cluster(control_plane: kube_local.ControlPlane) -> Iterator[KubernetesCluster]:
    """The Kubernetes backend with the runner's identity (runner.kubeconfig)."""
    cluster = KubernetesCluster(kubeconfig=control_plane.runner_kubeconfig, timeout=10)
    yield cluster
    cluster.api.close()


class Admin:
    """Reads and writes with the admin identity, and waits for the controllers."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    def deployment(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        raw = self.apps.read_namespaced_deployment(name, namespace)
        return dict(self.api.sanitize_for_serialization(raw))

    def container(self, name: str) -> dict[str, Any]:
        return dict(self.deployment(name)["spec"]["template"]["spec"]["containers"][0])

    def create(self, name: str, **options: Any) -> Target:
        """A new Deployment in shop; returns once its pods are Running and Ready."""
        manifest = kube_local.deployment_manifest(name, **options)
        self.apps.create_namespaced_deployment(NAMESPACE, manifest)
        self.wait_rolled_out(name)
        return Target(name, NAMESPACE, name)

    def replica_sets(self, name: str) -> dict[int, dict[str, Any]]:
        """The Deployment's ReplicaSets by revision."""
        found = {}
        for item in self.apps.list_namespaced_replica_set(
            NAMESPACE, label_selector=f"app={name}"
        ).items:
            data = self.api.sanitize_for_serialization(item)
            revision = int(data["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            found[revision] = data
        return found

    def pods(self, name: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_pod(NAMESPACE, label_selector=f"app={name}").items
        return [self.api.sanitize_for_serialization(p) for p in items]

    def wait_rolled_out(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the controllers have rolled the Deployment out, as kubectl rollout status."""
        deadline = time.monotonic() + timeout
        while True:
            d = self.deployment(name)
            spec, status = d["spec"], d.get("status") or {}
            pods = [p for p in self.pods(name) if not p["metadata"].get("deletionTimestamp")]
            if (
                status.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == spec["replicas"]
                and status.get("readyReplicas", 0) == spec["replicas"]
                and status.get("replicas", 0) == spec["replicas"]
                and len(pods) == spec["replicas"]
            ):
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"deployment {name} not rolled out in {timeout}s: {status}")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def cluster_admin(admin: Any) -> Admin:
    """The admin's view of the cluster (the state each test asserts)."""
    return Admin(admin)


def _names() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"t{n}"


_NAMES = _names()


@pytest.fixture
def deployment_name(request: pytest.FixtureRequest) -> str:
    """A Deployment name of this test's own (a DNS label)."""
    stem = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    return f"{next(_NAMES)}-{stem}".lower()


def runner_requests(plane: kube_local.ControlPlane, since: datetime) -> list[dict[str, Any]]:
    """The runner's requests the API server audited since ``since`` (responses only)."""
    events = []
    for line in plane.audit_log.read_text().splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete":
            continue
        received = datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))
        if received >= since and event["user"]["username"] == kube_local.RUNNER_USER:
            events.append(event)
    return events


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["Admin", "ApiException", "now", "runner_requests"]
