"""The runner end to end on the simulated cluster with the real OPA, and its faults.

Assertions read the audit log, the state store and the cluster, never the
printed text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.approval import ApprovalError, Approvals, claims
from engine.audit import AuditError, AuditLog
from engine.blueprint import load_blueprints
from engine.cluster import Applied, Target
from engine.cluster.simulated import SimulatedCluster
from engine.errors import PolicyError
from engine.execute import Context, Executor
from engine.opa import OpaServer
from engine.policy import PolicySession, RemoteOpa
from engine.runner import Runner, TickReport
from engine.signing import epoch as signing_epoch
from engine.state import StateError, StateStore
from tests.conftest import MALLORY, REPO, SRE_LEAD
from tests.opa.fake_opa import Reply, fake_opa
from tests.opa.test_gateway import FAULTS

# the repo's blueprints; the module's session replaces them by the keyed copy it serves
BLUEPRINTS = {b.name: b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints}
FRONTEND = Target("frontend", "shop", "frontend")
BACKEND = Target("backend", "shop", "backend")


@pytest.fixture(scope="module")
def session(signed_blueprints: Path) -> Iterator[PolicySession]:
    """One local OPA on the repo's blueprints (sre-lead keyed) for this module."""
    loaded = load_blueprints([signed_blueprints]).blueprints
    BLUEPRINTS.update({b.name: b.effective for b in loaded})
    with PolicySession(signed_blueprints) as running:
        yield running


class World:
    """A cluster, state store, audit log and runner in a temporary directory."""

    def __init__(self, directory: Path, session: PolicySession) -> None:
        self.cluster = SimulatedCluster.from_blueprints(list(BLUEPRINTS.values()), seed=3)
        self.state = StateStore(directory / "state.db")
        self.audit = AuditLog(directory / "audit.jsonl")
        self.session = session
        self.runner = Runner(
            blueprints=BLUEPRINTS,
            session=session,
            cluster=self.cluster,
            state=self.state,
            audit=self.audit,
        )

    def events(self, kind: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.audit.events()
            if (kind is None or e["event"] == kind)
            and (service is None or e.get("service") == service)
        ]

    def replicas(self, service: str) -> int:
        replicas: int = self.cluster.service(service)["replicas"]
        return replicas


@pytest.fixture
def world(tmp_path: Path, session: PolicySession) -> Iterator[World]:
    built = World(tmp_path, session)
    yield built
    built.state.close()


def test_quiet_cluster_needs_nothing(world: World) -> None:
    report = world.runner.tick()
    assert (report.decisions, report.errors) == ([], [])
    assert world.audit.verify().ok


def _scaling(results: list[Any]) -> list[Any]:
    return [r for r in results if r.operation["type"] == "scale"]


def test_autonomous_scale_up(world: World) -> None:
    world.cluster.set_load("frontend", rps=309)
    report = world.runner.tick()
    [result] = _scaling(report.results)
    assert (result.outcome, result.verification and result.verification.outcome) == (
        "succeeded",
        "pass",
    )
    assert world.replicas("frontend") == 3
    decision = world.events("decision", "frontend")[0]
    assert decision["operation"] == {"type": "scale", "from": 2, "to": 3}
    assert decision["tier"] == "allow"
    assert "spec.scaling.scale_up_threshold_percent" in decision["blueprint_refs"]
    kinds = [
        e["event"] for e in world.events(service="frontend") if e["operation"]["type"] == "scale"
    ]
    assert kinds == ["decision", "execution_started", "execution_succeeded", "verification_passed"]
    passed = world.events("verification_passed")[0]["verification"]
    cpu = next(c for c in passed["checks"] if c["name"] == "utilization")["observed"]
    assert 55 <= cpu <= 60
    assert world.state.service_state("frontend")["last_operation_at"] is not None
    assert world.audit.verify().ok


def test_cooldown_defers_the_next_operation(world: World) -> None:
    world.cluster.set_load("frontend", rps=309)
    world.runner.tick()
    world.cluster.set_load("frontend", rps=480)
    world.cluster.wait(30)
    report = world.runner.tick()
    assert [d["tier"] for d in report.decisions if d["operation"]["type"] == "scale"] == ["defer"]
    assert {d["tier"] for d in report.decisions if d["tier"] != "approve"} == {"defer"}
    assert world.replicas("frontend") == 3


def _backend_at_max(world: World) -> None:
    world.cluster.apply(BACKEND, {"type": "scale", "to": 3})
    world.cluster.wait(30)
    world.cluster.set_load("backend", rps=1275)  # 85%: a 4th replica


def _sign(request: Any, signer: Any, reason: str, now: str, purpose: str = "approve") -> str:
    return str(signer.statement(claims(request, purpose, now, reason)))


