"""The state is private to the runner's user; approvers answer through the inbox.

Round one: the state dir was created 0755 with state.db and audit.jsonl 0644,
and every approver needed write access to it (SQLite WAL): the same access
that rewrites approvals, breakers and the audit log.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from engine.approval import claims
from engine.cluster.simulated import SimulatedCluster
from tests.conftest import MALLORY, SRE_LEAD, RunCli, file_request

TRACE = Path(__file__).resolve().parent.parent / "blueprints/examples/traces/demo-ramp.csv"
NOBODY = 65534


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_created_private_whatever_the_umask(run_cli: RunCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0)
    try:
        result = run_cli(
            "run", "--state-dir", str(state), "--ticks", "3", "--pause", "0", "--load", str(TRACE)
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    assert _mode(state) == 0o700
    for name in ("state.db", "audit.jsonl", "cluster.json"):
        assert _mode(state / name) == 0o600, name
    for extra in state.glob("state.db-*"):
        assert _mode(extra) & 0o077 == 0, extra


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777])
def test_a_state_dir_others_can_write_is_refused(
    run_cli: RunCli, tmp_path: Path, mode: int
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, mode)
    result = run_cli("run", "--state-dir", str(state), "--once")
    assert result.exit_code == 1
    assert "open to group or others: refusing to use it (run: chmod 700" in result.stderr
    assert list(state.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_state_dir_of_another_user_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    result = run_cli(
        "execute",
        "--state-dir",
        str(state),
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
    )
    assert result.exit_code == 1
    assert f"owned by uid {NOBODY}, not by this user" in result.stderr


def test_breaker_list_with_a_mistyped_state_dir_creates_nothing(
    run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli("breaker", "list", "--state-dir", str(tmp_path / "typo"))
    assert result.exit_code == 1
    assert "no state directory here" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_an_approver_key_others_can_read_is_refused(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    open_key = tmp_path / "key"
    open_key.write_bytes(sre_lead_key.read_bytes())
    os.chmod(open_key, 0o644)
    state = tmp_path / "state"
    request_id = file_request(run_cli, signed_blueprints, state)
    result = run_cli(
        "approvals",
        "approve",
        request_id,
        "--key",
        str(open_key),
        "--reason",
        "x",
        "--state-dir",
        str(state),
    )
    assert result.exit_code == 1
    assert "the private key has mode 0644" in result.stderr


def _runner_ticks(run_cli: RunCli, state: Path, blueprints: Path, ticks: int) -> None:
    result = run_cli(
        "run",
        "--blueprints",
        str(blueprints),
        "--state-dir",
        str(state),
        "--load",
        str(TRACE),
        "--ticks",
        str(ticks),
        "--pause",
        "0",
    )
    assert result.exit_code == 0, result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")
def test_approvers_answer_through_the_inbox_and_count_only_once_verified(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    state = tmp_path / "state"
    inbox = tmp_path / "state.inbox"
    _runner_ticks(run_cli, state, signed_blueprints, 4)
    published = {p.stem: json.loads(p.read_text()) for p in (inbox / "requests").glob("*.json")}
    [scale_id] = [
        i
        for i, r in published.items()
        if r["service"] == "backend" and r["operation"]["type"] == "scale"
    ]
    assert _mode(inbox / "requests" / f"{scale_id}.json") == 0o644
    assert stat.S_IMODE((inbox / "answers").stat().st_mode) == 0o1730

    # the approver is not the runner: here the runner's files are made another user's
    _hand_over(state, inbox, NOBODY)
    try:
        listed = run_cli("approvals", "list", "--state-dir", str(state), "--json")
        assert scale_id in [r["id"] for r in json.loads(listed.stdout)]
        by_name = run_cli(
            "approvals",
            "approve",
            scale_id,
            "--by",
            "orders-oncall",
            "--reason",
            "x",
            "--state-dir",
            str(state),
        )
        assert by_name.exit_code == 2 and "must be signed" in by_name.stderr
        # forged answers, dropped by "another user": a stranger's key, a tampered token, junk
        request = next(a for a in _inbox_requests(inbox) if a.id == scale_id)
        now = request.requested_at
        forged = {
            "mallory": MALLORY.statement(claims(request, "approve", now, "me")),
            "tampered": _tamper(SRE_LEAD.statement(claims(request, "approve", now, "ok"))),
            "junk": "not a jws at all",
        }
        for name, token in forged.items():
            path = inbox / "answers" / f"{scale_id}.{name}.approve.jws"
            path.write_text(token)
            os.chown(path, NOBODY, NOBODY)
    finally:
        _hand_over(state, inbox, os.geteuid())
    _runner_ticks(run_cli, state, signed_blueprints, 1)
    assert list((inbox / "answers").iterdir()) == []  # read, refused, removed
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    refused = [e for e in events if e["event"] == "approval_answer_refused"]
    assert len(refused) == 3
    assert SimulatedCluster.load(state / "cluster.json").service("backend")["replicas"] == 3

    # the real approver signs from their own account; the answer counts once verified
    _hand_over(state, inbox, NOBODY)
    try:
        dropped = run_cli(
            "approvals",
            "approve",
            scale_id,
            "--key",
            str(sre_lead_key),
            "--reason",
            "launch",
            "--state-dir",
            str(state),
        )
        assert dropped.exit_code == 0, dropped.stderr
        assert "the runner verifies it at its next tick" in dropped.stderr
        [answer] = (inbox / "answers").iterdir()
        os.chown(answer, NOBODY, NOBODY)
    finally:
        _hand_over(state, inbox, os.geteuid())
    _runner_ticks(run_cli, state, signed_blueprints, 1)
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert [e["actor"] for e in events if e["event"] == "approval_granted"] == ["sre-lead"]
    assert SimulatedCluster.load(state / "cluster.json").service("backend")["replicas"] == 4
    assert not (inbox / "requests" / f"{scale_id}.json").exists()


def _hand_over(state: Path, inbox: Path, uid: int) -> None:
    """Make ``uid`` the owner of the runner's state and inbox (stands for another user)."""
    for path in (
        state,
        inbox,
        inbox / "requests",
        inbox / "answers",
        *(inbox / "requests").iterdir(),
    ):
        os.chown(path, uid, uid)


