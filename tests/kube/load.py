"""The load driver: the simulator's load model, written into a real cluster's pods.

kwok gives each pod the CPU and memory usage of its annotations
``kwok.x-k8s.io/usage-cpu`` and ``usage-memory`` (tools/kwok/metrics),
metrics-server scrapes it from kwok as from a kubelet, and the Kubernetes
backend reads it back as PodMetrics. The driver takes a service's load (a
load trace at a moment, on the simulator's load model) and gives each ready
pod the usage the simulator's own ``pod_usage`` computes: the load spread over
the ready pods. So the same traces drive the simulator and the real cluster.
The annotations are engine.demo_scene's, whose scene drives the demonstrations'
load on a real cluster the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.cluster.simulated import DEFAULT_LOAD, PodUsage, pod_usage
from engine.cluster.trace import LoadTrace
from engine.demo_scene import CPU_ANNOTATION, MEMORY_ANNOTATION, usage_annotations

__all__ = ["CPU_ANNOTATION", "MEMORY_ANNOTATION", "LoadDriver", "usage_annotations"]


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions or []
    return (
        pod.metadata.deletion_timestamp is None
        and pod.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in conditions)
    )


class LoadDriver:
    """Sets the usage annotations of a service's ready pods (with the admin's CoreV1Api)."""

    def __init__(self, core: Any, namespace: str, model: Mapping[str, float] = DEFAULT_LOAD):
        self.core = core
        self.namespace = namespace
        # the simulator's load model (cost of a request, memory of an idle pod, ...)
        self.model = dict(model)

    def ready_pods(self, selector: str) -> list[Any]:
        """The pods of ``selector`` that are Running and Ready, not being deleted."""
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=selector).items
        return [p for p in pods if _ready(p)]

    def drive(self, selector: str, rps: float) -> PodUsage:
        """Spread ``rps`` over the ready pods; return the usage each was given."""
        pods = self.ready_pods(selector)
        if not pods:
            raise AssertionError(f"no ready pods for {selector}: nothing carries the load")
        usage = pod_usage({**self.model, "rps": rps}, len(pods))
        patch = {"metadata": {"annotations": usage_annotations(usage)}}
        for pod in pods:
            self.core.patch_namespaced_pod(pod.metadata.name, self.namespace, patch)
        return usage

    def replay(self, trace: LoadTrace, service: str, selector: str, seconds: float) -> PodUsage:
        """Drive the load ``trace`` gives ``service`` at ``seconds`` into its ready pods."""
        rps = trace.rps_at(service, seconds)
        if rps is None:
            raise AssertionError(f"the trace sets no rate for {service} by {seconds}s")
        return self.drive(selector, rps)
