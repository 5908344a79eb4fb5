"""Approvers whose key lives in ssh-agent sign through it: the same JWS, verified the same way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import signing
from tests.conftest import MALLORY, SRE_LEAD, RunCli, file_request

pytestmark = pytest.mark.skipif(
    shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None,
    reason="ssh-agent and ssh-add (openssh-client) are not installed",
)

APPROVERS = [{"name": "sre-lead", "public_key": signing.public_key_line(SRE_LEAD.key.public_key())}]
NOW = "2026-02-10T12:00:00Z"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A private ssh-agent holding sre-lead's key; its socket path."""
    socket_path = str(tmp_path / "agent.sock")
    process = subprocess.Popen(["ssh-agent", "-D", "-a", socket_path], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if Path(socket_path).exists():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        key = tmp_path / "sre-lead"
        signing.write_private_key(key, SRE_LEAD.key)
        subprocess.run(
            ["ssh-add", str(key)],
            env={**os.environ, "SSH_AUTH_SOCK": socket_path},
            check=True,
            capture_output=True,
        )
        yield socket_path
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_agent_signs_a_statement_that_verifies(agent: str) -> None:
    signer = signing.agent_signer_for(APPROVERS, agent)
    assert signer.name == "sre-lead"
    issued = signing.epoch(NOW)
    token = signer.statement({"purpose": "approve", "iat": issued, "exp": issued + 60})
    claims = signing.verify_statement(token, APPROVERS, purpose="approve", now=NOW)
    assert claims["approver"] == "sre-lead"


def test_an_agent_without_an_approvers_key_signs_for_nobody(agent: str) -> None:
    others = [{"name": "mallory", "public_key": signing.public_key_line(MALLORY.key.public_key())}]
    with pytest.raises(signing.SigningError, match="holds no ssh-ed25519 key of an approver"):
        signing.agent_signer_for(others, agent)


def test_approve_with_ssh_agent_from_the_command_line(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, agent: str
) -> None:
    state = str(tmp_path / "state")
    request_id = file_request(run_cli, signed_blueprints, state)
    answered = run_cli(
        "approvals",
        "approve",
        request_id,
        "--ssh-agent",
        "--reason",
        "roll back",
        "--state-dir",
        state,
        env={"SSH_AUTH_SOCK": agent},
    )
    assert answered.exit_code == 0, answered.stderr
    assert "approved by sre-lead (signed)" in answered.stderr
    done = run_cli(
        "execute",
        "--blueprints",
        str(signed_blueprints),
        "--state-dir",
        state,
        "--service",
        "frontend",
        "--operation",
        '{"type": "rollback"}',
        "--as",
        "alice",
        "--approval",
        request_id,
    )
    assert json.loads(done.stdout)["outcome"] != "awaiting_approval", done.stdout
