"""Repeats: a log that grows with change, not with time — and still proves every decision.

Within a runner tick, a decision (or deferral, or block) identical to the last
one written in full for its service, kind of change and tier is counted in the
state and written later as one ``repeated`` line. These tests check what is
written and when, that every question the full log answered is still answered
(``expanded``), that the attacks on a repeat fail ``verify``, and that a runner
killed with SIGKILL — between ticks, or between writing a run's line and
counting it — leaves a log that verifies and counts every decision once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import signing
from engine.audit import (
    CHECKPOINT_SECONDS,
    FULL_COPY_SECONDS,
    GENESIS,
    KEY_FILE,
    RUN_SECONDS,
    AuditError,
    AuditLog,
    content_digest,
    load_key,
)
from engine.state import StateStore, read_audit_counts, read_audit_runs
from tests.conftest import REPO, RunCli

RUNNER_KEY = signing.demo_key("audit runner")


class Clock:
    """A clock that moves ``step`` seconds per reading (set ``step`` to jump)."""

    def __init__(self, step: float = 1.0) -> None:
        self.now = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC)
        self.step = step

    def __call__(self) -> str:
        self.now += datetime.timedelta(seconds=self.step)
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(tmp_path / "state.db")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(tmp_path: Path, store: StateStore, clock: Clock) -> Iterator[AuditLog]:
    opened = AuditLog(
        tmp_path / "audit.jsonl", clock=clock, signer=RUNNER_KEY, ledger=store.audit_ledger()
    )
    yield opened
    opened.close()


_ticks = iter(range(1_000_000))


def decide(
    log: AuditLog,
    *,
    service: str = "frontend",
    tier: str = "approve",
    to: int = 6,
    reason: str = "cpu above scale_up_threshold_percent 80% at max_replicas 5",
    kind: str = "decision",
    decision_id: str | None = None,
) -> str:
    """Record one decision as the runner does (a new decision id every tick); return the id."""
    decision_id = decision_id or f"{service}-{next(_ticks)}"
    log.record(
        kind,
        service=service,
        blueprint={"name": service, "version": "1.0.0"},
        bundle_revision="rev1",
        decision_id=decision_id,
        operation={"type": "scale", "from": 5, "to": to},
        tier=tier,
        rules=["opsgate.decide.scaling.beyond_max"],
        reasons=[reason],
        blueprint_refs=["spec.scaling.max_replicas"],
        suggestion=None,
        actor="opsgate",
    )
    return decision_id


def tick(log: AuditLog, *record: Callable[[AuditLog], Any]) -> None:
    with log.tick():
        for one in record:
            one(log)


def lines(log: AuditLog) -> list[dict[str, Any]]:
    return list(log.events())


def kinds(log: AuditLog) -> list[str]:
    return [e["event"] for e in log.events()]


def decisions_made(log: AuditLog, runs: Any = ()) -> int:
    """Decisions the log stands for: a full copy is one, a repeat ``count``."""
    return sum(
        (e.get("repeat") or {}).get("count", 1)
        for e in log.expanded(runs)
        if e["event"] == "decision"
    )


def verify(log: AuditLog, store: StateStore) -> Any:
    return log.verify(
        public_key=RUNNER_KEY.public_key(),
        counts=store.audit_counts(),
        runs=store.audit_ledger().runs(),
    )


# --- what is written, and when --------------------------------------------------------


def test_identical_decisions_are_counted_and_written_once_as_a_run(
    log: AuditLog, store: StateStore
) -> None:
    ids = []
    for _ in range(10):
        with log.tick():
            ids.append(decide(log))
    assert kinds(log) == ["decision"]  # nine repeats are counted in the state, not written
    [run] = store.audit_ledger().runs()
    assert (run["count"], run["last_decision_id"]) == (9, ids[-1])
    log.close()
    full, repeated, _checkpoint = lines(log)
    assert repeated["event"] == "repeated"
    assert repeated["of"] == full["hash"]
    assert repeated["digest"] == content_digest(full)
    assert (repeated["count"], repeated["last_decision_id"]) == (9, ids[-1])
    assert repeated["first"] < repeated["last"]
    assert store.audit_ledger().runs() == []
    assert verify(log, store).ok
    assert decisions_made(log) == 10


def test_anything_changed_writes_the_full_copy_again(log: AuditLog) -> None:
    for reason in ("a", "a", "a", "b", "b", "a"):
        tick(log, lambda log, reason=reason: decide(log, reason=f"cpu {reason}"))
    log.close()
    written = [(e["event"], e.get("reasons") or e.get("count")) for e in lines(log)][:-1]
    assert written == [
        ("decision", ["cpu a"]),
        ("repeated", 2),  # written before the changed decision
        ("decision", ["cpu b"]),
        ("repeated", 1),
        ("decision", ["cpu a"]),  # the last full copy of its kind said b
    ]
    assert decisions_made(log) == 6


def test_a_tick_without_it_ends_the_run(log: AuditLog) -> None:
    tick(log, decide)
    tick(log, decide)
    tick(log, decide)
    tick(log)  # not decided this tick: the run ends, its line is written now
    assert kinds(log) == ["decision", "repeated"]
    tick(log, decide)  # again as before: a repeat of the same full copy, a new run
    log.close()
    first_run, second_run = [e for e in lines(log) if e["event"] == "repeated"]
    assert (first_run["count"], second_run["count"]) == (2, 1)
    assert first_run["of"] == second_run["of"]
    assert first_run["run"] != second_run["run"]
    assert decisions_made(log) == 4


def test_each_kind_of_change_and_tier_has_its_own_run(log: AuditLog) -> None:
    """The same resource allowed a step and asked approval for the whole in one tick: two runs."""
    for _ in range(5):
        tick(
            log,
            lambda log: decide(log, tier="allow", to=6),
            lambda log: decide(log, tier="approve", to=8),
            lambda log: decide(log, service="backend", to=6),
            lambda log: decide(log, kind="deferred", tier="allow", to=6),
        )
    log.close()
    assert kinds(log)[:4] == ["decision", "decision", "decision", "deferred"]
    assert [e["count"] for e in lines(log) if e["event"] == "repeated"] == [4, 4, 4, 4]
    assert decisions_made(log) == 15


def test_an_event_that_cites_a_repeat_ends_its_run_first(log: AuditLog, store: StateStore) -> None:
    """An approval or execution citing a decision id finds it as the last of a run."""
    tick(log, decide)
    cited = ""
    with log.tick():
        cited = decide(log)
        log.record("approval_requested", service="frontend", decision_id=cited, actor="opsgate")
    events = lines(log)
    assert [e["event"] for e in events] == ["decision", "repeated", "approval_requested"]
    assert events[1]["last_decision_id"] == cited
    assert verify(log, store).ok


def test_outside_a_tick_or_without_a_ledger_everything_is_written(
    tmp_path: Path, log: AuditLog
) -> None:
    decide(log)
    decide(log)  # `opsgate execute` and the other commands: no tick, no repeats
    assert kinds(log) == ["decision", "decision"]
    bare = AuditLog(tmp_path / "bare.jsonl", clock=Clock())
    for _ in range(3):
        tick(bare, decide)  # nothing would keep the count through a crash: no repeats
    assert kinds(bare) == ["decision"] * 3


def test_runs_are_written_hourly_and_the_full_copy_daily(
    log: AuditLog, clock: Clock, store: StateStore
) -> None:
    clock.step = 0  # a tick a minute, each at one moment
    for _ in range(int(FULL_COPY_SECONDS / 60) + 5):
        clock.now += datetime.timedelta(seconds=60)
        tick(log, decide)
    log.close()
    events = lines(log)
    runs = [e for e in events if e["event"] == "repeated"]
    full = [e for e in events if e["event"] == "decision"]
    assert len(full) == 2  # the full copy is written again once it is a day old
    assert len(runs) >= FULL_COPY_SECONDS / RUN_SECONDS  # an hour at most each
    assert all(
        datetime.datetime.fromisoformat(r["last"]) - datetime.datetime.fromisoformat(r["first"])
        <= datetime.timedelta(seconds=RUN_SECONDS)
        for r in runs
    )
    # a log that grows slowly is still signed at least hourly
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert len(checkpoints) >= FULL_COPY_SECONDS / CHECKPOINT_SECONDS - 1
    assert verify(log, store).ok
    assert decisions_made(log) == int(FULL_COPY_SECONDS / 60) + 5


def test_a_clock_that_goes_back_starts_a_new_run(
    log: AuditLog, clock: Clock, store: StateStore
) -> None:
    clock.step = 0
    for seconds in (60, 120, 180, 150, 210):  # the clock is set back 30 s after the third
        clock.now = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC)
        clock.now += datetime.timedelta(seconds=seconds)
        tick(log, decide)
    log.close()
    assert [e["count"] for e in lines(log) if e["event"] == "repeated"] == [2, 2]
    assert verify(log, store).ok
    assert decisions_made(log) == 5


def test_expanded_answers_what_the_full_log_answered(log: AuditLog, store: StateStore) -> None:
    ids = [decide(log)]
    for _ in range(3):
        with log.tick():
            ids.append(decide(log))
    with log.tick():
        pass
    for _ in range(2):
        with log.tick():
            ids.append(decide(log, service="backend"))
    # backend's run is still counted in the state: shown last, as not yet written
    expanded = list(log.expanded(store.audit_ledger().runs()))
    assert [(e["event"], e["service"], (e.get("repeat") or {}).get("count")) for e in expanded] == [
        ("decision", "frontend", None),
        ("decision", "frontend", None),  # the first tick's is full: outside a tick
        ("decision", "frontend", 2),
        ("decision", "backend", None),
        ("decision", "backend", 1),
    ]
    repeat = expanded[2]
    assert repeat["decision_id"] == ids[3]  # the last one, which later events may cite
    assert repeat["tier"] == "approve" and repeat["rules"] == ["opsgate.decide.scaling.beyond_max"]
    assert repeat["time"] == repeat["repeat"]["last"]
    assert expanded[4]["repeat"]["open"] is True
    assert "open" not in repeat["repeat"]


def test_prune_keeps_the_full_copy_a_kept_repeat_refers_to(
    log: AuditLog, clock: Clock, store: StateStore
) -> None:
    clock.step = 3600
    log.record("error", error="old and unrelated", actor="opsgate")
    for _ in range(6):
        tick(log, decide)
    log.close()
    # a cut-off after the full copy: it stays, with everything after it
    full_at = next(e["time"] for e in lines(log) if e["event"] == "decision")
    cutoff = datetime.datetime.fromisoformat(full_at) + datetime.timedelta(minutes=30)
    again = AuditLog(log.path, clock=clock, signer=RUNNER_KEY, ledger=store.audit_ledger())
    assert again.prune(cutoff) == 1
    assert kinds(again)[1] == "decision"
    assert again.verify(public_key=RUNNER_KEY.public_key(), counts=store.audit_counts()).ok
    assert decisions_made(again) == 6
    again.close()


# --- the attacks ------------------------------------------------------------------------


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def rechain(path: Path, edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Edit the events, then recompute every prev and hash (and each checkpoint's count and
    head), as an attacker's script would: only signatures and the repeats' references tell."""
    events = edit([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()])
    previous, out = GENESIS, []
    for number, event in enumerate(events):
        event.pop("hash", None)
        event["prev"] = previous
        if event.get("event") == "checkpoint":
            event["count"], event["head"] = number, previous
        event["hash"] = hashlib.sha256((previous + _canonical(event)).encode()).hexdigest()
        previous = event["hash"]
        out.append(_canonical(event) + "\n")
    path.write_text("".join(out), encoding="utf-8")