def test_approval_workflow(world: World) -> None:
    _backend_at_max(world)
    report = world.runner.tick()
    [request] = [r for r in report.requested if r.operation["type"] == "scale"]
    assert request.operation == {"type": "scale", "from": 3, "to": 4}
    assert request.requester == {"kind": "runner", "name": "opsgate"}
    assert "needs 4 replicas, above max_replicas 3" in request.reasons
    assert world.replicas("backend") == 3
    workflow = Approvals(StateStore(world.state.path), world.audit)  # another process's view
    now = world.cluster.now()
    with pytest.raises(ApprovalError, match="may not answer"):
        workflow.answer(request.id, grant=True, by="mallory", reason="why not", now=now)
    # a name with a key in governance is not enough: the attack of typing a name
    with pytest.raises(ApprovalError, match="sre-lead has a public key"):
        workflow.answer(request.id, grant=True, by="sre-lead", reason="x", now=now)
    with pytest.raises(ApprovalError, match="not an approver with a public key"):
        workflow.answer_signed(_sign(request, MALLORY, "why not", now), now=now)
    with pytest.raises(ApprovalError, match="justification"):
        workflow.answer_signed(_sign(request, SRE_LEAD, "", now), now=now)
    token = _sign(request, SRE_LEAD, "launch traffic", now)
    workflow.answer_signed(token, now=now)
    workflow.state.close()
    world.cluster.wait(30)
    report = world.runner.tick()
    assert [r.outcome for r in _scaling(report.results)] == ["succeeded"]
    assert world.replicas("backend") == 4
    granted = world.events("approval_granted")[0]
    assert (granted["actor"], granted["justification"]) == ("sre-lead", "launch traffic")
    assert granted["signed_answer"] == token  # re-verifiable later with the public key alone
    started = [
        e for e in world.events("execution_started", "backend") if e["operation"]["type"] == "scale"
    ]
    assert [e["actor"] for e in started] == ["sre-lead"]
    assert world.state.approval(request.id).status == "executed"  # type: ignore[union-attr]


def test_name_only_approval_never_executes(world: World) -> None:
    # orders-oncall is listed by name only: anyone could type it, so it can't approve a run
    _backend_at_max(world)
    [request] = [r for r in world.runner.tick().requested if r.operation["type"] == "scale"]
    world.runner.approvals.answer(
        request.id, grant=True, by="orders-oncall", reason="typed", now=world.cluster.now()
    )
    world.cluster.wait(30)
    report = world.runner.tick()
    [result] = _scaling(report.results)
    assert result.outcome == "awaiting_approval"
    assert "given by name only" in result.detail
    assert world.replicas("backend") == 3
    assert world.events("approval_refused", "backend")
    started = world.events("execution_started", "backend")
    assert [e for e in started if e["operation"]["type"] == "scale"] == []


def test_unanswered_approval_expires_and_nothing_runs(world: World) -> None:
    _backend_at_max(world)
    [request] = [r for r in world.runner.tick().requested if r.operation["type"] == "scale"]
    world.cluster.wait(1801)  # backend's timeout_seconds is 1800
    world.runner.tick()
    assert world.state.approval(request.id).status == "expired"  # type: ignore[union-attr]
    assert world.events("approval_expired")[0]["approval_id"] == request.id
    assert world.replicas("backend") == 3
    assert [
        e for e in world.events("execution_started", "backend") if e["operation"]["type"] == "scale"
    ] == []


def test_rejected_approval_never_runs(world: World) -> None:
    _backend_at_max(world)
    [request] = [r for r in world.runner.tick().requested if r.operation["type"] == "scale"]
    world.runner.approvals.answer(
        request.id, grant=False, by="orders-oncall", reason="no", now=world.cluster.now()
    )
    world.runner.tick()
    assert world.replicas("backend") == 3


def _scale_requests(report: Any) -> list[Any]:
    return [r for r in report.requested if r.operation["type"] == "scale"]


def test_a_request_is_kept_while_the_decision_holds_and_superseded_when_it_moves(
    world: World,
) -> None:
    _backend_at_max(world)
    [first] = _scale_requests(world.runner.tick())
    assert first.operation["to"] == 4
    world.cluster.wait(30)
    assert _scale_requests(world.runner.tick()) == []  # the same decision: the same request
    # the load grows: 6 replicas are needed now, 50% more than the 4 asked
    world.cluster.set_load("backend", rps=1900)
    world.cluster.wait(30)
    report = world.runner.tick()
    [second] = _scale_requests(report)
    assert second.operation["to"] == 6
    assert second.supersedes == first.id
    assert world.state.approval(first.id).status == "superseded"  # type: ignore[union-attr]
    [event] = world.events("approval_superseded", "backend")
    assert event["approval_id"] == first.id
    assert "moved materially" in event["reasons"][0]
    requested = world.events("approval_requested", "backend")
    assert [e["approval_id"] for e in requested] == [first.id, second.id]
    assert requested[1]["supersedes"] == first.id
    assert [a.id for a in world.state.approvals(status="pending")] == [second.id]
    assert world.audit.verify().ok


