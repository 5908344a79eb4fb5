"""The local OPA server: starts on the compiled bundle, answers, and always stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.compile import compile_blueprints
from engine.errors import PolicyError
from engine.opa import (
    TOKEN_FLAGS,
    NotOurOpa,
    OpaGateway,
    OpaServer,
    http_session,
    token_authorization,
    wait_for_bundle,
)
from engine.policy import PolicySession, RemoteOpa
from engine.toolchain import find_tool
from tests.conftest import REPO
from tests.opa.fake_opa import fake_opa


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's blueprints compiled once for this module."""
    result = compile_blueprints(REPO / "blueprints", tmp_path_factory.mktemp("build"))
    assert result.bundle_path is not None
    return result.bundle_path


@pytest.fixture(scope="module")
def session() -> Iterator[PolicySession]:
    """One policy session (local OPA) shared by the tests of this module."""
    with PolicySession(REPO / "blueprints") as running:
        yield running


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get(server: OpaServer, path: str) -> requests.Response:
    session, base = http_session(server.url, server.pid)
    with session:
        return session.get(f"{base}{path}", timeout=2)


def test_server_serves_and_stops(bundle: Path) -> None:
    with OpaServer(bundle) as server:
        assert server.url.startswith("unix://")
        pid = server.pid
        assert pid is not None
        answer = _get(server, "/v1/data/opsgate/blueprints/frontend/spec/scaling/max_replicas")
        assert answer.json() == {"result": 5}
        socket_path = Path(server.url.removeprefix("unix://"))
        # reachable by us alone: a private directory, a socket only its owner may use
        assert socket_path.parent.stat().st_mode & 0o777 == 0o700
        assert socket_path.stat().st_mode & 0o077 == 0
    assert not _alive(pid) or subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip().startswith("Z")
    assert not socket_path.parent.exists()


