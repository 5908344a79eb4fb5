"""The what-if simulator: replay a load trace through the simulated cluster and the real policies.

``simulate`` runs the production runner tick after tick over a fresh
simulated cluster while a load trace plays, leaves approval requests
unanswered (it counts them), and records per service a time series (load,
replicas, utilization, p95, decisions) and a summary: decisions by tier,
approvals needed, time over the latency target, replica-minutes (cost),
breaker trips, operations (changes the cluster carried out), resource
changes (the operations among them that set a request or a limit: each a
rollout on Kubernetes) and flaps (reversals of a change within ten minutes).
The decision, approval and breaker counts come from the run's own audit log;
operations, resource changes and flaps from the simulated cluster's record of
what it was asked to change.

``approve_all=True`` answers every approval request yes the moment it is
filed, through the approval workflow with a signed answer (each request's
first plain-named approver, with a key made for the simulation on a keyed
copy of the blueprints): what the policies do when people approve everything.

``controller="hpa"`` replays the same trace on the same simulated cluster with
Kubernetes' HorizontalPodAutoscaler (``engine.hpa``) in place of opsgate: the
baseline opsgate is measured against. It needs no OPA and keeps no audit log;
every change it makes counts as an allowed decision, and it never asks.
"""

from __future__ import annotations

import logging
import math
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine import operations, signing
from engine.approval import Approvals, claims
from engine.audit import AuditLog
from engine.blueprint import keyed_blueprints, load_blueprints
from engine.cluster import ClusterError, Target
from engine.cluster.simulated import EPOCH_START, READY_AFTER_SECONDS, Change, SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.errors import OpsgateError
from engine.hpa import SYNC_PERIOD_SECONDS, HorizontalPodAutoscaler, PodSample, target_utilization
from engine.quantity import QuantityError, cpu_millicores, memory_bytes
from engine.runner import Prompt
from engine.state import Approval
from engine.workspace import Workspace

log = logging.getLogger(__name__)

TIERS = ("allow", "approve", "forbid", "defer")
# a tick asks OPA for every service: 10000 ticks are minutes of work, more looks like a hang
MAX_TICKS = 10_000
# virtual seconds simulated after the trace's last row, for the service to settle
TAIL_SECONDS = 600.0
# a change that reverses the previous one of the same quantity this long after it, or sooner,
# is a flap
FLAP_WINDOW_SECONDS = 600.0
# the justification the simulation's approver signs with approve_all
APPROVE_ALL_REASON = "approved at once by the simulation (every request approved)"

Controller = Literal["opsgate", "hpa"]


class SimulationError(OpsgateError):
    """A simulation can't run (no blueprint for a service of the trace, and the like)."""


@dataclass
class Series:
    """What one service looked like at each step of the run (sampled before the controller
    acts at that moment, and inside a verification's wait too)."""

    times: list[float] = field(default_factory=list)  # seconds since the start
    rps: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    utilization: list[float | None] = field(default_factory=list)
    latency: list[float | None] = field(default_factory=list)
    decisions: list[tuple[float, str, str]] = field(
        default_factory=list
    )  # (time, tier, operation type)
    # the HPA baseline's own view at each tick: usage / request, % (empty for opsgate)
    hpa_utilization: list[int | None] = field(default_factory=list)
    # and the reason of its recommendation (its condition's reason: "TooManyReplicas" when
    # the load asks for more than max_replicas); None when the sync had no metrics
    hpa_reasons: list[str | None] = field(default_factory=list)


@dataclass
class Simulation:
    """The result of replaying one trace against one set of blueprints and policies."""

    blueprints: dict[str, dict[str, Any]]
    series: dict[str, Series]
    summary: dict[str, dict[str, Any]]
    audit_path: Path | None  # None: the run kept nothing (no work_dir was given, or the HPA ran)
    duration: float
    controller: Controller = "opsgate"
    # the HPA baseline's target utilization per service (empty for opsgate)
    targets: dict[str, int] = field(default_factory=dict)
    # every approval request was answered yes at once (approve_all), not left unanswered
    approve_all: bool = False


