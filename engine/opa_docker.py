"""Start OPA in a container through the Docker SDK, when no opa binary is found.

Only this module imports ``docker``. It talks to one daemon: the one
``$DOCKER_HOST`` names, else the local default socket, and never another.

The container meets the trust model of the binary launcher: it has no
network at all, and OPA listens on a Unix socket in a fresh private (0700)
directory bind-mounted into it. Every connection checks the peer's
credentials (``SO_PEERCRED``): the process at the other end must be the
container's OPA (its process on this host) run by our user, so the daemon
must be local and OPA runs as the runner's user (a rootless daemon's root is
that user already). OPA also demands a per-start token of every request and
allows nothing but queries of opsgate's rules (``token_authorization``).
The bundle is mounted read-only, the root file system is read-only, and the
container is removed when stopped.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from engine.errors import PolicyError
from engine.opa import TOKEN_FLAGS, ManagedServer, token_authorization, wait_for_bundle

log = logging.getLogger(__name__)

# The official image of the OPA version tools/opa pins (a test checks they agree).
IMAGE = "openpolicyagent/opa:1.22.2"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
STARTUP_TIMEOUT_SECONDS = 60.0
# Where the private directory (OPA's socket, the token's policy) appears in the container.
_RUN_DIR = "/run/opsgate"
LABEL = "opsgate.opa"  # on every container this launcher starts (value: the runner's pid)

# Every container this process started, so an unexpected exit still removes them.
_RUNNING: set[DockerOpaServer] = set()


def docker_host() -> str:
    """The daemon to use: ``$DOCKER_HOST``, else the local default socket."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST


def _unix_path(host: str) -> str | None:
    return host[len("unix://") :] if host.startswith("unix://") else None


def _listening(path: str) -> bool:
    """A cheap first look, before the SDK (which leaks a socket when no daemon is there)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def docker_available(host: str | None = None) -> bool:
    """True when the docker SDK is installed and a local daemon answers at ``host``."""
    host = host or docker_host()
    path = _unix_path(host)
    if path is None:
        return False  # only a local daemon can mount our private socket directory
    try:
        import docker
    except ImportError:
        return False
    if not _listening(path):
        return False
    client = None
    try:
        client = docker.DockerClient(base_url=host, timeout=3)
        client.ping()
    except Exception:  # the SDK raises several unrelated types when no daemon is there
        return False
    finally:
        if client is not None:
            client.close()
    return True


def _reason(error: Exception) -> str:
    """One line on why the daemon refused: its explanation, else the exception's type."""
    explanation = getattr(error, "explanation", None)
    text = " ".join(str(explanation).split()) if explanation else ""
    return text[:300] or type(error).__name__


class DockerOpaServer(ManagedServer):
    """OPA in a container, with the same start/stop/url/pid shape as OpaServer."""

    def __init__(
        self,
        bundle: Path,
        *,
        image: str = IMAGE,
        host: str | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.bundle = bundle.resolve()
        self.image = image
        self.host = host or docker_host()
        self.startup_timeout = startup_timeout
        self.url = ""
        self._container: Any = None
        self._client: Any = None
        self._pid: int | None = None
        self._token: str | None = None
        self._dir: Path | None = None

    @property
    def token(self) -> str | None:
        """The per-start bearer token OPA in the container demands of every request."""
        return self._token

    @property
    def pid(self) -> int | None:
        """The container's OPA process on this host (what the socket's peer must be)."""
        return self._pid

    def alive(self) -> bool:
        """True while the container runs."""
        if self._container is None:
            return False
        try:
            self._container.reload()
        except Exception:  # gone, or the daemon does not answer: not known to run
            return False
        return bool(self._container.status == "running")

    def _user(self) -> str:
        """Who OPA runs as: the runner's user, so the peer check can recognise it."""
        security = self._client.info().get("SecurityOptions") or []
        if any("name=rootless" in str(option) for option in security):
            return "0:0"  # a rootless daemon's root is the user who runs it
        return f"{os.geteuid()}:{os.getegid()}"

    def start(self) -> str:
        """Run the container and wait until OPA serves the bundle; return its ``unix://`` URL."""
        import docker

        path = _unix_path(self.host)
        if path is None:
            raise PolicyError(
                f"OPA in Docker needs a local daemon on a Unix socket, not {self.host}: "
                "the bundle and OPA's socket are mounted from this host"
            )
        if not _listening(path):
            raise PolicyError(f"can't start OPA with Docker: no daemon answers at {self.host}")
        self._dir = Path(tempfile.mkdtemp(prefix="opsgate-opa-"))
        self._token = token_authorization(self._dir / "authz")
        (self._dir / "socket").mkdir(mode=0o700)
        try:
            self._client = docker.DockerClient(base_url=self.host, timeout=30)
            self._container = self._client.containers.run(
                self.image,
                [
                    "run",
                    "--server",
                    "--addr",
                    f"unix://{_RUN_DIR}/socket/opa.sock",
                    "--unix-socket-perm",
                    "600",
                    *TOKEN_FLAGS,
                    "--disable-telemetry",
                    "--optimize-store-for-read-speed",
                    "--log-level",
                    "error",
                    "--bundle",
                    f"/bundle/{self.bundle.name}",
                    f"{_RUN_DIR}/authz",
                ],
                volumes={
                    str(self.bundle.parent): {"bind": "/bundle", "mode": "ro"},
                    str(self._dir / "authz"): {"bind": f"{_RUN_DIR}/authz", "mode": "ro"},
                    str(self._dir / "socket"): {"bind": f"{_RUN_DIR}/socket", "mode": "rw"},
                },
                network_mode="none",
                user=self._user(),
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                labels={LABEL: str(os.getpid())},
                detach=True,
            )
            _RUNNING.add(self)
            self._container.reload()
            pid = int(self._container.attrs["State"]["Pid"])
        except Exception as e:
            self.stop()
            raise PolicyError(
                f"can't start OPA with Docker ({self.image} at {self.host}): {_reason(e)}"
            ) from e
        if pid <= 0:  # it exited already: there is no process to recognise
            error = self._exited()
            self.stop()
            raise error
        self._pid = pid
        self.url = f"unix://{self._dir / 'socket' / 'opa.sock'}"
        try:
            ready = wait_for_bundle(
                self.url,
                self.startup_timeout,
                interval=0.1,
                still_starting=self._still_running,
                peer_pid=pid,
                token=self._token,
            )
        except PolicyError:
            self.stop()
            raise
        if not ready:
            self.stop()
            raise PolicyError(f"OPA in Docker not ready after {self.startup_timeout:.0f}s")
        log.info("OPA (%s at %s) serving %s at %s", self.image, self.host, self.bundle, self.url)
        return self.url

    def _still_running(self) -> None:
        if not self.alive():
            raise self._exited()

    def _exited(self) -> PolicyError:
        """The error for a container that exited, with OPA's last words."""
        output = ""
        with contextlib.suppress(Exception):
            output = self._container.logs(tail=5).decode("utf-8", "replace")
        return PolicyError(
            f"OPA in Docker exited: {' '.join(output.split())[-400:] or '(no output)'}"
        )

    def stop(self) -> None:
        """Remove the container and the private directory; safe to call twice."""
        container, self._container = self._container, None
        _RUNNING.discard(self)
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._pid = None
        self._token = None


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()
