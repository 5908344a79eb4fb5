"""The workspace: each command parses and compiles its blueprints once, opens only what it
needs, and leaves nothing behind in the system's temporary directory."""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import engine.blueprint
import engine.compile
from engine.errors import PolicyError
from engine.policy import PolicySession
from engine.workspace import Workspace
from tests.conftest import REPO, RunCli

BLUEPRINTS = REPO / "blueprints"
SPIKE = REPO / "blueprints" / "examples" / "traces" / "spike.csv"


class Calls:
    """Every blueprint file parsed (by path) and every compilation, while a command runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.parsed: Counter[Path] = Counter()
        self.compiled = 0
        load_document = engine.blueprint.load_document
        data_document = engine.compile.data_document

        def counted_load(path: Path, *args: Any, **kwargs: Any) -> Any:
            self.parsed[Path(path).resolve()] += 1
            return load_document(path, *args, **kwargs)

        def counted_compile(*args: Any, **kwargs: Any) -> Any:
            self.compiled += 1
            return data_document(*args, **kwargs)

        monkeypatch.setattr(engine.blueprint, "load_document", counted_load)
        monkeypatch.setattr(engine.compile, "data_document", counted_compile)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch)


def _state_dir(tmp_path: Path) -> str:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return str(state)


COMMANDS = {
    "run": lambda tmp: [
        "run", "--blueprints", str(BLUEPRINTS), "--state-dir", _state_dir(tmp), "--ticks", "2",
        "--pause", "0",
    ],
    "execute": lambda tmp: [
        "execute", "--blueprints", str(BLUEPRINTS), "--state-dir", _state_dir(tmp),
        "--service", "frontend", "--operation", '{"type": "scale", "to": 3}',
    ],
    "simulate": lambda tmp: [
        "simulate", "--blueprints", str(BLUEPRINTS), "--load", str(SPIKE), "--service",
        "frontend", "--json",
    ],
    "demo": lambda tmp: [
        "demo", "all", "--blueprints", str(BLUEPRINTS), "--state-dir", str(tmp / "demo"),
    ],
    "enforce": lambda tmp: [
        "enforce", "--blueprints", str(BLUEPRINTS), "--service", "frontend",
        "--operation", '{"type": "scale", "to": 3}',
    ],
}  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_command_parses_and_compiles_its_blueprints_once(
    command: str, calls: Calls, run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli(*COMMANDS[command](tmp_path))
    assert result.exit_code in (0, 3), result.stderr
    # every blueprint and governance file, once each (demo parses its keyed copy)
    assert len(calls.parsed) >= 3, calls.parsed
    assert set(calls.parsed.values()) == {1}, calls.parsed
    assert calls.compiled == 1


def test_a_command_on_state_alone_starts_no_opa(
    calls: Calls, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: PolicySession) -> PolicySession:
        raise AssertionError("OPA started for a command that needs none")

    monkeypatch.setattr(PolicySession, "start", refuse)
    result = run_cli("breaker", "list", "--state-dir", _state_dir(tmp_path), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert not calls.parsed and calls.compiled == 0


def test_a_fresh_workspace_shares_the_blueprints_and_opa(calls: Calls, tmp_path: Path) -> None:
    with Workspace(BLUEPRINTS) as workspace:
        first = workspace.fresh_at(tmp_path / "one", seed=7)
        with first:
            session = first.session
            assert first.state.path == tmp_path / "one" / "state.db"
        with workspace.fresh_at(tmp_path / "two") as second:
            assert second.session is session  # still up: the first closed only its own state
            assert second.session.gateway.served_revision() == session.revision
        assert calls.compiled == 1 and set(calls.parsed.values()) == {1}
    with pytest.raises(PolicyError, match="not started"):
        session.gateway  # noqa: B018 - the owner stopped OPA on its way out


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary directory, for this test only (this process and its children)."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    monkeypatch.setenv("TMPDIR", str(directory))
    return directory


def test_simulate_leaves_nothing_in_the_temporary_directory(
    private_tmp: Path, run_cli: RunCli
) -> None:
    before = sorted(os.listdir(private_tmp))
    result = run_cli("simulate", "--load", str(SPIKE), "--service", "frontend", "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(os.listdir(private_tmp)) == before == []
    # nothing kept, so no path to a file that is gone
    assert json.loads(result.stdout)["audit_logs"] == {"as is": None}


def test_simulate_keeps_its_audit_logs_where_asked(
    private_tmp: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    result = run_cli(
        "simulate",
        "--load",
        str(SPIKE),
        "--service",
        "frontend",
        "--compare-blueprints",
        str(BLUEPRINTS),
        "--audit-dir",
        str(kept),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    logs = json.loads(result.stdout)["audit_logs"]
    assert logs == {
        "as is": str(kept / "as-is" / "audit.jsonl"),
        "changed": str(kept / "changed" / "audit.jsonl"),
    }
    for path in logs.values():
        events = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
        assert any(e["event"] == "decision" for e in events)
    assert os.listdir(private_tmp) == []
