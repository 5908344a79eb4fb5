"""Shared fixtures: paths to the repo's blueprints and a CLI runner."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine import signing
from engine.blueprint import keyed_blueprints
from engine.cli import cli

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def repo_blueprints() -> Path:
    """The example blueprint directory shipped in the repo."""
    return REPO / "blueprints"


@pytest.fixture
def minimal_blueprint_text() -> str:
    """Text of a small valid blueprint that tests mutate."""
    return (FIXTURES / "good" / "minimal.yaml").read_text(encoding="utf-8")


@pytest.fixture
def blueprint_copy(tmp_path: Path, repo_blueprints: Path) -> Path:
    """A private copy of the repo's blueprints that a test may change."""
    target = tmp_path / "blueprints"
    shutil.copytree(repo_blueprints, target, ignore=shutil.ignore_patterns("schema"))
    return target


RunCli = Callable[..., Result]


@pytest.fixture
def run_cli() -> RunCli:
    """Invoke ``opsgate`` in-process; fail the test on any uncaught exception."""

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), prog_name="opsgate", env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"opsgate {' '.join(args)} raised") from result.exception
        assert "Traceback" not in result.output
        return result

    return invoke


# Approvers' keys for the tests: derived from public phrases, like the demonstrations'.
SRE_LEAD = signing.Signer("sre-lead", signing.demo_key("sre-lead"))
ORDERS_ONCALL = signing.Signer("orders-oncall", signing.demo_key("orders-oncall"))
MALLORY = signing.Signer("mallory", signing.demo_key("mallory"))


def keyed_copy(target: Path, *signers: signing.Signer) -> Path:
    """A copy of the repo's blueprints whose approvers ``signers`` have their public keys."""
    return keyed_blueprints(
        REPO / "blueprints",
        target,
        {s.name: signing.public_key_line(s.key.public_key()) for s in signers},
    )


@pytest.fixture(scope="session")
def signed_blueprints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's blueprints with sre-lead keyed (orders-oncall stays a plain name)."""
    return keyed_copy(tmp_path_factory.mktemp("keyed") / "blueprints", SRE_LEAD)


@pytest.fixture(scope="session")
def sre_lead_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sre-lead's private key in a 0600 file, for --key."""
    path = tmp_path_factory.mktemp("keys") / "sre-lead"
    signing.write_private_key(path, SRE_LEAD.key)
    return path


def file_request(
    run_cli: RunCli,
    blueprints: Path,
    state: Path | str,
    *requester: str,
    service: str = "frontend",
    operation: str = '{"type": "rollback"}',
) -> str:
    """Propose an approve-tier operation with `opsgate execute` and return the request's id."""
    filed = run_cli(
        "execute",
        "--blueprints",
        str(blueprints),
        "--state-dir",
        str(state),
        "--service",
        service,
        "--operation",
        operation,
        *(requester or ("--as", "alice")),
    )
    assert filed.exit_code == 3, filed.stdout + filed.stderr
    return str(json.loads(filed.stdout)["approval_id"])
