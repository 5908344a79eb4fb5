"""OPA through the Docker SDK, when there is no opa binary but a Docker daemon answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from engine import policy
from engine.compile import compile_blueprints
from engine.errors import ToolNotFound
from engine.opa import OpaServer
from engine.opa_docker import DockerOpaServer, docker_available
from tests.conftest import REPO


def _no_opa(name: str, **_: object) -> Path:
    raise ToolNotFound("no opa >= 1.0.0 found: run 'make install'")


def test_falls_back_to_docker_only_without_opa(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    assert isinstance(policy._local_server(bundle), OpaServer)  # opa is found here
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setattr(policy, "docker_available", lambda: True)
    assert isinstance(policy._local_server(bundle), DockerOpaServer)


def test_without_opa_or_docker_it_says_how_to_get_opa(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(policy, "find_tool", _no_opa)
    monkeypatch.setattr(policy, "docker_available", lambda: False)
    with pytest.raises(ToolNotFound, match=r"run 'make install'.*or start a Docker daemon"):
        policy._local_server(tmp_path / "bundle.tar.gz")


@pytest.mark.skipif(not docker_available(), reason="no Docker daemon answers on this machine")
def test_opa_in_docker_serves_the_bundle(
    tmp_path: Path,
) -> None:  # pragma: no cover - needs a daemon
    result = compile_blueprints(REPO / "blueprints", tmp_path)
    assert result.bundle_path is not None
    with DockerOpaServer(result.bundle_path) as server:
        revision = f"{server.url}/v1/data/opsgate/bundle/revision"
        assert requests.post(revision, json={}, timeout=5).status_code == 401  # token required
        bearer = {"Authorization": f"Bearer {server.token}"}
        answer = requests.post(revision, json={}, headers=bearer, timeout=5).json()
    assert answer == {"result": result.revision}
