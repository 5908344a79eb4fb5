"""Where a demonstration sets its scene: the simulated cluster, or a real one as its admin.

A demonstration needs a scene before the runner acts: a service under a load
(CPU at a utilization), a replica count set up beforehand, time passing, and
afterwards the count of ready pods read back. On the simulated cluster that is
the simulator's own load model and virtual clock. On a real cluster the scene
is set with the **admin** identity (the Deployments created from the
blueprints, scaled for the setup, per-pod usage written as kwok's usage
annotations, nodes cordoned for a rollout that can't be placed), while the
runner acts only with its own identity (``docs/rbac.yaml``): what the
demonstration shows is what the runner could do with what it is granted.

The load driver here is the one the real-cluster tests use
(tests/kube/load.py): a service's load on the simulator's model, spread over its
ready pods by the simulator's ``pod_usage``, written into each ready pod's
``kwok.x-k8s.io/usage-cpu`` / ``usage-memory``; kwok serves that usage as a
kubelet would, metrics-server scrapes it, and the runner reads PodMetrics. The
load is re-spread whenever the number of ready pods changes, as a load
balancer would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from engine.cluster import ClusterError, Target
from engine.cluster.simulated import PodUsage, SimulatedCluster, _default_load, pod_usage
from engine.quantity import cpu_millicores

if TYPE_CHECKING:
    from engine.cluster.kubernetes import KubernetesCluster

log = logging.getLogger(__name__)

CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
IMAGE = "registry.invalid/opsgate/sample:1.0"  # kwok runs nothing: any image name will do
# The blueprints' stabilization (60 s for the frontend, 120 s for the backend) in real
# time would make each demonstration minutes long: the kube demonstrations run on a copy
# with this one. Long enough for metrics-server (10 s resolution) to show a new usage.
KUBE_STABILIZATION_SECONDS = 15
# how long the scene waits for the controllers or the metrics before it gives up
SETTLE_SECONDS = 90.0
# the services the demonstrations set a scene for
DEMO_SERVICES = ("frontend", "backend")


def usage_annotations(usage: PodUsage) -> dict[str, str]:
    """kwok's usage annotations for one pod's usage, in whole millicores and MiB."""
    return {
        CPU_ANNOTATION: f"{round(usage.cpu_m)}m",
        MEMORY_ANNOTATION: f"{round(usage.memory_mi)}Mi",
    }


def pod_is_ready(pod: dict[str, Any]) -> bool:
    """Running and Ready, and not being deleted (a pod as plain JSON)."""
    status = pod.get("status") or {}
    return (
        not (pod.get("metadata") or {}).get("deletionTimestamp")
        and status.get("phase") == "Running"
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        )
    )


def deployment_manifest(
    name: str,
    namespace: str,
    *,
    replicas: int = 2,
    cpu: tuple[str, str] = ("100m", "500m"),
    memory: tuple[str, str] = ("128Mi", "256Mi"),
    strategy: str = "RollingUpdate",
    max_surge: int | str = 1,
    max_unavailable: int | str = 0,
) -> dict[str, Any]:
    """A Deployment of one container with requests, limits and a readiness probe."""
    labels = {"app": name}
    rollout: dict[str, Any] = {"type": strategy}
    if strategy == "RollingUpdate":
        rollout["rollingUpdate"] = {"maxSurge": max_surge, "maxUnavailable": max_unavailable}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": rollout,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": IMAGE,
                            "resources": {
                                "requests": {"cpu": cpu[0], "memory": memory[0]},
                                "limits": {"cpu": cpu[1], "memory": memory[1]},
                            },
                            "readinessProbe": {
                                "httpGet": {"path": "/healthz", "port": 8080},
                                "periodSeconds": 10,
                            },
                        }
                    ]
                },
            },
        },
    }


def blueprint_deployment(blueprint: dict[str, Any]) -> dict[str, Any]:
    """The Deployment a blueprint governs, as the blueprint describes it (at min_replicas)."""
    spec, target = blueprint["spec"], blueprint["target"]
    resources, rollout = spec["resources"], spec["deployment"]
    return deployment_manifest(
        target["deployment"],
        target["namespace"],
        replicas=spec["scaling"]["min_replicas"],
        cpu=(str(resources["cpu"]["request"]), str(resources["cpu"]["limit"])),
        memory=(str(resources["memory"]["request"]), str(resources["memory"]["limit"])),
        strategy=rollout["strategy"],
        max_surge=rollout["max_surge"],
        max_unavailable=rollout["max_unavailable"],
    )


def quick_blueprints(directory: Path, seconds: int = KUBE_STABILIZATION_SECONDS) -> Path:
    """Set ``spec.reliability.stabilization_seconds`` to ``seconds`` in every blueprint of
    ``directory`` (a copy made for a demonstration on a real cluster, where time is real)."""
    for path in sorted(directory.rglob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        reliability = (
            ((document.get("spec") or {}).get("reliability"))
            if isinstance(document, dict)
            else None
        )
        if isinstance(reliability, dict) and "stabilization_seconds" in reliability:
            reliability["stabilization_seconds"] = seconds
            path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return directory


class Scene(Protocol):
    """What a demonstration does to the cluster besides the runner's own acts."""

    # a real cluster: real time, the admin identity, no latency metric
    real: bool

    def reset(self) -> None:
        """The demonstration services as their blueprints describe them, under a quiet load."""
        ...

    def load_for_cpu(self, service: str, percent: float) -> None:
        """Load ``service`` so that its ready pods use ``percent`` of their CPU request."""
        ...

    def scale(self, service: str, replicas: int) -> None:
        """Set a replica count as part of the setup (not through opsgate)."""
        ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass (virtual on the simulated cluster)."""
        ...

    def settle(self, service: str) -> None:
        """Wait until what the runner observes of ``service`` shows its load (no-op when
        simulated)."""
        ...

    def ready_replicas(self, service: str) -> int:
        """The service's ready pods, once the controllers have caught up."""
        ...


