"""metrics.k8s.io for real: kwok serves each fake node's /metrics/resource, metrics-server
scrapes it over verified TLS and serves PodMetrics through the API server's aggregation
layer, and the backend reads them with the runner's identity, as HPA reads them.

The load comes from a trace (blueprints/examples/traces/demo-ramp.csv) through the load
driver (tests/kube/load.py), which spreads it over the ready pods with the simulator's
own per-pod usage. metrics-server scrapes every METRIC_RESOLUTION_SECONDS (10 s): a
changed usage shows after one scrape, a new pod's first metrics (CPU is a rate) after two
or three. The tests poll with deadlines, and one Deployment carries the load for the
whole module, so those first metrics are waited for once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from kubernetes import client

from engine.cluster import Target
from engine.cluster.kubernetes import KubernetesCluster
from engine.cluster.simulated import DEFAULT_LOAD, SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.quantity import parse_quantity
from tests.conftest import REPO
from tests.kube.conftest import NAMESPACE, Admin, kube_local, now, runner_requests
from tests.kube.load import CPU_ANNOTATION, MEMORY_ANNOTATION, LoadDriver
from tests.test_runner import BLUEPRINTS

TRACE = REPO / "blueprints" / "examples" / "traces" / "demo-ramp.csv"
SERVICE = "frontend"  # the trace's service whose load the metered Deployment carries
RESOLUTION = kube_local.METRIC_RESOLUTION_SECONDS
# a new pod's first metrics: kwok's CPU counter starts at 0 on the first scrape that sees
# the pod (metrics-server drops a zero point), then two points make a rate: 20-30 s at a
# 10 s resolution; the deadline leaves room for a busy machine
FIRST_METRICS = 6 * RESOLUTION
CHANGED_USAGE = RESOLUTION + 10  # one scrape, and some slack for a busy machine
MEBIBYTE = 1024 * 1024

T = TypeVar("T")


def _poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float, what: str) -> T:
    """Read until ``done`` says so; fail with the last reading after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s; last: {value}")
        time.sleep(0.5)


def _close(value: float, expected: float, relative: float = 0.02, absolute: float = 1.0) -> bool:
    return abs(value - expected) <= max(absolute, relative * expected)


@dataclass
class Metered:
    """A Deployment of the test module's own, carrying the trace's load."""

    target: Target
    selector: str
    driver: LoadDriver
    trace: LoadTrace
    admin: Any

    def pod_metrics(self) -> dict[str, dict[str, Decimal]]:
        """Its PodMetrics, read as admin: pod → {cpu millicores, memory MiB} of its container."""
        answer = client.CustomObjectsApi(self.admin).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", NAMESPACE, "pods", label_selector=self.selector
        )
        found = {}
        for item in answer["items"]:
            [container] = item["containers"]
            found[item["metadata"]["name"]] = {
                "cpu": parse_quantity(container["usage"]["cpu"]) * 1000,
                "memory": parse_quantity(container["usage"]["memory"]) / MEBIBYTE,
            }
        return found

    def ready_pods(self) -> set[str]:
        return {p.metadata.name for p in self.driver.ready_pods(self.selector)}

    def shows(self, cpu_m: float, memory_mi: float) -> Callable[[dict[str, Any]], bool]:
        """Whether PodMetrics show this usage for every ready pod (and no other)."""
        return lambda metrics: (
            set(metrics) == self.ready_pods()
            and all(
                _close(float(m["cpu"]), cpu_m) and m["memory"] == memory_mi
                for m in metrics.values()
            )
        )


@pytest.fixture(scope="module")
def metered(cluster_admin: Admin, admin: Any) -> Metered:
    """Two pods (requests 100m, 128Mi) carrying the trace's load at 0 s, metrics served."""
    target = cluster_admin.create("metered", replicas=2)
    meter = Metered(
        target,
        "app=metered",
        LoadDriver(cluster_admin.core, NAMESPACE),
        LoadTrace.read(TRACE),
        admin,
    )
    usage = meter.driver.replay(meter.trace, SERVICE, meter.selector, 0)
    _poll(
        meter.pod_metrics,
        meter.shows(round(usage.cpu_m), round(usage.memory_mi)),
        FIRST_METRICS,
        "PodMetrics of the metered pods",
    )
    return meter


def test_pod_metrics_show_the_usage_the_driver_set(metered: Metered, cluster_admin: Admin) -> None:
    usage = metered.driver.replay(metered.trace, SERVICE, metered.selector, 0)
    # the trace's 200 rps on two pods: 100 rps each, at 1m per rps, 60Mi + 0.02Mi per rps
    assert (round(usage.cpu_m), round(usage.memory_mi)) == (100, 62)
    for pod in cluster_admin.pods("metered"):
        assert pod["metadata"]["annotations"][CPU_ANNOTATION] == "100m"
        assert pod["metadata"]["annotations"][MEMORY_ANNOTATION] == "62Mi"
    metrics = _poll(
        metered.pod_metrics, metered.shows(100, 62), CHANGED_USAGE, "the annotated usage"
    )
    assert len(metrics) == 2


