"""``opsgate execute`` and ``opsgate verify``: two roles of the runner, usable alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from engine.approval import Actor
from engine.cli.application import application
from engine.cli.inputs import InputError, read_json_object, where_of
from engine.cli.options import (
    audit_key_option,
    blueprints_option,
    checked_approval_id,
    opa_identity,
    opa_options,
    policies_option,
    requester_options,
    state_dir_option,
)
from engine.cli.terminal import describe_masked, emit_json, escape, note
from engine.contracts import observation_problem
from engine.policy import OpaSettings
from engine.proposal import propose
from engine.redact import mask
from engine.verify import verify as run_checks

_EXIT = {"blocked": 4, "awaiting_approval": 3, "deferred": 5}


def _blueprint(
    effective: dict[str, dict[str, Any]], blueprints: Path, service: str
) -> dict[str, Any]:
    if service not in effective:
        raise click.UsageError(f"no blueprint named {service!r} in {blueprints}")
    return effective[service]


@click.command(
    epilog="""\b
Examples:
  opsgate execute --service frontend --operation '{"type": "scale", "to": 3}'
  opsgate execute --service frontend --operation '{"type": "delete_deployment", "name": "frontend"}'
  opsgate execute --service backend --operation '{"type": "scale", "to": 4}' --as alice
      → exit 3 and an approval request id; once an approver signed it:
  opsgate execute --service backend --operation '{"type": "scale", "to": 4}' --as alice \
      --approval ID

Runs on the simulated cluster in --state-dir. Prints the result as JSON.
Exit codes: 0 executed (see "outcome"), 3 needs approval, 4 blocked,
5 deferred, 1 error, 2 usage.""",
)
@blueprints_option
@click.option("--service", required=True, help="Service (blueprint name) to act on.")
@click.option(
    "--operation", "operation_source", required=True, help="Operation as inline JSON, a file, or -."
)
@click.option(
    "--approval",
    "approval_id",
    default=None,
    callback=checked_approval_id,
    help="The granted, signed approval request for exactly this operation and requester.",
)
@requester_options
@click.option("--dry-run", is_flag=True, help="Plan and audit; change nothing.")
@state_dir_option
@audit_key_option
@policies_option
@opa_options
@click.pass_context
def execute(
    ctx: click.Context,
    blueprints: Path,
    service: str,
    operation_source: str,
    approval_id: str | None,
    requester: Actor,
    dry_run: bool,
    state_dir: Path,
    audit_key: Path | None,
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """Execute one operation through the execution engine.

    OPA is asked first with the current state; only allow, or approve with a
    granted --approval that covers exactly this operation (signed by an
    approver other than the requester, verified in Rego), runs. An approve
    verdict without --approval files an approval request and prints its id.
    The step is journaled, verified after stabilization and rolled back on
    failure, all of it audited.
    """
    workspace = application(ctx).workspace(
        blueprints,
        policies=policies,
        opa=opa,
        state_dir=state_dir,
        create=True,
        audit_key=audit_key,
        record_retention=True,
    )
    with workspace:
        _blueprint(workspace.blueprints, blueprints, service)
        operation = read_json_object(operation_source, "operation", "--operation", inline=True)
        proposal = propose(
            workspace,
            service,
            operation,
            requester,
            opa=opa_identity(opa),
            approval_id=approval_id,
            dry_run=dry_run,
        )
    # closed: a signed checkpoint over this command's events, and the cluster saved
    result = proposal.result
    shown = mask({**proposal.to_json(), "requester": requester})
    emit_json(shown)
    reasons = "; ".join(shown["reasons"])
    note(f"{result.outcome}: {escape(describe_masked(operation))} ({escape(reasons)})")
    if result.detail and result.outcome == "awaiting_approval":
        note(escape(result.detail))
    ctx.exit(_EXIT.get(result.outcome, 0))


@click.command(
    epilog="""\b
Example:
  opsgate verify --service frontend --operation op.json --before before.json --after after.json

Prints {"outcome": "pass"|"fail"|"partial", "checks": [...]}; exit 0 pass,
6 fail, 7 partial, 1 error, 2 usage.""",
)
@blueprints_option
@click.option("--service", required=True, help="Service (blueprint name) the operation was on.")
@click.option(
    "--operation", "operation_source", required=True, help="The operation, inline JSON or a file."
)
@click.option(
    "--before", "before_source", required=True, help="Observation before the operation (file or -)."
)
@click.option(
    "--after", "after_source", required=True, help="Observation after it settled (file or -)."
)
@click.pass_context
def verify(
    ctx: click.Context,
    blueprints: Path,
    service: str,
    operation_source: str,
    before_source: str,
    after_source: str,
) -> None:
    """Run the verification checks for one operation on two observations."""
    with application(ctx).workspace(blueprints) as workspace:
        blueprint = _blueprint(workspace.blueprints, blueprints, service)
    operation = read_json_object(operation_source, "operation", "--operation", inline=True)
    before = read_json_object(before_source, "before observation", "--before")
    after = read_json_object(after_source, "after observation", "--after")
    for source, what, observation in (
        (before_source, "before observation", before),
        (after_source, "after observation", after),
    ):
        problem = observation_problem(observation)
        if problem is not None:
            raise InputError(f"{where_of(source, what)}: {problem}")
    result = run_checks(operation, after, before, blueprint)
    emit_json(result.to_json())
    ctx.exit({"pass": 0, "fail": 6, "partial": 7}[result.outcome])