class SimulatedScene:
    """The scene on the simulated cluster: its load model and its virtual clock."""

    real = False

    def __init__(self, cluster: SimulatedCluster, targets: dict[str, Target]) -> None:
        self.cluster = cluster
        self.targets = targets

    def reset(self) -> None:
        """Nothing to do: each demonstration has a fresh simulated cluster."""

    def load_for_cpu(self, service: str, percent: float) -> None:
        """Set the simulator's request rate for ``percent`` CPU."""
        self.cluster.load_for_cpu(service, percent)

    def scale(self, service: str, replicas: int) -> None:
        """Scale in the simulator and let its pods come up."""
        self.cluster.apply(self.targets[service], {"type": "scale", "to": replicas})

    def wait(self, seconds: float) -> None:
        """Move the virtual clock."""
        self.cluster.wait(seconds)

    def settle(self, service: str) -> None:
        """The simulator's metrics follow its load at once."""

    def ready_replicas(self, service: str) -> int:
        """The simulated replica count."""
        return int(self.cluster.service(service)["replicas"])


def _api(what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One admin call; a refusal or a transport error as one ClusterError line."""
    try:
        return call(*args, **kwargs)
    except Exception as e:  # the client's ApiException and transport errors alike
        status = getattr(e, "status", None)
        reason = getattr(e, "reason", None) or str(e).splitlines()[0][:200]
        raise ClusterError(f"scene: {what}: {reason}", status=status) from e


class KubernetesScene:
    """The scene on a real cluster, set with the admin identity.

    ``blueprints`` are the demonstration's (effective) blueprints; only the
    services of ``services`` are touched.
    """

    real = True

    def __init__(
        self,
        admin_kubeconfig: Path,
        blueprints: dict[str, dict[str, Any]],
        services: tuple[str, ...] = DEMO_SERVICES,
    ) -> None:
        from engine.cluster.kubernetes import KubernetesCluster  # for real clusters only

        self.admin: KubernetesCluster = KubernetesCluster(kubeconfig=admin_kubeconfig, timeout=10)
        self.blueprints = {name: blueprints[name] for name in services if name in blueprints}
        self.loads = {name: _default_load(bp) for name, bp in self.blueprints.items()}

    def close(self) -> None:
        """Close the admin's connection pool."""
        self.admin.api.close()

    def _plain(self, raw: Any) -> Any:
        return self.admin.api.sanitize_for_serialization(raw)

    def target(self, service: str) -> Target:
        """Where a demonstration service runs."""
        target = self.blueprints[service]["target"]
        return Target(service, target["namespace"], target["deployment"])

    # --- read, as admin -----------------------------------------------------------------

    def deployment(self, service: str) -> dict[str, Any]:
        """The Deployment as the admin reads it."""
        t = self.target(service)
        raw = _api(
            f"read deployment {t.namespace}/{t.deployment}",
            self.admin.apps.read_namespaced_deployment,
            t.deployment,
            t.namespace,
        )
        return dict(self._plain(raw))

    def pods(self, service: str) -> list[dict[str, Any]]:
        """The service's pods (by its Deployment's ``app`` label)."""
        t = self.target(service)
        raw = _api(
            f"list pods of {t.namespace}/{t.deployment}",
            self.admin.core.list_namespaced_pod,
            t.namespace,
            label_selector=f"app={t.deployment}",
        )
        return [self._plain(p) for p in raw.items]

    def replica_sets(self, service: str) -> dict[int, dict[str, Any]]:
        """The Deployment's ReplicaSets by revision."""
        t = self.target(service)
        raw = _api(
            f"list replicasets of {t.namespace}/{t.deployment}",
            self.admin.apps.list_namespaced_replica_set,
            t.namespace,
            label_selector=f"app={t.deployment}",
        )
        found = {}
        for item in raw.items:
            data = self._plain(item)
            revision = int(data["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
            found[revision] = data
        return found

    def rolled_out(self, service: str) -> bool:
        """The controllers have rolled the Deployment out, as ``kubectl rollout status``."""
        d = self.deployment(service)
        spec, status = d["spec"], d.get("status") or {}
        pods = [p for p in self.pods(service) if not p["metadata"].get("deletionTimestamp")]
        return bool(
            status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == spec["replicas"]
            and status.get("readyReplicas", 0) == spec["replicas"]
            and status.get("replicas", 0) == spec["replicas"]
            and len(pods) == spec["replicas"]
        )

    # --- the scene -------------------------------------------------------------------------

    def reset(self) -> None:
        """Each demonstration service's Deployment and ConfigMap as the blueprint describes
        them (created when missing), at min_replicas, every node schedulable, a quiet load."""
        self.uncordon()
        for service, blueprint in self.blueprints.items():
            t = self.target(service)
            manifest = blueprint_deployment(blueprint)
            names = {
                d.metadata.name
                for d in _api(
                    f"list deployments in {t.namespace}",
                    self.admin.apps.list_namespaced_deployment,
                    t.namespace,
                ).items
            }
            if t.deployment in names:
                # the same template is no new rollout; a template a failed run left is undone
                _api(
                    f"reset deployment {t.namespace}/{t.deployment}",
                    self.admin.apps.patch_namespaced_deployment,
                    t.deployment,
                    t.namespace,
                    {"spec": manifest["spec"]},
                )
            else:
                _api(
                    f"create deployment {t.namespace}/{t.deployment}",
                    self.admin.apps.create_namespaced_deployment,
                    t.namespace,
                    manifest,
                )
            for name in blueprint["target"].get("configmaps") or []:
                maps = _api(
                    f"list configmaps in {t.namespace}",
                    self.admin.core.list_namespaced_config_map,
                    t.namespace,
                ).items
                if name not in {m.metadata.name for m in maps}:
                    _api(
                        f"create configmap {t.namespace}/{name}",
                        self.admin.core.create_namespaced_config_map,
                        t.namespace,
                        {"metadata": {"name": name}, "data": {"LOG_LEVEL": "INFO"}},
                    )
            self.loads[service] = _default_load(blueprint)
        for service in self.blueprints:
            self._rolled_out(service)

    def load_for_cpu(self, service: str, percent: float) -> None:
        """The load at which the ready pods use ``percent`` of their CPU request; written
        into the pods at once."""
        ready = max(1, len([p for p in self.pods(service) if pod_is_ready(p)]))
        load = self.loads[service]
        request_m = cpu_millicores(
            str(self.blueprints[service]["spec"]["resources"]["cpu"]["request"])
        )
        load["rps"] = round(request_m * percent / 100 * ready / load["cpu_m_per_rps"], 1)
        self.drive(service)

    def drive(self, service: str) -> PodUsage | None:
        """Spread the service's load over its ready pods (None: no pod is ready)."""
        t = self.target(service)
        ready = [p for p in self.pods(service) if pod_is_ready(p)]
        if not ready:
            return None
        usage = pod_usage(self.loads[service], len(ready))
        wanted = usage_annotations(usage)
        for pod in ready:
            annotations = pod["metadata"].get("annotations") or {}
            if all(annotations.get(k) == v for k, v in wanted.items()):
                continue
            _api(
                f"set the usage of pod {t.namespace}/{pod['metadata']['name']}",
                self.admin.core.patch_namespaced_pod,
                pod["metadata"]["name"],
                t.namespace,
                {"metadata": {"annotations": wanted}},
            )
        return usage

    def clear_usage(self) -> None:
        """Remove the usage annotations from every pod of the demonstration services: kwok
        then reports none and metrics-server drops them (usage unknown again)."""
        for service in self.blueprints:
            t = self.target(service)
            for pod in self.pods(service):
                annotations = pod["metadata"].get("annotations") or {}
                if CPU_ANNOTATION in annotations or MEMORY_ANNOTATION in annotations:
                    _api(
                        f"clear the usage of pod {t.namespace}/{pod['metadata']['name']}",
                        self.admin.core.patch_namespaced_pod,
                        pod["metadata"]["name"],
                        t.namespace,
                        {
                            "metadata": {
                                "annotations": {CPU_ANNOTATION: None, MEMORY_ANNOTATION: None}
                            }
                        },
                    )

    def scale(self, service: str, replicas: int) -> None:
        """Scale through the scale subresource as admin; wait for the rollout."""
        t = self.target(service)
        _api(
            f"scale deployment {t.namespace}/{t.deployment}",
            self.admin.apps.patch_namespaced_deployment_scale,
            t.deployment,
            t.namespace,
            {"spec": {"replicas": replicas}},
        )
        self._rolled_out(service)

    def _rolled_out(self, service: str, timeout: float = SETTLE_SECONDS) -> None:
        self._until(f"{service} rolled out", lambda: self.rolled_out(service), timeout)

    def wait(self, seconds: float) -> None:
        """Let real time pass, keeping every service's load spread over its ready pods."""
        deadline = time.monotonic() + seconds
        while True:
            for service in self.blueprints:
                self.drive(service)
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(1.0, left))

    def expected_cpu_percent(self, service: str) -> float | None:
        """The CPU% the ready pods are given now (None: no pod is ready)."""
        usage = self.drive(service)
        if usage is None:
            return None
        request_m = cpu_millicores(
            str(self.blueprints[service]["spec"]["resources"]["cpu"]["request"])
        )
        return 100 * round(usage.cpu_m) / request_m

    def settle(self, service: str) -> None:
        """Wait until the PodMetrics the runner reads show the usage the pods were given
        (a new pod's first come 20-30 s after its usage is set; a change within a scrape)."""

        def shown() -> bool:
            expected = self.expected_cpu_percent(service)
            observed = self.admin.observe(self.target(service))["metrics"].get("cpu_percent")
            return expected is not None and observed is not None and abs(observed - expected) < 2

        self._until(f"the metrics of {service} to show its load", shown)

    def ready_replicas(self, service: str) -> int:
        """The ready pods once the rollout is complete (or as they are after the wait)."""
        try:
            self._rolled_out(service, 30.0)
        except ClusterError as e:
            log.info("%s", e)
        return int((self.deployment(service).get("status") or {}).get("readyReplicas") or 0)

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes."""
        return [self._plain(n) for n in _api("list nodes", self.admin.core.list_node).items]

    def _set_unschedulable(self, value: bool) -> None:
        for node in self.nodes():
            if bool((node.get("spec") or {}).get("unschedulable")) != value:
                _api(
                    f"{'cordon' if value else 'uncordon'} node {node['metadata']['name']}",
                    self.admin.core.patch_node,
                    node["metadata"]["name"],
                    {"spec": {"unschedulable": value}},
                )

    def uncordon(self) -> None:
        """Every node schedulable again."""
        self._set_unschedulable(False)

    @contextmanager
    def no_room(self) -> Iterator[None]:
        """Every node cordoned (as ``kubectl cordon``): a new pod stays Pending, the pods
        already running keep running. Uncordoned on every way out."""
        self._set_unschedulable(True)
        try:
            yield
        finally:
            self.uncordon()

    def _until(self, what: str, done: Callable[[], bool], timeout: float = SETTLE_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise ClusterError(f"scene: waited {timeout:.0f}s for {what}")
            for service in self.blueprints:
                self.drive(service)
            time.sleep(0.5)
