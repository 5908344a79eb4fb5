"""OPA in a container through the Docker SDK, when there is no opa binary but a daemon answers.

The end-to-end tests run a real daemon (``docker_daemon``: $DOCKER_HOST's, or
a dockerd of their own) and a real image (``opa_image``: the static opa FROM
scratch, built offline), and check the trust model of the binary launcher
holds: OPA answers on a Unix socket in a private directory, only to a peer
check on the container's own process, and only with the per-start token.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import policy
from engine.compile import compile_blueprints
from engine.errors import PolicyError, ToolNotFound
from engine.opa import NotOurOpa, OpaGateway, OpaServer, http_session, peer_credentials
from engine.opa_docker import IMAGE, LABEL, DockerOpaServer, docker_available
from engine.policy import PolicySession
from tests import dockerd
from tests.conftest import REPO, RunCli

OBSERVATION = REPO / "blueprints" / "examples" / "observations" / "frontend-busy.json"


def _no_opa(name: str, **_: object) -> Path:
    raise ToolNotFound("no opa >= 1.0.0 found: run 'make install'")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's blueprints compiled once for this module."""
    result = compile_blueprints(REPO / "blueprints", tmp_path_factory.mktemp("build"))
    assert result.bundle_path is not None
    return result.bundle_path


@pytest.fixture
def docker_client(docker_daemon: str) -> Iterator[Any]:
    """A docker SDK client of the tests' daemon, to look at containers as an operator would."""
    import docker

    client = docker.DockerClient(base_url=docker_daemon, timeout=30)
    yield client
    client.close()


def _ours(client: Any) -> list[Any]:
    """The containers the launcher started on this daemon (it labels every one)."""
    return list(client.containers.list(all=True, filters={"label": LABEL}))