def test_a_rejected_request_is_not_asked_again_until_a_day_passed(world: World) -> None:
    _backend_at_max(world)
    [request] = _scale_requests(world.runner.tick())
    world.runner.approvals.answer(
        request.id, grant=False, by="orders-oncall", reason="not now", now=world.cluster.now()
    )
    world.cluster.wait(30)
    report = world.runner.tick()
    assert _scale_requests(report) == []
    assert any("not asked again" in note and request.id in note for note in report.notes)
    # a decision that moved only a little is the same ask
    world.cluster.set_load("backend", rps=1300)
    world.cluster.wait(30)
    assert _scale_requests(world.runner.tick()) == []
    world.cluster.wait(24 * 3600)
    [again] = _scale_requests(world.runner.tick())
    assert again.id != request.id
    assert again.operation == request.operation
    assert world.replicas("backend") == 3


def test_superseding_with_a_change_refused_long_ago_asks_anew(world: World) -> None:
    # the new ask's id is that of a request refused more than a day ago: it is filed afresh,
    # not answered with the old, closed one (which would leave nothing pending)
    _backend_at_max(world)
    world.cluster.set_load("backend", rps=2550)  # 170% at 3 pods: 8 needed
    [old] = _scale_requests(world.runner.tick())
    world.runner.approvals.answer(
        old.id, grant=False, by="orders-oncall", reason="no", now=world.cluster.now()
    )
    world.cluster.wait(24 * 3600 + 60)
    world.cluster.set_load("backend", rps=1800)  # 120%: 6 needed
    [six] = _scale_requests(world.runner.tick())
    assert six.operation["to"] == 6
    world.cluster.wait(30)
    world.cluster.set_load("backend", rps=2550)
    [eight] = _scale_requests(world.runner.tick())
    assert eight.operation["to"] == 8 and eight.id != old.id
    assert eight.supersedes == six.id
    assert [a.id for a in world.state.approvals(status="pending")] == [eight.id]


def _executor(world: World) -> tuple[Executor, Context]:
    return world.runner.executor, world.runner.context("frontend")


def _decision(operation: dict[str, Any], tier: str = "allow") -> dict[str, Any]:
    return {"id": "test", "operation": operation, "tier": tier, "rules": ["r"], "reasons": ["test"]}


def test_forbid_never_executes_whatever_the_caller_says(world: World) -> None:
    executor, ctx = _executor(world)
    result = executor.execute(ctx, _decision({"type": "scale", "to": 3}, tier="forbid"))
    assert result.outcome == "blocked"
    # a caller claiming allow for a forbidden operation is stopped by the re-check
    result = executor.execute(ctx, _decision({"type": "delete_deployment", "name": "frontend"}))
    assert (result.outcome, result.tier) == ("blocked", "forbid")
    assert world.replicas("frontend") == 2
    assert len(world.events("blocked")) == 2


def test_a_deferred_decision_waits_in_the_executor(world: World) -> None:
    # every tier has one home: the executor defers a deferred decision without asking again
    executor, ctx = _executor(world)
    executor.recheck = lambda request: pytest.fail("a deferred decision is not re-checked")
    result = executor.execute(ctx, _decision({"type": "scale", "to": 3}, tier="defer"))
    assert (result.outcome, result.tier) == ("deferred", "defer")
    assert world.replicas("frontend") == 2
    assert [e["tier"] for e in world.events("deferred")] == ["defer"]


def test_approve_without_granted_approval_waits(world: World) -> None:
    executor, ctx = _executor(world)
    result = executor.execute(ctx, _decision({"type": "scale", "to": 9}))
    assert result.outcome == "awaiting_approval"
    assert world.replicas("frontend") == 2


def test_rollback_on_verification_failure(world: World) -> None:
    world.cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    world.cluster.set_load("frontend", rps=309)
    world.cluster.wait(60)
    executor, ctx = _executor(world)
    result = executor.execute(ctx, _decision({"type": "scale", "from": 3, "to": 2}))
    assert result.outcome == "rolled_back"
    assert "latency" in result.detail
    assert world.replicas("frontend") == 3
    failed = world.events("verification_failed")[0]["verification"]
    latency = next(c for c in failed["checks"] if c["name"] == "latency")
    assert latency["passed"] is False and latency["observed"] > 250
    assert [e["event"] for e in world.events("rollback_succeeded")] == ["rollback_succeeded"]
    assert world.state.service_state("frontend")["consecutive_failures"] == 1