@pytest.fixture
def repeated(tmp_path: Path, store: StateStore) -> AuditLog:
    """A closed log: frontend decided 5 times, then backend 3 times, then signed."""
    log = AuditLog(
        tmp_path / "attacked.jsonl", clock=Clock(), signer=RUNNER_KEY, ledger=store.audit_ledger()
    )
    for _ in range(5):
        tick(log, decide)
    for _ in range(3):
        tick(log, lambda log: decide(log, service="backend"))
    log.close()
    # the frontend's run ends with the first tick without it, after the backend's full copy
    assert kinds(log) == ["decision", "decision", "repeated", "repeated", "checkpoint"]
    return log


def _at(index: int, **changes: Any) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def edit(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        events[index].update(changes)
        return events

    return edit


def test_a_repeat_count_edited_in_place_breaks_the_chain(
    repeated: AuditLog, store: StateStore
) -> None:
    text = repeated.path.read_text(encoding="utf-8").replace('"count":4', '"count":40', 1)
    repeated.path.write_text(text, encoding="utf-8")
    report = verify(repeated, store)
    assert (report.first_break, report.reason) == (3, "content does not match its hash")


def test_a_repeat_count_edited_with_a_recomputed_chain_fails_the_signature(
    repeated: AuditLog, store: StateStore
) -> None:
    rechain(repeated.path, _at(2, count=40))
    assert repeated.verify().ok  # the unkeyed chain and the reference hold: a count is a count
    report = verify(repeated, store)
    assert not report.ok
    assert "signature does not verify" in report.reason


def test_a_dropped_repeat_fails(repeated: AuditLog, store: StateStore) -> None:
    rechain(repeated.path, lambda events: [e for i, e in enumerate(events) if i != 2])
    report = verify(repeated, store)
    assert not report.ok
    assert "signature does not verify" in report.reason


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # at the other service's decision: what it says is not what the repeat says
        (
            lambda events: events[2].update(of=events[1]["hash"]) or events,
            "points at a different event",
        ),
        (
            lambda events: events[3].update(of=events[0]["hash"]) or events,
            "points at a different event",
        ),
        # at an event that is not there, or not before it
        (lambda events: events[2].update(of="0" * 64) or events, "is not before it in the log"),
        (
            lambda events: [events[1], events[2], events[0], *events[3:]],
            "is not before it in the log",
        ),
        # the same run written twice: counted twice
        (lambda events: [*events[:3], dict(events[2]), *events[3:]], "written twice"),
        (lambda events: events[2].update(count=0) or events, "not a number of repeats"),
        (lambda events: events[2].update(kind="deferred") or events, "points at a different event"),
    ],
    ids=[
        "at-another-service",
        "at-another-decision",
        "at-nothing",
        "at-a-later-event",
        "written-twice",
        "count-zero",
        "another-kind",
    ],
)
def test_a_repeat_that_points_wrong_fails_even_without_the_key(
    repeated: AuditLog,
    store: StateStore,
    edit: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    reason: str,
) -> None:
    rechain(repeated.path, edit)
    report = repeated.verify()  # no key: the references alone tell
    assert not report.ok
    assert reason in report.reason
    assert not verify(repeated, store).ok