def test_falls_back_to_docker_only_without_opa(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    assert isinstance(policy._local_server(bundle), OpaServer)  # opa is found here
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setattr(policy, "docker_available", lambda host: True)
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/elsewhere/docker.sock")
    server = policy._local_server(bundle, "registry.example/opa:1")
    assert isinstance(server, DockerOpaServer)
    assert (server.image, server.host) == (
        "registry.example/opa:1",
        "unix:///run/elsewhere/docker.sock",
    )


def test_without_opa_or_docker_it_says_how_to_get_opa(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    with pytest.raises(
        ToolNotFound,
        match=rf"run 'make install'.*or start a local Docker daemon at unix://{tmp_path}/no-daemon",
    ):
        policy._local_server(tmp_path / "bundle.tar.gz")


def test_the_default_image_is_the_opa_that_tools_opa_pins() -> None:
    go_mod = (REPO / "tools" / "opa" / "go.mod").read_text(encoding="utf-8")
    pinned = re.search(r"github\.com/open-policy-agent/opa v(\S+)", go_mod)
    assert pinned is not None
    assert f"openpolicyagent/opa:{pinned[1]}" == IMAGE


def test_only_a_local_daemon_is_used(bundle: Path) -> None:
    assert not docker_available("tcp://127.0.0.1:2375")
    with pytest.raises(PolicyError, match="needs a local daemon on a Unix socket, not tcp://"):
        DockerOpaServer(bundle, host="tcp://127.0.0.1:2375").start()


def test_the_daemon_named_is_the_only_one_asked(docker_daemon: str, tmp_path: Path) -> None:
    """A daemon answers (the tests'), but one that is not named is never used instead."""
    assert docker_available(docker_daemon)
    assert not docker_available(f"unix://{tmp_path}/docker.sock")
    with pytest.raises(PolicyError, match=f"no daemon answers at unix://{tmp_path}"):
        DockerOpaServer(tmp_path / "bundle.tar.gz", host=f"unix://{tmp_path}/docker.sock").start()


def test_opa_in_docker_serves_the_bundle_to_the_token_only(
    bundle: Path, docker_daemon: str, opa_image: str, docker_client: Any
) -> None:
    revision = compile_blueprints(REPO / "blueprints", bundle.parent).revision
    with DockerOpaServer(bundle, image=opa_image, host=docker_daemon) as server:
        assert server.url.startswith("unix://") and server.token
        socket_path = Path(server.url.removeprefix("unix://"))
        assert socket_path.parent.parent.stat().st_mode & 0o777 == 0o700
        assert socket_path.stat().st_mode & 0o077 == 0
        gateway = OpaGateway(server.url, token=server.token, peer_pid=server.pid)
        assert gateway.served_revision() == revision
        gateway.close()
        session, base = http_session(server.url, server.pid)
        with session:
            query = f"{base}/v1/data/opsgate/bundle/revision"
            assert session.post(query, json={"input": {}}, timeout=5).status_code == 401
            wrong = {"Authorization": "Bearer " + "x" * 43}
            assert (
                session.post(query, json={"input": {}}, headers=wrong, timeout=5).status_code == 401
            )
            bearer = {"Authorization": f"Bearer {server.token}"}
            answer = session.post(query, json={"input": {}}, headers=bearer, timeout=5)
            assert answer.json() == {"result": revision}
            for method, path in (
                ("PUT", "/v1/policies/evil"),
                ("PUT", "/v1/data/opsgate/x"),
                ("POST", "/v1/data/system/authz"),
                ("GET", "/v1/data"),
            ):
                refused = session.request(
                    method, f"{base}{path}", headers=bearer, data="{}", timeout=5
                )
                assert refused.status_code in (401, 403), (method, path)
        assert len(_ours(docker_client)) == 1
    assert _ours(docker_client) == []  # removed on the way out
    assert not socket_path.parent.parent.exists()


def test_the_container_has_no_network_and_runs_as_the_runner(
    bundle: Path, docker_daemon: str, opa_image: str, docker_client: Any
) -> None:
    with DockerOpaServer(bundle, image=opa_image, host=docker_daemon) as server:
        (container,) = _ours(docker_client)
        attributes = container.attrs
        host_config = attributes["HostConfig"]
        assert host_config["NetworkMode"] == "none"
        assert not host_config["PortBindings"]
        assert attributes["NetworkSettings"]["Ports"] == {}
        assert attributes["Config"]["User"] == f"{os.geteuid()}:{os.getegid()}"
        assert host_config["ReadonlyRootfs"] is True
        assert host_config["CapDrop"] == ["ALL"]
        assert {m["Destination"]: m["RW"] for m in attributes["Mounts"]} == {
            "/bundle": False,
            "/run/opsgate/authz": False,
            "/run/opsgate/socket": True,
        }
        assert attributes["Config"]["Labels"][LABEL] == str(os.getpid())
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(server.url.removeprefix("unix://"))
            pid, uid, _ = peer_credentials(probe)
        assert pid == attributes["State"]["Pid"] == server.pid
        assert uid == os.geteuid()


def test_an_impostor_on_the_containers_socket_is_refused(
    bundle: Path, docker_daemon: str, opa_image: str, docker_client: Any
) -> None:
    with DockerOpaServer(bundle, image=opa_image, host=docker_daemon) as server:
        gateway = OpaGateway(server.url, token=server.token, peer_pid=server.pid)
        assert gateway.served_revision()
        (container,) = _ours(docker_client)
        container.kill()
        socket_path = server.url.removeprefix("unix://")
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
        assert not server.alive()


def test_a_session_restarts_a_container_that_died(
    monkeypatch: pytest.MonkeyPatch, docker_daemon: str, opa_image: str, docker_client: Any
) -> None:
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setenv("DOCKER_HOST", docker_daemon)
    observation = json.loads(OBSERVATION.read_text(encoding="utf-8"))
    with PolicySession(REPO / "blueprints", image=opa_image) as session:
        first = session.decide(observation)
        (container,) = _ours(docker_client)
        container.kill()
        deadline = time.monotonic() + 20
        while session.ensure_running() is None:  # alive until the daemon has seen it die
            assert time.monotonic() < deadline
            time.sleep(0.1)
        (restarted,) = _ours(docker_client)
        assert restarted.id != container.id
        assert session.decide(observation) == first
    assert _ours(docker_client) == []


def test_decide_without_an_opa_binary_runs_the_image_given(
    monkeypatch: pytest.MonkeyPatch, run_cli: RunCli, docker_daemon: str, opa_image: str
) -> None:
    """`opsgate decide` end to end: the same document from OPA in Docker as from the binary."""
    from_binary = run_cli("decide", "--observation", str(OBSERVATION))
    assert from_binary.exit_code == 0
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setenv("DOCKER_HOST", docker_daemon)
    from_docker = run_cli("decide", "--observation", str(OBSERVATION), "--opa-image", opa_image)
    assert from_docker.exit_code == 0, from_docker.stderr
    assert json.loads(from_docker.stdout) == json.loads(from_binary.stdout)
    missing = run_cli(
        "decide", "--observation", str(OBSERVATION), "--opa-image", "opsgate-opa-test:missing"
    )
    assert missing.exit_code == 1
    (line,) = missing.stderr.strip().splitlines()
    assert f"can't start OPA with Docker (opsgate-opa-test:missing at {docker_daemon})" in line


def test_an_opa_that_exits_is_reported_with_its_output(
    tmp_path: Path, docker_daemon: str, opa_image: str, docker_client: Any
) -> None:
    broken = tmp_path / "bundle.tar.gz"
    broken.write_text("not a bundle", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"OPA in Docker exited: .*bundle"):
        DockerOpaServer(broken, image=opa_image, host=docker_daemon).start()
    assert _ours(docker_client) == []


@pytest.mark.skipif(dockerd.why_not() is not None, reason=str(dockerd.why_not()))
def test_a_test_daemon_leaves_the_host_as_it_was() -> None:
    """`python3 -m tests.dockerd up|down`, as .ci/run: no bridge, no forwarding, no rule;
    stopped by its PID, its directory gone."""
    links = sorted(os.listdir("/sys/class/net"))
    forwarding = Path("/proc/sys/net/ipv4/ip_forward").read_text(encoding="ascii")
    # short: containerd's socket paths must fit in 104 characters
    parent = Path(tempfile.mkdtemp(prefix="opsgate-dockerd-"))
    directory = parent / "d"

    def daemon(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tests.dockerd", action, str(directory)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    try:
        up = daemon("up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.strip() == f"unix://{directory}/docker.sock"
        assert docker_available(up.stdout.strip())
        assert directory.stat().st_mode & 0o777 == 0o700
        pid = int((directory / "dockerd.pid").read_text(encoding="ascii"))
        assert sorted(os.listdir("/sys/class/net")) == links
        assert Path("/proc/sys/net/ipv4/ip_forward").read_text(encoding="ascii") == forwarding
    finally:
        assert daemon("down").returncode == 0
        parent.rmdir()
    assert not dockerd._running(pid)  # gone, or a zombie until init reaps it
