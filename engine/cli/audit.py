"""``opsgate audit``: verify, show and prune the audit log."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from engine.audit import AuditError, AuditLog, mask
from engine.blueprint import load_blueprints
from engine.cli.options import json_option, state_dir_option, state_paths
from engine.cli.terminal import emit_json, escape, line, note


def _log(state_dir: Path) -> AuditLog:
    return AuditLog(state_paths(state_dir)[1])


@click.group(
    epilog="""\b
Examples:
  opsgate audit verify
  opsgate audit show --service frontend --since 2026-02-10T12:00:00Z"""
)
def audit() -> None:
    """The hash-chained audit log of every decision, approval, execution and rollback."""


@audit.command(epilog="Example:  opsgate audit verify --state-dir .opsgate")
@state_dir_option
def verify(state_dir: Path) -> None:
    """Check the hash chain: exit 1 at the first edited, deleted, inserted or reordered line."""
    log = _log(state_dir)
    report = log.verify()
    if not report.ok:
        raise AuditError(f"{log.path}:{report.first_break}: {report.reason}")
    note(f"{escape(str(log.path))}: {report.events} events, chain intact")


@audit.command(epilog="Example:  opsgate audit show --service backend --json")
@click.option("--service", default=None, help="Only events of this service.")
@click.option("--since", default=None, help="Only events at or after this RFC 3339 time.")
@state_dir_option
@json_option
def show(service: str | None, since: str | None, state_dir: Path, as_json: bool) -> None:
    """Print audit events, oldest first."""
    # masked again: a log written before values were masked may still hold secrets
    events = [
        mask(e)
        for e in _log(state_dir).events()
        if (service is None or e.get("service") == service)
        and (since is None or str(e.get("time", "")) >= since)
    ]
    if as_json:
        emit_json(events)
        return
    for e in events:
        operation = e.get("operation")
        what = f" {operation}" if operation else ""
        reason = (e.get("reasons") or [e.get("reason") or e.get("error") or ""])[0]
        line(
            f"{e.get('time')}  {e.get('event'):<20} {e.get('service', '-'):<12} "
            f"{e.get('tier', ''):<7}{what}  {reason}"
        )


@audit.command(epilog="Example:  opsgate audit prune --blueprints blueprints")
@click.option(
    "--blueprints",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="blueprints",
    show_default=True,
    help="Blueprints whose governance.audit.retention_days applies (the longest wins).",
)
@state_dir_option
def prune(blueprints: Path, state_dir: Path) -> None:
    """Drop events older than the retention period; the chain stays verifiable."""
    loaded = load_blueprints([blueprints])
    days = max(
        (b.effective["governance"]["audit"]["retention_days"] for b in loaded.blueprints),
        default=90,
    )
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    dropped = _log(state_dir).prune(cutoff)
    note(f"pruned {dropped} events older than {days} days")
