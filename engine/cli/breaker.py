"""``opsgate breaker``: see and reset per-service circuit breakers."""

from __future__ import annotations

from pathlib import Path

import click

from engine.audit import AuditLog, utc_now
from engine.cli.options import checked_name, json_option, state_dir_option, state_paths
from engine.cli.terminal import emit_json, escape, line, note
from engine.state import StateStore


@click.group(
    epilog="Examples:\n\n  opsgate breaker list\n\n  opsgate breaker reset frontend --by sre-lead"
)
def breaker() -> None:
    """Circuit breakers: after circuit_breaker_threshold failures a service is halted."""


@breaker.command("list", epilog="Example:  opsgate breaker list --json")
@state_dir_option
@json_option
def list_(state_dir: Path, as_json: bool) -> None:
    """Show each service's breaker and consecutive failures."""
    state_path, _, _ = state_paths(state_dir)
    state = StateStore(state_path)
    try:
        rows = state.breakers()
    finally:
        state.close()
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


@breaker.command(epilog="Example:  opsgate breaker reset frontend --by sre-lead")
@click.argument("service")
@click.option(
    "--by",
    required=True,
    callback=checked_name,
    help="Who takes responsibility for resuming automation.",
)
@state_dir_option
def reset(service: str, by: str, state_dir: Path) -> None:
    """Close a service's breaker (audited); automation resumes on the next tick."""
    state_path, audit_path, _ = state_paths(state_dir)
    state = StateStore(state_path)
    try:
        at = utc_now()
        AuditLog(audit_path).record("breaker_reset", service=service, actor=by)
        if not state.reset_breaker(service, by, at):
            raise click.ClickException(f"the breaker of {service} is not open")
    finally:
        state.close()
    note(f"breaker of {escape(service)} reset by {escape(by)}")
