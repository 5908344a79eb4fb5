"""The runner process killed (SIGKILL) at each step boundary, then a new runner recovers.

A child process runs one operation with a hook that saves the simulated
cluster (the cluster outlives the runner, as a real one does) and kills the
process at the chosen boundary. A new runner then finishes the journal: the
service ends at its old state or the intended one, nothing is applied twice,
and no journal entry stays open.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.audit import AuditLog
from engine.blueprint import load_blueprints
from engine.cluster.simulated import SimulatedCluster
from engine.policy import PolicySession
from engine.runner import Runner
from engine.state import StateStore
from tests.conftest import REPO

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from engine.audit import AuditLog
    from engine.blueprint import load_blueprints
    from engine.cluster.simulated import SimulatedCluster
    from engine.execute import Context, Executor
    from engine.cluster import Target
    from engine.policy import PolicySession
    from engine.state import StateStore

    where, boundary = Path(sys.argv[1]), sys.argv[2]
    blueprints = {b.name: b.effective for b in load_blueprints([Path("blueprints")]).blueprints}
    cluster = SimulatedCluster.load(where / "cluster.json")
    state = StateStore(where / "state.db")

    def die():
        cluster.save(where / "cluster.json")
        os.kill(os.getpid(), signal.SIGKILL)

    apply, wait, undo = cluster.apply, cluster.wait, cluster.undo
    if boundary == "after_journal":
        cluster.apply = lambda target, operation: die()
    elif boundary == "after_change":
        def apply_then_die(target, operation):
            apply(target, operation)
            die()
        cluster.apply = apply_then_die
    elif boundary == "during_verification":
        cluster.wait = lambda seconds: die()
    elif boundary == "during_rollback":
        cluster.undo = lambda target, applied: die()
    with PolicySession(Path("blueprints")) as session:
        executor = Executor(cluster, state, AuditLog(where / "audit.jsonl"), session.enforce)
        target = Target("frontend", "shop", "frontend")
        context = Context(target, blueprints["frontend"], session.revision)
        if boundary == "during_rollback":
            operation = {"type": "scale", "from": 3, "to": 2}
        else:
            operation = {"type": "scale", "from": 2, "to": 3}
        decision = {"id": "d1", "operation": operation, "tier": "allow", "rules": [], "reasons": []}
        executor.execute(context, decision)
    sys.exit(3)  # not killed: the boundary was never reached
    """
)


@pytest.mark.parametrize(
    ("boundary", "replicas_after", "status"),
    [
        ("after_journal", 2, "failed"),  # never applied: stays at the old state
        ("after_change", 3, "completed"),  # applied once, verified on recovery
        ("during_verification", 3, "completed"),
        ("during_rollback", 3, "rolled_back"),  # the bad change is undone once
    ],
)
def test_killed_at_a_step_boundary(
    tmp_path: Path, boundary: str, replicas_after: int, status: str
) -> None:
    blueprints = {b.name: b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints}
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    if boundary == "during_rollback":
        from engine.cluster import Target

        cluster.apply(Target("frontend", "shop", "frontend"), {"type": "scale", "to": 3})
        cluster.wait(60)
    cluster.set_load("frontend", rps=309)  # at 2 replicas p95 misses its target: verification fails
    cluster.save(tmp_path / "cluster.json")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), boundary],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-1500:]

    state = StateStore(tmp_path / "state.db")
    assert len(state.journal(unfinished=True)) == 1
    cluster = SimulatedCluster.load(tmp_path / "cluster.json")
    with PolicySession(REPO / "blueprints") as session:
        runner = Runner(
            blueprints=blueprints,
            session=session,
            cluster=cluster,
            state=state,
            audit=AuditLog(tmp_path / "audit.jsonl"),
        )
        assert [outcome for _, outcome in runner.recover()] == [status]
    assert cluster.service("frontend")["replicas"] == replicas_after
    assert state.journal(unfinished=True) == []
    assert AuditLog(tmp_path / "audit.jsonl").verify().ok
    state.close()


class _Killed(BaseException):
    """Stands in for SIGKILL in-process: nothing after it runs."""


def test_rollback_resumed_for_a_change_whose_inverse_is_known_only_after_it(
    tmp_path: Path,
) -> None:
    # a configmap's old values are known once the change is made, not up front: the
    # journal's rolling_back mark must still carry them, or the resumed rollback has nothing
    from engine.cluster import Applied, Target
    from engine.execute import Context, Executor

    blueprints = {b.name: b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints}
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    target = Target("frontend", "shop", "frontend")
    state = StateStore(tmp_path / "state.db")
    executor = Executor(cluster, state, AuditLog(tmp_path / "audit.jsonl"), lambda _: {})
    context = Context(target, blueprints["frontend"], "rev")
    operation = {"type": "update_configmap", "name": "frontend-config", "changes": {"LOG": "x"}}
    decision = {"id": "d1", "operation": operation, "tier": "allow", "rules": [], "reasons": []}
    entry = state.journal_begin("d1", "frontend", operation, None, cluster.now())
    applied = cluster.apply(target, operation)
    state.journal_mark(entry, "applied", cluster.now(), {"inverse": applied.inverse})

    def killed(*_: object) -> None:
        raise _Killed

    cluster.undo = killed  # type: ignore[method-assign]
    with pytest.raises(_Killed):
        executor._roll_back(context, decision, entry, Applied(operation, applied.inverse))
    del cluster.undo
    [open_entry] = state.journal(unfinished=True)
    assert open_entry.status == "rolling_back"
    assert executor.recover(open_entry, context) == "rolled_back"
    assert "LOG" not in cluster.service("frontend")["configmaps"]["frontend-config"]
    state.close()


@pytest.mark.parametrize(
    ("inverse", "breaker_open"),
    [
        ({"type": "scale", "to": 0}, False),
        ({"type": "delete_deployment", "name": "x"}, False),
        ({"type": "scale", "to": 3}, True),
    ],
)
def test_recovery_never_runs_what_the_executor_refuses(
    tmp_path: Path, inverse: dict[str, object], breaker_open: bool
) -> None:
    """Red team: a rolling_back row written into state.db with inverse scale-to-0 scaled the
    service to 0 on the next start, breaker open or not. The journal is data, not a verdict."""
    from engine.cluster import Target
    from engine.execute import Context, Executor

    blueprints = {b.name: b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints}
    cluster = SimulatedCluster.from_blueprints(list(blueprints.values()), seed=3)
    target = Target("frontend", "shop", "frontend")
    state = StateStore(tmp_path / "state.db")
    if breaker_open:
        state.open_breaker("frontend", cluster.now(), "failures")
    executor = Executor(cluster, state, AuditLog(tmp_path / "audit.jsonl"), lambda _: {})
    operation = {"type": "scale", "to": 4}
    entry = state.journal_begin("d1", "frontend", operation, inverse, cluster.now())
    state.journal_mark(entry, "rolling_back", cluster.now(), {"inverse": inverse})
    [open_entry] = state.journal(unfinished=True)
    status = executor.recover(open_entry, Context(target, blueprints["frontend"], "rev"))
    assert status == "rollback_failed"
    assert cluster.service("frontend")["replicas"] == 2
    assert state.service_state("frontend")["breaker_open"] is True
    state.close()
