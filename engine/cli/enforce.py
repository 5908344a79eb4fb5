"""``opsgate enforce``: one verdict for one proposed operation; the exit code is the tier."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click

from engine import contracts
from engine.cli.application import application
from engine.cli.inputs import read_json, read_json_object
from engine.cli.options import (
    TIME_FORMS,
    Moment,
    blueprints_option,
    opa_options,
    policies_option,
    requester_options,
    rfc3339,
)
from engine.cli.terminal import emit_json, escape, note
from engine.policy import OpaSettings
from engine.redact import mask

_COLOURS = {"allow": "green", "approve": "yellow", "forbid": "red", "defer": "blue"}


@click.command(
    epilog="""\b
Examples:
  opsgate enforce --service frontend --operation '{"type": "scale", "to": 3}'
  opsgate enforce --service frontend --operation op.json --state state.json --replicas 2

The verdict is printed on stdout as JSON; a summary goes to stderr.
Exit codes: 0 allow, 3 approve, 4 forbid, 5 defer, 1 error, 2 usage.""",
)
@blueprints_option
@click.option("--service", required=True, help="Service (blueprint name) the operation is for.")
@click.option(
    "--operation",
    "operation_source",
    required=True,
    help="The operation as inline JSON, a JSON file, or - for stdin.",
)
@click.option(
    "--state",
    "state_source",
    default=None,
    help="The runner's state for the service as JSON file (last_operation_at, breaker_open).",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=0),
    default=None,
    help="Current replica count, when known (scale verdicts then report 'from').",
)
@click.option(
    "--now",
    type=Moment(),
    default=None,
    help=f"Time of the request: {TIME_FORMS} (default: the current time).",
)
@requester_options
@policies_option
@opa_options
@click.pass_context
def enforce(
    ctx: click.Context,
    blueprints: Path,
    service: str,
    operation_source: str,
    state_source: str | None,
    replicas: int | None,
    now: datetime.datetime | None,
    requester: dict[str, str],
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """Gate one operation proposed by a person or an AI agent.

    Asks data.opsgate.main.enforce and exits with the tier, so scripts and
    agents can branch on it. Nothing is executed.
    """
    request: dict[str, Any] = {
        "service": service,
        "operation": read_json(operation_source, "operation", inline=True),
        "state": read_json_object(state_source, "state", "--state") if state_source else {},
        # OPA would take any string silently: it gets a checked time, in RFC 3339
        "now": rfc3339(now)
        if now is not None
        else datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": requester,
    }
    if replicas is not None:
        request["replicas"] = {"desired": replicas, "ready": replicas}
    with application(ctx).workspace(blueprints, policies=policies, opa=opa) as workspace:
        verdict = workspace.session.enforce(request)
    tier = verdict["tier"]
    # what the agent sent may hold a secret: neither channel shows it
    verdict = mask(verdict)
    emit_json(verdict)
    if not application(ctx).quiet:
        colour = _COLOURS.get(tier, "white")
        note(f"[bold {colour}]{tier}[/]: {escape('; '.join(verdict['reasons']))}")
        if verdict["suggestion"]:
            note(f"suggestion: {escape(verdict['suggestion']['text'])}")
    ctx.exit(contracts.EXIT_CODES[tier])
