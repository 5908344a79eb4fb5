"""A policy session: compiled blueprints, an OPA that serves them, and the three questions.

``PolicySession`` compiles the blueprints (or takes them compiled, as a
workspace hands them over), starts a local OPA or connects to a remote one,
refuses to answer when the served bundle revision differs from the compiled
one, and asks ``decide``, ``decide_all`` and ``enforce``. Every answer is
checked against the contract; anything else raises ``PolicyError`` (fail
closed).
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from engine import contracts
from engine.compile import CompileResult, compile_blueprints
from engine.errors import PolicyError, ToolNotFound
from engine.opa import DEFAULT_QUERY_TIMEOUT, ManagedServer, OpaGateway, OpaServer
from engine.opa_docker import IMAGE as DOCKER_IMAGE
from engine.opa_docker import DockerOpaServer, docker_available, docker_host
from engine.toolchain import find_tool

log = logging.getLogger(__name__)

ENTRYPOINTS = "opsgate.main"
RESTART_BACKOFF_MAX_SECONDS = 60.0


@dataclass
class RemoteOpa:
    """Where an existing OPA server is, and how to reach it.

    A remote OPA must be reached over TLS with a bearer token: anything else
    could be answered by whoever sits on the network path. ``insecure``
    allows plain http (a trusted network, tests), never a missing token.
    """

    url: str
    token: str | None = None
    ca: bool | str = True
    insecure: bool = False

    def problem(self) -> str:
        """Why this server may not be trusted ("" when it may)."""
        if not self.url.startswith("https://") and not self.insecure:
            return (
                f"OPA at {self.url} is not reached over TLS: use https:// (or --opa-insecure "
                "on a network you trust)"
            )
        if not self.token:
            return (
                f"OPA at {self.url} needs a bearer token (--opa-token-file or OPSGATE_OPA_TOKEN): "
                "an OPA anyone can query or load policies into is not ours"
            )
        return ""


@dataclass(frozen=True)
class OpaSettings:
    """Where OPA is (None: start one), how long to wait for each answer, and its Docker image.

    ``image`` is used only when opsgate starts OPA and finds no opa binary.
    """

    remote: RemoteOpa | None = None
    timeout: float = DEFAULT_QUERY_TIMEOUT
    image: str = DOCKER_IMAGE


def _local_server(bundle: Path, image: str = DOCKER_IMAGE) -> ManagedServer:
    """The local opa binary; else ``image`` when the Docker daemon of $DOCKER_HOST answers."""
    try:
        find_tool("opa")
    except ToolNotFound as e:
        host = docker_host()
        if docker_available(host):
            return DockerOpaServer(bundle, image=image, host=host)
        raise ToolNotFound(
            f"{e}; or start a local Docker daemon at {host} (opsgate then runs {image} there)"
        ) from e
    return OpaServer(bundle)


class PolicySession:
    """Compile, serve and query the policies for one set of blueprints."""

    def __init__(
        self,
        blueprints: Path,
        *,
        policies: Path | None = None,
        remote: RemoteOpa | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,
        build_dir: Path | None = None,
        compiled: CompileResult | None = None,
        image: str = DOCKER_IMAGE,
    ) -> None:
        self.blueprints = blueprints
        self.policies = policies
        self.remote = remote
        self.timeout = timeout
        self.image = image
        self.build_dir = build_dir
        # compiled by the caller (a workspace): served as it is, not compiled again
        self._given = compiled
        self.compiled: CompileResult | None = None
        self._server: ManagedServer | None = None
        self._gateway: OpaGateway | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._backoff = 0.0
        self._next_restart = 0.0

    @property
    def revision(self) -> str:
        """The bundle revision compiled from the blueprints."""
        if self.compiled is None:
            raise PolicyError("policy session not started")
        return self.compiled.revision

    def start(self) -> PolicySession:
        """Compile the blueprints (unless given compiled), then start or reach OPA and check it."""
        if self._given is not None:
            self.compiled = self._given
        else:
            out = self.build_dir
            if out is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="opsgate-build-")
                out = Path(self._scratch.name)
            self.compiled = compile_blueprints(self.blueprints, out, self.policies)
        if self.remote is None:
            assert self.compiled.bundle_path is not None
            self._server = _local_server(self.compiled.bundle_path, self.image)
            self._connect(self._server.start())
        else:
            problem = self.remote.problem()
            if problem:
                raise PolicyError(problem)
            self._gateway = OpaGateway(
                self.remote.url, token=self.remote.token, timeout=self.timeout, ca=self.remote.ca
            )
        self.check_revision()
        return self

    def _connect(self, url: str) -> None:
        assert self._server is not None
        self._gateway = OpaGateway(
            url, timeout=self.timeout, peer_pid=self._server.pid, token=self._server.token
        )

    def ensure_running(self) -> str | None:
        """Restart the managed OPA if it died (with backoff); say so, or None when it runs.

        Raises PolicyError while OPA is down and can't be restarted yet: the
        caller executes nothing then.
        """
        if self._server is None or self._server.alive():
            return None
        now = time.monotonic()
        if now < self._next_restart:
            raise PolicyError(
                f"OPA stopped; next restart attempt in {self._next_restart - now:.0f}s"
            )
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
        try:
            self._server.stop()
            self._connect(self._server.start())
            self.check_revision()
        except PolicyError as e:
            self._backoff = min(max(self._backoff * 2, 1.0), RESTART_BACKOFF_MAX_SECONDS)
            self._next_restart = now + self._backoff
            raise PolicyError(
                f"OPA stopped and did not restart: {e} (next attempt in {self._backoff:.0f}s)"
            ) from e
        self._backoff = 0.0
        self._next_restart = 0.0
        return f"OPA had stopped; restarted it (pid {self._server.pid})"

    def check_revision(self) -> None:
        """Raise PolicyError unless OPA serves exactly the compiled bundle."""
        served = self.gateway.served_revision()
        if served != self.revision:
            raise PolicyError(
                f"OPA serves bundle revision {served} but the blueprints compile to "
                f"{self.revision}: refusing to act (load the new bundle into OPA)"
            )

    @property
    def gateway(self) -> OpaGateway:
        """The connection to OPA (after ``start``)."""
        if self._gateway is None:
            raise PolicyError("policy session not started")
        return self._gateway

    def decide(self, observation: Any) -> contracts.DecisionDocument:
        """Ask ``data.opsgate.main.decide`` for one observation."""
        answer = self.gateway.evaluate(ENTRYPOINTS, "decide", observation)
        return contracts.decision_document(answer)

    def decide_all(self, observations: list[Any]) -> list[contracts.DecisionDocument]:
        """Ask ``data.opsgate.main.decide_all`` for many observations at once."""
        answer = self.gateway.evaluate(ENTRYPOINTS, "decide_all", {"services": observations})
        documents = contracts.decision_documents(answer)
        if len(documents) != len(observations):
            raise PolicyError(
                f"OPA answered {len(documents)} documents for {len(observations)} observations"
            )
        return documents

    def enforce(self, request: Any) -> dict[str, Any]:
        """Ask ``data.opsgate.main.enforce`` for one proposed operation."""
        answer = self.gateway.evaluate(ENTRYPOINTS, "enforce", request)
        return contracts.verdict(answer)

    def authority(self, actor: dict[str, str]) -> dict[str, Any]:
        """Ask ``data.opsgate.main.authority`` what ``actor`` may ever request, per service."""
        answer = self.gateway.evaluate(ENTRYPOINTS, "authority", {"actor": actor})
        return contracts.authority_answer(answer)

    def breaker(self, request: Any) -> contracts.BreakerAnswer:
        """Ask ``data.opsgate.main.breaker`` whether a service's breaker is open."""
        answer = self.gateway.evaluate(ENTRYPOINTS, "breaker", request)
        return contracts.breaker_answer(answer)

    def stop(self) -> None:
        """Stop the local OPA (if any) and remove scratch files."""
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None

    def __enter__(self) -> PolicySession:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