def _socket_inodes(pid: int) -> set[str]:
    """The socket inodes ``pid`` holds open (an fd closed while we look is skipped)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except FileNotFoundError:
            continue
        if link.startswith("socket:["):
            inodes.add(link.split("[")[1].rstrip("]"))
    return inodes


def test_opa_listens_on_no_tcp_port(bundle: Path) -> None:
    with OpaServer(bundle) as server:
        inodes = _socket_inodes(server.pid)
        assert inodes  # it holds its Unix socket: the look itself works
        listening = [
            line.split()
            for table in ("/proc/net/tcp", "/proc/net/tcp6")
            for line in Path(table).read_text().splitlines()[1:]
        ]
        assert not [row for row in listening if row[9] in inodes and row[3] == "0A"]


def test_an_impostor_on_the_socket_is_refused(bundle: Path) -> None:
    """Round one: a fake server on the managed OPA's port was obeyed. Now its socket is
    checked on every connection: the peer must be the OPA process this runner started."""
    with OpaServer(bundle) as server:
        gateway = OpaGateway(server.url, peer_pid=server.pid)
        assert gateway.served_revision()
        socket_path = server.url.removeprefix("unix://")
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        Path(socket_path).unlink(missing_ok=True)
        impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        impostor.bind(socket_path)
        impostor.listen(1)
        try:
            with pytest.raises(NotOurOpa, match="is not the OPA this runner started"):
                gateway.served_revision()
        finally:
            impostor.close()
            gateway.close()


def test_server_stops_when_the_block_raises(bundle: Path) -> None:
    server = OpaServer(bundle)
    with pytest.raises(RuntimeError), server:
        pid = server.pid
        raise RuntimeError("boom")
    assert pid is not None and not _alive(pid)


def test_bad_bundle_is_a_policy_error(tmp_path: Path) -> None:
    broken = tmp_path / "bundle.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(PolicyError, match="OPA exited"):
        OpaServer(broken, startup_timeout=10).start()


def test_no_orphan_after_ctrl_c(bundle: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from engine.opa import OpaServer
        with OpaServer(Path({str(bundle)!r})) as server:
            Path({str(marker)!r}).write_text(str(server.process.pid))
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        subprocess.run(["sleep", "0.05"], check=True)
    opa_pid = int(marker.read_text())
    assert _alive(opa_pid)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=15)
    for _ in range(100):
        if not _alive(opa_pid):
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert not _alive(opa_pid)


def test_session_decides(session: PolicySession) -> None:
    document = session.decide(
        {
            "service": "frontend",
            "now": "2026-02-10T12:00:00Z",
            "replicas": {"desired": 2, "ready": 2},
            "metrics": {"cpu_percent": 85},
        }
    )
    assert document["bundle_revision"] == session.revision
    assert [d["operation"] for d in document["decisions"]] == [
        {"type": "scale", "from": 2, "to": 3}
    ]


def test_session_decide_all_keeps_order(session: PolicySession) -> None:
    documents = session.decide_all(
        [{"service": "backend"}, {"service": "frontend"}, {"service": "x"}]
    )
    assert [d["service"] for d in documents] == ["backend", "frontend", "x"]


def test_session_enforce(session: PolicySession) -> None:
    verdict = session.enforce(
        {"service": "frontend", "operation": {"type": "delete_pod", "name": "p"}}
    )
    assert verdict["tier"] == "forbid"
    assert verdict["suggestion"]["operation"] == {"type": "restart_pod", "pod": "p"}


def test_remote_with_other_revision_is_refused() -> None:
    with fake_opa() as opa:
        opa.revision = "someone-elses-bundle"
        remote = RemoteOpa(url=opa.url, token="t", insecure=True)
        session = PolicySession(REPO / "blueprints", remote=remote)
        with pytest.raises(PolicyError, match="refusing to act"), session:
            pass


def test_runner_killed_outright_takes_opa_with_it(bundle: Path, tmp_path: Path) -> None:
    """SIGKILL leaves no time to clean up: the kernel kills OPA (parent-death signal)."""
    marker = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from engine.opa import OpaServer
        with OpaServer(Path({str(bundle)!r})) as server:
            Path({str(marker)!r}).write_text(str(server.pid))
            time.sleep(60)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        subprocess.run(["sleep", "0.05"], check=True)
    opa_pid = int(marker.read_text())
    assert _alive(opa_pid)
    child.kill()
    child.wait(timeout=15)
    for _ in range(100):
        if not _alive(opa_pid):
            break
        subprocess.run(["sleep", "0.05"], check=True)
    assert not _alive(opa_pid)


def test_remote_opa_needs_tls_and_a_token() -> None:
    for remote, message in (
        (RemoteOpa(url="http://opa.internal:8181", token="t"), "not reached over TLS"),
        (RemoteOpa(url="https://opa.internal:8181"), "needs a bearer token"),
        (RemoteOpa(url="http://127.0.0.1:8181", insecure=True), "needs a bearer token"),
    ):
        with (
            pytest.raises(PolicyError, match=message),
            PolicySession(REPO / "blueprints", remote=remote),
        ):
            pass


def test_token_authorization_lets_only_opsgate_queries_through(
    bundle: Path, tmp_path: Path
) -> None:
    """For OPA in a container, OPA itself also demands a per-start token, and allows nothing
    but queries of opsgate's rules (here on a loopback port: the token alone must hold)."""
    token = token_authorization(tmp_path / "authz")
    assert token not in (tmp_path / "authz" / "authz.rego").read_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            str(find_tool("opa")),
            "run",
            "--server",
            "--addr",
            f"127.0.0.1:{port}",
            *TOKEN_FLAGS,
            "--disable-telemetry",
            "--bundle",
            str(bundle),
            str(tmp_path / "authz"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_for_bundle(url, 20, token=token)
        revision = f"{url}/v1/data/opsgate/bundle/revision"
        bearer = {"Authorization": f"Bearer {token}"}
        assert requests.post(revision, json={}, timeout=5).status_code == 401
        wrong = {"Authorization": "Bearer " + "x" * 43}
        assert requests.post(revision, json={}, headers=wrong, timeout=5).status_code == 401
        assert requests.post(revision, json={}, headers=bearer, timeout=5).status_code == 200
        for method, path in (
            ("PUT", "/v1/policies/evil"),
            ("PUT", "/v1/data/opsgate/x"),
            ("POST", "/v1/data/system/authz"),
            ("GET", "/v1/data"),
            ("DELETE", "/v1/data/opsgate"),
        ):
            answer = requests.request(method, f"{url}{path}", headers=bearer, data="{}", timeout=5)
            assert answer.status_code in (401, 403), (method, path)
        gateway = OpaGateway(url, token=token)
        assert gateway.served_revision()
        gateway.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
