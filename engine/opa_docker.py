"""Start OPA from the official image through the Docker SDK, when no opa binary is found.

Only this module imports ``docker``. The container serves the compiled
bundle (mounted read-only) on a loopback port and is removed when stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import PolicyError
from engine.opa import TOKEN_FLAGS, ManagedServer, token_authorization, wait_for_bundle

log = logging.getLogger(__name__)

IMAGE = "openpolicyagent/opa:1.22.2"


def _daemon_socket_answers() -> bool:
    """A cheap first look, before the SDK (which leaks a socket when no daemon is there)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return True  # a TCP or SSH daemon: let the SDK find out
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(host[len("unix://") :])
        except OSError:
            return False
    return True


def docker_available() -> bool:
    """True when the docker SDK is installed and a Docker daemon answers."""
    try:
        import docker
    except ImportError:
        return False
    if not _daemon_socket_answers():
        return False
    client = None
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception:  # the SDK raises several unrelated types when no daemon is there
        return False
    finally:
        if client is not None:
            client.close()
    return True


class DockerOpaServer(ManagedServer):
    """OPA in a container, with the same start/stop/url shape as OpaServer."""

    def __init__(self, bundle: Path, *, startup_timeout: float = 60.0) -> None:
        self.bundle = bundle.resolve()
        self.startup_timeout = startup_timeout
        self.url = ""
        self._container: Any = None
        self._client: Any = None
        self._token: str | None = None
        self._authz: tempfile.TemporaryDirectory[str] | None = None

    @property
    def token(self) -> str | None:
        """The per-start bearer token OPA in the container demands of every request."""
        return self._token

    def start(self) -> str:
        """Run the container and wait until OPA serves the bundle."""
        import docker

        # a port on loopback, not a private socket: OPA itself demands a per-start token
        self._authz = tempfile.TemporaryDirectory(prefix="opsgate-authz-")
        self._token = token_authorization(Path(self._authz.name) / "authz")
        try:
            self._client = docker.from_env()
            self._container = self._client.containers.run(
                IMAGE,
                [
                    "run",
                    "--server",
                    "--addr",
                    "0.0.0.0:8181",
                    *TOKEN_FLAGS,
                    "--disable-telemetry",
                    "--optimize-store-for-read-speed",
                    "--bundle",
                    f"/bundle/{self.bundle.name}",
                    "/authz",
                ],
                volumes={
                    str(self.bundle.parent): {"bind": "/bundle", "mode": "ro"},
                    str(Path(self._authz.name) / "authz"): {"bind": "/authz", "mode": "ro"},
                },
                ports={"8181/tcp": ("127.0.0.1", None)},
                detach=True,
                remove=True,
            )
            self._container.reload()
            port = self._container.attrs["NetworkSettings"]["Ports"]["8181/tcp"][0]["HostPort"]
        except Exception as e:
            self.stop()
            raise PolicyError(f"can't start OPA with Docker ({IMAGE}): {type(e).__name__}") from e
        self.url = f"http://127.0.0.1:{port}"
        if wait_for_bundle(self.url, self.startup_timeout, interval=0.2, token=self._token):
            log.info("OPA (Docker %s) serving %s at %s", IMAGE, self.bundle, self.url)
            return self.url
        self.stop()
        raise PolicyError(f"OPA in Docker not ready after {self.startup_timeout:.0f}s")

    def stop(self) -> None:
        """Stop (and so remove) the container; safe to call twice."""
        container, self._container = self._container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop(timeout=5)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self._authz is not None:
            self._authz.cleanup()
            self._authz = None
        self._token = None
