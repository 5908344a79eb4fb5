"""A Docker daemon and an OPA image for the Docker launcher's tests, made once per run."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.opa_docker import docker_available
from engine.toolchain import find_tool, tool_version
from tests import dockerd
from tests.conftest import REPO

_PT_INTERP = 3  # an ELF program header naming a dynamic loader


def is_static(binary: Path) -> bool:
    """True for a 64-bit ELF executable with no dynamic loader (it runs FROM scratch)."""
    with binary.open("rb") as elf:
        header = elf.read(64)
        if header[:5] != b"\x7fELF\x02":
            return False
        (offset,) = struct.unpack_from("<Q", header, 0x20)
        size, count = struct.unpack_from("<HH", header, 0x36)
        for index in range(count):
            elf.seek(offset + index * size)
            (kind,) = struct.unpack("<I", elf.read(4))
            if kind == _PT_INTERP:
                return False
    return True


def static_opa() -> Path:
    """The opa binary if it is static (``make install`` builds it so), else a static build.

    The build (``CGO_ENABLED=0``, the pinned module in tools/opa) goes to
    .cache/opa-static and is made again only when tools/opa changes.
    """
    found = find_tool("opa")
    if is_static(found):
        return found
    target = REPO / ".cache" / "opa-static" / "opa"
    sources = [REPO / "tools" / "opa" / name for name in ("go.mod", "go.sum")]
    if target.is_file() and all(s.stat().st_mtime <= target.stat().st_mtime for s in sources):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        ["go", "build", "-trimpath", "-o", str(target), "github.com/open-policy-agent/opa"],
        cwd=REPO / "tools" / "opa",
        env={**os.environ, "CGO_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"can't build a static opa for the test image: {completed.stderr[-500:]}")
    return target


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[str]:
    """The address of a Docker daemon: $DOCKER_HOST's (as .ci/run starts one), else our own.

    Our own is a dockerd on a private socket, started for this run and
    stopped by its PID at the end (and by the kernel if the tests die).
    """
    given = os.environ.get("DOCKER_HOST")
    if given:
        if not docker_available(given):
            pytest.skip(f"DOCKER_HOST={given} does not answer")
        yield given
        return
    reason = dockerd.why_not()
    if reason is not None:
        pytest.skip(reason)
    daemon = dockerd.LocalDockerd(Path(tempfile.mkdtemp(prefix="opsgate-dockerd-")))
    try:
        host = daemon.start()
    except dockerd.DockerdError as e:
        pytest.fail(f"can't start dockerd: {e}")
    try:
        yield host
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def opa_image(docker_daemon: str) -> str:
    """``opsgate-opa-test:<version>``: the static opa FROM scratch, built on the daemon offline."""
    import docker

    binary = static_opa()
    version = tool_version(binary)
    assert version is not None
    tag = f"opsgate-opa-test:{'.'.join(map(str, version))}"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = b'FROM scratch\nCOPY opa /opa\nENTRYPOINT ["/opa"]\n'
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(dockerfile)
        tar.addfile(entry, io.BytesIO(dockerfile))
        tar.add(binary, arcname="opa")
    context.seek(0)
    client = docker.DockerClient(base_url=docker_daemon, timeout=120)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, pull=False)
    finally:
        client.close()
    return tag
