"""Signed checkpoints: the round-one attacks on the audit log, each of which now fails.

The security review rewrote events and recomputed the unkeyed chain, cut the
log short, deleted it, pointed verify at a mistyped directory and pruned with
a one-day retention: every one of them said "chain intact". Each test here
performs one of those attacks (with a script as an attacker would write it)
and checks that ``verify`` or the runner now refuses.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import signing
from engine.audit import (
    GENESIS,
    KEY_FILE,
    AuditError,
    AuditLog,
    PruneRefused,
    load_key,
    runner_key,
)
from engine.state import StateStore
from tests.conftest import REPO, RunCli

RUNNER_KEY = signing.demo_key("audit runner")
OTHER_KEY = signing.demo_key("someone else")
TRACE = REPO / "blueprints" / "examples" / "traces" / "demo-ramp.csv"


class Clock:
    """A clock that ticks one minute per reading, from 2026-02-10 12:00."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> str:
        self.now += datetime.timedelta(minutes=1)
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(tmp_path / "state.db")
    yield opened
    opened.close()


def signed_log(tmp_path: Path, store: StateStore, every: int = 5) -> AuditLog:
    return AuditLog(
        tmp_path / "audit.jsonl",
        clock=Clock(),
        signer=RUNNER_KEY,
        ledger=store.audit_ledger(),
        checkpoint_every=every,
    )


