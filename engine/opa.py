"""Everything that talks to OPA: the ``opa`` binary, a local server, queries.

Only this module runs ``opa`` or imports ``opa_client``. It fails closed: any
answer it can't vouch for (OPA down, slow, an HTTP error, a body that isn't
JSON, an undefined result) raises ``PolicyError``, and callers execute
nothing on a ``PolicyError``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient

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


def wait_for_bundle(
    url: str,
    seconds: float,
    *,
    interval: float = 0.05,
    still_starting: Callable[[], None] | None = None,
) -> bool:
    """Poll ``url``/health?bundles=true until OPA serves its bundle; False after ``seconds``.

    ``still_starting`` is called before each poll and may raise to give up early
    (for example when the OPA process has already exited).
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if still_starting is not None:
            still_starting()
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/health?bundles=true", timeout=1).status_code == 200:
                return True
        time.sleep(interval)
    return False


class ManagedServer:
    """A local OPA that starts on entering a with-block and stops on every way out."""

    def start(self) -> str:
        """Start OPA and return its URL."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop OPA; safe to call twice."""
        raise NotImplementedError

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class OpaServer(ManagedServer):
    """A local ``opa run --server`` with one bundle, on a free loopback port.

    Use it as a context manager: the server is stopped on every way out of
    the block (normal exit, error, Ctrl-C), and at interpreter exit for good
    measure, so no OPA process outlives the runner.
    """

    def __init__(
        self,
        bundle: Path,
        *,
        opa_binary: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_SECONDS,
    ) -> None:
        self.bundle = bundle
        self.opa_binary = opa_binary
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._log_file: Any = None

    def start(self) -> str:
        """Start OPA and wait until it serves the bundle; return its URL."""
        binary = self.opa_binary or find_tool("opa")
        last_error = "no attempt made"
        for _ in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            self._log_file = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            command = [
                str(binary),
                "run",
                "--server",
                "--addr",
                f"127.0.0.1:{port}",
                "--optimize-store-for-read-speed",
                "--disable-telemetry",
                "--log-level",
                "error",
                "--bundle",
                str(self.bundle),
            ]
            log.debug("starting %s", command)
            try:
                self.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=self._log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches us; we stop OPA ourselves
                )
            except OSError as e:
                raise PolicyError(f"can't start {binary}: {e.strerror or e}") from e
            _RUNNING.add(self)
            self.url = f"http://127.0.0.1:{port}"
            try:
                self._wait_until_ready()
            except PolicyError as e:
                last_error = str(e)
                self.stop()
                continue
            log.info("OPA serving %s at %s", self.bundle, self.url)
            return self.url
        raise PolicyError(f"OPA did not start: {last_error}")

    def _wait_until_ready(self) -> None:
        def exited() -> None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PolicyError(
                    f"OPA exited with code {self.process.returncode}: {self._output()}"
                )

        if not wait_for_bundle(self.url, self.startup_timeout, still_starting=exited):
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
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


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
    ) -> None:
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
