"""The what-if simulator: replay a load trace through the simulated cluster and the real policies.

``simulate`` runs the production runner tick after tick over a fresh
simulated cluster while a load trace plays, leaves approval requests
unanswered (it counts them), and records per service a time series (load,
replicas, utilization, p95, decisions) and a summary: decisions by tier,
approvals needed, time over the latency target, replica-minutes (cost) and
breaker trips. The counts in the summary come from the run's own audit log.
"""

from __future__ import annotations

import logging
import math
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.audit import AuditLog
from engine.cluster import Target
from engine.cluster.simulated import SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.errors import OpsgateError
from engine.workspace import Workspace

log = logging.getLogger(__name__)

TIERS = ("allow", "approve", "forbid", "defer")
# a tick asks OPA for every service: 10000 ticks are minutes of work, more looks like a hang
MAX_TICKS = 10_000
# virtual seconds simulated after the trace's last row, for the service to settle
TAIL_SECONDS = 600.0


class SimulationError(OpsgateError):
    """A simulation can't run (no blueprint for a service of the trace, and the like)."""


@dataclass
class Series:
    """What one service looked like at each tick."""

    times: list[float] = field(default_factory=list)  # seconds since the start
    rps: list[float] = field(default_factory=list)
    replicas: list[int] = field(default_factory=list)
    utilization: list[float | None] = field(default_factory=list)
    latency: list[float | None] = field(default_factory=list)
    decisions: list[tuple[float, str, str]] = field(
        default_factory=list
    )  # (time, tier, operation type)


@dataclass
class Simulation:
    """The result of replaying one trace against one set of blueprints and policies."""

    blueprints: dict[str, dict[str, Any]]
    series: dict[str, Series]
    summary: dict[str, dict[str, Any]]
    audit_path: Path | None  # None: the run kept nothing (no work_dir was given)
    duration: float


def _count(audit: AuditLog, services: list[str]) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {
        name: {"decisions": dict.fromkeys(TIERS, 0), "approvals_needed": 0, "breaker_trips": 0}
        for name in services
    }
    for event in audit.events():
        service = event.get("service")
        if service not in counts:
            continue
        if event["event"] == "decision" and event.get("tier") in TIERS:
            counts[service]["decisions"][event["tier"]] += 1
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
    step: float = 60.0,
    tail: float = TAIL_SECONDS,
    seed: int = 1,
    work_dir: Path | None = None,
) -> Simulation:
    """Replay ``trace_path`` tick by tick (every ``step`` virtual seconds) and summarise.

    The run's state, audit log and compiled bundle are kept in ``work_dir``
    when one is given; otherwise they live in a temporary directory that is
    removed before this returns, and the result has no ``audit_path``.
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
        runner = workspace.runner()
        while cluster.elapsed() <= end:
            trace.advance(cluster)
            report = runner.tick()
            now = cluster.elapsed()
            for decision in report.decisions:
                if decision["service"] in series:
                    series[decision["service"]].decisions.append(
                        (now, decision["tier"], decision["operation"]["type"])
                    )
            for name in wanted:
                _record(series[name], now, cluster, name, effective[name])
            cluster.wait(step)
        counts = _count(workspace.audit, wanted)
        audit_path = workspace.paths.audit if kept else None
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
        summary[name] = {
            **counts[name],
            "seconds_over_latency_target": round(over, 1),
            "replica_minutes": round(replica_seconds / 60, 1),
        }
    return Simulation(effective, series, summary, audit_path, end)


def _record(
    series: Series, now: float, cluster: SimulatedCluster, name: str, blueprint: dict[str, Any]
) -> None:
    service = cluster.service(name)
    target = Target(name, blueprint["target"]["namespace"], blueprint["target"]["deployment"])
    observation = cluster.observe(target)
    metric = f"{blueprint['spec']['scaling']['metric']}_percent"
    series.times.append(now)
    series.rps.append(float(service["load"]["rps"]))
    series.replicas.append(int(service["replicas"]))
    series.utilization.append(observation["metrics"].get(metric))
    series.latency.append(observation["metrics"].get("latency_p95_ms"))
