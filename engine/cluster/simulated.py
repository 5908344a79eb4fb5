"""A deterministic simulated cluster: virtual clock, load model, fault injection.

Each service is a deployment (replicas, requests and limits, strategy,
probes, revision history), its pods, configmaps and secret names, and a load
model: a request rate spread over the ready pods gives CPU per pod, memory
per pod grows with it, and p95 latency rises steeply as a pod nears
saturation. ``cpu_percent`` is CPU used against a pod's capacity (the CPU at
which it saturates, ``saturation_percent`` of its request), so a pod can use
about its request, as the resource rules want, at a utilization between the
scaling thresholds. Faults: a revision that crash-loops, pods OOMKilled when
their memory request is below what they need, a latency spike, and API
errors on the next calls. Everything random is derived from the seed, the service and
the virtual time, so the same seed and the same calls give the same cluster.
The whole cluster saves to and loads from one JSON file, so separate CLI
invocations share it.
"""

from __future__ import annotations

import copy
import datetime
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import strictjson
from engine.cluster import Applied, ClusterError, NotFoundError, Target, apply_by_type
from engine.files import write_atomically
from engine.quantity import QuantityError, cpu_millicores, memory_bytes

EPOCH_START = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC).timestamp()
READY_AFTER_SECONDS = 10.0
CRASH_EVERY_SECONDS = 30.0
MEBIBYTE = 1024 * 1024

DEFAULT_LOAD = {
    "rps": 100.0,  # requests per second for the whole service
    "cpu_m_per_rps": 1.0,  # millicores one request per second costs
    "base_latency_ms": 80.0,  # p95 of an idle pod
    "saturation_percent": 125.0,  # CPU usage (% of request) at which a pod saturates
    "memory_base_mi": 60.0,  # memory of an idle pod
    "memory_mi_per_rps": 0.02,  # memory one request per second adds to a pod
    "error_rate_percent": 0.1,  # errors of a healthy pod
}


def _default_load(blueprint: dict[str, Any]) -> dict[str, float]:
    """A quiet load: utilization (usage ÷ request, as HPA) mid-way between the thresholds.

    The request rate is the service's CPU request in millicores times its
    replicas, whatever the metric, so a trace's rps means the same load for
    every blueprint. A CPU-scaled service spends ``middle``% of its request per
    request-per-second-per-millicore and saturates at its request (HPA's sense
    of 100%); a memory-scaled one uses its CPU request and saturates at 125% of it.
    """
    scaling = blueprint["spec"]["scaling"]
    band = blueprint["governance"]["resource_band_percent"]
    replicas = scaling["min_replicas"]
    middle = (scaling["scale_down_threshold_percent"] + scaling["scale_up_threshold_percent"]) / 2
    cpu_m = cpu_millicores(blueprint["spec"]["resources"]["cpu"]["request"])
    memory_mi = memory_bytes(blueprint["spec"]["resources"]["memory"]["request"]) / MEBIBYTE
    load = dict(DEFAULT_LOAD)
    load["rps"] = round(replicas * cpu_m, 1)
    if scaling["metric"] == "cpu":
        load["cpu_m_per_rps"] = round(middle / 100, 4)
        load["saturation_percent"] = 100.0
        memory_ratio = 0.93
    else:  # memory% is usage over request: stay under the threshold and inside the band
        memory_ratio = max(
            1 - band / 100 + 0.01, min(0.97, (middle + scaling["scale_up_threshold_percent"]) / 200)
        )
    per_pod_rps = load["rps"] / replicas
    load["memory_base_mi"] = round(
        memory_ratio * memory_mi - load["memory_mi_per_rps"] * per_pod_rps, 1
    )
    return load


@dataclass(frozen=True)
class PodUsage:
    """What each ready pod of a service uses under a load."""

    cpu_m: float  # millicores
    memory_mi: float  # MiB


def pod_usage(load: Mapping[str, float], ready: int, cpu_noise: float = 0.0) -> PodUsage:
    """Each ready pod's usage when the service's load is spread evenly over ``ready`` pods.

    The one load model both clusters run: the simulator observes it, and the tests'
    load driver (tests/kube/load.py) writes it into a real cluster's pods. ``cpu_noise``
    in [-1, 1) moves CPU by up to 2%, as the simulator's noise does.
    """
    per_pod_rps = load["rps"] / ready
    cpu_m = per_pod_rps * load["cpu_m_per_rps"] * (1 + 0.02 * cpu_noise)
    memory_mi = load["memory_base_mi"] + load["memory_mi_per_rps"] * per_pod_rps
    return PodUsage(cpu_m, memory_mi)


