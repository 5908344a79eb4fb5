"""The command line as a whole: version, help with examples, usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from engine import __version__
from engine.cli import cli
from tests.conftest import RunCli


def test_version(run_cli: RunCli) -> None:
    result = run_cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"opsgate, version {__version__}"


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(command: str, run_cli: RunCli) -> None:
    result = run_cli(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"opsgate {command}" in result.stdout


def test_root_help_lists_commands(run_cli: RunCli) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "compile"):
        assert command in result.stdout


def test_unknown_command_is_usage_error(run_cli: RunCli) -> None:
    result = run_cli("frobnicate")
    assert result.exit_code == 2


def test_console_script_runs_without_traceback() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "validate", "/definitely/not/here"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "does not exist" in completed.stderr


def test_without_opa_it_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    from engine import toolchain
    from engine.errors import ToolNotFound

    monkeypatch.setattr(toolchain, "repo_root", lambda: Path(str(tmp_path)))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("OPSGATE_OPA_BIN", raising=False)
    with pytest.raises(
        ToolNotFound, match=r"run 'make install' \(builds it from the pinned Go module"
    ):
        toolchain.find_tool("opa")
    monkeypatch.setenv("OPSGATE_OPA_BIN", str(tmp_path) + "/missing-opa")
    with pytest.raises(ToolNotFound, match="not a working opa binary"):
        toolchain.find_tool("opa")
