"""The local OPA server: starts on the compiled bundle, answers, and always stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.compile import compile_blueprints
from engine.errors import PolicyError
from engine.opa import OpaServer
from engine.policy import PolicySession, RemoteOpa
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


def test_server_serves_and_stops(bundle: Path) -> None:
    with OpaServer(bundle) as server:
        assert server.process is not None
        pid = server.process.pid
        answer = requests.get(
            f"{server.url}/v1/data/opsgate/blueprints/frontend/spec/scaling/max_replicas", timeout=2
        )
        assert answer.json() == {"result": 5}
    assert not _alive(pid) or subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
    ).stdout.strip().startswith("Z")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{server.url}/health", timeout=1)


def test_server_stops_when_the_block_raises(bundle: Path) -> None:
    server = OpaServer(bundle)
    with pytest.raises(RuntimeError), server:
        url = server.url
        raise RuntimeError("boom")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=1)


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
        session = PolicySession(REPO / "blueprints", remote=RemoteOpa(url=opa.url))
        with pytest.raises(PolicyError, match="refusing to act"), session:
            pass
