"""``opsgate decide``: the decision document for one observation."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.application import application
from engine.cli.inputs import read_json_object
from engine.cli.options import blueprints_option, opa_options, policies_option
from engine.cli.terminal import emit_json, escape, note
from engine.contracts import describe
from engine.policy import OpaSettings
from engine.redact import mask


@click.command(
    epilog="""\b
Examples:
  opsgate decide --observation blueprints/examples/observations/frontend-busy.json
  kubectl-ai-observer | opsgate decide --observation - --opa-url https://opa:8181

The decision document (docs/AGENT_OPERATIONS.md) is printed on stdout as JSON; a summary
goes to stderr. Exit codes: 0 answered, 1 error (OPA down, bad input), 2 usage.""",
)
@blueprints_option
@click.option(
    "--observation",
    "observation_source",
    required=True,
    help="Observation JSON file, or - for stdin.",
)
@policies_option
@opa_options
@click.pass_context
def decide(
    ctx: click.Context,
    blueprints: Path,
    observation_source: str,
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """Ask the policies what one observed service needs now.

    Compiles the blueprints, starts OPA on them (or uses --opa-url), and asks
    data.opsgate.main.decide. Nothing is executed.
    """
    observation = read_json_object(observation_source, "observation", "--observation")
    with application(ctx).workspace(blueprints, policies=policies, opa=opa) as workspace:
        # an observation is outside data too: a pod name can carry anything
        document = mask(workspace.session.decide(observation))
    emit_json(document)
    if not application(ctx).quiet:
        for decision in document["decisions"]:
            note(
                f"{decision['tier']:<8} {escape(describe(decision['operation']))}  "
                f"[dim]{escape(decision['reasons'][0])}[/]"
            )
        for line in document["notes"]:
            note(f"[yellow]note:[/] {escape(line)}")
        if not document["decisions"]:
            note(f"{escape(str(document['service']))}: nothing to do")
