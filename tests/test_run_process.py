"""opsgate run as a process: answered from another shell, stopped by Ctrl-C, no orphan OPA."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

TRACE = REPO / "blueprints" / "examples" / "traces" / "demo-ramp.csv"


def _opsgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _wait_for(predicate: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_approve_while_running_then_ctrl_c(
    tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    state = str(tmp_path / "state")
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "--blueprints",
            str(signed_blueprints),
            "--state-dir",
            state,
            "--load",
            str(TRACE),
            "--ticks",
            "400",
            "--interval",
            "30",
            "--pause",
            "0.2",
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def backend_request() -> str | None:
            listed = _opsgate("approvals", "list", "--state-dir", state, "--json")
            if listed.returncode != 0:
                return None
            for request in json.loads(listed.stdout):
                if request["service"] == "backend" and request["operation"]["type"] == "scale":
                    return str(request["id"])
            return None

        _wait_for(lambda: backend_request() is not None)
        opa = _children(runner.pid)
        assert opa, "the runner starts its own OPA"
        answer = _opsgate(
            "approvals",
            "approve",
            backend_request() or "",
            "--key",
            str(sre_lead_key),
            "--reason",
            "from another shell",
            "--state-dir",
            state,
        )
        assert answer.returncode == 0, answer.stderr

        def executed() -> bool:
            log = Path(state) / "audit.jsonl"
            return any(
                '"event":"execution_succeeded"' in line and '"actor":"sre-lead"' in line
                for line in log.read_text().splitlines()
            )

        _wait_for(executed)
        runner.send_signal(signal.SIGINT)
        assert runner.wait(timeout=30) == 130
        for pid in opa:
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in (Path(f"/proc/{pid}/stat").read_text().split()[2])
            )
        verified = _opsgate("audit", "verify", "--state-dir", state)
        assert verified.returncode == 0, verified.stderr
    finally:
        if runner.poll() is None:
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait()
        if runner.stderr is not None:
            runner.stderr.close()


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_runner_and_its_opa(tmp_path: Path, signum: int) -> None:
    """Round one: `kill -TERM` of the runner, or `timeout`, left OPA running as an orphan."""
    state = tmp_path / "state"
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine",
            "run",
            "--state-dir",
            str(state),
            "--ticks",
            "400",
            "--pause",
            "0.2",
        ],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: (state / "cluster.json").exists() and bool(_children(runner.pid)))
        opa = _children(runner.pid)
        runner.send_signal(signum)
        assert runner.wait(timeout=30) == 128 + signum
        for pid in opa:
            _wait_for(lambda pid=pid: _gone(pid), seconds=10)  # type: ignore[misc]
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
