"""``opsgate simulate``: what would the policies have done with this load?"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from engine.cli.options import (
    FiniteFloatRange,
    blueprints_option,
    json_option,
    policies_option,
)
from engine.cli.terminal import emit_json, escape, line, note
from engine.hpa import SYNC_PERIOD_SECONDS
from engine.plot import plot, summary_table
from engine.simulate import MAX_TICKS, TAIL_SECONDS, Simulation
from engine.simulate import simulate as run_simulation


@click.command(
    epilog="""\b
Examples:
  opsgate simulate --load blueprints/examples/traces/daily-wave.csv --plot wave.png
  opsgate simulate --load blueprints/examples/traces/spike.csv --service frontend --json
  opsgate simulate --load spike.csv --compare changed-blueprints --plot compare.png
  opsgate simulate --load blueprints/examples/traces/spike.csv --baseline hpa --plot hpa.png

Approval requests are left unanswered and counted (--approve-all: each is
granted the moment it is filed). Per service it reports decisions by tier,
approvals needed, seconds over the latency target, replica-minutes (cost),
breaker trips, operations (changes the cluster carried out, undos included),
resource changes (those that set a request or a limit: each a rollout on
Kubernetes) and flaps (a change of replicas, or of a resource, undone in the
other direction within 10 minutes).

