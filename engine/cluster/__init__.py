"""Clusters the runner observes and acts on, behind one interface.

``SimulatedCluster`` (``engine.cluster.simulated``) is the default: a
deterministic cluster with a virtual clock, a load model and fault
injection. ``KubernetesCluster`` (``engine.cluster.kubernetes``) talks to a
real API server through the official client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from engine import operations
from engine.errors import OpsgateError


class ClusterError(OpsgateError):
    """The cluster refused or failed an operation (maps from API status codes)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConflictError(ClusterError):
    """The object changed since it was read (HTTP 409): re-read and re-decide."""


class NotFoundError(ClusterError):
    """The object does not exist (HTTP 404)."""


@dataclass(frozen=True)
class Target:
    """Where a service runs: its blueprint name, namespace and deployment."""

    service: str
    namespace: str
    deployment: str


@dataclass(frozen=True)
class Applied:
    """What an executed operation changed, and how to undo it (None: it can't be)."""

    operation: dict[str, Any]
    inverse: dict[str, Any] | None
    revision: int | None = None


class Cluster(Protocol):
    """What the runner needs from a cluster."""

    # whether ``wait`` takes real time (a real cluster) or only moves a virtual clock
    waits_in_real_time: bool

    def now(self) -> str:
        """The cluster's current time, RFC 3339 UTC (virtual in the simulation)."""
        ...

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` pass (virtual time in the simulation)."""
        ...

    def observe(self, target: Target) -> dict[str, Any]:
        """The observation of one service (the contract, without ``state`` and ``now``)."""
        ...

    def apply(self, target: Target, operation: dict[str, Any]) -> Applied:
        """Carry out one operation; raise ClusterError if the cluster refuses."""
        ...

    def undo(self, target: Target, applied: Applied) -> None:
        """Reverse an applied operation; raise ClusterError if that fails."""
        ...


def apply_by_type(backend: object, target: Target, operation: dict[str, Any], who: str) -> Applied:
    """Carry out ``operation`` with ``backend``'s ``apply_<type>`` method.

    A type the catalog does not know, forbids outright, or the backend has no
    method for is refused (422) before anything is touched; ``who`` names the
    backend in that refusal.
    """
    entry = operations.lookup(operation)
    method = getattr(backend, entry.apply_method, None) if entry and entry.executable else None
    if not callable(method):
        raise ClusterError(f"{who} does not carry out {operation.get('type')!r}", status=422)
    applied: Applied = method(target, operation)
    return applied
