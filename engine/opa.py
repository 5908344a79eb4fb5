"""Everything that talks to OPA: the ``opa`` binary, a local server, queries.

Only this module runs ``opa`` or imports ``opa_client``. It fails closed: any
answer it can't vouch for (OPA down, slow, an HTTP error, a body that isn't
JSON, an undefined result) raises ``PolicyError``, and callers execute
nothing on a ``PolicyError``.

Only our OPA answers us. The managed OPA listens on a Unix socket in a
private (0700) directory, never on a TCP port another user could take, and
every connection checks the peer's credentials (``SO_PEERCRED``): the
process on the other end must be the very OPA this runner started, run by
the same user; anything else is refused (``NotOurOpa``). OPA runs in the
runner's process group and is killed by the kernel if the runner dies
(``PR_SET_PDEATHSIG``), so it can't outlive it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from opa_client import OpaClient
from requests.adapters import HTTPAdapter

from engine.errors import CompileError, PolicyError
from engine.toolchain import find_tool

log = logging.getLogger(__name__)

BUILD_TIMEOUT_SECONDS = 120
DEFAULT_QUERY_TIMEOUT = 2.0
STARTUP_TIMEOUT_SECONDS = 20.0

# Every server this process started, so an unexpected exit still stops them.
_RUNNING: set[OpaServer] = set()


def build_bundle(source_dir: Path, output: Path, opa_binary: Path | None = None) -> None:
    """Run ``opa build -b`` on ``source_dir`` (policies, data, .manifest) into ``output``."""
    binary = opa_binary or find_tool("opa")
    # Run inside the source so the bundle records relative file names.
    command = [str(binary), "build", "-b", ".", "-o", str(output.resolve())]
    log.debug("running %s in %s", command, source_dir)
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
            cwd=source_dir,
        )
    except subprocess.TimeoutExpired as e:
        raise CompileError(f"opa build did not finish in {BUILD_TIMEOUT_SECONDS}s") from e
    except OSError as e:
        raise CompileError(f"can't run {binary}: {e.strerror or e}") from e
    if completed.returncode != 0:
        detail = " ".join((completed.stderr or completed.stdout).split())
        raise CompileError(f"opa build failed: {detail[:500]}")


class NotOurOpa(PolicyError):
    """The process answering on the managed OPA's socket is not the OPA we started."""


_SO_PEERCRED_FORMAT = "3i"  # struct ucred: pid, uid, gid


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    raw = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_SO_PEERCRED_FORMAT)
    )
    pid, uid, gid = struct.unpack(_SO_PEERCRED_FORMAT, raw)
    return int(pid), int(uid), int(gid)


class _UnixConnection(urllib3.connection.HTTPConnection):
    """HTTP over a Unix socket, to a peer whose credentials are checked on connect."""

    def __init__(self, socket_path: str, peer_pid: int | None, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
        self.socket_path = socket_path
        self.peer_pid = peer_pid

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, int | float):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
            pid, uid, _ = peer_credentials(sock)
        except OSError as e:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(self, f"{self.socket_path}: {e}") from e
        if uid != os.geteuid() or (self.peer_pid is not None and pid != self.peer_pid):
            sock.close()
            raise NotOurOpa(
                f"the process answering on {self.socket_path} (pid {pid}, uid {uid}) is not "
                f"the OPA this runner started (pid {self.peer_pid}, uid {os.geteuid()}): "
                "refusing its answers"
            )
        return sock


class _UnixPool(urllib3.HTTPConnectionPool):
    def __init__(self, socket_path: str, peer_pid: int | None, **kwargs: Any) -> None:
        super().__init__("localhost", **kwargs)
        self.socket_path = socket_path
        self.peer_pid = peer_pid

    def _new_conn(self) -> _UnixConnection:
        return _UnixConnection(
            self.socket_path, self.peer_pid, timeout=self.timeout.connect_timeout
        )


class UnixSocketAdapter(HTTPAdapter):
    """A requests adapter that sends every request to one Unix socket, peer-checked."""

    def __init__(self, socket_path: str, peer_pid: int | None) -> None:
        super().__init__(max_retries=0)
        self._pool = _UnixPool(socket_path, peer_pid)

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> _UnixPool:
        """Every URL goes to the one socket."""
        return self._pool

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.close()
        super().close()


def unix_socket_path(url: str) -> str | None:
    """The socket path of a ``unix://`` URL (None for http and https)."""
    parts = urlsplit(url)
    return unquote(parts.path) if parts.scheme == "unix" else None


def http_session(
    url: str, peer_pid: int | None = None, token: str | None = None
) -> tuple[requests.Session, str]:
    """A requests session for ``url`` and the base URL to use with it (unix:// or http(s)://)."""
    session = requests.Session()
    session.trust_env = False  # never a proxy between us and our OPA
    if token is not None:
        session.headers["Authorization"] = f"Bearer {token}"
    path = unix_socket_path(url)
    if path is None:
        return session, url
    session.mount("http://", UnixSocketAdapter(path, peer_pid))
    return session, "http://localhost"