def _count(audit: AuditLog, services: list[str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {
        name: {"decisions": dict.fromkeys(TIERS, 0), "approvals_needed": 0, "breaker_trips": 0}
        for name in services
    }
    for event in audit.expanded(audit.runs()):
        service = event.get("service")
        if service not in counts:
            continue
        if event["event"] == "decision" and event.get("tier") in TIERS:
            # a run of repeats stands for as many decisions
            counts[service]["decisions"][event["tier"]] += (event.get("repeat") or {}).get(
                "count", 1
            )
        elif event["event"] == "approval_requested":
            counts[service]["approvals_needed"] += 1
        elif event["event"] == "breaker_opened":
            counts[service]["breaker_trips"] += 1
    return counts


def simulate(
    blueprints: Path,
    trace_path: Path,
    *,
    policies: Path | None = None,
    services: list[str] | None = None,
    step: float = SYNC_PERIOD_SECONDS,
    tail: float = TAIL_SECONDS,
    seed: int = 1,
    work_dir: Path | None = None,
    controller: Controller = "opsgate",
    approve_all: bool = False,
) -> Simulation:
    """Replay ``trace_path`` tick by tick (every ``step`` virtual seconds) and summarise.

    The run's state, audit log and compiled bundle are kept in ``work_dir``
    when one is given; otherwise they live in a temporary directory that is
    removed before this returns, and the result has no ``audit_path``. With
    ``controller="hpa"`` the HPA baseline scales instead of opsgate's runner
    (one sync per tick), and there is no audit log. With ``approve_all`` every
    approval request opsgate files is granted at once, signed (the HPA never asks).
    """
    if not math.isfinite(step) or step <= 0:
        raise SimulationError(f"the step must be a positive number of seconds (got {step})")
    with ExitStack() as scratch:
        kept = work_dir is not None
        if work_dir is None:
            # removed last, after OPA has stopped and the state is closed
            work_dir = Path(
                scratch.enter_context(tempfile.TemporaryDirectory(prefix="opsgate-simulate-"))
            )
        signers: dict[str, signing.Signer] = {}
        if approve_all and controller == "opsgate":
            signers = _simulation_signers(blueprints)
            blueprints = keyed_blueprints(
                blueprints,
                work_dir / "keyed-blueprints",
                {
                    name: signing.public_key_line(signer.key.public_key(), "opsgate-simulation")
                    for name, signer in signers.items()
                },
            )
        workspace = scratch.enter_context(
            Workspace(
                blueprints,
                policies=policies,
                build_dir=work_dir / "build",
                state_dir=work_dir,
                fresh=True,
                seed=seed,
            )
        )
        effective = workspace.blueprints
        trace = LoadTrace.read(trace_path)
        unknown = trace.services() - set(effective)
        if unknown:
            raise SimulationError(f"{trace_path}: no blueprint for {', '.join(sorted(unknown))}")
        wanted = services or sorted(trace.services())
        missing = set(wanted) - set(effective)
        if missing:
            raise SimulationError(f"no blueprint for {', '.join(sorted(missing))}")
        last = max(row.seconds for row in trace.rows)
        end = last + tail
        ticks = math.floor(end / step) + 1
        if ticks > MAX_TICKS:
            raise SimulationError(
                f"{trace_path}: the trace lasts {last:.15g} s, {ticks} ticks of --step "
                f"{step:.15g}: over the limit of {MAX_TICKS} ticks (use a larger --step or a "
                "shorter trace)"
            )
        series = {name: Series() for name in wanted}
        cluster = workspace.simulated
        approver = _approve_at_once(signers) if signers else None
        # verification is a later tick's step, as on a real cluster: one service's
        # stabilization never holds the others' decisions (the HPA waits for nothing either)
        runner = (
            workspace.runner(prompt=approver, schedule_verification=True)
            if controller == "opsgate"
            else None
        )
        autoscalers = {name: _autoscaler(effective[name]) for name in wanted}

        def sample(moment: float) -> None:
            # the state at each multiple of the step, for both controllers alike, inside a
            # verification's wait too (load changes of the trace take effect on time there)
            if moment > end:
                return
            trace.advance(cluster)
            for name in wanted:
                _record(series[name], moment, cluster, name, effective[name])

        sample(cluster.elapsed())
        cluster.sample_every(step, sample)
        while cluster.elapsed() <= end:
            trace.advance(cluster)
            if runner is not None:
                report = runner.tick()
                if approver is not None:
                    # a request filed without asking (a re-check at execution that turned an
                    # allowed operation into approve) is answered before the next tick
                    _answer_pending(runner.approvals, approver, cluster.now())
                now = cluster.elapsed()
                for decision in report.decisions:
                    if decision["service"] in series:
                        series[decision["service"]].decisions.append(
                            (now, decision["tier"], decision["operation"]["type"])
                        )
            else:
                now = cluster.elapsed()
                for name in wanted:
                    _hpa_sync(series[name], now, cluster, autoscalers[name], effective[name])
            cluster.wait(step)
        if runner is not None:
            counts = _count(workspace.audit, wanted)
        else:
            counts = {name: _hpa_counts(series[name]) for name in wanted}
        audit_path = workspace.paths.audit if kept and runner is not None else None
        changes = list(cluster.changes)
    summary = {}
    for name in wanted:
        data = series[name]
        target = effective[name]["spec"]["performance"].get("latency_p95_ms")
        over = replica_seconds = 0.0
        for i, moment in enumerate(data.times):
            width = (data.times[i + 1] if i + 1 < len(data.times) else moment + step) - moment
            replica_seconds += data.replicas[i] * width
            p95 = data.latency[i]
            if target is not None and (p95 is None or p95 > target):
                over += width
        mine = [change for change in changes if change.service == name]
        summary[name] = {
            **counts[name],
            "seconds_over_latency_target": round(over, 1),
            "replica_minutes": round(replica_seconds / 60, 1),
            "operations": len(mine),
            "resource_changes": count_resource_changes(mine),
            "flaps": count_flaps(mine),
        }
    targets = (
        {name: autoscalers[name].target_utilization for name in wanted}
        if controller == "hpa"
        else {}
    )
    return Simulation(
        effective,
        series,
        summary,
        audit_path,
        end,
        controller,
        targets,
        approve_all=bool(signers),
    )


def count_resource_changes(changes: list[Change]) -> int:
    """Changes that set a request or a limit (the catalog's ``resources`` concern, undos
    included): on Kubernetes each is a new revision of the pod template, rolled out pod by
    pod."""
    return sum(_concern(change) == "resources" for change in changes)


def _concern(change: Change) -> str | None:
    entry = operations.lookup(change.applied.operation)
    return entry.concern if entry is not None else None


def _simulation_signers(blueprints: Path) -> dict[str, signing.Signer]:
    """A key made for the simulation for every approver the blueprints name without one."""
    names = {
        entry
        for blueprint in load_blueprints([blueprints]).blueprints
        for entry in blueprint.effective["governance"]["approval_workflow"]["approvers"]
        if isinstance(entry, str)
    }
    return {name: signing.Signer(name, signing.demo_key(name)) for name in sorted(names)}


def _approve_at_once(signers: dict[str, signing.Signer]) -> Prompt:
    """A prompt that approves each request as it is filed, signed by its first approver
    the simulation holds a key for (None, left unanswered, when it holds none)."""

    def approve(approval: Approval, now: str) -> str | None:
        signer = next((signers[n] for n in approval.approvers if n in signers), None)
        if signer is None:
            return None
        return signer.statement(claims(approval, "approve", now, APPROVE_ALL_REASON))

    return approve


def _answer_pending(approvals: Approvals, approve: Prompt, now: str) -> None:
    """Answer every request still pending the way ``approve`` answers a new one."""
    for approval in approvals.state.approvals(status="pending"):
        token = approve(approval, now)
        if token is not None:
            approvals.answer_signed(token, now=now)


def count_flaps(changes: list[Change], window: float = FLAP_WINDOW_SECONDS) -> int:
    """Reversals: a change of a quantity (replicas, a resource's request or limit) in the
    direction opposite to the previous change of that quantity, at most ``window`` later."""
    last: dict[tuple[Any, ...], tuple[float, int]] = {}
    flaps = 0
    for change in sorted(changes, key=lambda c: c.at):
        moved = _direction(change)
        if moved is None:
            continue
        quantity, direction = moved
        before = last.get(quantity)
        if before is not None and before[1] != direction and change.at - before[0] <= window:
            flaps += 1
        last[quantity] = (change.at, direction)
    return flaps


def _direction(change: Change) -> tuple[tuple[Any, ...], int] | None:
    """(what it changes, +1 or -1) of a change that moves an amount (replicas, a request);
    None for any other change (a restart, a rollback to a revision, a configmap)."""
    operation, inverse = change.applied.operation, change.applied.inverse
    if inverse is None or "to" not in operation or "to" not in inverse:
        return None
    amounts = _amounts(operation["to"], inverse["to"])
    if amounts is None or amounts[0] == amounts[1]:
        return None
    # the catalog's same_kind: the type and what it changes (which resource, which field)
    return operations.same_kind(operation), 1 if amounts[0] > amounts[1] else -1


def _amounts(after: object, before: object) -> tuple[float, float] | None:
    """Two amounts of one quantity as numbers: counts as they are, quantities in one unit."""
    if isinstance(after, int | float) and isinstance(before, int | float):
        return float(after), float(before)
    for parse in (cpu_millicores, memory_bytes):
        try:
            return float(parse(str(after))), float(parse(str(before)))
        except QuantityError:
            continue
    return None


def _autoscaler(blueprint: dict[str, Any]) -> HorizontalPodAutoscaler:
    scaling = blueprint["spec"]["scaling"]
    return HorizontalPodAutoscaler(
        min_replicas=scaling["min_replicas"],
        max_replicas=scaling["max_replicas"],
        target_utilization=target_utilization(blueprint),
        resource="memory" if scaling["metric"] == "memory" else "cpu",
    )


def _hpa_sync(
    series: Series,
    now: float,
    cluster: SimulatedCluster,
    autoscaler: HorizontalPodAutoscaler,
    blueprint: dict[str, Any],
) -> None:
    """One HPA sync of one service: read its pods' samples, scale when the HPA says so."""
    target = Target(
        blueprint["metadata"]["name"],
        blueprint["target"]["namespace"],
        blueprint["target"]["deployment"],
    )
    try:
        observation = cluster.observe(target)
    except ClusterError:
        series.hpa_utilization.append(None)  # the metrics API failed: Kubernetes skips the sync
        series.hpa_reasons.append(None)
        return
    current = int(observation["replicas"]["desired"])
    samples = pod_samples(
        cluster.service(target.service)["pods"], observation, autoscaler.resource, now
    )
    recommendation = autoscaler.reconcile(now, current, samples)
    series.hpa_utilization.append(recommendation.utilization)
    series.hpa_reasons.append(recommendation.reason)
    if recommendation.replicas == current:
        return
    try:
        applied = cluster.scale(target, recommendation.replicas)
    except ClusterError:
        return  # a failed update is not a scale event: the next sync tries again
    autoscaler.scaled(now, current, recommendation.replicas)
    series.decisions.append((now, "allow", str(applied.operation["type"])))


def pod_samples(
    pods: list[dict[str, Any]], observation: dict[str, Any], resource: str, now: float
) -> list[PodSample]:
    """What the metrics API and the pod list would tell an HPA about the simulated pods.

    Utilization the way the HPA computes it: usage over request, from the
    observation's own ``usage`` and ``request`` (not its ``cpu_percent``). The
    simulated load goes to ready pods only, so an unready pod has no sample
    (the HPA's "missing" pod); a ready pod became ready ``READY_AFTER_SECONDS``
    after it started, and its sample ends now.
    """
    amounts = observation["resources"][resource]
    parse = cpu_millicores if resource == "cpu" else memory_bytes
    request = max(1, parse(str(amounts["request"])))
    usage = parse(str(amounts["usage"])) if "usage" in amounts else None
    samples = []
    for pod in pods:
        started = float(pod["started_at"]) - EPOCH_START
        ready = bool(pod["ready"])
        samples.append(
            PodSample(
                pod["name"],
                request,
                usage if ready else None,
                ready=ready,
                started=started,
                ready_changed=started + READY_AFTER_SECONDS if ready else started,
                sampled_at=now,
            )
        )
    return samples


def _hpa_counts(series: Series) -> dict[str, Any]:
    """The HPA decides alone: each change is an allowed decision; it never asks or trips."""
    decisions = dict.fromkeys(TIERS, 0)
    decisions["allow"] = len(series.decisions)
    return {"decisions": decisions, "approvals_needed": 0, "breaker_trips": 0}


def _record(
    series: Series, now: float, cluster: SimulatedCluster, name: str, blueprint: dict[str, Any]
) -> None:
    service = cluster.service(name)
    target = Target(name, blueprint["target"]["namespace"], blueprint["target"]["deployment"])
    observation = cluster.measure(target)
    metric = f"{blueprint['spec']['scaling']['metric']}_percent"
    series.times.append(now)
    series.rps.append(float(service["load"]["rps"]))
    series.replicas.append(int(service["replicas"]))
    series.utilization.append(observation["metrics"].get(metric))
    series.latency.append(observation["metrics"].get("latency_p95_ms"))
