"""SQLite state: breaker, cooldown, approvals and journal survive restarts and share well."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.state import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    Approval,
    AuditCounts,
    StateError,
    StateStore,
    read_audit_counts,
    read_audit_runs,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(tmp_path / "state.db")
    yield opened
    opened.close()


def _approval(approval_id: str = "a1b2c3d4e5", **changes: object) -> Approval:
    fields: dict[str, object] = {
        "id": approval_id,
        "service": "backend",
        "decision_id": "d1",
        "operation": {"type": "scale", "from": 3, "to": 4},
        "reasons": ["needs 4 replicas, above max_replicas 3"],
        "rules": ["opsgate.govern.scaling.above_maximum"],
        "blueprint_refs": ["spec.scaling.max_replicas"],
        "blueprint_name": "backend",
        "blueprint_version": "1.2.0",
        "bundle_revision": "rev",
        "approvers": ["orders-oncall"],
        "requested_at": "2026-02-10T12:00:00Z",
        "expires_at": "2026-02-10T12:30:00Z",
        "status": "pending",
        "answered_by": None,
        "answered_at": None,
        "justification": None,
    }
    fields.update(changes)
    return Approval(**fields)  # type: ignore[arg-type]


def test_new_service_has_no_history(store: StateStore) -> None:
    assert store.service_state("frontend") == {
        "last_operation_at": None,
        "consecutive_failures": 0,
        "breaker_open": False,
    }
    assert store.schema_version == SCHEMA_VERSION


def test_failures_are_counted_and_the_breaker_survives_restart(
    store: StateStore, tmp_path: Path
) -> None:
    # the state counts; whether that opens the breaker is the policies' decision
    assert [store.record_failure("frontend") for _ in range(4)] == [1, 2, 3, 4]
    assert store.service_state("frontend")["breaker_open"] is False
    assert store.open_breaker("frontend", "t4", "the policies said so") is True
    store.close()
    reopened = StateStore(tmp_path / "state.db")
    assert reopened.service_state("frontend")["breaker_open"] is True
    assert reopened.service_state("frontend")["consecutive_failures"] == 4
    assert reopened.reset_breaker("frontend", "alice", "t5") is True
    assert reopened.service_state("frontend") == {
        "last_operation_at": None,
        "consecutive_failures": 0,
        "breaker_open": False,
    }
    assert reopened.reset_breaker("frontend", "alice", "t6") is False
    reopened.close()


def test_success_resets_the_failure_count(store: StateStore) -> None:
    store.record_failure("frontend")
    store.record_success("frontend")
    store.record_failure("frontend")
    assert store.service_state("frontend")["consecutive_failures"] == 1


def test_cooldown_start_is_kept(store: StateStore) -> None:
    store.record_operation("frontend", "2026-02-10T12:00:00Z")
    assert store.service_state("frontend")["last_operation_at"] == "2026-02-10T12:00:00Z"


def test_a_reset_clears_failures_counted_while_the_breaker_is_closed(store: StateStore) -> None:
    # failures at the threshold are an open breaker to the policies even if the flag
    # was never written (OPA did not answer then): a person can still reset them
    for _ in range(3):
        store.record_failure("frontend")
    assert store.reset_breaker("frontend", "alice", "t") is True
    assert store.service_state("frontend")["consecutive_failures"] == 0


def test_open_breaker_directly(store: StateStore) -> None:
    assert store.open_breaker("backend", "t", "rollback failed") is True
    assert store.open_breaker("backend", "t", "rollback failed") is False
    assert store.breakers()[0]["breaker_reason"] == "rollback failed"


def test_approval_lifecycle(store: StateStore) -> None:
    store.add_approval(_approval())
    assert [a.id for a in store.approvals(status="pending")] == ["a1b2c3d4e5"]
    assert store.approval("a1b2c3")  # unique prefix
    granted = store.answer_approval("a1b2c3d4e5", "granted", "orders-oncall", "t", "db pool raised")
    assert (granted.status, granted.answered_by, granted.justification) == (
        "granted",
        "orders-oncall",
        "db pool raised",
    )
    with pytest.raises(StateError, match="already granted"):
        store.answer_approval("a1b2c3d4e5", "rejected", "x", "t", None)
    with pytest.raises(StateError, match="no approval request"):
        store.answer_approval("nope", "rejected", "x", "t", None)
    store.mark_approval("a1b2c3d4e5", "executed")
    assert store.pending_for("backend", "d1").status == "executed"  # type: ignore[union-attr]


def test_ambiguous_prefix(store: StateStore) -> None:
    store.add_approval(_approval("abcdef01"))
    store.add_approval(_approval("abcdef02", decision_id="d2"))
    with pytest.raises(StateError, match="ambiguous"):
        store.approval("abcdef")


def test_journal_records_open_and_closed_entries(store: StateStore) -> None:
    first = store.journal_begin(
        "d1", "frontend", {"type": "scale", "to": 3}, {"type": "scale", "to": 2}, "t1"
    )
    second = store.journal_begin("d2", "backend", {"type": "rollback"}, None, "t2")
    store.journal_mark(first, "applied", "t3")
    store.journal_mark(second, "completed", "t4", {"verification": "passed"})
    unfinished = store.journal(unfinished=True)
    assert [(e.id, e.status, e.inverse) for e in unfinished] == [
        (first, "applied", {"type": "scale", "to": 2})
    ]
    assert store.journal()[1].detail == {"verification": "passed"}
    with pytest.raises(StateError, match="unknown journal status"):
        store.journal_mark(first, "done", "t5")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StateError, match="schema version 99"):
        StateStore(path)


def test_schema_2_migrates_to_3_with_an_empty_audit_ledger(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    for version in (1, 2):
        db.executescript(_MIGRATIONS[version])
    db.execute("PRAGMA user_version = 2")
    db.close()
    assert read_audit_counts(path) is None  # read-only: an old state says nothing of the log
    assert read_audit_runs(path) == []  # nor of repeats
    store = StateStore(path)
    try:
        assert store.schema_version == SCHEMA_VERSION
        assert store.audit_counts() == AuditCounts()
    finally:
        store.close()
    assert read_audit_counts(path) == AuditCounts()


def test_audit_ledger_never_goes_down(store: StateStore) -> None:
    ledger = store.audit_ledger()
    try:
        ledger.appended(101, (100, "h100"), "ssh-ed25519 AAAA")
        ledger.appended(90, (50, "h50"), "ssh-ed25519 BBBB")  # a late, older writer
        assert ledger.counts() == AuditCounts(101, 100, "h100", "ssh-ed25519 AAAA", None)
        store.record_audit_retention(400)
        assert store.audit_counts().retention_days == 400
    finally:
        ledger.close()
    ledger.close()
    assert read_audit_counts(store.path) == AuditCounts(101, 100, "h100", "ssh-ed25519 AAAA", 400)


def test_a_run_of_repeats_is_counted_until_its_line_is_written(store: StateStore) -> None:
    run = {
        "run": "r1",
        "key": "k",
        "owner": "o",
        "kind": "decision",
        "service": "frontend",
        "of": "h" * 64,
        "digest": "d" * 64,
        "count": 1,
        "first": "2026-02-10T12:00:00.000000Z",
        "last": "2026-02-10T12:00:00.000000Z",
        "last_decision_id": "id1",
    }
    ledger = store.audit_ledger()
    try:
        assert ledger.repeated(run) is True  # the first repeat starts the run
        longer = {
            **run,
            "count": 2,
            "last": "2026-02-10T12:01:00.000000Z",
            "last_decision_id": "id2",
        }
        assert ledger.repeated(longer) is True
        assert ledger.repeated(longer) is False  # not one repeat shorter: nothing changes
        assert ledger.runs() == [longer]
        assert ledger.runs(["r1"]) == [longer]
        assert ledger.runs(["r2"]) == ledger.runs([]) == []
        assert read_audit_runs(store.path) == [longer]
        ledger.appended(5, written=["r1"])  # its line is in the log: it leaves the state
        assert ledger.runs() == []
        assert ledger.counts().events == 5
        assert ledger.repeated({**longer, "count": 3}) is False  # written meanwhile
    finally:
        ledger.close()


def test_audit_ledger_is_usable_from_another_thread(store: StateStore) -> None:
    # notification failures are recorded from the notifier's worker threads
    import threading

    ledger = store.audit_ledger()
    failures: list[BaseException] = []

    def append() -> None:
        try:
            ledger.appended(7)
        except BaseException as e:
            failures.append(e)

    worker = threading.Thread(target=append)
    worker.start()
    worker.join()
    ledger.close()
    assert failures == []
    assert store.audit_counts().events == 7


def test_a_deleted_audit_ledger_row_is_an_error(store: StateStore) -> None:
    store.db.execute("DELETE FROM audit_ledger")
    with pytest.raises(StateError, match="no audit ledger row"):
        read_audit_counts(store.path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("hello, not sqlite" * 100)
    with pytest.raises(StateError, match="can't open state database"):
        StateStore(path)


def test_locked_by_another_process_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, sys, time
                db = sqlite3.connect({str(path)!r}, isolation_level=None)
                db.execute("BEGIN EXCLUSIVE")
                print("locked", flush=True)
                time.sleep(30)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        store = StateStore(path, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StateError, match="busy or locked"):
            store.record_operation("frontend", "t")
        assert time.monotonic() - started < 5
        store.close()
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_two_connections_share_state(tmp_path: Path) -> None:
    runner, operator = StateStore(tmp_path / "state.db"), StateStore(tmp_path / "state.db")
    runner.add_approval(_approval())
    operator.answer_approval("a1b2c3d4e5", "granted", "orders-oncall", "t", "ok")
    assert runner.approval("a1b2c3d4e5").status == "granted"  # type: ignore[union-attr]
    runner.close()
    operator.close()


def test_approvals_since_a_day_leave_old_refusals_in_the_database(store: StateStore) -> None:
    old = _approval(
        "0ld0ld0ld0",
        status="rejected",
        requested_at="2026-01-01T12:00:00Z",
        expires_at="2026-01-01T12:30:00Z",
        answered_at="2026-01-01T12:10:00Z",
    )
    answered_late = _approval(
        "1a7e1a7e1a",
        status="rejected",
        requested_at="2026-02-08T23:00:00Z",
        expires_at="2026-02-08T23:30:00Z",
        answered_at="2026-02-10T08:00:00Z",
    )
    recent = _approval("2ece2ece2e", status="rejected")
    for approval in (old, answered_late, recent):
        store.add_approval(approval)
    assert {a.id for a in store.approvals(status="rejected")} == {
        old.id,
        answered_late.id,
        recent.id,
    }
    bounded = store.approvals(status="rejected", since_day="2026-02-09")
    assert {a.id for a in bounded} == {answered_late.id, recent.id}