def test_a_run_in_the_state_that_points_at_nothing_fails(log: AuditLog, store: StateStore) -> None:
    for _ in range(3):
        tick(log, decide)
    store.db.execute("UPDATE audit_runs SET of_hash = ?", ("f" * 64,))
    report = log.verify(counts=store.audit_counts(), runs=store.audit_ledger().runs())
    assert not report.ok
    assert "a run of repeats the state counts: its full copy is not" in report.problem


# --- killed ------------------------------------------------------------------------------

# A runner on the simulated cluster, whose policies answer the same every tick (the
# frontend forbidden a delete_pod, the backend deferred a scale): real Runner, executor,
# state and signed audit log. After each tick it says so and waits for the parent's word:
# "go", "change" (the frontend's decision changes next tick), or a SIGKILL. With "counting"
# it kills itself just after writing a run's line, before the state knows (the worst moment).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from engine.audit import KEY_FILE, AuditLog, runner_key
    from engine.blueprint import load_blueprints
    from engine.cluster.simulated import SimulatedCluster
    from engine.runner import Runner
    from engine.state import StateStore

    where, mode = Path(sys.argv[1]), sys.argv[2]
    blueprints = {b.name: b.effective for b in load_blueprints([Path("blueprints")]).blueprints}
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    state = StateStore(where / "state.db")
    key = runner_key(None, where / KEY_FILE, known=state.audit_counts().public_key)
    ledger = state.audit_ledger()
    if mode == "counting":
        appended = ledger.appended
        def appended_then_killed(*args, written=(), **kwargs):
            if written:
                os.kill(os.getpid(), signal.SIGKILL)
            return appended(*args, written=written, **kwargs)
        ledger.appended = appended_then_killed
    audit = AuditLog(where / "audit.jsonl", signer=key, ledger=ledger)
    audit.check()
    changed = False

    class Session:
        revision = "rev1"
        breaker = None

        def ensure_running(self):
            return None

        def enforce(self, request):
            raise AssertionError("nothing here is re-checked")

        def decide_all(self, observations):
            now = observations[0]["now"]
            frontend = {
                "id": f"frontend-{now}", "operation": {"type": "delete_pod", "name": "frontend-1"},
                "tier": "forbid", "rules": ["opsgate.govern.authority.forbidden"],
                "reasons": ["delete_pod is forbidden" + (" (changed)" if changed else "")],
                "blueprint_refs": ["governance.agent_authority.forbidden"], "suggestion": None,
            }
            backend = {
                "id": f"backend-{now}", "operation": {"type": "scale", "from": 2, "to": 3},
                "tier": "defer", "rules": ["opsgate.govern.safety.cooldown"],
                "reasons": ["within cooldown_seconds"],
                "blueprint_refs": ["spec.scaling.cooldown_seconds"], "suggestion": None,
            }
            return [
                {"service": "backend", "notes": [], "decisions": [backend]},
                {"service": "frontend", "notes": [], "decisions": [frontend]},
            ]

    runner = Runner(blueprints=blueprints, session=Session(), cluster=cluster, state=state,
                    audit=audit)
    ticks = 0
    while True:
        cluster.wait(30)
        runner.tick()
        ticks += 1
        print(f"tick {ticks}", flush=True)
        word = sys.stdin.readline().strip()
        if word == "change":
            changed = True
        elif word != "go":
            break
    audit.close()
    """
)


def _runner_until(state: Path, mode: str, words: list[str]) -> subprocess.Popen[str]:
    """Start the child runner and answer it ``words`` one tick at a time; return it running."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(state), mode],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    for number, word in enumerate(words, 1):
        assert child.stdout.readline().strip() == f"tick {number}", child.stderr
        child.stdin.write(word + "\n")
        child.stdin.flush()
    return child


