"""A small stand-in for the Kubernetes API server: real HTTP, canned objects, recorded requests.

It answers the calls the Kubernetes backend makes, applies JSON patches
(including their ``test`` operations, failing them with 422 as the API server
does), bumps resourceVersion on writes, and lets a test make the next
request fail with any status.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonpatch

from tests.loopback import serve

LABELS = {"app": "frontend"}


def deployment(revision: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "frontend",
            "namespace": "shop",
            "resourceVersion": "100",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(LABELS)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "shop/frontend:2.0",
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "readinessProbe": {"periodSeconds": 10},
                        }
                    ]
                },
            },
        },
        "status": {"replicas": 2, "readyReplicas": 2},
    }


def pod(
    name: str, *, ready: bool = True, restarts: int = 0, waiting: str | None = None
) -> dict[str, Any]:
    state = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": dict(LABELS)},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "ready": ready,
                    "restartCount": restarts,
                    "state": state,
                    "image": "x",
                    "imageID": "y",
                }
            ],
        },
    }


def replica_set(revision: int, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"frontend-{revision}",
            "namespace": "shop",
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": "frontend", "uid": "u1"}
            ],
        },
        "spec": {
            "selector": {"matchLabels": dict(LABELS)},
            "template": {
                "metadata": {"labels": {**LABELS, "pod-template-hash": f"h{revision}"}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


@dataclass
class Recorded:
    """One request as the fake server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str
    body: Any


@dataclass
class FakeApiServer:
    """The objects the fake serves, the requests it saw, and failures to inject."""

    url: str = ""
    deployment: dict[str, Any] = field(default_factory=deployment)
    pods: list[dict[str, Any]] = field(
        default_factory=lambda: [pod("frontend-a"), pod("frontend-b")]
    )
    metrics: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "metadata": {"name": "frontend-a"},
                "containers": [{"name": "web", "usage": {"cpu": "80m", "memory": "100Mi"}}],
            },
            {
                "metadata": {"name": "frontend-b"},
                "containers": [{"name": "web", "usage": {"cpu": "90000000n", "memory": "110Mi"}}],
            },
        ]
    )
    replica_sets: list[dict[str, Any]] = field(
        default_factory=lambda: [
            replica_set(1, "shop/frontend:1.9"),
            replica_set(2, "shop/frontend:2.0"),
        ]
    )
    configmap: dict[str, Any] = field(
        default_factory=lambda: {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "frontend-config", "namespace": "shop", "resourceVersion": "7"},
            "data": {"LOG_LEVEL": "INFO"},
        }
    )
    fail_next: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> list[Recorded]:
        """The requests that change something."""
        return [r for r in self.requests if r.method in ("PUT", "PATCH", "POST", "DELETE")]


def _status(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }


@contextmanager
def fake_apiserver() -> Iterator[FakeApiServer]:
    """Run a FakeApiServer on a free loopback port for the duration of the block."""
    state = FakeApiServer()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _reply(self, code: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with state.lock:
                state.requests.append(
                    Recorded(
                        method,
                        parts.path,
                        parse_qs(parts.query),
                        self.headers.get("Content-Type", ""),
                        body,
                    )
                )
                if state.fail_next:
                    code = state.fail_next.pop(0)
                    self._reply(code, _status(code, "injected failure"))
                    return
                code, answer = route(method, parts.path, body, self.headers.get("Content-Type", ""))
            self._reply(code, answer)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    def bump(obj: dict[str, Any]) -> None:
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)

    def patched(obj: dict[str, Any], body: Any, content_type: str) -> tuple[int, Any]:
        if content_type != "application/json-patch+json":
            return 415, _status(415, f"unsupported patch type {content_type}")
        try:
            result = jsonpatch.apply_patch(obj, body)
        except jsonpatch.JsonPatchTestFailed as e:
            return 422, _status(
                422, f"the server rejected our request: test failed: {e} (resourceVersion)"
            )
        except jsonpatch.JsonPatchException as e:
            return 422, _status(422, str(e))
        obj.clear()
        obj.update(result)
        bump(obj)
        return 200, copy.deepcopy(obj)

    def route(method: str, path: str, body: Any, content_type: str) -> tuple[int, Any]:
        base = "/apis/apps/v1/namespaces/shop/deployments/frontend"
        if path == base and method == "GET":
            return 200, state.deployment
        if path == base and method == "PATCH":
            return patched(state.deployment, body, content_type)
        if path == base + "/scale" and method == "GET":
            return 200, {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    "name": "frontend",
                    "namespace": "shop",
                    "resourceVersion": state.deployment["metadata"]["resourceVersion"],
                },
                "spec": {"replicas": state.deployment["spec"]["replicas"]},
                "status": {"replicas": state.deployment["spec"]["replicas"]},
            }
        if path == base + "/scale" and method == "PUT":
            if (
                body["metadata"].get("resourceVersion")
                != state.deployment["metadata"]["resourceVersion"]
            ):
                return 409, _status(409, "the object has been modified")
            state.deployment["spec"]["replicas"] = body["spec"]["replicas"]
            bump(state.deployment)
            return 200, body
        if path == "/api/v1/namespaces/shop/pods" and method == "GET":
            return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": state.pods}
        if path == "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods" and method == "GET":
            return 200, {"kind": "PodMetricsList", "items": state.metrics}
        if path == "/apis/apps/v1/namespaces/shop/replicasets" and method == "GET":
            return 200, {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSetList",
                "metadata": {},
                "items": state.replica_sets,
            }
        if path == "/api/v1/namespaces/shop/configmaps/frontend-config" and method == "GET":
            return 200, state.configmap
        if path == "/api/v1/namespaces/shop/configmaps/frontend-config" and method == "PATCH":
            return patched(state.configmap, body, content_type)
        return 404, _status(404, f"{path} not found")

    with serve(Handler) as url:
        state.url = url
        yield state