def test_breaker_opens_after_threshold_and_forbids(world: World) -> None:
    executor, ctx = _executor(world)
    world.cluster.set_load("frontend", rps=309)
    for _ in range(3):
        world.cluster.apply(FRONTEND, {"type": "scale", "to": 3})
        world.cluster.wait(301)  # past the cooldown
        executor.execute(ctx, _decision({"type": "scale", "from": 3, "to": 2}))
    assert world.state.service_state("frontend")["breaker_open"] is True
    assert len(world.events("breaker_opened")) == 1
    world.cluster.wait(301)
    result = executor.execute(ctx, _decision({"type": "scale", "to": 4}))
    assert (result.outcome, result.tier) == ("blocked", "forbid")


def test_the_policies_decide_when_the_breaker_opens(world: World) -> None:
    # Python only counts: a policy that opens at the first failure is obeyed at once
    executor, ctx = _executor(world)
    asked = []

    def strict_breaker(request: dict[str, Any]) -> Any:
        asked.append(request)
        return {"service": "frontend", "bundle_revision": "r", "open": True, "reason": "strict"}

    executor.breaker = strict_breaker
    world.cluster.inject("frontend", "apply_errors", 1)
    result = executor.execute(ctx, _decision({"type": "scale", "from": 2, "to": 3}))
    assert result.breaker_opened is True
    assert asked[0]["state"]["consecutive_failures"] == 1
    assert world.events("breaker_opened")[0]["reason"].startswith("strict; last: ")
    assert world.state.service_state("frontend")["breaker_open"] is True


def test_without_a_breaker_answer_the_count_still_forbids(world: World) -> None:
    # OPA fails when asked about the breaker: nothing is recorded, the failure is
    # audited, and the next verdict reads the count itself
    executor, ctx = _executor(world)

    def failing(_: dict[str, Any]) -> Any:
        raise PolicyError("OPA timed out")

    executor.breaker = failing
    for _ in range(3):
        world.cluster.inject("frontend", "apply_errors", 1)
        world.cluster.wait(301)
        executor.execute(ctx, _decision({"type": "scale", "from": 2, "to": 3}))
    assert world.state.service_state("frontend") == {
        "last_operation_at": None,
        "consecutive_failures": 3,
        "breaker_open": False,
    }
    assert any("breaker question failed" in e["error"] for e in world.events("error"))
    world.cluster.wait(301)
    result = executor.execute(ctx, _decision({"type": "scale", "to": 3}))
    assert (result.outcome, result.tier) == ("blocked", "forbid")
    assert world.replicas("frontend") == 2


def test_cluster_error_during_execution_counts_and_rolls_back(world: World) -> None:
    world.cluster.inject("frontend", "apply_errors", 1)
    executor, ctx = _executor(world)
    result = executor.execute(ctx, _decision({"type": "scale", "from": 2, "to": 3}))
    assert result.outcome == "rolled_back"
    assert world.events("execution_failed")[0]["status"] == 500
    assert world.events("rollback_started")
    assert world.state.service_state("frontend")["consecutive_failures"] == 1
    assert world.replicas("frontend") == 2


def test_failed_rollback_halts_the_service(world: World) -> None:
    world.cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    world.cluster.set_load("frontend", rps=309)
    world.cluster.wait(60)
    executor, ctx = _executor(world)
    original_undo = world.cluster.undo

    def broken_undo(target: Target, applied: Applied) -> None:
        world.cluster.inject("frontend", "apply_errors", 1)
        original_undo(target, applied)

    world.cluster.undo = broken_undo  # type: ignore[method-assign]
    result = executor.execute(ctx, _decision({"type": "scale", "from": 3, "to": 2}))
    assert result.outcome == "rollback_failed"
    assert world.state.service_state("frontend")["breaker_open"] is True
    assert "service halted" in world.events("breaker_opened")[0]["reason"]
    assert [e.status for e in world.state.journal()] == ["rollback_failed"]


def test_dry_run_changes_nothing(world: World, session: PolicySession) -> None:
    runner = Runner(
        blueprints=BLUEPRINTS,
        session=session,
        cluster=world.cluster,
        state=world.state,
        audit=world.audit,
        dry_run=True,
    )
    world.cluster.set_load("frontend", rps=309)
    report = runner.tick()
    assert {r.outcome for r in report.results} == {"planned"}
    assert world.replicas("frontend") == 2
    assert world.events("dry_run")


