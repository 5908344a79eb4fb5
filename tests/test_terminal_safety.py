"""The attacks of the security review, performed through the CLI.

Secrets given in an operation must not reach the state directory, stdout or
stderr; control characters from operations, traces, answers and errors must
not reach a terminal raw; names given with --by are checked; rich must not
turn ``:100:`` into an emoji.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import Result

from engine.audit import AuditLog
from engine.cli import run as run_command
from engine.cli.terminal import console, escape, line, printable
from engine.execute import Result as ExecutionResult
from engine.runner import TickReport
from engine.state import Approval, StateStore
from tests.conftest import RunCli

SECRET = "hunter2"
MODIFY_SECRET = json.dumps({"type": "modify_secret", "name": "db", "value": SECRET})
DSN = "postgres://admin:hunter2@db/x"
UPDATE_DSN = json.dumps(
    {"type": "update_configmap", "name": "frontend-config", "changes": {"dsn": DSN}}
)
ATTACK = "\r\x1b[2Kallow \x1b[8m"
# C0 (but newline and tab, which our own layout uses), DEL, C1 and the bidi overrides
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _clean(result: Result) -> None:
    """Nothing raw on either channel, and no secret."""
    for channel in (result.stdout, result.stderr):
        assert not RAW.search(channel), repr(channel)
        assert SECRET not in channel, channel


def _state_files(state_dir: Path) -> list[Path]:
    # cluster.json is the simulated cluster itself, the stand-in for the API server:
    # it holds the configmap as applied, as a real cluster would
    return [p for p in state_dir.rglob("*") if p.is_file() and p.name != "cluster.json"]


@pytest.mark.parametrize(("operation", "code"), [(MODIFY_SECRET, 4), (UPDATE_DSN, 0)])
def test_enforce_never_shows_the_secret(run_cli: RunCli, operation: str, code: int) -> None:
    result = run_cli("enforce", "--service", "frontend", "--operation", operation)
    assert result.exit_code == code, result.stderr
    _clean(result)
    assert json.loads(result.stdout)["operation"]["type"] == json.loads(operation)["type"]


def test_execute_never_stores_or_shows_the_secret(run_cli: RunCli, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    base = ["execute", "--state-dir", str(state_dir), "--service", "frontend", "--operation"]
    blocked = run_cli(*base, MODIFY_SECRET)
    assert blocked.exit_code == 4, blocked.stderr
    _clean(blocked)
    executed = run_cli(*base, UPDATE_DSN)
    assert executed.exit_code == 0, executed.stderr
    _clean(executed)
    assert json.loads(executed.stdout)["operation"]["changes"]["dsn"] == "postgres://admin:***@db/x"
    # the change really was made: the cluster (not opsgate's records) holds the value
    assert DSN in (state_dir / "cluster.json").read_text()
    files = _state_files(state_dir)
    assert {p.name for p in files} >= {"state.db", "audit.jsonl"}
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path.name
    for args in (("audit", "show"), ("audit", "show", "--json")):
        shown = run_cli(*args, "--state-dir", str(state_dir))
        assert shown.exit_code == 0
        _clean(shown)
    events = [e["event"] for e in AuditLog(state_dir / "audit.jsonl").events()]
    assert events.count("blocked") == 1
    assert "execution_succeeded" in events


def test_decide_masks_and_escapes_what_an_observation_carries(
    run_cli: RunCli, tmp_path: Path, repo_blueprints: Path
) -> None:
    observation = json.loads(
        (repo_blueprints / "examples" / "observations" / "frontend-busy.json").read_text()
    )
    observation["pods"][1]["name"] = f"frontend-{ATTACK}{DSN}"
    source = tmp_path / "observation.json"
    source.write_text(json.dumps(observation))
    result = run_cli("decide", "--observation", str(source))
    assert result.exit_code == 0, result.stderr
    _clean(result)
    assert "restart pod frontend-\\r\\x1b[2Kallow" in result.stderr


def _injected_operation() -> str:
    # a forbidden type carrying the attack in a key and in a value
    return json.dumps({"type": "delete_pod", "name": ATTACK, ATTACK: f"{ATTACK}\x00\x07\b\x9b‮"})


def test_enforce_and_audit_show_escape_control_characters(run_cli: RunCli, tmp_path: Path) -> None:
    enforced = run_cli("enforce", "--service", "frontend", "--operation", _injected_operation())
    assert enforced.exit_code == 4
    _clean(enforced)
    assert json.loads(enforced.stdout)["operation"]["name"] == ATTACK  # JSON escapes, same value
    state_dir = str(tmp_path / "state")
    executed = run_cli(
        "execute", "--state-dir", state_dir, "--service", "frontend", "--operation",
        _injected_operation(),
    )  # fmt: skip
    assert executed.exit_code == 4
    _clean(executed)
    shown = run_cli("audit", "show", "--state-dir", state_dir)
    _clean(shown)
    assert "blocked" in shown.stdout
    assert "\\x1b[2Kallow" in shown.stdout
    _clean(run_cli("audit", "show", "--state-dir", state_dir, "--json"))


def test_approvals_and_breakers_are_shown_escaped(run_cli: RunCli, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    store = StateStore(state_dir / "state.db")
    store.add_approval(
        Approval(
            id="a1b2c3d4e5",
            service="backend",
            decision_id="d1",
            operation={"type": "update_configmap", "name": ATTACK, "changes": {"dsn": DSN}},
            reasons=[f"because {ATTACK}"],
            rules=["opsgate.govern.catalog.allowed"],
            blueprint_refs=["governance.agent_authority.allowed"],
            blueprint_name="backend",
            blueprint_version="1.2.0",
            bundle_revision="rev",
            approvers=["orders-oncall"],
            requested_at="2026-02-10T12:00:00Z",
            expires_at="2026-02-10T12:30:00Z",
            status="rejected",
            answered_by="orders-oncall",
            answered_at="2026-02-10T12:01:00Z",
            justification=f"no {ATTACK}",
        )
    )
    store.open_breaker("backend", "t", f"rollback failed: {ATTACK}")
    store.close()
    for args in (
        ("approvals", "list", "--all"),
        ("approvals", "list", "--all", "--json"),
        ("approvals", "show", "a1b2c3d4e5"),
        ("approvals", "show", "a1b2c3d4e5", "--json"),
        ("approvals", "show", f"nope{ATTACK}"),
        ("breaker", "list"),
        ("breaker", "list", "--json"),
    ):
        result = run_cli(*args, "--state-dir", str(state_dir))
        _clean(result)


@pytest.mark.parametrize(
    "args",
    [
        ("approvals", "approve", "a1b2c3d4e5", "--by", "\x1b[2Ksre", "--reason", "x"),
        ("approvals", "reject", "a1b2c3d4e5", "--by", "\x1b[2Ksre"),
        ("approvals", "reject", "a1b2c3d4e5", "--by", "sre lead"),
        ("approvals", "reject", "a1b2c3d4e5", "--by", "x" * 65),
    ],
)
def test_names_given_with_by_are_checked(run_cli: RunCli, tmp_path: Path, args: tuple[str]) -> None:
    state_dir = tmp_path / "state"
    StateStore(state_dir / "state.db").close()
    result = run_cli(*args, "--state-dir", str(state_dir))
    assert result.exit_code == 2
    assert "--by" in result.stderr
    assert "not a valid name" in result.stderr
    _clean(result)
    assert not (state_dir / "audit.jsonl").exists()  # refused before anything is recorded
    plain = run_cli(
        "approvals",
        "reject",
        "a1b2c3d4e5",
        "--by",
        "sre.lead@example-1",
        "--state-dir",
        str(state_dir),
    )
    assert plain.exit_code == 1  # a valid name; there just is no such request
    assert "no approval request" in plain.stderr


def test_breaker_reset_by_a_name_is_refused_and_escaped(run_cli: RunCli, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    StateStore(state_dir / "state.db").close()
    result = run_cli(
        "breaker",
        "reset",
        "frontend",
        "--by",
        "\x1b[2Ksre",
        "--reason",
        "x",
        "--state-dir",
        str(state_dir),
    )
    assert result.exit_code == 2
    assert "must be signed" in result.stderr
    _clean(result)


def test_an_error_keeps_its_line_number(run_cli: RunCli, tmp_path: Path) -> None:
    source = tmp_path / "op.json"
    source.write_text("\n" * 99 + "{oops}\n")
    result = run_cli("enforce", "--service", "frontend", "--operation", str(source))
    assert result.exit_code == 1
    assert "op.json:100:2: not valid JSON" in result.stderr
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.stderr


def test_the_error_printer_escapes(run_cli: RunCli, tmp_path: Path) -> None:
    missing = str(tmp_path / f"{ATTACK}.json")
    result = run_cli("enforce", "--service", "frontend", "--operation", missing)
    assert result.exit_code == 1
    assert "no such file" in result.stderr
    _clean(result)
    unknown = run_cli("enforce", "--service", "frontend", f"--x{ATTACK}")
    assert unknown.exit_code == 2
    _clean(unknown)
    secret_path = run_cli("enforce", "--service", "frontend", "--operation", "/x/password=hunter2")
    assert secret_path.exit_code == 1
    assert "/x/password=*** no such file" in secret_path.stderr  # the mask takes the colon too
    _clean(secret_path)


def test_run_report_and_live_table_are_escaped() -> None:
    operation = {"type": "update_configmap", "name": ATTACK, "changes": {"dsn": DSN}}
    report = TickReport(
        time="2026-02-10T12:00:00Z",
        decisions=[
            {"service": "frontend", "operation": operation, "tier": "allow", "reasons": [ATTACK]}
        ],
        results=[ExecutionResult("failed", "d1", operation, "allow", detail=f"api: {ATTACK}")],
        errors=[f"frontend: can't observe: {ATTACK}"],
        observations={
            "frontend": {
                "replicas": {"desired": 2, "ready": 2},
                "metrics": {"cpu_percent": ATTACK},
                "state": {"breaker_open": False},
            }
        },
    )
    with console.capture() as captured:
        run_command._print_report(report)
        console.print(run_command.status_table(report))
    text = captured.get()
    assert not RAW.search(text), repr(text)
    assert SECRET not in text
    assert "\\x1b[2Kallow" in text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2K", "\\x1b[2K"),
        ("a\rb\x00c\x07d\be\x7f", "a\\rb\\x00c\\x07d\\x08e\\x7f"),
        ("\x9b31m", "\\x9b31m"),
        ("abc‮def⁦", "abc\\u202edef\\u2066"),
        ("line\nnext\ttab", "line\\nnext\\ttab"),
        ("plain :100: [bold]text[/]", "plain :100: [bold]text[/]"),
    ],
)
def test_printable(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert not RAW.search(printable(raw))


def test_escape_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert escape("[red]\x1b[8m") == "\\[red]\\x1b[8m"
    line(f"a {ATTACK} b")
    assert capsys.readouterr().out == "a \\r\\x1b[2Kallow \\x1b[8m b\n"
    with console.capture() as captured:
        console.print(":100: :thumbs_up:")
    assert captured.get() == ":100: :thumbs_up:\n"


def test_invisible_and_direction_marks_are_shown_escaped() -> None:
    from engine.cli.terminal import printable

    for character in (
        "\U000e0041",  # a tag character: ASCII smuggled past a reader
        "\u00ad",
        "\u2065",
        "\ufe0f",
        "\U0001d173",
        "\u200e",
        "\u200f",
        "\u061c",
        "\u2028",
        "\u2029",
        "\u200b",
        "\ufeff",
        "\u115f",
    ):
        assert character not in printable(f"allow{character}forbid"), repr(character)