def _inbox_requests(inbox: Path) -> list:  # type: ignore[type-arg]
    from engine.inbox import Inbox

    return Inbox(inbox).requests()


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    return ".".join(
        [header, payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB"), signature]
    )


def test_an_inbox_someone_else_made_first_is_refused_and_nothing_is_deleted(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Red team: an inbox made in advance, its answers/ a symlink to the state dir and its
    requests/ one to the runner's home, had the runner delete its own state and files."""
    state = tmp_path / "st"
    home = tmp_path / "home"
    home.mkdir()
    (home / "important.json").write_text("{}")
    inbox = tmp_path / "st.inbox"
    inbox.mkdir()
    (inbox / "answers").symlink_to(state)
    (inbox / "requests").symlink_to(home)
    result = run_cli("run", "--state-dir", str(state), "--once")
    assert result.exit_code == 1
    assert "part of the inbox is not a directory (a symlink?)" in result.stderr
    assert (home / "important.json").exists()
    (inbox / "answers").unlink()
    (inbox / "requests").unlink()
    for mode in (0o777, 0o775):
        os.chmod(inbox, mode)
        result = run_cli("run", "--state-dir", str(state), "--once")
        assert result.exit_code == 1
        assert "part of the inbox is writable by group or others" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_an_inbox_owned_by_another_user_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    inbox = tmp_path / "st.inbox"
    inbox.mkdir()
    os.chown(inbox, NOBODY, NOBODY)
    result = run_cli("run", "--state-dir", str(tmp_path / "st"), "--once")
    assert result.exit_code == 1
    assert f"owned by uid {NOBODY}, not by the runner" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")
def test_an_approver_signs_only_what_the_runner_published(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    """Red team: with a requests/ they could write, an attacker showed the approver scale 4
    for a request of scale 40. A request is trusted only from the runner's own inbox, and
    an operation that does not match its digest is never signed."""
    state = tmp_path / "state"
    inbox = tmp_path / "state.inbox"
    filed = run_cli(
        "execute",
        "--blueprints",
        str(signed_blueprints),
        "--state-dir",
        str(state),
        "--service",
        "backend",
        "--operation",
        '{"type": "scale", "to": 40}',
        "--as",
        "alice",
    )
    request_id = json.loads(filed.stdout)["approval_id"]
    _runner_ticks(run_cli, state, signed_blueprints, 1)
    published = inbox / "requests" / f"{request_id}.json"
    forged = json.loads(published.read_text())
    forged["operation"] = {"type": "scale", "from": 2, "to": 4}
    published.write_text(json.dumps(forged))
    approve = (
        "approvals",
        "approve",
        request_id,
        "--key",
        str(sre_lead_key),
        "--reason",
        "4 ok",
        "--state-dir",
        str(state),
    )
    _hand_over(state, inbox, NOBODY)
    try:
        mismatch = run_cli(*approve)
        assert mismatch.exit_code == 1
        assert "does not match the digest it asks you to sign" in mismatch.stderr
        os.chmod(inbox / "requests", 0o777)
        writable = run_cli(*approve)
        assert writable.exit_code == 1
        assert "writable by group or others" in writable.stderr
        assert list((inbox / "answers").iterdir()) == []
    finally:
        os.chmod(inbox / "requests", 0o755)
        _hand_over(state, inbox, os.geteuid())


def test_nothing_dropped_in_the_answers_box_stops_the_runner(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Red team: a file name that is not UTF-8 crashed the runner once per file, and a
    directory 1,200 levels deep crashed it at every start (rmtree recursion)."""
    state = tmp_path / "st"
    assert run_cli("run", "--state-dir", str(state), "--once").exit_code == 0
    answers = tmp_path / "st.inbox" / "answers"
    fd = os.open(bytes(answers) + b"/\xff.jws", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"junk")
    os.close(fd)
    deep = answers / "deep"
    deep.mkdir()
    current = os.open(deep, os.O_RDONLY)
    for _ in range(1200):
        os.mkdir("a", dir_fd=current)
        inner = os.open("a", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = inner
    os.close(current)
    for _ in range(2):
        result = run_cli("run", "--state-dir", str(state), "--once")
        assert result.exit_code == 0, result.stderr[-500:]
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in answers.iterdir() if not p.name.startswith(".")) == []
    events = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    refused = [e["answer_file"] for e in events if e["event"] == "approval_answer_refused"]
    assert "\\xff.jws" in refused and "deep" in refused
    for aside in answers.glob(".refused-*"):
        _remove_deep(aside)  # pytest's own clean-up of old temp dirs would recurse too deep


def _remove_deep(top: Path) -> None:
    """Remove a directory tree of any depth without recursion."""
    stack = [top]
    while stack:
        current = stack[-1]
        children = list(current.iterdir())
        if not children:
            current.rmdir()
            stack.pop()
            continue
        for child in children:
            if child.is_dir() and not child.is_symlink():
                stack.append(child)
            else:
                child.unlink()


@pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")
def test_an_approver_who_cannot_read_the_state_uses_the_inbox(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team: click refused an unreadable --state-dir before opsgate could turn to the
    inbox, so a real (non-root) approver could neither list nor answer. Root reads anything,
    so the approver's view is simulated: access() says no, and the state is another user's."""
    state = tmp_path / "state"
    request_id = file_request(run_cli, signed_blueprints, state)
    _runner_ticks(run_cli, state, signed_blueprints, 1)
    real_access = os.access
    hidden = str(state)

    def access(path: Any, mode: int, **kw: Any) -> bool:
        return False if str(path) == hidden else real_access(path, mode, **kw)

    monkeypatch.setattr(os, "access", access)
    _hand_over(state, tmp_path / "state.inbox", NOBODY)
    try:
        listed = run_cli("approvals", "list", "--json", "--state-dir", str(state))
        assert listed.exit_code == 0, listed.stderr
        assert request_id in listed.stdout
    finally:
        _hand_over(state, tmp_path / "state.inbox", os.geteuid())


def test_abandoned_partial_answers_are_swept(run_cli: RunCli, tmp_path: Path) -> None:
    state = tmp_path / "st"
    assert run_cli("run", "--state-dir", str(state), "--once").exit_code == 0
    answers = tmp_path / "st.inbox" / "answers"
    old, fresh = answers / ".x.jws.1", answers / ".y.jws.2"
    old.write_text("partial")
    fresh.write_text("partial")
    os.utime(old, (0, 0))
    assert run_cli("run", "--state-dir", str(state), "--once").exit_code == 0
    assert not old.exists() and fresh.exists()  # one still being written is left alone