def test_dry_run_is_read_from_the_fresh_verdict(world: World) -> None:
    # the blueprint says nothing of a dry run; the policies' verdict does: it is obeyed
    executor, ctx = _executor(world)
    assert ctx.blueprint["governance"]["safety"]["dry_run"] is False
    asked = executor.recheck
    executor.recheck = lambda request: {**asked(request), "dry_run": True}
    result = executor.execute(ctx, _decision({"type": "scale", "to": 3}))
    assert result.outcome == "planned"
    assert world.replicas("frontend") == 2
    assert world.events("dry_run")


def test_unwritable_audit_log_means_nothing_is_executed(
    world: World, session: PolicySession
) -> None:
    runner = Runner(
        blueprints=BLUEPRINTS,
        session=session,
        cluster=world.cluster,
        state=world.state,
        audit=AuditLog(Path("/dev/full")),
    )
    world.cluster.set_load("frontend", rps=309)
    with pytest.raises(AuditError):
        runner.tick()
    assert world.replicas("frontend") == 2
    assert world.state.journal() == []


def test_opa_killed_mid_run_is_restarted_and_audited(tmp_path: Path) -> None:
    """Round one: OPA killed during a run was never restarted. Now the next tick restarts it
    (audited) and goes on; while it can't be restarted, nothing is executed."""
    with PolicySession(REPO / "blueprints") as own:
        built = World(tmp_path, own)
        built.cluster.set_load("frontend", rps=309)
        assert own._server is not None and own._server.process is not None
        first = own._server.pid
        own._server.process.kill()
        own._server.process.wait()
        report = built.runner.tick()
        assert report.errors == []
        assert any("restarted" in note for note in report.notes)
        assert own._server.pid != first
        [restarted] = built.events("opa_restarted")
        assert "restarted it" in restarted["reason"]
        assert [r.outcome for r in _scaling(report.results)] == ["succeeded"]
        assert built.replicas("frontend") == 3
        built.state.close()


def test_opa_that_will_not_restart_executes_nothing(tmp_path: Path) -> None:
    with PolicySession(REPO / "blueprints") as own:
        built = World(tmp_path, own)
        built.cluster.set_load("frontend", rps=309)
        server = own._server
        assert isinstance(server, OpaServer) and server.process is not None
        server.process.kill()
        server.process.wait()
        server.bundle = tmp_path / "gone.tar.gz"  # the restart fails
        for _ in range(3):
            report = built.runner.tick()
            assert report.results == []
            assert any("OPA" in e for e in report.errors)
        assert built.replicas("frontend") == 2
        assert "next attempt in" in built.events("error")[0]["error"]
        built.state.close()


def test_fail_closed_answers_never_execute(tmp_path: Path, session: PolicySession) -> None:
    with fake_opa() as opa:
        opa.revision = session.revision
        remote = PolicySession(
            session.blueprints, remote=RemoteOpa(url=opa.url, token="t", insecure=True), timeout=0.5
        )
        with remote:
            built = World(tmp_path, remote)
            built.cluster.set_load("frontend", rps=309)
            built.cluster.set_load("report-worker", rps=900)
            for i in range(1000):
                opa.reply = FAULTS[i % len(FAULTS)][1]
                report = built.runner.tick()
                assert report.results == []
            assert built.replicas("frontend") == 2
            assert built.state.journal() == []
            assert len(built.events("error")) == 1000
            built.state.close()


def test_decide_all_answer_with_wrong_count_is_refused(
    tmp_path: Path, session: PolicySession
) -> None:
    with fake_opa() as opa:
        opa.revision = session.revision
        opa.reply = Reply(body={"result": {"bundle_revision": "x", "services": [], "notes": []}})
        remote = PolicySession(
            session.blueprints, remote=RemoteOpa(url=opa.url, token="t", insecure=True)
        )
        with remote, pytest.raises(PolicyError, match="0 documents for 1"):
            remote.decide_all([{"service": "frontend"}])


class Crash(BaseException):
    """Stands in for the process dying at a step boundary."""


def _crash_world(tmp_path: Path, session: PolicySession) -> World:
    built = World(tmp_path, session)
    built.cluster.set_load("frontend", rps=309)
    return built


def _restart(built: World, tmp_path: Path, session: PolicySession) -> Runner:
    """A new runner process: fresh state connection, same files, same cluster."""
    built.state.close()
    built.state = StateStore(tmp_path / "state.db")
    return Runner(
        blueprints=BLUEPRINTS,
        session=session,
        cluster=built.cluster,
        state=built.state,
        audit=built.audit,
    )


def test_crash_after_journal_entry_before_the_change(
    tmp_path: Path, session: PolicySession
) -> None:
    built = _crash_world(tmp_path, session)
    original = built.cluster.apply

    def die(target: Target, operation: dict[str, Any]) -> Applied:
        raise Crash

    built.cluster.apply = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        built.runner.tick()
    built.cluster.apply = original  # type: ignore[method-assign]
    assert [e.status for e in built.state.journal()] == ["started"]
    runner = _restart(built, tmp_path, session)
    assert [status for _, status in runner.recover()] == ["failed"]
    assert built.replicas("frontend") == 2  # never applied, and not applied now
    assert built.state.journal(unfinished=True) == []
    built.state.close()


