"""A Docker daemon of the tests' own: private socket, data and exec roots; stopped by its PID.

The Docker launcher's tests need a daemon, and a developer's or CI's own
daemon is not ours to use. This starts ``dockerd`` (Debian's docker.io) in a
private 0700 directory: its socket, ``--data-root``, ``--exec-root``,
``--pidfile`` and log all live there. It creates no bridge and touches no
iptables rule or sysctl (the containers it runs need no network: the launcher
gives OPA none), so nothing on the host changes. It needs root.

    python3 -m tests.dockerd up DIR     # start one in DIR; print its DOCKER_HOST
    python3 -m tests.dockerd down DIR   # stop the one in DIR by its PID; remove DIR

Standard library only: ``.ci/run`` runs it before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# No bridge, no NAT, no forwarding, no iptables: host networking stays as it was.
NETWORK_FLAGS = [
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--userland-proxy=false",
]


class DockerdError(Exception):
    """The daemon could not be started or stopped."""


def why_not() -> str | None:
    """Why no daemon can be started here (None: it can)."""
    if os.geteuid() != 0:
        return "starting dockerd needs root (or set DOCKER_HOST to a daemon of your own)"
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (apt-get install docker.io, as .ci/run does)"
    return None


def _terminate_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook: the kernel sends the daemon SIGTERM when the tests' process dies."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl
    parent = os.getpid()

    def hook() -> None:
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return hook


def _answers(path: Path) -> bool:
    """True when the daemon on the socket at ``path`` answers its ping."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(path))
            probe.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := probe.recv(4096):
                answer += chunk
        except OSError:
            return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n")[0]


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class LocalDockerd:
    """One dockerd whose every file is under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()
        self.socket = self.directory / "docker.sock"
        self.pidfile = self.directory / "dockerd.pid"
        self.log = self.directory / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """The daemon's address, for DOCKER_HOST."""
        return f"unix://{self.socket}"

    def start(self, *, detach: bool = False) -> str:
        """Start the daemon and wait until it answers; return its DOCKER_HOST.

        Detached, it outlives this process (``down`` stops it); otherwise the
        kernel stops it if this process dies before ``stop``.
        """
        longest = self.directory / "exec" / "containerd" / "containerd-debug.sock"
        if len(str(longest)) > 104:  # containerd's limit for its sockets' paths
            raise DockerdError(f"{self.directory}: too long a path for containerd's sockets")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        command = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.directory / "data"),
            "--exec-root",
            str(self.directory / "exec"),
            "--pidfile",
            str(self.pidfile),
            *NETWORK_FLAGS,
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for the tests reaches it through stop()
                preexec_fn=None if detach else _terminate_with_parent(),
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self._failed(f"dockerd exited with code {self.process.returncode}")
            if _answers(self.socket):
                return self.host
            time.sleep(0.1)
        raise self._failed(f"dockerd did not answer in {START_TIMEOUT_SECONDS:.0f}s")

    def _failed(self, what: str) -> DockerdError:
        """Stop what started and say why, with the daemon's last words (read before they go)."""
        error = DockerdError(f"{what}: {self._last_words()}")
        self.stop()
        return error

    def _last_words(self) -> str:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(no output)"

    def _pid(self) -> int | None:
        """The daemon's PID: ours if we started it, else its pidfile's if it is that dockerd."""
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        try:
            pid = int(self.pidfile.read_text(encoding="ascii").strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        # a PID can be reused: only the dockerd that wrote this pidfile is ours to stop
        return pid if str(self.pidfile).encode() in command else None

    def stop(self) -> None:
        """Stop the daemon by its PID (TERM; KILL it and its helpers if that fails); remove DIR."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait(pid, STOP_TIMEOUT_SECONDS):
                for straggler in [pid, *self._helpers()]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(straggler, signal.SIGKILL)
                self._wait(pid, 10)
        if self.process is not None:
            self.process.wait(timeout=10)
        self._unmount()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _wait(self, pid: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None:
                if self.process.poll() is not None:
                    return True
            elif not _running(pid):
                return True
            time.sleep(0.1)
        return False

    def _helpers(self) -> list[int]:
        """containerd and its shims, which run in sessions of their own, found by our directory."""
        mark = str(self.directory).encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if mark in (entry / "cmdline").read_bytes():
                        found.append(int(entry.name))
        return found

    def _unmount(self) -> None:
        """Unmount what a daemon killed outright left mounted under the directory."""
        prefix = f"{self.directory}/"
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
        for point in sorted(points, reverse=True):
            subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)


def main(argv: list[str]) -> int:
    """``up DIR`` prints DOCKER_HOST for a new daemon in DIR; ``down DIR`` stops it."""
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        print("usage: python3 -m tests.dockerd up|down DIR", file=sys.stderr)
        return 2
    daemon = LocalDockerd(Path(argv[1]))
    if argv[0] == "down":
        daemon.stop()
        return 0
    reason = why_not()
    if reason is not None:
        print(f"can't start dockerd: {reason}", file=sys.stderr)
        return 1
    try:
        print(daemon.start(detach=True))
    except DockerdError as e:
        print(f"can't start dockerd: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
