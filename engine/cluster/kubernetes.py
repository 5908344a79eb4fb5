"""The Kubernetes backend, through the official ``kubernetes`` client.

Observe: the Deployment, its Pods (restart counts, waiting and terminated
reasons), PodMetrics from metrics.k8s.io, and latency and error rate from a
Prometheus HTTP API when one is given. Act: scale through the scale
subresource; everything else through a JSON patch computed with
``jsonpatch`` whose first operation tests the ``resourceVersion`` read, so a
write never lands on an object that changed meanwhile (HTTP 409, or a 422
while the resourceVersion has moved → ``ConflictError``: re-read and
re-decide on the next tick, never retried blindly). Restarts use the
rollout-restart annotation, never pod deletion; a rollback puts back the
previous ReplicaSet's template, as ``kubectl rollout undo`` does.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonpatch
import urllib3
from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from engine.cluster import (
    Applied,
    ClusterError,
    ConflictError,
    NotFoundError,
    Target,
    apply_by_type,
)
from engine.quantity import QuantityError, cpu_millicores, memory_bytes

log = logging.getLogger(__name__)

# The client's generated models are loosely typed; this module is the only
# place that touches them, and it hands plain JSON-like dicts to the engine.
client: Any = _client
config: Any = _config

RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
FAILURE_REASONS = (
    "CrashLoopBackOff",
    "Error",
    "OOMKilled",
    "ImagePullBackOff",
    "CreateContainerError",
)

# PromQL for what the Deployment itself can't tell; {namespace} and {deployment} filled in.
PROMETHEUS_QUERIES = {
    "latency_p95_ms": (
        "1000 * histogram_quantile(0.95, sum by (le) (rate("
        'http_request_duration_seconds_bucket{{namespace="{namespace}",deployment="{deployment}"}}[5m])))'
    ),
    "error_rate_percent": (
        '100 * sum(rate(http_requests_total{{namespace="{namespace}",deployment="{deployment}",'
        'code=~"5.."}}[5m])) / sum(rate(http_requests_total{{namespace="{namespace}",'
        'deployment="{deployment}"}}[5m]))'
    ),
    "throughput_rps": (
        'sum(rate(http_requests_total{{namespace="{namespace}",deployment="{deployment}"}}[5m]))'
    ),
}


# what a call through the client raises: an answer with a status, or none at all
_API_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def _translate(error: Exception, what: str) -> ClusterError:
    """Map an API status to the cluster error family (never with the raw body)."""
    if not isinstance(error, ApiException):
        # no answer: refused, reset, TLS failure or slower than the timeout
        cause = getattr(error, "reason", None) or error  # MaxRetryError wraps the cause
        refused = isinstance(cause, urllib3.exceptions.NewConnectionError | ConnectionError)
        slow = not refused and isinstance(cause, TimeoutError | urllib3.exceptions.TimeoutError)
        if refused:
            return ClusterError(f"{what}: API server unreachable (connection refused)")
        if slow:
            return ClusterError(f"{what}: API server timed out")
        return ClusterError(f"{what}: API server unreachable ({type(cause).__name__})")
    status = error.status
    if status == 404:
        return NotFoundError(f"{what}: not found", status=404)
    if status == 409:
        return ConflictError(
            f"{what}: changed since it was read (409): re-read next tick", status=409
        )
    if status == 422:
        reason = (error.reason or "").lower()
        return ClusterError(f"{what}: rejected as invalid (422 {reason})", status=422)
    if status in (401, 403):
        return ClusterError(
            f"{what}: not allowed ({status}): check the runner's RBAC", status=status
        )
    return ClusterError(f"{what}: API server error {status}", status=status)


def _client_from(kubeconfig: Path) -> Any:
    """An API client for the kubeconfig file given (never the process-wide default)."""
    try:
        kubeconfig.read_bytes()
    except OSError as e:
        raise ClusterError(f"kubeconfig {kubeconfig}: cannot be read ({e.strerror})") from e
    try:
        return config.new_client_from_config(config_file=str(kubeconfig))
    except config.ConfigException as e:
        raise ClusterError(f"kubeconfig {kubeconfig}: not usable ({e})") from e
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        # the loader indexes whatever YAML it finds: anything else is not a kubeconfig
        raise ClusterError(f"kubeconfig {kubeconfig}: not a kubeconfig file") from e


class KubernetesCluster:
    """A real cluster: the kubeconfig given, else the current one, else the in-cluster account."""

    # waiting is real: the runner schedules verification instead of sleeping in a tick
    waits_in_real_time = True

    def __init__(
        self,
        api_client: Any = None,
        *,
        kubeconfig: Path | None = None,
        prometheus_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if api_client is None and kubeconfig is not None:
            api_client = _client_from(kubeconfig)
        if api_client is None:
            try:
                config.load_kube_config()
            except config.ConfigException:
                try:
                    config.load_incluster_config()
                except config.ConfigException as e:
                    raise ClusterError(
                        "no Kubernetes configuration: set KUBECONFIG or run inside a cluster"
                    ) from e
            api_client = client.ApiClient()
        self.api: Any = api_client
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.prometheus_url = prometheus_url.rstrip("/") if prometheus_url else None
        self.timeout = timeout

    # --- time -----------------------------------------------------------------------

    def now(self) -> str:
        """The current UTC time."""
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def wait(self, seconds: float) -> None:
        """Sleep for real."""
        time.sleep(seconds)

    # --- observe --------------------------------------------------------------------

    def _deployment(self, target: Target) -> dict[str, Any]:
        try:
            raw = self.apps.read_namespaced_deployment(
                target.deployment, target.namespace, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise _translate(e, f"deployment {target.namespace}/{target.deployment}") from e
        deployment: dict[str, Any] = self.api.sanitize_for_serialization(raw)
        return deployment

    def observe(self, target: Target) -> dict[str, Any]:
        """The observation of one service, from the API server (and Prometheus if given)."""
        deployment = self._deployment(target)
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        selector = ",".join(
            f"{k}={v}"
            for k, v in sorted(((spec.get("selector") or {}).get("matchLabels") or {}).items())
        )
        container = ((spec.get("template") or {}).get("spec") or {}).get("containers", [{}])[0]
        requests = (container.get("resources") or {}).get("requests") or {}
        limits = (container.get("resources") or {}).get("limits") or {}
        try:
            pods = self.core.list_namespaced_pod(
                target.namespace, label_selector=selector, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise _translate(e, f"pods of {target.namespace}/{target.deployment}") from e
        observation: dict[str, Any] = {
            "service": target.service,
            "replicas": {
                "desired": spec.get("replicas", 1),
                "ready": status.get("readyReplicas") or 0,
            },
            "metrics": {},
            "resources": {
                resource: {
                    k: v
                    for k, v in (
                        ("request", requests.get(resource)),
                        ("limit", limits.get(resource)),
                    )
                    if v
                }
                for resource in ("cpu", "memory")
            },
            "pods": [_pod(self.api.sanitize_for_serialization(p)) for p in pods.items],
        }
        self._add_usage(target, selector, observation)
        self._add_prometheus(target, observation)
        return observation

    def _add_usage(self, target: Target, selector: str, observation: dict[str, Any]) -> None:
        try:
            metrics = self.custom.list_namespaced_custom_object(
                "metrics.k8s.io",
                "v1beta1",
                target.namespace,
                "pods",
                label_selector=selector,
                _request_timeout=self.timeout,
            )
        except _API_ERRORS as e:
            log.info(
                "no pod metrics for %s/%s (%s)",
                target.namespace,
                target.deployment,
                getattr(e, "status", type(e).__name__),
            )
            return
        totals = {"cpu": 0, "memory": 0}
        counted = 0
        for item in metrics.get("items", []):
            try:
                for container in item.get("containers", []):
                    totals["cpu"] += cpu_millicores(container["usage"]["cpu"])
                    totals["memory"] += memory_bytes(container["usage"]["memory"])
                counted += 1
            except (KeyError, QuantityError):
                continue
        if not counted:
            return
        resources = observation["resources"]
        for resource, unit, parse in (("cpu", "m", cpu_millicores), ("memory", "", memory_bytes)):
            average = totals[resource] // counted
            resources[resource]["usage"] = f"{average}{unit}"
            request = resources[resource].get("request")
            try:
                if request and parse(request) > 0:
                    observation["metrics"][f"{resource}_percent"] = round(
                        100 * average / parse(request), 1
                    )
            except QuantityError:
                continue

    def _add_prometheus(self, target: Target, observation: dict[str, Any]) -> None:
        if not self.prometheus_url:
            return
        for metric, template in PROMETHEUS_QUERIES.items():
            query = template.format(namespace=target.namespace, deployment=target.deployment)
            url = f"{self.prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as response:
                    answer = json.load(response)
                value = float(answer["data"]["result"][0]["value"][1])
            except (OSError, ValueError, KeyError, IndexError, TypeError):
                continue  # unknown, never zero
            if value == value and value >= 0:  # NaN is unknown
                observation["metrics"][metric] = round(value, 2)

    # --- act ------------------------------------------------------------------------

    def apply(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Carry out one operation with a resourceVersion precondition (``apply_<type>``)."""
        return apply_by_type(self, target, operation, "opsgate on Kubernetes")

    def undo(self, target: Target, applied: Applied) -> None:
        """Apply the inverse of an applied operation."""
        if applied.inverse is None:
            raise ClusterError(f"{applied.operation.get('type')} can't be undone", status=422)
        self.apply(target, applied.inverse)

    def apply_scale(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Set the replica count through the scale subresource."""
        what = f"deployment {target.namespace}/{target.deployment} scale"
        try:
            scale = self.apps.read_namespaced_deployment_scale(
                target.deployment, target.namespace, _request_timeout=self.timeout
            )
            before = scale.spec.replicas
            body = {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    "name": target.deployment,
                    "namespace": target.namespace,
                    "resourceVersion": scale.metadata.resource_version,
                },
                "spec": {"replicas": int(operation["to"])},
            }
            self.apps.replace_namespaced_deployment_scale(
                target.deployment, target.namespace, body, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise _translate(e, what) from e
        return Applied(operation, {**operation, "to": before})

    def apply_adjust_resources(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Set a request or limit of the first container."""

        def change(after: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
            container = after["spec"]["template"]["spec"]["containers"][0]
            field = "requests" if operation.get("field", "request") == "request" else "limits"
            section = container.setdefault("resources", {}).setdefault(field, {})
            old = section.get(operation["resource"])
            section[operation["resource"]] = str(operation["to"])
            return {**operation, "to": old} if old is not None else None

        return self._patch_deployment(target, operation, change)

    def apply_restart_pod(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Restart through a rollout (the restartedAt annotation, as kubectl does)."""

        def change(after: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
            template = after["spec"]["template"]
            template.setdefault("metadata", {}).setdefault("annotations", {})[
                RESTART_ANNOTATION
            ] = self.now()
            return None

        return self._patch_deployment(target, operation, change)

    def apply_rollback(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Put an earlier ReplicaSet's template back on the deployment."""

        def change(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any] | None:
            template, revision = self._previous_template(
                target, before, operation.get("to_revision")
            )
            after["spec"]["template"] = template
            current = (before["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)
            log.info(
                "rolling deployment %s/%s back to revision %s",
                target.namespace,
                target.deployment,
                revision,
            )
            return {**operation, "to_revision": int(current)} if current else None

        return self._patch_deployment(target, operation, change)

    def apply_update_strategy(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change the rolling-update strategy."""

        def change(after: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
            rolling = after["spec"].setdefault("strategy", {}).setdefault("rollingUpdate", {})
            old_values = {}
            for key, value in operation["changes"].items():
                name = {"max_surge": "maxSurge", "max_unavailable": "maxUnavailable"}.get(key, key)
                old_values[key] = rolling.get(name)
                rolling[name] = value
            return {**operation, "changes": old_values}

        return self._patch_deployment(target, operation, change)

    def apply_update_health_checks(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change a probe of the first container."""

        def change(after: dict[str, Any], _: dict[str, Any]) -> dict[str, Any] | None:
            container = after["spec"]["template"]["spec"]["containers"][0]
            probe = container.setdefault(f"{operation['probe']}Probe", {})
            old_values = {key: probe.get(key) for key in operation["changes"]}
            probe.update(operation["changes"])
            return {**operation, "changes": old_values}

        return self._patch_deployment(target, operation, change)

    def _patch_deployment(
        self,
        target: Target,
        operation: dict[str, Any],
        change: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None],
    ) -> Applied:
        """Read the deployment, let ``change`` edit a copy (it returns the inverse), patch."""
        what = f"deployment {target.namespace}/{target.deployment}"
        before = self._deployment(target)
        after = json.loads(json.dumps(before))
        inverse = change(after, before)
        patch = self._guarded(before, after)
        try:
            self.apps.patch_namespaced_deployment(
                target.deployment, target.namespace, patch, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise self._patch_refused(e, what, before, lambda: self._deployment(target)) from e
        return Applied(operation, inverse)

    def apply_update_configmap(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Change keys of a configmap in the service's namespace (None removes a key)."""
        what = f"configmap {target.namespace}/{operation['name']}"
        try:
            raw = self.core.read_namespaced_config_map(
                operation["name"], target.namespace, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise _translate(e, what) from e
        before: dict[str, Any] = self.api.sanitize_for_serialization(raw)
        after = json.loads(json.dumps(before))
        data = after.setdefault("data", {})
        old = {key: (before.get("data") or {}).get(key) for key in operation["changes"]}
        for key, value in operation["changes"].items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = str(value)
        patch = self._guarded(before, after)
        try:
            self.core.patch_namespaced_config_map(
                operation["name"], target.namespace, patch, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:

            def again() -> dict[str, Any]:
                raw = self.core.read_namespaced_config_map(
                    operation["name"], target.namespace, _request_timeout=self.timeout
                )
                current: dict[str, Any] = self.api.sanitize_for_serialization(raw)
                return current

            raise self._patch_refused(e, what, before, again) from e
        return Applied(operation, {**operation, "changes": old})

    @staticmethod
    def _patch_refused(
        error: Exception,
        what: str,
        before: dict[str, Any],
        read_again: Callable[[], dict[str, Any]],
    ) -> ClusterError:
        """A refused guarded patch: a conflict when the object changed since ``before``.

        The API server answers a failed JSON-patch ``test`` with a bare 422
        Invalid, the same as a validation failure, so the body can't tell them
        apart: only a fresh read of the resourceVersion can (one GET, on a 422 only).
        """
        if isinstance(error, ApiException) and error.status == 422:
            try:
                current = read_again()["metadata"]["resourceVersion"]
            except (*_API_ERRORS, ClusterError, KeyError, TypeError):
                current = None
            if current is not None and current != before["metadata"]["resourceVersion"]:
                return ConflictError(
                    f"{what}: changed since it was read: re-read next tick", status=422
                )
        return _translate(error, what)

    @staticmethod
    def _guarded(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
        """A JSON patch from ``before`` to ``after`` that first tests the resourceVersion."""
        operations: list[dict[str, Any]] = jsonpatch.make_patch(before, after).patch
        version = before["metadata"]["resourceVersion"]
        return [{"op": "test", "path": "/metadata/resourceVersion", "value": version}, *operations]

    def _previous_template(
        self, target: Target, deployment: dict[str, Any], wanted: int | None
    ) -> tuple[dict[str, Any], int]:
        selector = ",".join(
            f"{k}={v}" for k, v in sorted(deployment["spec"]["selector"]["matchLabels"].items())
        )
        try:
            sets = self.apps.list_namespaced_replica_set(
                target.namespace, label_selector=selector, _request_timeout=self.timeout
            )
        except _API_ERRORS as e:
            raise _translate(e, f"replicasets of {target.namespace}/{target.deployment}") from e
        current = int(
            (deployment["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
        )
        owned = {}
        for item in sets.items:
            data = self.api.sanitize_for_serialization(item)
            owners = data["metadata"].get("ownerReferences") or []
            if not any(
                o.get("kind") == "Deployment" and o.get("name") == target.deployment for o in owners
            ):
                continue
            revision = int(
                (data["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION, "0")
            )
            owned[revision] = data["spec"]["template"]
        candidates = [r for r in owned if r < current] if wanted is None else [wanted]
        if not candidates or max(candidates) not in owned:
            raise NotFoundError(
                f"deployment {target.namespace}/{target.deployment}: no revision to roll back to",
                status=404,
            )
        revision = max(candidates)
        template = json.loads(json.dumps(owned[revision]))
        (template.get("metadata") or {}).get("labels", {}).pop("pod-template-hash", None)
        return template, revision


def _pod(pod: dict[str, Any]) -> dict[str, Any]:
    """A pod as the observation contract has it."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    conditions = status.get("conditions") or []
    reason = None
    for container in containers:
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        candidate = (state.get("waiting") or {}).get("reason") or (
            state.get("terminated") or {}
        ).get("reason")
        if candidate in FAILURE_REASONS:
            reason = candidate
        elif last.get("reason") == "OOMKilled" and reason is None:
            reason = "OOMKilled"
    return {
        "name": (pod.get("metadata") or {}).get("name"),
        "phase": status.get("phase"),
        "ready": any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
        "restart_count": sum(int(c.get("restartCount") or 0) for c in containers),
        "reason": reason,
    }