def test_crash_after_the_change(tmp_path: Path, session: PolicySession) -> None:
    built = _crash_world(tmp_path, session)
    original = built.cluster.apply

    def apply_then_die(target: Target, operation: dict[str, Any]) -> Applied:
        original(target, operation)
        raise Crash

    built.cluster.apply = apply_then_die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        built.runner.tick()
    built.cluster.apply = original  # type: ignore[method-assign]
    assert built.replicas("frontend") == 3
    runner = _restart(built, tmp_path, session)
    assert [status for _, status in runner.recover()] == ["completed"]
    assert built.replicas("frontend") == 3  # applied once
    assert built.state.journal(unfinished=True) == []
    built.state.close()


def test_crash_during_verification(tmp_path: Path, session: PolicySession) -> None:
    built = _crash_world(tmp_path, session)
    original = built.cluster.wait

    def die(seconds: float) -> None:
        raise Crash

    built.cluster.wait = die  # type: ignore[method-assign]
    with pytest.raises(Crash):
        built.runner.tick()
    built.cluster.wait = original  # type: ignore[method-assign]
    assert [e.status for e in built.state.journal()] == ["applied"]
    runner = _restart(built, tmp_path, session)
    assert [status for _, status in runner.recover()] == ["completed"]
    assert built.replicas("frontend") == 3
    built.state.close()


def test_crash_during_rollback(tmp_path: Path, session: PolicySession) -> None:
    built = World(tmp_path, session)
    built.cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    built.cluster.set_load("frontend", rps=309)
    built.cluster.wait(60)
    original = built.cluster.undo

    def die(target: Target, applied: Applied) -> None:
        raise Crash

    built.cluster.undo = die  # type: ignore[method-assign]
    executor, ctx = _executor(built)
    with pytest.raises(Crash):
        executor.execute(ctx, _decision({"type": "scale", "from": 3, "to": 2}))
    built.cluster.undo = original  # type: ignore[method-assign]
    assert [e.status for e in built.state.journal()] == ["rolling_back"]
    runner = _restart(built, tmp_path, session)
    assert [status for _, status in runner.recover()] == ["rolled_back"]
    assert built.replicas("frontend") == 3  # back at its old state, rolled back once
    assert built.state.journal(unfinished=True) == []
    built.state.close()


def test_state_database_locked_by_another_process_refuses_to_act(
    tmp_path: Path, session: PolicySession
) -> None:
    import subprocess
    import sys
    import textwrap

    built = World(tmp_path, session)
    built.state.close()
    built.state = StateStore(tmp_path / "state.db", timeout=0.2)
    built.runner = Runner(
        blueprints=BLUEPRINTS,
        session=session,
        cluster=built.cluster,
        state=built.state,
        audit=built.audit,
    )
    built.cluster.set_load("frontend", rps=309)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sqlite3, time
                db = sqlite3.connect({str(tmp_path / "state.db")!r}, isolation_level=None)
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
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(StateError, match="busy or locked"):
            built.runner.tick()
        assert built.replicas("frontend") == 2
        assert built.events("execution_started") == []
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert [r.outcome for r in _scaling(built.runner.tick().results)] == ["succeeded"]
    built.state.close()


def test_terminal_prompt_answers_in_the_same_tick(tmp_path: Path, session: PolicySession) -> None:
    built = World(tmp_path, session)
    asked: list[str] = []

    def prompt(approval: Any, now: str) -> str:
        asked.append(approval.id)
        return _sign(approval, SRE_LEAD, "seen on the terminal", now)

    built.runner.prompt = prompt
    built.cluster.apply(BACKEND, {"type": "scale", "to": 3})
    built.cluster.wait(30)
    built.cluster.set_load("backend", rps=1275)  # 85%: a 4th replica
    report = built.runner.tick()
    assert asked
    assert built.replicas("backend") == 4
    assert [
        e["justification"]
        for e in built.events("approval_granted")
        if e["operation"]["type"] == "scale"
    ] == ["seen on the terminal"]
    built.state.close()
    assert report.requested


def test_requests_made_under_another_blueprint_version_are_void(world: World) -> None:
    _backend_at_max(world)
    [request] = [r for r in world.runner.tick().requested if r.operation["type"] == "scale"]
    voided = world.runner.approvals.void_stale({"backend": "9.9.9"}, world.session.revision)
    assert request.id in [v.id for v in voided]
    assert world.state.approval(request.id).status == "void"  # type: ignore[union-attr]
    assert world.events("approval_void")[0]["approval_id"] == request.id