def wait_for_bundle(
    url: str,
    seconds: float,
    *,
    interval: float = 0.05,
    still_starting: Callable[[], None] | None = None,
    peer_pid: int | None = None,
    token: str | None = None,
) -> bool:
    """Poll ``url``/health?bundles=true until OPA serves its bundle; False after ``seconds``.

    ``still_starting`` is called before each poll and may raise to give up early
    (for example when the OPA process has already exited).
    """
    session, base = http_session(url, peer_pid, token)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if still_starting is not None:
                still_starting()
            with contextlib.suppress(requests.RequestException):
                if session.get(f"{base}/health?bundles=true", timeout=1).status_code == 200:
                    return True
            time.sleep(interval)
        return False
    finally:
        session.close()


# OPA's own authorization, for an OPA in a container (whose process we did not start
# ourselves): on top of the peer check, every request must carry the per-start token,
# and even then only queries of opsgate's rules and the health check are allowed: no
# writes, no policies.
_AUTHZ_POLICY = """package system.authz

default allow := false

allow if {{
	crypto.sha256(input.identity) == "{digest}"
	permitted
}}

permitted if {{
	input.method == "POST"
	input.path[0] == "v1"
	input.path[1] == "data"
	input.path[2] == "opsgate"
}}

permitted if {{
	input.method == "GET"
	input.path == ["health"]
}}
"""

TOKEN_FLAGS = ["--authentication=token", "--authorization=basic"]