def test_observe_reports_usage_over_request_through_the_runner_identity(
    metered: Metered, runner_cluster: KubernetesCluster, control_plane: Any
) -> None:
    usage = metered.driver.replay(metered.trace, SERVICE, metered.selector, 0)
    _poll(metered.pod_metrics, metered.shows(100, 62), CHANGED_USAGE, "the annotated usage")
    since = now()
    observation = runner_cluster.observe(metered.target)
    metrics, resources = observation["metrics"], observation["resources"]
    # HPA's utilization: average usage over the request (100m, 128Mi)
    assert _close(metrics["cpu_percent"], 100 * round(usage.cpu_m) / 100, absolute=1.0)
    assert metrics["memory_percent"] == round(100 * 62 / 128, 1) == 48.4
    assert _close(int(resources["cpu"]["usage"].removesuffix("m")), 100)
    assert resources["memory"]["usage"] == str(62 * MEBIBYTE)
    # the runner read them through the aggregation layer, allowed by docs/rbac.yaml as shipped
    [read] = [
        e
        for e in runner_requests(control_plane, since)
        if e["objectRef"].get("apiGroup") == "metrics.k8s.io"
    ]
    assert (read["verb"], read["objectRef"]["resource"], read["responseStatus"]["code"]) == (
        "list",
        "pods",
        200,
    )
    assert read["annotations"]["authorization.k8s.io/decision"] == "allow"


def _simulated_usage(trace: LoadTrace, seconds: list[float]) -> list[tuple[float, float]]:
    """The simulator's per-pod (cpu m, memory Mi) for the trace's frontend at each moment,
    on the driver's load model and the metered Deployment's requests and replicas."""
    cluster = SimulatedCluster.from_blueprints(list(BLUEPRINTS.values()))
    assert BLUEPRINTS[SERVICE]["spec"]["resources"]["cpu"]["request"] == "100m"
    cluster.set_load(SERVICE, **DEFAULT_LOAD)
    found = []
    for moment in seconds:
        cluster.wait(moment - cluster.elapsed())
        trace.advance(cluster)
        observation = cluster.observe(Target(SERVICE, NAMESPACE, SERVICE))
        assert observation["replicas"]["ready"] == 2
        resources = observation["resources"]
        found.append(
            (
                float(resources["cpu"]["usage"].removesuffix("m")),
                float(resources["memory"]["usage"].removesuffix("Mi")),
            )
        )
    return found


def test_a_trace_step_moves_cpu_percent_as_the_simulator_says(
    metered: Metered, runner_cluster: KubernetesCluster
) -> None:
    trace = metered.trace
    # demo-ramp: the frontend's 200 rps at 0 s become 309 rps at 30 s
    assert (trace.rps_at(SERVICE, 0), trace.rps_at(SERVICE, 30)) == (200.0, 309.0)
    (sim_before_cpu, _), (sim_after_cpu, sim_after_memory) = _simulated_usage(trace, [0, 30])

    observed = []
    for moment in (0, 30):
        usage = metered.driver.replay(trace, SERVICE, metered.selector, moment)
        cpu_m, memory_mi = round(usage.cpu_m), round(usage.memory_mi)
        _poll(
            metered.pod_metrics,
            metered.shows(cpu_m, memory_mi),
            CHANGED_USAGE,
            f"the trace's load at {moment}s",
        )
        observed.append(runner_cluster.observe(metered.target))

    before, after = (o["metrics"]["cpu_percent"] for o in observed)
    # 309 rps over two pods: 154.5m a pod, 154m once written as whole millicores
    assert _close(before, 100.0) and _close(after, 154.0)
    # the simulator's per-pod usage for the same trace moments (within its 2% noise)
    assert _close(before, sim_before_cpu, relative=0.03)
    assert _close(after, sim_after_cpu, relative=0.03)
    assert _close(after / before, sim_after_cpu / sim_before_cpu, relative=0.05, absolute=0)
    # memory follows the same model: 60Mi + 0.02Mi per rps, 63Mi at 154.5 rps a pod
    assert sim_after_memory == 63
    assert observed[1]["metrics"]["memory_percent"] == round(100 * 63 / 128, 1)


def test_a_pod_without_metrics_yet_has_no_cpu_percent(
    runner_cluster: KubernetesCluster, cluster_admin: Admin, deployment_name: str, admin: Any
) -> None:
    target = cluster_admin.create(deployment_name, replicas=1)
    driver = LoadDriver(cluster_admin.core, NAMESPACE)
    driver.drive(f"app={deployment_name}", 80.0)  # it has a load, not yet two scrapes of it
    observation = runner_cluster.observe(target)
    listed = client.CustomObjectsApi(admin).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", NAMESPACE, "pods", label_selector=f"app={deployment_name}"
    )
    # none after the observation, so none at it: the metrics API answered, with no pod of it
    assert listed["items"] == []
    # unknown, never zero
    assert "cpu_percent" not in observation["metrics"]
    assert "memory_percent" not in observation["metrics"]
    assert "usage" not in observation["resources"]["cpu"]
    assert "usage" not in observation["resources"]["memory"]


def test_a_pod_nobody_drives_has_no_metrics(
    metered: Metered, runner_cluster: KubernetesCluster, admin: Any
) -> None:
    # the governed frontend `up` made: scraped for as long as the metered pods, no usage
    # annotations, so kwok reports none and metrics-server drops its incomplete points
    assert metered.pod_metrics()
    listed = client.CustomObjectsApi(admin).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", NAMESPACE, "pods", label_selector="app=frontend"
    )
    assert listed["items"] == []
    observation = runner_cluster.observe(Target("frontend", NAMESPACE, "frontend"))
    assert observation["replicas"]["ready"] == 2
    assert "cpu_percent" not in observation["metrics"]
    assert "memory_percent" not in observation["metrics"]
