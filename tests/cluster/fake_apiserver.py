"""A small stand-in for the Kubernetes API server, for answers a real one won't give on demand.

Real HTTP, canned objects (a Deployment, its Pods and their PodMetrics),
recorded requests; a test can make the next requests fail with any status
(500, 503) or answer late (a timeout). Everything else the backend does is
tested against a real API server in tests/kube.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    # seconds to wait before answering (a server slower than the client's timeout)
    delay: float = 0.0
    fail_next: list[int] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


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
                delay = state.delay
                if state.fail_next:
                    code = state.fail_next.pop(0)
                    self._reply(code, _status(code, "injected failure"))
                    return
                code, answer = route(method, parts.path)
            if delay:
                time.sleep(delay)
            self._reply(code, answer)

        def do_GET(self) -> None:
            self._handle("GET")

    def route(method: str, path: str) -> tuple[int, Any]:
        base = "/apis/apps/v1/namespaces/shop/deployments/frontend"
        if path == base and method == "GET":
            return 200, state.deployment
        if path == "/api/v1/namespaces/shop/pods" and method == "GET":
            return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": state.pods}
        if path == "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods" and method == "GET":
            return 200, {"kind": "PodMetricsList", "items": state.metrics}
        return 404, _status(404, f"{path} not found")

    with serve(Handler) as url:
        state.url = url
        yield state