def _slowdown(saturation: float) -> float:
    """How much slower than idle a pod answers: steep near saturation, still rising past it."""
    knee = 0.95
    if saturation < knee:
        return 1 + 0.5 * saturation / (1 - saturation)
    return (1 + 0.5 * knee / (1 - knee)) * (1 + 4 * (saturation - knee))


@functools.lru_cache(maxsize=4096)
def _requests(cpu: str, memory: str) -> dict[str, int]:
    """CPU and memory requests in millicores and bytes (at least 1, so nothing divides by 0)."""
    try:
        return {"cpu": max(1, cpu_millicores(cpu)), "memory": max(1, memory_bytes(memory))}
    except QuantityError as e:
        raise ClusterError(f"invalid resource quantity in the simulation: {e}", status=422) from e


@dataclass(frozen=True)
class Change:
    """One change the simulated cluster carried out: when (virtual seconds), where, what."""

    at: float
    service: str
    applied: Applied


def _format_time(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SimulatedCluster:
    """A cluster that lives in memory (and in a JSON file between commands)."""

    # waiting moves the virtual clock: verification can happen within the tick
    waits_in_real_time = False

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        # every change this object carried out, undos included (not saved with the state):
        # the what-if simulator counts operations and flaps from it, whoever made them
        self.changes: list[Change] = []
        # the simulator's sampling of the series it reports (engine.simulate), if any
        self._sampling: tuple[float, Callable[[float], None]] | None = None
        self._next_sample = 0.0

    # --- construction and persistence ---------------------------------------------

    @classmethod
    def from_blueprints(
        cls, blueprints: list[dict[str, Any]], *, seed: int = 1
    ) -> SimulatedCluster:
        """A cluster running each blueprint's service at min_replicas, as it declares."""
        services = {}
        for blueprint in blueprints:
            name = blueprint["metadata"]["name"]
            resources = {
                resource: {
                    "request": str(blueprint["spec"]["resources"][resource]["request"]),
                    "limit": str(blueprint["spec"]["resources"][resource]["limit"]),
                }
                for resource in ("cpu", "memory")
            }
            template = {
                "resources": resources,
                "strategy": {
                    "type": blueprint["spec"]["deployment"]["strategy"],
                    "max_surge": blueprint["spec"]["deployment"]["max_surge"],
                    "max_unavailable": blueprint["spec"]["deployment"]["max_unavailable"],
                },
                "probes": {
                    "readiness": {"period_seconds": 10, "failure_threshold": 3},
                    "liveness": {"period_seconds": 10, "failure_threshold": 3},
                },
            }
            services[name] = {
                "namespace": blueprint["target"]["namespace"],
                "deployment": blueprint["target"]["deployment"],
                "replicas": blueprint["spec"]["scaling"]["min_replicas"],
                "revision": 1,
                "template": template,
                "history": {"1": copy.deepcopy(template)},
                "pods": [],
                "pod_serial": 0,
                "configmaps": {f"{name}-config": {"LOG_LEVEL": "INFO"}},
                "secrets": [f"{name}-credentials"],
                "load": _default_load(blueprint),
                "faults": {
                    "crash_revisions": [],
                    "latency_spike_ms": 0.0,
                    "api_errors": 0,
                    "apply_errors": 0,
                    "crash_next_rollout": 0,
                },
            }
        cluster = cls({"seed": seed, "clock": EPOCH_START, "services": services})
        for name in services:
            cluster._reconcile(name, ready=True)
        return cluster

    @classmethod
    def load(cls, path: Path) -> SimulatedCluster:
        """Read a cluster saved by ``save``."""
        try:
            state = strictjson.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise ClusterError(f"can't read simulated cluster {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ClusterError(f"can't read simulated cluster {path}: not UTF-8 text") from e
        except strictjson.JsonError as e:
            raise ClusterError(f"simulated cluster {e.at(str(path))}") from e
        services = state.get("services") if isinstance(state, dict) else None
        clock = state.get("clock") if isinstance(state, dict) else None
        if (
            not isinstance(services, dict)
            or not all(isinstance(service, dict) for service in services.values())
            or isinstance(clock, bool)
            or not isinstance(clock, int | float)
        ):
            raise ClusterError(f"{path} is not a simulated cluster")
        return cls(state)

    def save(self, path: Path) -> None:
        """Write the whole cluster to ``path`` (atomically)."""
        try:
            write_atomically(path, json.dumps(self.state, indent=1, sort_keys=True) + "\n")
        except OSError as e:
            raise ClusterError(f"can't save simulated cluster {path}: {e.strerror or e}") from e

    # --- the test and demo controls --------------------------------------------------

    def set_load(self, service: str, **load: float) -> None:
        """Change a service's load model (rps, cpu_m_per_rps, base_latency_ms, ...)."""
        unknown = set(load) - set(DEFAULT_LOAD)
        if unknown:
            raise ValueError(f"unknown load settings: {', '.join(sorted(unknown))}")
        self._service(service)["load"].update(load)

    def inject(self, service: str, fault: str, value: Any = True) -> None:
        """Inject a fault: crash_loop (the current revision), latency_spike_ms, api_errors
        (the next N API calls fail), apply_errors (the next N changes fail),
        crash_next_rollout (the next N rollouts produce crashing pods)."""
        faults = self._service(service)["faults"]
        if fault == "crash_loop":
            revision = self._service(service)["revision"]
            if value and revision not in faults["crash_revisions"]:
                faults["crash_revisions"].append(revision)
            if not value and revision in faults["crash_revisions"]:
                faults["crash_revisions"].remove(revision)
        elif fault == "latency_spike_ms":
            faults["latency_spike_ms"] = float(value)
        elif fault in ("api_errors", "apply_errors", "crash_next_rollout"):
            faults[fault] = int(value)
        else:
            known = "crash_loop, latency_spike_ms, api_errors, apply_errors, crash_next_rollout"
            raise ValueError(f"unknown fault {fault!r} ({known})")

    def load_for_cpu(self, service: str, percent: float) -> float:
        """Set the request rate at which the service's pods use ``percent`` of their CPU
        request; return it."""
        state = self._service(service)
        load = state["load"]
        usage_m = self._amounts(state)["cpu"] * percent / 100
        rps = float(round(usage_m * state["replicas"] / load["cpu_m_per_rps"], 1))
        self.set_load(service, rps=rps)
        return rps

    def service(self, service: str) -> dict[str, Any]:
        """A copy of one service's simulated state (for tests and status views)."""
        return copy.deepcopy(self._service(service))

    # --- the Cluster interface -----------------------------------------------------

    def now(self) -> str:
        """The virtual time."""
        return _format_time(self.state["clock"])

    def elapsed(self) -> float:
        """Virtual seconds since the cluster was created."""
        return float(self.state["clock"] - EPOCH_START)

    def wait(self, seconds: float) -> None:
        """Advance the virtual clock; pods become ready and crash as time passes."""
        if seconds < 0:
            raise ValueError("time does not run backwards")
        end = self.state["clock"] + seconds
        if self._sampling is not None:
            every, sampler = self._sampling
            while EPOCH_START + self._next_sample <= end:
                self.state["clock"] = EPOCH_START + self._next_sample
                for name in self.state["services"]:
                    self._reconcile(name)
                sampler(self._next_sample)
                self._next_sample += every
        self.state["clock"] = end
        for name in self.state["services"]:
            self._reconcile(name)

    def observe(self, target: Target) -> dict[str, Any]:
        """The observation of one service, metrics from the load model."""
        service = self._checked(target)
        self._api_call(target)
        return self._observation(target, service)

    def measure(self, target: Target) -> dict[str, Any]:
        """What ``observe`` would see, as the simulation's own measurement: not an API call,
        so it neither fails with nor uses up an injected ``api_errors`` fault."""
        return self._observation(target, self._checked(target))

    def sample_every(self, seconds: float, sampler: Callable[[float], None]) -> None:
        """Call ``sampler(elapsed)`` at every multiple of ``seconds`` the clock reaches from
        now on, inside a wait too (the state then is the state at that moment)."""
        self._sampling = (seconds, sampler)
        self._next_sample = self.elapsed() + seconds

    def _observation(self, target: Target, service: dict[str, Any]) -> dict[str, Any]:
        pods = service["pods"]
        ready = [p for p in pods if p["ready"]]
        requests = self._amounts(service)
        observation: dict[str, Any] = {
            "service": target.service,
            "replicas": {"desired": service["replicas"], "ready": len(ready)},
            "metrics": {},
            "resources": {
                "cpu": {"request": service["template"]["resources"]["cpu"]["request"]},
                "memory": {"request": service["template"]["resources"]["memory"]["request"]},
            },
            "pods": [
                {
                    "name": p["name"],
                    "phase": p["phase"],
                    "ready": p["ready"],
                    "restart_count": p["restart_count"],
                    "reason": p["reason"],
                }
                for p in pods
            ],
        }
        if ready:
            load = service["load"]
            usage = pod_usage(load, len(ready), self._noise(target.service, "cpu"))
            cpu_m, memory_mi = usage.cpu_m, usage.memory_mi
            cpu_percent = 100 * cpu_m / requests["cpu"]  # usage ÷ request, as HPA and metrics API
            saturation = cpu_m / (requests["cpu"] * load["saturation_percent"] / 100)
            latency = load["base_latency_ms"] * _slowdown(saturation)
            latency += service["faults"]["latency_spike_ms"]
            errors = load["error_rate_percent"] + (
                5 * (saturation - 0.9) if saturation > 0.9 else 0
            )
            observation["metrics"] = {
                "cpu_percent": round(cpu_percent, 1),
                "memory_percent": round(100 * memory_mi * MEBIBYTE / requests["memory"], 1),
                "latency_p95_ms": round(
                    latency * (1 + 0.02 * self._noise(target.service, "p95")), 1
                ),
                "error_rate_percent": round(errors, 2),
                "throughput_rps": round(load["rps"], 1),
            }
            observation["resources"]["cpu"]["usage"] = f"{round(cpu_m)}m"
            observation["resources"]["memory"]["usage"] = f"{round(memory_mi)}Mi"
        return observation

    def apply(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Carry out one operation (``apply_<type>``) and return how to undo it."""
        service = self._checked(target)
        self._api_call(target)
        if service["faults"].get("apply_errors", 0) > 0:
            service["faults"]["apply_errors"] -= 1
            raise ClusterError(
                f"API server rejected the change to {target.deployment} (injected)", status=500
            )
        applied = apply_by_type(self, target, operation, "the simulated cluster")
        self.changes.append(Change(self.elapsed(), target.service, applied))
        return applied

    def scale(self, target: Target, replicas: int) -> Applied:
        """Set the replica count through ``apply``, as a controller that only scales would."""
        current = self._checked(target)["replicas"]
        return self.apply(target, {"type": "scale", "from": current, "to": replicas})

    def apply_scale(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Set the replica count."""
        service = self._service(target.service)
        before = service["replicas"]
        service["replicas"] = int(operation["to"])
        self._reconcile(target.service)
        return Applied(operation, {**operation, "to": before})

    def apply_adjust_resources(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Set a request or limit: a new revision rolls out."""
        service = self._service(target.service)
        resource, field = operation["resource"], operation.get("field", "request")
        before = service["template"]["resources"][resource][field]
        changed = copy.deepcopy(service["template"])
        changed["resources"][resource][field] = str(operation["to"])
        revision = self._roll_out(target.service, changed)
        inverse = {**operation, "field": field, "to": before}
        return Applied(operation, inverse, revision)

    def apply_restart_pod(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Restart through a rollout of the same template (can't be undone)."""
        service = self._service(target.service)
        revision = self._roll_out(target.service, copy.deepcopy(service["template"]))
        return Applied(operation, None, revision)

    def apply_rollback(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Roll out an earlier revision's template."""
        service = self._service(target.service)
        current = service["revision"]
        wanted = operation.get("to_revision") or self._previous_revision(service)
        if str(wanted) not in service["history"]:
            raise NotFoundError(f"{target.deployment} has no revision {wanted}", status=404)
        revision = self._roll_out(target.service, copy.deepcopy(service["history"][str(wanted)]))
        return Applied(operation, {**operation, "to_revision": current}, revision)

    def apply_update_configmap(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change keys of a configmap (None removes a key)."""
        service = self._service(target.service)
        data = service["configmaps"].setdefault(operation["name"], {})
        before = {key: data.get(key) for key in operation["changes"]}
        for key, value in operation["changes"].items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return Applied(operation, {**operation, "changes": before})

    def apply_update_strategy(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change the rollout strategy: a new revision rolls out."""
        return self._change_template(target, operation, lambda t: t["strategy"])

    def apply_update_health_checks(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change a probe: a new revision rolls out."""
        probe = operation.get("probe", "readiness")
        return self._change_template(target, operation, lambda t: t["probes"].setdefault(probe, {}))

    def _change_template(
        self,
        target: Target,
        operation: dict[str, Any],
        section_of: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Applied:
        service = self._service(target.service)
        changed = copy.deepcopy(service["template"])
        section = section_of(changed)
        before = {key: section.get(key) for key in operation["changes"]}
        section.update(operation["changes"])
        revision = self._roll_out(target.service, changed)
        return Applied(operation, {**operation, "changes": before}, revision)

    def undo(self, target: Target, applied: Applied) -> None:
        """Apply the inverse of an applied operation."""
        if applied.inverse is None:
            raise ClusterError(f"{applied.operation.get('type')} can't be undone", status=422)
        self.apply(target, applied.inverse)

    # --- internals -----------------------------------------------------------------

    def _service(self, name: str) -> dict[str, Any]:
        try:
            service: dict[str, Any] = self.state["services"][name]
        except KeyError as e:
            raise NotFoundError(f"no simulated service {name!r}", status=404) from e
        return service

    def _checked(self, target: Target) -> dict[str, Any]:
        service = self._service(target.service)
        if (service["namespace"], service["deployment"]) != (target.namespace, target.deployment):
            raise NotFoundError(
                f"deployment {target.namespace}/{target.deployment} not found", status=404
            )
        return service

    def _api_call(self, target: Target) -> None:
        faults = self._service(target.service)["faults"]
        if faults["api_errors"] > 0:
            faults["api_errors"] -= 1
            raise ClusterError(
                f"API server error on {target.namespace}/{target.deployment} (injected)", status=500
            )

    def _noise(self, service: str, key: str) -> float:
        """A number in [-1, 1) fixed by the seed, the service, the clock and ``key``."""
        material = f"{self.state['seed']}:{service}:{self.state['clock']}:{key}".encode()
        value = int.from_bytes(hashlib.blake2b(material, digest_size=8).digest(), "big")
        return value / 2**63 - 1

    def _amounts(self, service: dict[str, Any]) -> dict[str, int]:
        resources = service["template"]["resources"]
        return _requests(resources["cpu"]["request"], resources["memory"]["request"])

    @staticmethod
    def _previous_revision(service: dict[str, Any]) -> int:
        revisions = sorted(int(r) for r in service["history"] if int(r) < service["revision"])
        if not revisions:
            raise NotFoundError("no previous revision to roll back to", status=404)
        return revisions[-1]

    def _roll_out(self, name: str, template: dict[str, Any]) -> int:
        service = self._service(name)
        service["revision"] = max(int(r) for r in service["history"]) + 1
        service["history"][str(service["revision"])] = copy.deepcopy(template)
        faults = service["faults"]
        if faults.get("crash_next_rollout", 0) > 0:
            faults["crash_next_rollout"] -= 1
            faults["crash_revisions"].append(service["revision"])
        service["template"] = template
        service["pods"] = []  # a rollout replaces every pod
        self._reconcile(name)
        revision: int = service["revision"]
        return revision

    def _reconcile(self, name: str, *, ready: bool = False) -> None:
        """Bring pods in line with replicas and the clock: start, ready, crash, OOM."""
        service = self._service(name)
        clock = self.state["clock"]
        pods = service["pods"]
        while len(pods) > service["replicas"]:
            pods.pop()
        while len(pods) < service["replicas"]:
            service["pod_serial"] += 1
            serial = service["pod_serial"]
            pods.append(
                {
                    "name": f"{service['deployment']}-r{service['revision']}-{serial}",
                    "revision": service["revision"],
                    "started_at": clock - (READY_AFTER_SECONDS if ready else 0),
                    "phase": "Running",
                    "ready": False,
                    "restart_count": 0,
                    "reason": None,
                }
            )
        crashing = service["revision"] in service["faults"]["crash_revisions"]
        # the memory each pod needs once the load is spread over the replicas wanted
        needed = pod_usage(service["load"], max(1, service["replicas"])).memory_mi * MEBIBYTE
        starved = needed > self._amounts(service)["memory"]
        for pod in pods:
            age = clock - pod["started_at"]
            if crashing or starved:
                pod["ready"] = False
                pod["reason"] = "CrashLoopBackOff" if crashing else "OOMKilled"
                pod["restart_count"] = max(pod["restart_count"], int(age // CRASH_EVERY_SECONDS))
            else:
                pod["reason"] = None
                pod["ready"] = age >= READY_AFTER_SECONDS
