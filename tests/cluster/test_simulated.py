"""The simulated cluster: deterministic, a plausible load model, faults on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.blueprint import load_blueprints
from engine.cluster import ClusterError, NotFoundError, Target
from engine.cluster.simulated import DEFAULT_LOAD, SimulatedCluster, pod_usage
from engine.cluster.trace import LoadTrace
from tests.conftest import REPO

FRONTEND = Target("frontend", "shop", "frontend")
BACKEND = Target("backend", "shop", "backend")


@pytest.fixture
def cluster() -> SimulatedCluster:
    blueprints = [b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints]
    return SimulatedCluster.from_blueprints(blueprints, seed=7)


def test_starts_at_min_replicas_all_ready(cluster: SimulatedCluster) -> None:
    observation = cluster.observe(FRONTEND)
    assert observation["replicas"] == {"desired": 2, "ready": 2}
    assert all(p["phase"] == "Running" and p["ready"] for p in observation["pods"])
    assert cluster.now() == "2026-02-10T12:00:00Z"


def test_same_seed_same_observations(cluster: SimulatedCluster) -> None:
    blueprints = [b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints]
    twin = SimulatedCluster.from_blueprints(blueprints, seed=7)
    for sim in (cluster, twin):
        sim.set_load("frontend", rps=170)
        sim.wait(30)
    assert cluster.observe(FRONTEND) == twin.observe(FRONTEND)
    other = SimulatedCluster.from_blueprints(blueprints, seed=8)
    other.set_load("frontend", rps=170)
    other.wait(30)
    assert other.observe(FRONTEND)["metrics"] != cluster.observe(FRONTEND)["metrics"]


def test_save_and_load_round_trip(cluster: SimulatedCluster, tmp_path: Path) -> None:
    cluster.set_load("frontend", rps=170)
    cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    path = tmp_path / "cluster.json"
    cluster.save(path)
    loaded = SimulatedCluster.load(path)
    assert loaded.observe(FRONTEND) == cluster.observe(FRONTEND)
    assert loaded.now() == cluster.now()


def test_scale_up_brings_cpu_down(cluster: SimulatedCluster) -> None:
    cluster.set_load("frontend", rps=309)
    before = cluster.observe(FRONTEND)["metrics"]["cpu_percent"]
    assert 84 <= before <= 88
    applied = cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    assert applied.inverse == {"type": "scale", "to": 2}
    assert cluster.observe(FRONTEND)["replicas"] == {"desired": 3, "ready": 2}
    cluster.wait(15)
    after = cluster.observe(FRONTEND)
    assert after["replicas"] == {"desired": 3, "ready": 3}
    assert 55 <= after["metrics"]["cpu_percent"] <= 60
    assert after["metrics"]["latency_p95_ms"] < 200


def test_pod_usage_spreads_the_load_over_the_ready_pods(cluster: SimulatedCluster) -> None:
    usage = pod_usage({**DEFAULT_LOAD, "rps": 200}, 2)
    assert (usage.cpu_m, usage.memory_mi) == (100.0, 62.0)  # 100 rps a pod
    assert pod_usage({**DEFAULT_LOAD, "rps": 200}, 4).cpu_m == 50.0
    assert pod_usage({**DEFAULT_LOAD, "rps": 200}, 2, cpu_noise=-1).cpu_m == 98.0
    # what the simulator observes is that usage (with its noise)
    cluster.set_load("frontend", **{**DEFAULT_LOAD, "rps": 200})
    observed = cluster.observe(FRONTEND)["resources"]
    assert 98 <= int(observed["cpu"]["usage"].removesuffix("m")) <= 102
    assert observed["memory"]["usage"] == "62Mi"


def test_a_trace_gives_each_service_its_latest_rate(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(
        "seconds,service,rps,fault,value\n"
        "0,frontend,200,,\n"
        "30,frontend,309,,\n"
        "30,backend,500,,\n"
        "60,frontend,,latency_spike_ms,250\n"
    )
    trace = LoadTrace.read(path)
    assert [trace.rps_at("frontend", s) for s in (0, 29.9, 30, 90)] == [200, 200, 309, 309]
    assert trace.rps_at("backend", 0) is None
    assert trace.rps_at("backend", 30) == 500
    assert trace.rps_at("orders", 90) is None


def test_latency_rises_steeply_near_saturation(cluster: SimulatedCluster) -> None:
    latencies = []
    for rps in (100, 200, 280, 320):
        cluster.set_load("frontend", rps=rps)
        latencies.append(cluster.observe(FRONTEND)["metrics"]["latency_p95_ms"])
    assert latencies == sorted(latencies)
    assert latencies[3] - latencies[2] > 3 * (latencies[1] - latencies[0])


def test_no_ready_pod_means_unknown_metrics(cluster: SimulatedCluster) -> None:
    cluster.apply(FRONTEND, {"type": "restart_pod", "pod": "frontend-r1-1"})
    observation = cluster.observe(FRONTEND)
    assert observation["metrics"] == {}
    assert "usage" not in observation["resources"]["cpu"]


def test_crash_loop_then_rollback_fixes_it(cluster: SimulatedCluster) -> None:
    cluster.apply(FRONTEND, {"type": "adjust_resources", "resource": "cpu", "to": "90m"})
    cluster.inject("frontend", "crash_loop")
    cluster.wait(95)
    pods = cluster.observe(FRONTEND)["pods"]
    assert {(p["reason"], p["ready"]) for p in pods} == {("CrashLoopBackOff", False)}
    assert all(p["restart_count"] == 3 for p in pods)
    applied = cluster.apply(FRONTEND, {"type": "rollback"})
    assert applied.inverse == {"type": "rollback", "to_revision": 2}
    cluster.wait(15)
    observation = cluster.observe(FRONTEND)
    assert all(p["ready"] and p["reason"] is None for p in observation["pods"])
    assert observation["resources"]["cpu"]["request"] == "100m"


def test_oom_when_memory_request_below_need(cluster: SimulatedCluster) -> None:
    cluster.apply(FRONTEND, {"type": "adjust_resources", "resource": "memory", "to": "32Mi"})
    cluster.wait(40)
    pods = cluster.observe(FRONTEND)["pods"]
    assert {p["reason"] for p in pods} == {"OOMKilled"}
    assert all(p["restart_count"] >= 1 for p in pods)


def test_api_error_on_the_next_calls(cluster: SimulatedCluster) -> None:
    cluster.inject("frontend", "api_errors", 2)
    for _ in range(2):
        with pytest.raises(ClusterError, match="injected") as error:
            cluster.apply(FRONTEND, {"type": "scale", "to": 3})
        assert error.value.status == 500
    cluster.apply(FRONTEND, {"type": "scale", "to": 3})


def test_latency_spike(cluster: SimulatedCluster) -> None:
    base = cluster.observe(FRONTEND)["metrics"]["latency_p95_ms"]
    cluster.inject("frontend", "latency_spike_ms", 200)
    assert cluster.observe(FRONTEND)["metrics"]["latency_p95_ms"] > base + 190


@pytest.mark.parametrize(
    ("operation", "check"),
    [
        ({"type": "scale", "to": 4}, lambda s: s["replicas"]),
        (
            {"type": "adjust_resources", "resource": "memory", "field": "limit", "to": "300Mi"},
            lambda s: s["template"]["resources"]["memory"]["limit"],
        ),
        (
            {
                "type": "update_configmap",
                "name": "frontend-config",
                "changes": {"LOG_LEVEL": "DEBUG", "NEW": "1"},
            },
            lambda s: s["configmaps"]["frontend-config"],
        ),
        (
            {"type": "update_strategy", "changes": {"max_unavailable": 1}},
            lambda s: s["template"]["strategy"],
        ),
        (
            {
                "type": "update_health_checks",
                "probe": "readiness",
                "changes": {"period_seconds": 5},
            },
            lambda s: s["template"]["probes"],
        ),
    ],
)
def test_undo_restores_the_state(cluster: SimulatedCluster, operation: dict, check: object) -> None:
    before = check(cluster.service("frontend"))  # type: ignore[operator]
    applied = cluster.apply(FRONTEND, operation)
    assert check(cluster.service("frontend")) != before  # type: ignore[operator]
    cluster.undo(FRONTEND, applied)
    assert check(cluster.service("frontend")) == before  # type: ignore[operator]


def test_restart_cannot_be_undone(cluster: SimulatedCluster) -> None:
    applied = cluster.apply(FRONTEND, {"type": "restart_pod", "pod": "frontend-r1-1"})
    with pytest.raises(ClusterError, match="can't be undone"):
        cluster.undo(FRONTEND, applied)


def test_unknown_targets(cluster: SimulatedCluster) -> None:
    with pytest.raises(NotFoundError):
        cluster.observe(Target("payments", "shop", "payments"))
    with pytest.raises(NotFoundError):
        cluster.observe(Target("frontend", "other", "frontend"))


def test_protected_operations_are_not_carried_out(cluster: SimulatedCluster) -> None:
    with pytest.raises(ClusterError, match="does not carry out"):
        cluster.apply(FRONTEND, {"type": "delete_deployment", "name": "frontend"})


def test_bad_state_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    path.write_text("[]")
    with pytest.raises(ClusterError, match="not a simulated cluster"):
        SimulatedCluster.load(path)
    path.write_text("{")
    with pytest.raises(ClusterError, match="not valid JSON"):
        SimulatedCluster.load(path)