def write_events(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.record("decision", service="frontend", decision_id=f"d{i}", tier="allow")


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rechain(path: Path, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """What the round-one script did: edit events, then recompute every prev and hash.

    A careful attacker also makes each checkpoint's count and head agree with
    its new place, so only the signatures can tell.
    """
    events = edit(rows(path))
    previous = GENESIS
    out = []
    for number, event in enumerate(events):
        event.pop("hash", None)
        event["prev"] = previous
        if event.get("event") == "checkpoint":
            event["count"], event["head"] = number, previous
        event["hash"] = hashlib.sha256((previous + _canonical(event)).encode()).hexdigest()
        previous = event["hash"]
        out.append(_canonical(event) + "\n")
    path.write_text("".join(out), encoding="utf-8")


def verify(log: AuditLog, store: StateStore, key: Any = RUNNER_KEY) -> Any:
    return log.verify(public_key=key.public_key(), counts=store.audit_counts())


# --- the log signs itself --------------------------------------------------------------


def test_a_signed_checkpoint_every_n_events_and_at_close(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    events = rows(log.path)
    checkpoints = [(i, e) for i, e in enumerate(events) if e["event"] == "checkpoint"]
    # 5 events, a checkpoint; 5 more, a checkpoint; the last 2, and the one at close
    assert [i for i, _ in checkpoints] == [5, 11, 14]
    public = RUNNER_KEY.public_key()
    for index, checkpoint in checkpoints:
        assert checkpoint["count"] == index
        assert checkpoint["head"] == events[index - 1]["hash"] == checkpoint["prev"]
        assert checkpoint["key"] == signing.public_key_line(public)
        assert base64.b64decode(checkpoint["signature"], validate=True)
    counts = store.audit_counts()
    assert (counts.events, counts.checkpoint_count) == (15, 14)
    assert counts.checkpoint_head == events[13]["hash"]
    report = verify(log, store)
    assert report.ok, report.reason
    assert (report.events, report.checkpoints, report.uncovered) == (15, 3, 0)


def test_close_adds_nothing_when_the_last_event_is_a_checkpoint(
    tmp_path: Path, store: StateStore
) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 5)
    log.close()
    assert len(rows(log.path)) == 6
    again = signed_log(tmp_path, store)
    again.close()
    assert len(rows(log.path)) == 6


def test_nobody_may_record_a_checkpoint(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    with pytest.raises(AuditError, match="written by the log itself"):
        log.record("checkpoint", count=0, head=GENESIS, signature="forged")


def test_two_writers_share_one_count(tmp_path: Path, store: StateStore) -> None:
    first, second = signed_log(tmp_path, store), signed_log(tmp_path, store)
    for i in range(9):
        (first if i % 2 else second).record("decision", n=i)
    first.close()
    second.close()
    assert [e["event"] for e in rows(first.path)].count("checkpoint") == 2
    assert verify(first, store).ok


# --- the attacks --------------------------------------------------------------------------


def test_rewritten_events_with_a_recomputed_chain_fail(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()

    def forbid_to_allow(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events[2]["tier"] = "forbid"
        return events

    rechain(log.path, forbid_to_allow)
    assert log.verify().ok  # the unkeyed chain is intact: that was the finding
    report = verify(log, store)
    assert not report.ok
    assert report.first_break == 6
    assert "signature does not verify" in report.reason


def test_deleted_events_with_a_recomputed_chain_fail(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    rechain(log.path, lambda events: events[:1] + events[6:])  # five events gone
    report = verify(log, store)
    assert not report.ok
    assert "signature does not verify" in report.reason


def test_a_deleted_checkpoint_fails(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    rechain(log.path, lambda events: [e for i, e in enumerate(events) if i != 5])
    report = verify(log, store)
    assert not report.ok


def test_deleting_the_last_checkpoint_fails_against_the_state(
    tmp_path: Path, store: StateStore
) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    rechain(log.path, lambda events: events[:-1])
    report = verify(log, store)
    assert not report.ok
    assert "state recorded 15" in report.problem


def test_a_truncated_log_fails_against_the_state(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    lines = log.path.read_text().splitlines(keepends=True)
    log.path.write_text("".join(lines[:12]))  # ends with a checkpoint: looks clean
    assert log.verify().ok
    report = verify(log, store)
    assert not report.ok
    assert "has 12 events, the state recorded 15" in report.problem


def test_another_key_fails(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 6)
    log.close()
    report = verify(log, store, OTHER_KEY)
    assert not report.ok
    assert report.first_break == 6
    assert "signature does not verify" in report.reason


def test_the_runner_appends_nothing_to_a_shortened_log(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 7)
    log.close()
    log.path.unlink()
    again = signed_log(tmp_path, store)
    with pytest.raises(AuditError, match="has 0 events, the state recorded 9"):
        again.record("decision", service="frontend")
    assert log.path.read_text() == ""  # nothing was appended


def test_the_runner_refuses_another_key_than_the_state_knows(
    tmp_path: Path, store: StateStore
) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 2)
    log.close()
    other = AuditLog(log.path, signer=OTHER_KEY, ledger=store.audit_ledger())
    with pytest.raises(AuditError, match="is not the key this log is signed with"):
        other.check()


def test_a_forged_event_after_the_last_checkpoint_is_reported(
    tmp_path: Path, store: StateStore
) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 3)
    log.close()
    AuditLog(log.path).record("approval_granted", service="backend", actor="mallory")
    report = verify(log, store)
    assert report.ok
    assert report.uncovered == 1


def test_events_nobody_counted_are_signed_as_such(tmp_path: Path, store: StateStore) -> None:
    # appended by hand after a clean stop: the runner's next checkpoint must not vouch for it
    log = signed_log(tmp_path, store)
    write_events(log, 3)
    log.close()
    AuditLog(log.path).record("approval_granted", service="backend", actor="mallory")
    again = signed_log(tmp_path, store)
    again.record("decision", service="frontend")
    again.close()
    events = rows(log.path)
    assert [e["event"] for e in events[4:]] == [
        "approval_granted",
        "checkpoint",
        "decision",
        "checkpoint",
    ]
    assert events[5]["uncounted"] == 1
    report = verify(log, store)
    assert report.ok, report.reason
    assert (report.uncounted, report.uncounted_at, report.uncovered) == (1, (6,), 0)


# --- pruning --------------------------------------------------------------------------------


def _time(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.UTC
    )


def test_prune_starts_the_kept_log_with_a_signed_checkpoint(
    tmp_path: Path, store: StateStore
) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    before = rows(log.path)
    kept_lines = log.path.read_text().splitlines(keepends=True)[7:]
    assert log.prune(_time(before[7])) == 7
    after = rows(log.path)
    anchor = after[0]
    assert anchor["event"] == "checkpoint"
    assert (anchor["count"], anchor["head"], anchor["dropped"]) == (7, before[6]["hash"], 7)
    assert log.path.read_text().splitlines(keepends=True)[1:] == kept_lines
    report = verify(log, store)
    assert report.ok, report.reason
    assert report.events == 15
    write_events(log, 6)
    log.close()
    assert verify(log, store).ok
    # a second prune stands for everything dropped so far
    assert log.prune(_time(rows(log.path)[10])) == 9
    assert rows(log.path)[0]["count"] == 16
    assert verify(log, store).ok


def test_a_forged_prune_checkpoint_fails(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    log.prune(_time(rows(log.path)[7]))
    lines = rows(log.path)
    lines[0]["dropped"] = 2  # claim less was dropped
    log.path.write_text("".join(_canonical(e) + "\n" for e in lines))
    report = verify(log, store)
    assert (report.ok, report.first_break) == (False, 1)


def test_prune_refuses_events_younger_than_the_floor(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 12)
    log.close()
    text = log.path.read_text()
    events = rows(log.path)
    with pytest.raises(PruneRefused, match="would drop 4 events younger than"):
        log.prune(_time(events[7]), protect_after=_time(events[3]))
    assert log.path.read_text() == text
    assert log.prune(_time(events[7]), protect_after=_time(events[8])) == 7


def test_prune_needs_the_key(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 3)
    log.close()
    with pytest.raises(AuditError, match="needs the audit key"):
        AuditLog(log.path).prune(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))


def test_prune_refuses_a_log_signed_by_another_key(tmp_path: Path, store: StateStore) -> None:
    log = signed_log(tmp_path, store)
    write_events(log, 6)
    log.close()
    other = AuditLog(log.path, signer=OTHER_KEY)
    with pytest.raises(AuditError, match="refusing to prune"):
        other.prune(datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC))


# --- the key --------------------------------------------------------------------------------


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    made = runner_key(None, path, known=None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = runner_key(None, path, known=None)
    assert signing.raw_public(made.public_key()) == signing.raw_public(again.public_key())


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o660])
def test_a_key_others_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "key"
    signing.write_private_key(path, RUNNER_KEY)
    path.chmod(mode)
    with pytest.raises(AuditError, match=f"mode {mode:04o}.*chmod 600"):
        load_key(path)


def test_no_key_is_made_when_the_state_knows_another(tmp_path: Path) -> None:
    known = signing.public_key_line(RUNNER_KEY.public_key())
    with pytest.raises(AuditError, match="--audit-key"):
        runner_key(None, tmp_path / KEY_FILE, known=known)
    assert not (tmp_path / KEY_FILE).exists()


# --- the command line -------------------------------------------------------------------------


def _state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _run(run_cli: RunCli, tmp_path: Path, *extra: str) -> None:
    result = run_cli("run", "--state-dir", str(_state(tmp_path)), "--pause", "0", *extra)
    assert result.exit_code == 0, result.stderr


def _verify(run_cli: RunCli, tmp_path: Path, *extra: str) -> Any:
    return run_cli("audit", "verify", "--state-dir", str(_state(tmp_path)), *extra)


@pytest.fixture
def ran(run_cli: RunCli, tmp_path: Path) -> Path:
    """A state dir after six ticks of the runner on the demo load ramp."""
    _run(run_cli, tmp_path, "--load", str(TRACE), "--ticks", "6")
    return _state(tmp_path) / "audit.jsonl"


def _exported(run_cli: RunCli, tmp_path: Path) -> Path:
    exported = run_cli("audit", "export-key", "--state-dir", str(_state(tmp_path)))
    assert exported.exit_code == 0, exported.stderr
    kept = tmp_path / "elsewhere.pub"
    kept.write_text(exported.stdout)
    return kept


def test_run_ends_with_a_signed_checkpoint_that_verifies(
    run_cli: RunCli, tmp_path: Path, ran: Path
) -> None:
    assert rows(ran)[-1]["event"] == "checkpoint"
    key = _state(tmp_path) / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "chain intact" in result.stderr
    assert f"the key in {key}" in " ".join(result.stderr.split())


def test_export_key_prints_a_public_key_line(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    exported = run_cli("audit", "export-key", "--state-dir", str(_state(tmp_path)))
    assert exported.exit_code == 0
    public = signing.parse_public_key(exported.stdout)
    assert signing.raw_public(public) == signing.raw_public(
        load_key(_state(tmp_path) / KEY_FILE).public_key()
    )
    assert len(exported.stdout.strip().splitlines()) == 1


def test_verify_with_the_kept_public_key(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    kept = _exported(run_cli, tmp_path)
    good = _verify(run_cli, tmp_path, "--public-key", str(kept))
    assert good.exit_code == 0, good.stderr
    assert f"--public-key {kept}" in " ".join(good.stderr.split())
    other = tmp_path / "other.pub"
    other.write_text(signing.public_key_line(OTHER_KEY.public_key()) + "\n")
    bad = _verify(run_cli, tmp_path, "--public-key", str(other))
    assert bad.exit_code == 1
    assert "signature does not verify" in bad.stderr


def test_verify_from_a_copy_with_a_replaced_key_fails(
    run_cli: RunCli, tmp_path: Path, ran: Path
) -> None:
    # the attacker re-signs with a key of their own and puts it in the state dir
    kept = _exported(run_cli, tmp_path)

    def edit(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["event"] != "execution_succeeded"]

    rechain(ran, edit)
    result = _verify(run_cli, tmp_path, "--public-key", str(kept))
    assert result.exit_code == 1


def test_cli_rewrite_and_rechain_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    def edit(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for event in events:
            if event.get("tier") == "approve":
                event["tier"] = "allow"
        return events

    rechain(ran, edit)
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "signature does not verify" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_truncation_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    lines = ran.read_text().splitlines(keepends=True)
    ran.write_text("".join(lines[: len(lines) // 2]))
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "the state recorded" in result.stderr


def test_cli_deleted_checkpoint_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    rechain(ran, lambda events: [e for e in events if e["event"] != "checkpoint"])
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1


def test_cli_deleted_log_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    ran.unlink()
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "is missing, but the state recorded" in result.stderr


def test_cli_empty_log_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    ran.write_text("")
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "is empty, but the state recorded" in result.stderr


def test_cli_mistyped_state_dir_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    missing = run_cli("audit", "verify", "--state-dir", str(tmp_path / "stat"))
    assert missing.exit_code == 1
    assert "no state directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("audit", "verify", "--state-dir", str(tmp_path / "empty"))
    assert empty.exit_code == 1
    assert "no state.db and no audit.jsonl" in empty.stderr


def test_cli_log_without_state_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    (_state(tmp_path) / "state.db").unlink()
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "state.db is missing" in result.stderr


def test_cli_log_that_is_a_directory_fails(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    ran.unlink()
    ran.mkdir()
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 1
    assert "is a directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_events_after_the_last_checkpoint(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    AuditLog(ran).record("approval_granted", service="backend", actor="mallory")
    lenient = _verify(run_cli, tmp_path)
    assert lenient.exit_code == 0
    assert "1 events after the last checkpoint" in " ".join(lenient.stderr.split())
    strict = _verify(run_cli, tmp_path, "--strict")
    assert strict.exit_code == 1
    # the next command that appends signs the forged line, but says nobody counted it
    _run(run_cli, tmp_path, "--once")
    lenient = _verify(run_cli, tmp_path)
    assert lenient.exit_code == 0
    assert "1 events were not counted" in " ".join(lenient.stderr.split())
    strict = _verify(run_cli, tmp_path, "--strict")
    assert strict.exit_code == 1
    assert "not counted" in strict.stderr


def test_cli_run_refuses_a_key_file_others_can_read(run_cli: RunCli, tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    signing.write_private_key(key, RUNNER_KEY)
    key.chmod(0o644)
    result = run_cli("run", "--state-dir", str(_state(tmp_path)), "--once", "--audit-key", str(key))
    assert result.exit_code == 1
    assert "readable or writable by group or others" in result.stderr
    assert not (_state(tmp_path) / "audit.jsonl").exists()


def test_cli_key_outside_the_state_dir(run_cli: RunCli, tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    signing.write_private_key(key, RUNNER_KEY)
    _run(run_cli, tmp_path, "--once", "--audit-key", str(key))
    assert not (_state(tmp_path) / KEY_FILE).exists()
    # another shell without the key may not sign with a new one
    execute = (
        "execute",
        "--state-dir",
        str(_state(tmp_path)),
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
    )
    refused = run_cli(*execute)
    assert refused.exit_code == 1
    assert "--audit-key" in refused.stderr
    done = run_cli(*execute, "--audit-key", str(key))
    assert done.exit_code == 0, done.stderr
    assert rows(_state(tmp_path) / "audit.jsonl")[-1]["event"] == "checkpoint"
    result = _verify(run_cli, tmp_path)
    assert result.exit_code == 0, result.stderr
    assert "recorded in" in result.stderr


def test_cli_prune_with_a_one_day_retention_needs_confirm(
    run_cli: RunCli, tmp_path: Path, blueprint_copy: Path
) -> None:
    # the runner ran two days ago with the repo's blueprints (the longest retention: 400 days)
    state = _state(tmp_path)
    store = StateStore(state / "state.db")
    clock = Clock()
    clock.now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
    key = runner_key(None, state / KEY_FILE, known=None)
    log = AuditLog(state / "audit.jsonl", clock=clock, signer=key, ledger=store.audit_ledger())
    write_events(log, 10)
    log.close()
    store.record_audit_retention(400)
    store.close()
    # the attack: a blueprint directory of one's own with retention_days: 1
    for path in [blueprint_copy / "governance.yaml", *blueprint_copy.rglob("*.yaml")]:
        text = path.read_text()
        for days in ("90", "400"):
            text = text.replace(f"retention_days: {days}", "retention_days: 1")
        path.write_text(text)
    before = rows(log.path)
    prune = ("audit", "prune", "--blueprints", str(blueprint_copy), "--state-dir", str(state))
    refused = run_cli(*prune)
    assert refused.exit_code == 2
    assert "--confirm" in refused.stderr and "400 days" in refused.stderr
    assert rows(log.path) == before
    confirmed = run_cli(*prune, "--confirm")
    assert confirmed.exit_code == 0, confirmed.stderr
    kept = rows(log.path)
    assert len(kept) == 1
    assert kept[0]["event"] == "checkpoint"
    assert (kept[0]["count"], kept[0]["dropped"]) == (11, 11)
    assert kept[0]["head"] == before[-1]["hash"]
    kept_key = tmp_path / "kept.pub"
    kept_key.write_text(signing.public_key_line(key.public_key()))
    result = _verify(run_cli, tmp_path, "--public-key", str(kept_key), "--strict")
    assert result.exit_code == 0, result.stderr


def test_shutdown_checkpoints_after_approve_and_breaker_reset(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    keyed = ("--blueprints", str(signed_blueprints))
    _run(run_cli, tmp_path, *keyed, "--load", str(TRACE), "--ticks", "4")
    state = ("--state-dir", str(_state(tmp_path)))
    log = _state(tmp_path) / "audit.jsonl"
    listed = json.loads(run_cli("approvals", "list", *state, "--json").stdout)
    request = next(r for r in listed if r["service"] == "backend")
    answered = run_cli(
        "approvals", "approve", request["id"], "--key", str(sre_lead_key), "--reason", "ok", *state
    )
    assert answered.exit_code == 0, answered.stderr
    assert [e["event"] for e in rows(log)[-2:]] == ["approval_granted", "checkpoint"]
    store = StateStore(_state(tmp_path) / "state.db")
    store.open_breaker("frontend", "t", "rollback failed")
    store.close()
    reset = run_cli(
        "breaker", "reset", "frontend", "--key", str(sre_lead_key), "--reason", "fixed",
        *keyed, *state,
    )  # fmt: skip
    assert reset.exit_code == 0, reset.stderr
    assert [e["event"] for e in rows(log)[-2:]] == ["breaker_reset", "checkpoint"]
    result = _verify(run_cli, tmp_path, "--strict")
    assert result.exit_code == 0, result.stderr


def test_verify_is_read_only(run_cli: RunCli, tmp_path: Path, ran: Path) -> None:
    state = _state(tmp_path)

    def files() -> dict[str, tuple[int, int]]:
        # SQLite may add its -wal and -shm side files to read; the files themselves stay as they are
        return {
            p.name: (p.stat().st_mtime_ns, p.stat().st_size)
            for p in state.iterdir()
            if not p.name.endswith(("-wal", "-shm"))
        }

    before = files()
    assert _verify(run_cli, tmp_path).exit_code == 0
    assert files() == before


def test_an_emptied_log_and_a_fresh_state_fail_against_the_kept_key(
    run_cli: RunCli, tmp_path: Path, ran: Path
) -> None:
    """Red team: an empty audit.jsonl with a freshly made state.db passed
    `verify --public-key --strict` ("0 events, 0 signed checkpoints")."""
    kept = _exported(run_cli, tmp_path)
    ran.write_text("")
    (_state(tmp_path) / "state.db").unlink()
    for extra in ("state.db-wal", "state.db-shm"):
        (_state(tmp_path) / extra).unlink(missing_ok=True)
    StateStore(_state(tmp_path) / "state.db").close()
    result = _verify(run_cli, tmp_path, "--public-key", str(kept), "--strict")
    assert result.exit_code == 1
    assert "no checkpoint signed by the key" in result.stderr