def _killed(child: subprocess.Popen[str], *, tick: int | None) -> None:
    """SIGKILL the child once it reported ``tick`` (None: it kills itself), and reap it."""
    assert child.stdout is not None
    try:
        if tick is not None:
            assert child.stdout.readline().strip() == f"tick {tick}"
            child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL, child.stderr
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdin, child.stdout, child.stderr):
            if stream is not None:
                stream.close()


def _key_of(state: Path) -> Any:
    return load_key(state / KEY_FILE)


def _restart(state: Path) -> None:
    """A new runner's first tick, then a clean stop (here: its audit log alone)."""
    store = StateStore(state / "state.db")
    restarted = AuditLog(state / "audit.jsonl", signer=_key_of(state), ledger=store.audit_ledger())
    restarted.check()
    with restarted.tick():
        pass
    restarted.close()
    store.close()


def _private(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return state


def _counted(state: Path) -> tuple[Any, int]:
    """What verify says from the files alone, and how many decisions the log stands for."""
    log = AuditLog(state / "audit.jsonl")
    runs = read_audit_runs(state / "state.db")
    report = log.verify(
        public_key=_key_of(state).public_key(),
        counts=read_audit_counts(state / "state.db"),
        runs=runs,
    )
    return report, decisions_made(log, runs)


def test_a_runner_killed_between_ticks_loses_no_repeat(tmp_path: Path, run_cli: RunCli) -> None:
    state = _private(tmp_path)
    ticks = 7
    _killed(_runner_until(state, "between", ["go"] * (ticks - 1)), tick=ticks)
    report, decisions = _counted(state)
    assert report.ok, report
    # four full events of the first tick; every later one counted in the state, none lost
    assert (report.events, report.open_runs, report.open_repeats) == (4, 4, 4 * (ticks - 1))
    assert decisions == 2 * ticks
    shown = json.loads(run_cli("audit", "show", "--state-dir", str(state), "--json").stdout)
    assert sum(e.get("repeat", {}).get("count", 1) for e in shown if e["event"] == "decision") == (
        2 * ticks
    )
    assert all(e["repeat"]["open"] for e in shown if "repeat" in e)
    checked = run_cli("audit", "verify", "--state-dir", str(state))
    assert checked.exit_code == 0, checked.stderr
    said = " ".join(checked.stderr.split())
    assert f"{4 * (ticks - 1)} repeats in 4 runs are counted in state.db and not yet" in said
    strict = run_cli("audit", "verify", "--state-dir", str(state), "--strict")
    assert strict.exit_code == 1
    _restart(state)
    report, decisions = _counted(state)
    assert report.ok, report
    assert (report.open_runs, report.repeats, decisions) == (0, 4 * (ticks - 1), 2 * ticks)
    recovered = [e for e in AuditLog(state / "audit.jsonl").events() if e["event"] == "repeated"]
    assert len(recovered) == 4 and all(e["recovered"] for e in recovered)
    checked = run_cli("audit", "verify", "--state-dir", str(state), "--strict")
    assert checked.exit_code == 0, checked.stderr


def test_a_runner_killed_after_writing_a_run_before_counting_it_counts_it_once(
    tmp_path: Path, run_cli: RunCli
) -> None:
    state = _private(tmp_path)
    # four ticks alike, then the frontend's decision changes: its run's line is written,
    # then the changed decision, and the runner dies before the state knows of either
    _killed(_runner_until(state, "counting", ["go", "go", "go", "change"]), tick=None)
    report, decisions = _counted(state)
    assert report.ok, report
    assert report.repeats == 3  # the frontend's run: in the log, and still in the state
    assert [r["count"] for r in read_audit_runs(state / "state.db")].count(3) == 2
    assert report.open_runs == 3  # the backend's two, and the frontend's blocks
    assert decisions == 2 * 5  # five ticks: none counted twice, none lost
    _restart(state)
    report, decisions = _counted(state)
    assert report.ok, report
    assert report.uncounted == 2  # the run's line and the changed decision, signed as found
    assert (report.open_runs, decisions) == (0, 10)
    assert read_audit_runs(state / "state.db") == []
    lines_of_runs = [e["run"] for e in AuditLog(state / "audit.jsonl").events() if "run" in e]
    assert len(lines_of_runs) == len(set(lines_of_runs))
    checked = run_cli("audit", "verify", "--state-dir", str(state))
    assert checked.exit_code == 0, checked.stderr


def test_audit_show_expands_repeats_and_filters_them(tmp_path: Path, run_cli: RunCli) -> None:
    state = _private(tmp_path)
    child = _runner_until(state, "between", ["go", "go", "go", "go", "stop"])
    assert child.wait(timeout=60) == 0, child.stderr
    for stream in (child.stdin, child.stdout, child.stderr):
        if stream is not None:
            stream.close()
    checked = run_cli("audit", "verify", "--state-dir", str(state), "--strict")
    assert checked.exit_code == 0, checked.stderr
    assert "(and 16 repeats in them)" in " ".join(checked.stderr.split())

    def shown(*args: str) -> list[dict[str, Any]]:
        result = run_cli("audit", "show", "--state-dir", str(state), "--json", *args)
        assert result.exit_code == 0, result.stderr
        events: list[dict[str, Any]] = json.loads(result.stdout)
        return events

    everything = shown()
    assert [(e["event"], e.get("service"), e.get("repeat", {}).get("count")) for e in everything][
        :8
    ] == [
        ("decision", "backend", None),
        ("deferred", "backend", None),
        ("decision", "frontend", None),
        ("blocked", "frontend", None),
        ("decision", "backend", 4),
        ("deferred", "backend", 4),
        ("decision", "frontend", 4),
        ("blocked", "frontend", 4),
    ]
    last = everything[6]
    assert last["decision_id"] == "frontend-2026-02-10T12:02:30Z"  # the fifth tick's
    assert last["time"] == last["repeat"]["last"]
    assert last["reasons"] == ["delete_pod is forbidden"]
    assert {e["service"] for e in shown("--service", "backend") if "service" in e} == {"backend"}
    assert [e["event"] for e in shown("--as-written")] == [
        "decision",
        "deferred",
        "decision",
        "blocked",
        "repeated",
        "repeated",
        "repeated",
        "repeated",
        "checkpoint",
    ]
    # a run is shown when its last repeat is at or after --since
    since = [(e["event"], e.get("service")) for e in shown("--since", last["time"])]
    assert since == [("decision", "frontend"), ("blocked", "frontend"), ("checkpoint", None)]
    text = " ".join(run_cli("audit", "show", "--state-dir", str(state)).stdout.split())
    assert "delete_pod is forbidden (repeated 4 times from 20" in text


def test_a_failing_state_refuses_the_repeat(log: AuditLog, store: StateStore) -> None:
    """A repeat that can't be counted is an audit failure: the tick acts on nothing."""
    tick(log, decide)
    store.db.execute("DROP TABLE audit_runs")
    with pytest.raises(AuditError, match="could not be counted in the state"), log.tick():
        decide(log)