def token_authorization(directory: Path) -> str:
    """Write a ``system.authz`` bundle for a new random token into ``directory``; return it.

    Start OPA with ``TOKEN_FLAGS`` and ``directory`` as a second bundle: a
    request without the token, or one that is not a query of opsgate's rules
    or the health check, is refused (HTTP 401/403). Only the token's SHA-256
    is written down.
    """
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode("ascii")).hexdigest()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (directory / ".manifest").write_text(json.dumps({"roots": ["system"]}), encoding="utf-8")
    (directory / "authz.rego").write_text(_AUTHZ_POLICY.format(digest=digest), encoding="utf-8")
    return token


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that has the kernel kill the child when this process dies (Linux)."""
    name = ctypes.util.find_library("c")
    if name is None or not hasattr(os, "getppid"):
        return None
    try:
        prctl = ctypes.CDLL(name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def hook() -> None:  # runs in the child between fork and exec: no allocation, no locks
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return hook


class ManagedServer:
    """A local OPA that starts on entering a with-block and stops on every way out."""

    def start(self) -> str:
        """Start OPA and return its URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop OPA; safe to call twice."""
        raise NotImplementedError

    def alive(self) -> bool:
        """False once the server is known to have stopped on its own."""
        return True

    @property
    def pid(self) -> int | None:
        """The process that must be at the other end of the connection (None: not checked)."""
        return None

    @property
    def token(self) -> str | None:
        """The bearer token this server demands of every request (None: none)."""
        return None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class OpaServer(ManagedServer):
    """A local ``opa run --server`` with one bundle, on a Unix socket only we can reach.

    The socket lives in a fresh 0700 directory (``socket_dir``, made under the
    system's temporary directory when not given). Use it as a context manager:
    the server is stopped on every way out of the block (normal exit, error,
    Ctrl-C, SIGTERM through the CLI), at interpreter exit for good measure,
    and by the kernel if this process is killed outright.
    """

    def __init__(
        self,
        bundle: Path,
        *,
        opa_binary: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
        socket_dir: Path | None = None,
    ) -> None:
        self.bundle = bundle
        self.opa_binary = opa_binary
        self.startup_timeout = startup_timeout
        self.socket_dir = socket_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._log_file: Any = None
        self._own_dir: Path | None = None

    @property
    def pid(self) -> int | None:
        """The OPA process id while it runs (what the socket's peer must be)."""
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        """True while the OPA process runs."""
        return self.process is not None and self.process.poll() is None

    def _private_dir(self) -> Path:
        if self.socket_dir is not None:
            self.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory = self.socket_dir
        else:
            self._own_dir = Path(tempfile.mkdtemp(prefix="opsgate-opa-"))
            directory = self._own_dir
        info = directory.stat()
        if info.st_uid != os.geteuid() or info.st_mode & 0o077:
            raise PolicyError(
                f"{directory}: OPA's socket directory must be private (0700, owned by us), "
                f"it is {info.st_mode & 0o777:04o} owned by uid {info.st_uid}"
            )
        return directory

    def start(self) -> str:
        """Start OPA and wait until it serves the bundle; return its ``unix://`` URL."""
        binary = self.opa_binary or find_tool("opa")
        socket_path = self._private_dir() / "opa.sock"
        socket_path.unlink(missing_ok=True)
        self._log_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        command = [
            str(binary),
            "run",
            "--server",
            "--addr",
            f"unix://{socket_path}",
            "--unix-socket-perm",
            "600",
            "--optimize-store-for-read-speed",
            "--disable-telemetry",
            "--log-level",
            "error",
            "--bundle",
            str(self.bundle),
        ]
        log.debug("starting %s", command)
        try:
            # in our process group, so a signal to the group reaches OPA too, and killed
            # by the kernel when we die, so it never outlives the runner
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=_parent_death_signal(),
            )
        except OSError as e:
            self._log_file.close()
            self._log_file = None
            raise PolicyError(f"can't start {binary}: {e.strerror or e}") from e
        _RUNNING.add(self)
        self.url = f"unix://{socket_path}"
        try:
            self._wait_until_ready()
        except PolicyError as e:
            self.stop()
            raise PolicyError(f"OPA did not start: {e}") from e
        log.info("OPA serving %s at %s (pid %s)", self.bundle, self.url, self.pid)
        return self.url

    def _wait_until_ready(self) -> None:
        def exited() -> None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PolicyError(
                    f"OPA exited with code {self.process.returncode}: {self._output()}"
                )

        ready = wait_for_bundle(
            self.url, self.startup_timeout, still_starting=exited, peer_pid=self.pid
        )
        if not ready:
            raise PolicyError(f"OPA not ready after {self.startup_timeout:.0f}s: {self._output()}")

    def _output(self) -> str:
        if self._log_file is None:
            return ""
        self._log_file.seek(0)
        text: str = self._log_file.read().decode("utf-8", "replace")
        return " ".join(text.split())[-400:] or "(no output)"

    def stop(self) -> None:
        """Stop the server (TERM, then KILL after 5 s); safe to call twice."""
        process, self.process = self.process, None
        _RUNNING.discard(self)
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


class OpaGateway:
    """Ask an OPA server the opsgate entrypoints, through opa-python-client.

    ``ca`` is True to verify TLS against the system store, or the path of a
    CA bundle. The token is sent as a bearer token and never logged.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_QUERY_TIMEOUT,
        ca: bool | str = True,
        peer_pid: int | None = None,
    ) -> None:
        socket_path = unix_socket_path(url)
        if socket_path is not None:
            # the managed OPA: HTTP over its private socket, each connection peer-checked
            # (and the token too, when OPA demands one: in a container)
            self.url = url
            self.timeout = timeout
            self._client = OpaClient(
                host="localhost", port=80, token=token, retries=0, timeout=timeout
            )
            self._client._session.mount("http://", UnixSocketAdapter(socket_path, peer_pid))
            self._client._session.trust_env = False  # as http_session: no proxy, no netrc
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PolicyError(
                f"OPA URL {url!r} must look like http://host:port or https://host:port"
            )
        if parts.path not in ("", "/"):
            raise PolicyError(f"OPA URL {url!r} must not have a path")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.url = f"{parts.scheme}://{parts.hostname}:{port}"
        self.timeout = timeout
        self._client = OpaClient(
            host=parts.hostname,
            port=port,
            ssl=(ca or True) if parts.scheme == "https" else False,
            token=token,
            retries=0,  # fail closed now; the run loop tries again next tick
            timeout=timeout,
        )
        # as http_session: never a proxy between us and our OPA (nor its environment lookups)
        self._client._session.trust_env = False

    def evaluate(self, package: str, rule: str, input_data: Any) -> Any:
        """Return ``data.<package>.<rule>`` for ``input_data``; raise PolicyError otherwise."""
        where = f"data.{package}.{rule}"
        try:
            answer = self._client.query_rule(input_data, package, rule)
        except requests.Timeout as e:
            raise PolicyError(
                f"OPA at {self.url} did not answer {where} within {self.timeout}s"
            ) from e
        except requests.HTTPError as e:
            status = e.response.status_code if e.response is not None else "?"
            raise PolicyError(f"OPA at {self.url} answered HTTP {status} for {where}") from e
        except requests.RequestException as e:
            raise PolicyError(f"OPA at {self.url} is unreachable: {type(e).__name__}") from e
        except ValueError as e:  # the body was not JSON
            raise PolicyError(f"OPA at {self.url} sent a body that is not JSON for {where}") from e
        if not isinstance(answer, dict):
            raise PolicyError(f"OPA at {self.url} sent a malformed answer for {where}")
        if "result" not in answer:
            raise PolicyError(f"{where} is undefined for this input (is the bundle loaded?)")
        return answer["result"]

    def evaluation_seconds(self, package: str, rule: str, input_data: Any) -> float:
        """How long OPA itself spent evaluating one query (its ``timer_rego_query_eval_ns``)."""
        try:
            answer = self._client.query_rule(
                input_data, package, rule, query_params={"metrics": True}
            )
        except requests.RequestException as e:
            raise PolicyError(f"OPA at {self.url} failed a timed query: {type(e).__name__}") from e
        try:
            return float(answer["metrics"]["timer_rego_query_eval_ns"]) / 1e9
        except (KeyError, TypeError, ValueError) as e:
            raise PolicyError(f"OPA at {self.url} reported no evaluation time") from e

    def served_revision(self) -> str:
        """Return the bundle revision the server holds (``data.opsgate.bundle.revision``)."""
        revision = self.evaluate("opsgate.bundle", "revision", {})
        if not isinstance(revision, str) or not revision:
            raise PolicyError(f"OPA at {self.url} serves no opsgate bundle revision")
        return revision

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close_connection()
