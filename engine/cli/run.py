"""``opsgate run``: the runner loop on the simulated cluster or Kubernetes."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click
from rich.live import Live
from rich.table import Table

from engine import signing
from engine.approval import claims
from engine.audit import AuditError
from engine.cli.application import application
from engine.cli.options import (
    FiniteFloatRange,
    audit_key_option,
    blueprints_option,
    cluster_options,
    inbox_option,
    load_key,
    opa_identity,
    opa_options,
    policies_option,
    state_dir_option,
)
from engine.cli.terminal import console, describe_masked, escape, note
from engine.cluster import Cluster
from engine.cluster.simulated import SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.errors import OpsgateError, UsageError
from engine.files import PrivacyError
from engine.inbox import Inbox, InboxError, default_inbox
from engine.notify import TARGETS_FILE, save_targets
from engine.policy import OpaSettings
from engine.redact import mask, mask_text
from engine.runner import Runner, TickReport
from engine.state import Approval, StateError

_COLOURS = {"allow": "green", "approve": "yellow", "forbid": "red", "defer": "blue"}


def _print_report(report: TickReport) -> None:
    note(f"[bold]tick {report.time}[/]")
    for error in report.errors:
        note(f"  [red]error:[/] {escape(mask_text(error))}")
    deferred = 0
    for decision in report.decisions:
        if decision["tier"] == "defer":
            deferred += 1  # cooldown: said once below, not line by line every tick
            continue
        colour = _COLOURS.get(decision["tier"], "white")
        note(
            f"  {escape(decision['service'])}: [{colour}]{escape(decision['tier'])}[/] "
            f"{escape(describe_masked(decision['operation']))} — "
            f"{escape(mask_text(decision['reasons'][0]))}"
        )
    if deferred:
        note(f"  [blue]{deferred} decision(s) deferred by cooldown[/]")
    for approval in report.requested:
        note(
            f"  [yellow]approval requested[/] {escape(approval.id)} for "
            f"{escape(approval.service)}: {escape(describe_masked(approval.operation))}; "
            f"approvers: {escape(', '.join(approval.approvers))}; "
            f"answer with: opsgate approvals approve {escape(approval.id)} --key PATH --reason TEXT"
        )
    for result in report.results:
        if result.outcome == "deferred":
            continue
        detail = f" ({escape(mask_text(result.detail))})" if result.detail else ""
        verification = (
            f", verification {result.verification.outcome}" if result.verification else ""
        )
        breaker = " — [red]circuit breaker opened[/]" if result.breaker_opened else ""
        what = escape(describe_masked(result.operation))
        note(f"  → {result.outcome}{verification}: {what}{detail}{breaker}")
    if not report.decisions and not report.errors:
        note("  nothing to do")


def status_table(report: TickReport) -> Table:
    """The live view: one row per service with what the last tick saw and decided."""
    table = Table(title=f"opsgate — tick {report.time}", expand=False)
    for column in ("service", "replicas", "cpu %", "p95 ms", "last decision", "breaker"):
        table.add_column(column)
    latest = {d["service"]: d for d in report.decisions}
    for name, observation in sorted(report.observations.items()):
        replicas = observation.get("replicas") or {}
        metrics = observation.get("metrics") or {}
        decision = latest.get(name)
        shown = "—"
        if decision:
            colour = _COLOURS.get(decision["tier"], "white")
            shown = (
                f"[{colour}]{escape(decision['tier'])}[/] "
                f"{escape(describe_masked(decision['operation']))}"
            )
        breaker = "[red]OPEN[/]" if observation["state"]["breaker_open"] else "closed"
        # observed values come from the cluster: text in the table, never markup
        table.add_row(
            escape(name),
            escape(f"{replicas.get('ready', '?')}/{replicas.get('desired', '?')}"),
            escape(mask_text(str(metrics.get("cpu_percent", "?")))),
            escape(mask_text(str(metrics.get("latency_p95_ms", "?")))),
            shown,
            breaker,
        )
    return table


def _terminal_prompt(approval: Approval, now: str) -> str | None:
    note(
        f"[bold yellow]Approval needed[/] for {escape(approval.service)}: "
        f"{escape(describe_masked(approval.operation))}"
    )
    for reason in mask(approval.reasons):
        note(f"  - {escape(reason)}")
    note(
        f"  rules: {escape(', '.join(approval.rules))}; "
        f"fields: {escape(', '.join(approval.blueprint_refs))}"
    )
    answer = click.prompt(
        "  approve, reject or skip",
        type=click.Choice(["approve", "reject", "skip"]),
        default="skip",
        err=True,
    )
    if answer == "skip":
        return None
    path = Path(click.prompt("  your ssh-ed25519 private key", err=True)).expanduser()
    try:
        signer = signing.signer_for(load_key(path), approval.approver_keys or [])
    except (signing.SigningError, PrivacyError) as e:
        note(f"  [red]not answered:[/] {escape(str(e))}")
        return None
    reason = click.prompt("  justification", err=True)
    return signer.statement(claims(approval, answer, now, reason))


def _loop(
    runner: Runner,
    cluster: Cluster,
    simulated: SimulatedCluster | None,
    trace: LoadTrace | None,
    total: int | None,
    interval: float,
    pause: float,
    cluster_path: Path,
) -> None:
    """Tick until done; a live table on a terminal, plain lines otherwise."""
    live = Live(console=console, auto_refresh=False) if console.is_terminal else None
    with live if live is not None else contextlib.nullcontext():
        done = 0
        while total is None or done < total:
            if done:
                cluster.wait(interval)
                time.sleep(pause)
            done += 1
            if trace is not None and simulated is not None:
                for row in trace.advance(simulated):
                    change = f"rps {row.rps:g}" if row.rps is not None else ""
                    if row.fault:
                        value = row.value if row.value is not None else "on"
                        change += f" fault {row.fault}={value}"
                    note(f"[dim]load: {escape(row.service)} {escape(change.strip())}[/]")
            try:
                report = runner.tick()
            except (AuditError, StateError, InboxError) as e:
                # nothing may run without its record: say so, and try again next tick
                note(f"[red]tick skipped, nothing executed:[/] {escape(str(e))}")
                continue
            except OpsgateError as e:
                note(f"[red]tick failed, nothing more executed:[/] {escape(str(e))}")
                continue
            if simulated is not None:
                simulated.save(cluster_path)
            _print_report(report)
            if live is not None:
                live.update(status_table(report), refresh=True)
    if total is not None:
        _finish_verifications(runner, cluster)


def _finish_verifications(runner: Runner, cluster: Cluster) -> None:
    """A run of a set number of ticks sees its own changes through: it waits for the
    verifications it scheduled (a real cluster) and judges them before it stops."""
    tried: set[str] = set()
    while (next_one := runner.next_verification()) is not None:
        due, wait = next_one
        if not wait and due in tried:
            # judged already and still open (its tick reported why): the next run goes on
            note(f"[yellow]a verification due at {escape(due)} is still open[/]")
            return
        tried.add(due)
        if wait:
            note(f"[dim]waiting {wait:.0f}s for the verification due at {escape(due)}[/]")
            cluster.wait(wait)
        try:
            report = runner.verify_due()
        except OpsgateError as e:
            note(f"[red]verification failed, nothing more executed:[/] {escape(str(e))}")
            return
        _print_report(report)


@click.command(
    epilog="""\b
