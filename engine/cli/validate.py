"""``opsgate validate``: check blueprints and governance defaults, one line per problem."""

from __future__ import annotations

from pathlib import Path

import click

from engine.blueprint import BlueprintSet, load_blueprints
from engine.cli.application import application
from engine.cli.options import json_option
from engine.cli.terminal import emit_json, escape, line, note


def report_problems(blueprint_set: BlueprintSet, *, to_stdout: bool) -> None:
    """Print every problem as ``FILE:LINE: path: message (got VALUE)``."""
    for problem in blueprint_set.problems:
        if to_stdout:
            line(problem.format())
        else:
            note(escape(problem.format()))


@click.command(
    epilog="""\b
Examples:
  opsgate validate blueprints/
  opsgate validate blueprints/frontend/blueprint.yaml --json

Exit codes: 0 all valid (warnings allowed), 1 a problem found, 2 usage error.""",
)
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, path_type=Path),
)
@json_option
@click.pass_context
def validate(ctx: click.Context, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check blueprint files and directories against the schema and the rules.

    A directory is searched for .yaml and .yml files; a file named
    governance.yaml holds the shared governance defaults that apply to the
    blueprints in its folder and below. Every problem is reported in one
    run, the schema's and the rules' together, each printed as
    FILE:LINE: json.path: message (got VALUE).
    """
    blueprint_set = load_blueprints(list(paths))
    if as_json:
        emit_json([p.to_json() for p in blueprint_set.problems])
    else:
        report_problems(blueprint_set, to_stdout=True)
        if not application(ctx).quiet:
            errors, warnings = len(blueprint_set.errors), len(blueprint_set.warnings)
            files = blueprint_set.files_read
            if errors:
                note(f"[red]{errors} problem{'s' if errors != 1 else ''}[/] in {files} file(s)")
            else:
                extra = f", {warnings} warning(s)" if warnings else ""
                note(
                    f"[green]valid:[/] {len(blueprint_set.blueprints)} blueprint(s) "
                    f"in {files} file(s){extra}"
                )
    ctx.exit(1 if blueprint_set.errors else 0)