def test_service_missing_from_the_cluster_does_not_stop_the_others(world: World) -> None:
    del world.cluster.state["services"]["hello"]
    world.cluster.set_load("frontend", rps=309)
    report = world.runner.tick()
    assert any(e.startswith("hello: can't observe") for e in report.errors)
    assert [r.outcome for r in _scaling(report.results)] == ["succeeded"]
    assert world.events("error", "hello")


def _lying_allow(operation: dict[str, Any]) -> dict[str, Any]:
    """An enforce answer that says allow, whatever was asked: what a hostile OPA would send."""
    return {
        "id": "lie",
        "operation": operation,
        "tier": "allow",
        "reasons": ["trust me"],
        "rules": ["evil"],
        "blueprint_refs": [],
        "suggestion": None,
        "service": "frontend",
        "blueprint": {"name": "frontend", "version": "1.0.0"},
        "bundle_revision": "x",
        "dry_run": False,
    }


@pytest.mark.parametrize(
    ("operation", "breaker_open", "refusal"),
    [
        ({"type": "scale", "to": 0}, False, "a scale to 0 replicas is never executed"),
        ({"type": "delete_deployment", "name": "frontend"}, False, "forbidden by the operation"),
        ({"type": "modify_secret", "name": "db"}, False, "forbidden by the operation catalog"),
        ({"type": "reboot_node", "name": "n1"}, False, "unknown operation type"),
        ({"type": "scale", "to": 3}, True, "the circuit breaker of frontend is open"),
    ],
)
def test_python_refuses_more_whatever_opa_answers(
    tmp_path: Path,
    session: PolicySession,
    operation: dict[str, Any],
    breaker_open: bool,
    refusal: str,
) -> None:
    """Round one: an OPA impostor got 'scale frontend 2 → 0' executed four times, after the
    breaker opened too. The executor refuses these on its own, whatever the answer says."""
    with fake_opa() as opa:
        opa.revision = session.revision
        opa.reply = Reply(body={"result": _lying_allow(operation)})
        remote = RemoteOpa(url=opa.url, token="t", insecure=True)
        with PolicySession(session.blueprints, remote=remote) as lying:
            built = World(tmp_path, lying)
            if breaker_open:
                built.state.open_breaker("frontend", "t", "failures")
            executor, ctx = built.runner.executor, built.runner.context("frontend")
            result = executor.execute(ctx, _decision(operation))
            assert (result.outcome, result.tier) == ("blocked", "forbid")
            assert refusal in result.detail
            assert built.replicas("frontend") == 2
            assert built.state.journal() == []
            [blocked] = built.events("blocked")
            assert (
                blocked["rules"] == ["opsgate.execute.refusal"] and blocked["opa_tier"] == "allow"
            )
            built.state.close()


def test_a_breaker_reset_is_checked_once_per_runner(world: World, monkeypatch: Any) -> None:
    """The runner's blueprints don't change while it runs: a verified reset is not verified
    again every tick."""
    from engine import runner as runner_module

    world.state.open_breaker("frontend", "2026-02-10T12:00:00Z", "failures")
    at = "2026-02-10T12:01:00Z"
    token = SRE_LEAD.statement(
        {
            "purpose": "breaker_reset",
            "sub": "frontend",
            "iat": signing_epoch(at),
            "exp": signing_epoch(at) + 300,
        }
    )
    world.state.reset_breaker("frontend", "sre-lead", at, token)
    calls: list[str] = []
    verify = runner_module.signing.verify_statement

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("verify")
        return verify(*args, **kwargs)

    monkeypatch.setattr(runner_module.signing, "verify_statement", counted)
    for _ in range(3):
        world.runner.tick()
    assert calls == ["verify"]
    assert world.state.service_state("frontend")["breaker_open"] is False


# --- verification as a scheduled step (a real cluster's real time) -------------------------


def _scheduling_runner(world: World) -> Runner:
    return Runner(
        blueprints=BLUEPRINTS,
        session=world.session,
        cluster=world.cluster,
        state=world.state,
        audit=world.audit,
        schedule_verification=True,
    )


def test_a_scheduled_verification_does_not_stall_the_tick(world: World) -> None:
    runner = _scheduling_runner(world)
    world.cluster.set_load("frontend", rps=309)
    started = world.cluster.now()
    report = runner.tick()
    [result] = _scaling(report.results)
    assert result.outcome == "verifying"
    assert world.cluster.now() == started  # nothing waited inside the tick
    assert world.replicas("frontend") == 3  # applied in this tick
    [entry] = world.state.journal(unfinished=True)
    assert entry.status == "verifying"
    # before it is due, the service's next change waits for the judgement
    world.cluster.wait(30)
    again = runner.tick()
    assert [r.outcome for r in again.results if r.outcome != "deferred"] == []
    assert world.events("verification_passed") == []
    # after the stabilization time, the first tick verifies it
    stabilization = BLUEPRINTS["frontend"]["spec"]["reliability"]["stabilization_seconds"]
    world.cluster.wait(stabilization)
    later = runner.tick()
    verified = [r for r in later.results if r.decision_id == result.decision_id]
    assert [r.outcome for r in verified] == ["succeeded"]
    assert world.state.journal(unfinished=True) == []
    assert [e["decision_id"] for e in world.events("verification_passed")] == [result.decision_id]