--baseline hpa replays the same trace on the same simulated cluster with
Kubernetes' HorizontalPodAutoscaler v2 and its default behavior instead of
opsgate (one sync per --step): target utilization the blueprint's
target_utilization_percent (the one opsgate's proportional scaling aims at),
as usage / request of the blueprint's metric, same min and max replicas. Both
runs are sampled every --step, before the controller acts at that moment.
Each change the HPA makes counts as an allowed decision; it never asks for
approval.""",
)
@blueprints_option
@click.option(
    "--load",
    "trace",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=(
        "Load trace CSV: seconds,service,rps[,fault,value]; at most "
        f"{MAX_TICKS} ticks: its last row plus {TAIL_SECONDS:.0f} s, divided by --step."
    ),
)
@click.option(
    "--service", "services", multiple=True, help="Only these services (default: the trace's)."
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=(
        "Write a PNG with load, replicas, utilization, p95 and decisions per tier. For one "
        "service, this file; for several, one file each with the service added to the name "
        "(out.png: out-frontend.png, out-backend.png). Each path written is told on stderr, "
        'and listed under "plots" with --json.'
    ),
)
@click.option(
    "--compare",
    "compare_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A changed blueprint or policy directory (told apart by its .rego files) to compare with.",
)
@click.option(
    "--compare-blueprints",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Replay the same trace against these blueprints too, side by side.",
)
@click.option(
    "--compare-policies",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Replay the same trace against this policy library too, side by side.",
)
@click.option(
    "--baseline",
    type=click.Choice(["hpa"]),
    default=None,
    help="Replay the same trace with Kubernetes' HPA too (engine/hpa.py), side by side.",
)
@click.option(
    "--step",
    type=FiniteFloatRange(min=5, max=86400),
    default=SYNC_PERIOD_SECONDS,
    show_default=True,
    help="Virtual seconds per tick, for every run (the HPA's sync period is 15 s).",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the simulated cluster."
)
@click.option(
    "--approve-all",
    is_flag=True,
    help=(
        "Grant every approval request the moment it is filed, signed by its first approver "
        "with a key made for the simulation (on a keyed copy of the blueprints): what the "
        "policies do when people say yes to everything. Without it requests stay unanswered."
    ),
)
@click.option(
    "--audit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep each run's audit log (and state) in DIR/as-is and DIR/changed; "
    "without it they are removed when the command ends.",
)
@policies_option
@json_option
def simulate(
    blueprints: Path,
    trace: Path,
    services: tuple[str, ...],
    plot_path: Path | None,
    compare_dir: Path | None,
    compare_blueprints: Path | None,
    compare_policies: Path | None,
    baseline: str | None,
    step: float,
    seed: int,
    approve_all: bool,
    audit_dir: Path | None,
    policies: Path | None,
    as_json: bool,
) -> None:
    """Replay a load trace through the simulated cluster and the real policies."""
    if compare_dir is not None:
        if any(compare_dir.rglob("*.rego")):
            compare_policies = compare_policies or compare_dir
        else:
            compare_blueprints = compare_blueprints or compare_dir
    wanted = list(services) or None
    base = run_simulation(
        blueprints,
        trace,
        policies=policies,
        services=wanted,
        step=step,
        seed=seed,
        work_dir=audit_dir / "as-is" if audit_dir else None,
        approve_all=approve_all,
    )
    runs: list[tuple[str, Simulation]] = [("as is", base)]
    if compare_blueprints is not None or compare_policies is not None:
        changed = run_simulation(
            compare_blueprints or blueprints,
            trace,
            policies=compare_policies or policies,
            services=wanted,
            step=step,
            seed=seed,
            work_dir=audit_dir / "changed" if audit_dir else None,
            approve_all=approve_all,
        )
        runs.append(("changed", changed))
    if baseline == "hpa":
        runs.append(
            (
                "hpa",
                run_simulation(
                    blueprints, trace, services=wanted, step=step, seed=seed, controller="hpa"
                ),
            )
        )
    plots = plot_files(plot_path, base.summary) if plot_path is not None else {}
    if as_json:
        document: dict[str, object] = {
            "runs": {label: sim.summary for label, sim in runs},
            "approval_requests": "all approved at once" if approve_all else "left unanswered",
            # kept only when asked (--audit-dir): nothing is left behind otherwise
            "audit_logs": {
                label: str(sim.audit_path) if sim.audit_path else None for label, sim in runs
            },
        }
        if baseline == "hpa":
            document["baseline"] = {
                "hpa": {
                    "target_utilization_percent": runs[-1][1].targets,
                    "utilization": "usage / request of the blueprint's metric",
                    "sync_period_seconds": step,
                }
            }
        if plot_path is not None:
            document["plots"] = {service: str(target) for service, target in plots.items()}
        emit_json(document)
    else:
        columns = (
            *("allow", "approve", "forbid", "defer", "approvals"),
            *("s over p95", "replica-min", "breaker", "operations", "resources", "flaps"),
        )
        widths = [max(7, len(c)) for c in columns]
        line(
            f"{'run':<8} {'service':<14} "
            + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))
        )
        for row in summary_table(runs):
            values = [*row["decisions"].values(), row["approvals_needed"]]
            values += [
                row["seconds_over_latency_target"],
                row["replica_minutes"],
                row["breaker_trips"],
                row["operations"],
                row["resource_changes"],
                row["flaps"],
            ]
            line(
                f"{row['run']:<8} {row['service']:<14} "
                + " ".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
            )
        if approve_all:
            note("every approval request was approved the moment it was filed (--approve-all)")
        for label, sim in runs:
            if sim.audit_path is not None:
                note(f"audit log ({label}): {escape(str(sim.audit_path))}")
    if len(plots) > 1:
        note(
            f"plot: {len(plots)} services, one file each ({escape(str(plot_path))} is not written)"
        )
    for service, target in plots.items():
        plot(runs, service, target)
        note(f"plot of {escape(service)}: {escape(str(target))}")


def plot_files(plot_path: Path, services: Iterable[str]) -> dict[str, Path]:
    """Where ``--plot`` draws each service: the path for one, ``STEM-SERVICE.SUFFIX`` for several.

    One picture per service keeps each readable; several services in one
    file would shrink every panel.
    """
    names = list(services)
    if len(names) == 1:
        return {names[0]: plot_path}
    return {
        name: plot_path.with_name(f"{plot_path.stem}-{name}{plot_path.suffix}") for name in names
    }