Examples:
  opsgate run --blueprints blueprints --once
  opsgate run --interval 30 --ticks 20          # simulated: 30 s of virtual time per tick
  opsgate run --cluster sim --dry-run --once
  opsgate run --cluster kube --kubeconfig .kube/runner.kubeconfig --once

Answer approval requests from another shell with `opsgate approvals`; approvers
without access to the private --state-dir drop signed answers in --inbox.
State (state.db), audit log (audit.jsonl) and the simulated cluster
(cluster.json) live in --state-dir.""",
)
@blueprints_option
@cluster_options
@click.option(
    "--once",
    is_flag=True,
    help="Run one tick and stop (after judging the verifications it scheduled on a real cluster).",
)
@click.option(
    "--interval",
    type=FiniteFloatRange(min=0, max=86400),
    default=30.0,
    show_default=True,
    help="Seconds between ticks (virtual time on the simulated cluster).",
)
@click.option(
    "--ticks", type=click.IntRange(min=1), default=None, help="Stop after this many ticks."
)
@click.option(
    "--pause",
    type=FiniteFloatRange(min=0, max=3600),
    default=0.5,
    show_default=True,
    help="Real seconds between simulated ticks (time to answer approvals from another shell).",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of a new simulated cluster."
)
@click.option(
    "--load",
    "load_trace",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Simulated only: a load trace CSV (seconds,service,rps[,fault,value]) to replay.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    envvar="OPSGATE_DRY_RUN",
    show_envvar=True,
    help="Plan and audit; change nothing.",
)
@state_dir_option
@inbox_option
@audit_key_option
@policies_option
@opa_options
@click.pass_context
def run(
    ctx: click.Context,
    blueprints: Path,
    cluster_kind: str,
    prometheus_url: str | None,
    kubeconfig: Path | None,
    once: bool,
    interval: float,
    ticks: int | None,
    pause: float,
    seed: int,
    load_trace: Path | None,
    dry_run: bool,
    state_dir: Path,
    inbox: Path | None,
    audit_key: Path | None,
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """Observe, decide, get approvals, execute, verify and audit, tick after tick.

    Starts its own OPA on the compiled blueprints (or uses --opa-url) and
    stops it on exit, Ctrl-C included. Nothing is executed while OPA, the
    audit log or the state database fails; the next tick tries again.
    """
    if cluster_kind == "kube" and load_trace is not None:
        raise click.UsageError("--load replays onto the simulated cluster only")
    workspace = application(ctx).workspace(
        blueprints,
        policies=policies,
        opa=opa,
        state_dir=state_dir,
        create=True,
        audit_key=audit_key,
        record_retention=True,
        cluster=cluster_kind,
        prometheus_url=prometheus_url,
        kubeconfig=kubeconfig,
        seed=seed,
    )
    with workspace:
        effective = workspace.blueprints
        paths = workspace.paths
        cluster = workspace.cluster
        simulated = workspace.simulated if cluster_kind == "sim" else None
        trace = LoadTrace.read(load_trace) if load_trace else None
        if trace is not None and trace.services() - set(effective):
            unknown = ", ".join(sorted(trace.services() - set(effective)))
            raise UsageError(f"{load_trace}: no blueprint for {unknown}")
        state = workspace.state
        approvals_inbox = Inbox(inbox or default_inbox(state_dir))
        approvals_inbox.prepare()
        prompt = _terminal_prompt if sys.stdin.isatty() and sys.stderr.isatty() else None
        total = 1 if once else ticks
        try:
            runner = workspace.runner(
                dry_run=dry_run, prompt=prompt, inbox=approvals_inbox, notify=True
            )
            # opsgate execute on this state must decide by the very same rules
            state.record_runner(runner.session.revision, opa_identity(opa))
            # opsgate approvals, in another shell, notifies the same targets
            save_targets(state_dir / TARGETS_FILE, runner.notifier.targets)
            for entry_id, status in runner.recover():
                note(f"recovered journal entry {entry_id}: {status}")
            _loop(runner, cluster, simulated, trace, total, interval, pause, paths.cluster)
        except KeyboardInterrupt:
            # notifications waited for, OPA stopped, the audit log's checkpoint, the cluster saved
            workspace.close()
            note("stopped (Ctrl-C); OPA stopped")
            ctx.exit(130)
    note(
        f"audit log: {escape(str(paths.audit))} "
        f"(check it with: opsgate audit verify --state-dir {escape(str(state_dir))})"
    )
