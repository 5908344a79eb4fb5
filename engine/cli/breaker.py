"""``opsgate breaker``: see and reset per-service circuit breakers."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from engine import signing
from engine.audit import utc_now
from engine.cli.application import application
from engine.cli.options import (
    approver_signer,
    audit_key_option,
    blueprints_option,
    json_option,
    key_option,
    ssh_agent_option,
    state_dir_option,
)
from engine.cli.terminal import emit_json, escape, line, note

# how long a signed reset may wait before it is used (it is used at once)
RESET_VALIDITY_SECONDS = 300


@click.group(
    epilog="Examples:\n\n  opsgate breaker list\n\n"
    "  opsgate breaker reset frontend --key ~/.ssh/id_ed25519 --reason TEXT"
)
def breaker() -> None:
    """Circuit breakers: after circuit_breaker_threshold failures a service is halted."""


@breaker.command("list", epilog="Example:  opsgate breaker list --json")
@state_dir_option
@json_option
@click.pass_context
def list_(ctx: click.Context, state_dir: Path, as_json: bool) -> None:
    """Show each service's breaker and consecutive failures."""
    with application(ctx).workspace(state_dir=state_dir) as workspace:
        rows = workspace.state.breakers()
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        status = "OPEN" if row["breaker_open"] else "closed"
        line(
            f"{row['service']:<16} {status:<7} failures {row['consecutive_failures']}  "
            f"{row['breaker_reason'] or ''}"
        )
    if not rows:
        note("no service has a recorded operation yet")


@breaker.command(
    epilog="""\b
Example:
  opsgate breaker reset frontend --key ~/.ssh/id_ed25519 --reason "DB restored, error rate normal"

The reset is a statement signed with the key of one of the service's
approvers (governance.approval_workflow.approvers), bound to this service and
to this opening of its breaker; a name alone is not enough.""",
)
@click.argument("service")
@key_option
@ssh_agent_option
@click.option("--reason", required=True, help="Why automation may resume (signed, audited).")
@click.option("--by", hidden=True, default=None)
@blueprints_option
@state_dir_option
@audit_key_option
@click.pass_context
def reset(
    ctx: click.Context,
    service: str,
    key: Path | None,
    use_agent: bool,
    reason: str,
    by: str | None,
    blueprints: Path,
    state_dir: Path,
    audit_key: Path | None,
) -> None:
    """Close a service's breaker (signed, audited); automation resumes on the next tick."""
    if by is not None or (key is None and not use_agent):
        raise click.UsageError(
            "a breaker reset must be signed: give --key PATH (an approver's ssh-ed25519 key); "
            "a name is not enough"
        )
    workspace = application(ctx).workspace(blueprints, state_dir=state_dir, audit_key=audit_key)
    with workspace:
        blueprint = next(
            (b.effective for b in workspace.blueprint_set.blueprints if b.name == service), None
        )
        if blueprint is None:
            raise click.UsageError(f"no blueprint named {service!r} in {blueprints}")
        approvers = blueprint["governance"]["approval_workflow"]["approvers"]
        if not workspace.paths.state.exists():
            raise click.UsageError(f"no runner state in {state_dir} (pass --state-dir)")
        state = workspace.state
        row = next((r for r in state.breakers() if r["service"] == service), None)
        if row is None or not (row["breaker_open"] or row["consecutive_failures"]):
            raise click.ClickException(f"the breaker of {service} is not open")
        at = utc_now()
        signer = approver_signer(key, use_agent, approvers)
        token = signer.statement(
            {
                "purpose": "breaker_reset",
                "sub": service,
                "jti": secrets.token_hex(8),
                "breaker_opened_at": row["breaker_changed_at"],
                "iat": signing.epoch(at),
                "exp": signing.epoch(at) + RESET_VALIDITY_SECONDS,
                "reason": reason,
            }
        )
        # an ssh-agent signs outside our hands: check what it made before recording it
        signing.verify_statement(token, approvers, purpose="breaker_reset", now=at)
        workspace.audit.record(
            "breaker_reset",
            service=service,
            actor=signer.name,
            reason=reason,
            signed_answer=token,
        )
        if not state.reset_breaker(service, signer.name, at, token):
            raise click.ClickException(f"the breaker of {service} is not open")
    # closed: a signed checkpoint over the reset
    note(f"breaker of {escape(service)} reset by {escape(signer.name)} (signed)")