def test_a_scheduled_verification_that_fails_rolls_back_when_due(world: World) -> None:
    runner = _scheduling_runner(world)
    world.cluster.apply(FRONTEND, {"type": "scale", "to": 3})
    world.cluster.set_load("frontend", rps=309)
    world.cluster.wait(60)
    result = runner.executor.execute(
        runner.context("frontend"), _decision({"type": "scale", "from": 3, "to": 2})
    )
    assert result.outcome == "verifying"
    assert world.replicas("frontend") == 2
    world.cluster.wait(BLUEPRINTS["frontend"]["spec"]["reliability"]["stabilization_seconds"])
    report = runner.tick()
    [judged] = [r for r in report.results if r.decision_id == "test"]
    assert (judged.outcome, judged.detail) == ("rolled_back", "verification failed: latency")
    assert world.replicas("frontend") == 3
    assert world.state.service_state("frontend")["consecutive_failures"] == 1
    assert [e.status for e in world.state.journal()] == ["rolled_back"]


def test_a_definite_failure_ends_the_wait_early(world: World) -> None:
    runner = _scheduling_runner(world)
    world.cluster.inject("frontend", "crash_next_rollout", 1)
    result = runner.executor.execute(
        runner.context("frontend"),
        _decision({"type": "adjust_resources", "resource": "cpu", "to": "105m"}),
    )
    assert result.outcome == "verifying"
    world.cluster.wait(20)  # well before the stabilization time
    report = runner.tick()
    [judged] = [r for r in report.results if r.decision_id == "test"]
    assert judged.outcome == "rolled_back"
    assert judged.detail == "verification failed: no_new_crash"
    template = world.cluster.service("frontend")["template"]
    assert template["resources"]["cpu"]["request"] == "100m"


def test_recovery_leaves_a_scheduled_verification_to_its_tick(world: World) -> None:
    runner = _scheduling_runner(world)
    world.cluster.set_load("frontend", rps=309)
    runner.tick()
    # the runner restarts: nothing was interrupted, so nothing is recovered
    restarted = _scheduling_runner(world)
    assert restarted.recover() == []
    world.cluster.wait(BLUEPRINTS["frontend"]["spec"]["reliability"]["stabilization_seconds"])
    report = restarted.tick()
    assert [r.outcome for r in _scaling(report.results)] == ["succeeded"]
    assert world.state.journal(unfinished=True) == []


# --- the re-check sees the cluster as it is now -----------------------------------------


def test_the_recheck_judges_on_the_current_resources(world: World) -> None:
    # after an allowed step 100m -> 90m, the next step 90m -> 81m is 10% of what runs now
    # (inside the band), not 19% of the blueprint's 100m
    executor, ctx = _executor(world)
    first = executor.execute(
        ctx, _decision({"type": "adjust_resources", "resource": "cpu", "to": "90m"})
    )
    assert first.outcome in ("succeeded", "partial")
    world.cluster.wait(301)  # past the cooldown
    second = executor.execute(
        ctx, _decision({"type": "adjust_resources", "resource": "cpu", "to": "81m"})
    )
    assert (second.outcome, second.tier) in (("succeeded", "allow"), ("partial", "allow"))
    template = world.cluster.service("frontend")["template"]
    assert template["resources"]["cpu"]["request"] == "81m"


def test_a_recheck_that_asks_for_approval_files_the_request(world: World) -> None:
    # the decision said allow, the cluster moved, the fresh verdict says approve: the
    # request is filed and audited, not left as a silent "awaiting_approval"
    report = TickReport(time=world.cluster.now())
    decision = {
        **_decision({"type": "scale", "to": 9}),
        "blueprint_refs": [],
        "suggestion": None,
    }
    world.runner._handle("frontend", decision, report)  # type: ignore[arg-type]
    [result] = report.results
    assert (result.outcome, result.tier) == ("awaiting_approval", "approve")
    [requested] = report.requested
    assert requested.operation == {"type": "scale", "to": 9}
    assert requested.status == "pending"
    assert [e["approval_id"] for e in world.events("approval_requested")] == [requested.id]
    assert world.replicas("frontend") == 2
