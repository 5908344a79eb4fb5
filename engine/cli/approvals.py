"""``opsgate approvals``: list, show and answer approval requests from any shell."""

from __future__ import annotations

from pathlib import Path

import click

from engine.approval import Approvals
from engine.audit import AuditLog, utc_now
from engine.cli.options import checked_name, json_option, state_dir_option, state_paths
from engine.cli.terminal import describe_masked, emit_json, escape, line, note
from engine.cluster.simulated import SimulatedCluster
from engine.redact import mask
from engine.state import StateStore


def _open(state_dir: Path) -> tuple[StateStore, Approvals]:
    state_path, audit_path, _ = state_paths(state_dir)
    if not state_path.exists():
        raise click.UsageError(
            f"no runner state in {state_dir} (run opsgate run first, or pass --state-dir)"
        )
    state = StateStore(state_path)
    return state, Approvals(state, AuditLog(audit_path))


@click.group(
    epilog="""\b
Examples:
  opsgate approvals list
  opsgate approvals show 3f9c2a
  opsgate approvals approve 3f9c2a --by sre-lead --reason "traffic event, DB pool raised"
  opsgate approvals reject 3f9c2a --by sre-lead --reason "wait for the DB upgrade\"""",
)
def approvals() -> None:
    """Answer the approval requests of a running (or stopped) runner.

    Only approvers named in the service's blueprint may answer. Answering
    executes nothing by itself: the runner asks OPA again before it acts.
    """


@approvals.command("list", epilog="Example:  opsgate approvals list --all --json")
@click.option(
    "--all", "show_all", is_flag=True, help="Include answered, expired and void requests."
)
@state_dir_option
@json_option
def list_(show_all: bool, state_dir: Path, as_json: bool) -> None:
    """List pending approval requests (oldest first)."""
    state, _ = _open(state_dir)
    try:
        requests = state.approvals(status=None if show_all else "pending")
    finally:
        state.close()
    if as_json:
        emit_json([mask(r.to_json()) for r in requests])
        return
    for r in requests:
        line(
            f"{r.id}  {r.status:<8} {r.service:<14} {describe_masked(r.operation)}  "
            f"expires {r.expires_at}"
        )
    if not requests:
        note("no pending approval requests" if not show_all else "no approval requests")


@approvals.command(epilog="Example:  opsgate approvals show 3f9c2a")
@click.argument("approval_id")
@state_dir_option
@json_option
def show(approval_id: str, state_dir: Path, as_json: bool) -> None:
    """Show one request: operation, reasons, rules, blueprint fields, approvers."""
    state, _ = _open(state_dir)
    try:
        request = state.approval(approval_id)
    finally:
        state.close()
    if request is None:
        raise click.ClickException(f"no approval request {approval_id}")
    shown = mask(request.to_json())
    if as_json:
        emit_json(shown)
        return
    for key, value in shown.items():
        line(f"{key:>18}: {value}")


def _now(state_dir: Path) -> str:
    """The runner's clock: the simulated cluster's virtual time when there is one."""
    cluster_path = state_paths(state_dir)[2]
    if cluster_path.exists():
        return SimulatedCluster.load(cluster_path).now()
    return utc_now()[:19] + "Z"


def _answer(approval_id: str, by: str, reason: str | None, state_dir: Path, grant: bool) -> None:
    state, workflow = _open(state_dir)
    try:
        answered = workflow.answer(
            approval_id, grant=grant, by=by, reason=reason, now=_now(state_dir)
        )
    finally:
        state.close()
    verb = "approved" if grant else "rejected"
    note(
        f"{escape(answered.id)} {verb} by {escape(by)}: "
        f"{escape(describe_masked(answered.operation))} on {escape(answered.service)}"
    )


@approvals.command(
    epilog='Example:  opsgate approvals approve 3f9c2a --by sre-lead --reason "planned traffic"'
)
@click.argument("approval_id")
@click.option(
    "--by",
    required=True,
    callback=checked_name,
    help="Your name; must be an approver in the blueprint.",
)
@click.option("--reason", required=True, help="Justification, kept in the audit log.")
@state_dir_option
def approve(approval_id: str, by: str, reason: str, state_dir: Path) -> None:
    """Grant a pending request."""
    _answer(approval_id, by, reason, state_dir, True)


@approvals.command(
    epilog='Example:  opsgate approvals reject 3f9c2a --by sre-lead --reason "not now"'
)
@click.argument("approval_id")
@click.option(
    "--by",
    required=True,
    callback=checked_name,
    help="Your name; must be an approver in the blueprint.",
)
@click.option("--reason", default=None, help="Why, kept in the audit log.")
@state_dir_option
def reject(approval_id: str, by: str, reason: str | None, state_dir: Path) -> None:
    """Refuse a pending request."""
    _answer(approval_id, by, reason, state_dir, False)
