"""``opsgate compile``: blueprints → data.json and an OPA bundle."""

from __future__ import annotations

from pathlib import Path

import click

from engine.cli.application import application
from engine.cli.options import json_option, policies_option
from engine.cli.terminal import emit_json, escape, note
from engine.cli.validate import report_problems
from engine.compile import InvalidBlueprints, compile_blueprints


@click.command(
    "compile",
    epilog="""\b
Examples:
  opsgate compile blueprints -o build
  opa eval -b build/bundle.tar.gz 'data.opsgate.blueprints.frontend.spec.scaling.max_replicas'""",
)
@click.argument("blueprint_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write data.json and bundle.tar.gz into (created if missing).",
)
@policies_option
@click.option("--no-bundle", is_flag=True, help="Write data.json only; don't run opa build.")
@json_option
@click.pass_context
def compile_(
    ctx: click.Context,
    blueprint_dir: Path,
    out_dir: Path,
    policies: Path | None,
    no_bundle: bool,
    as_json: bool,
) -> None:
    """Compile a directory of blueprints into OPA data and a bundle.

    Writes OUT_DIR/data.json (the data.opsgate document: blueprints keyed by
    name, defaults filled in, quantities also in millicores and bytes) and
    OUT_DIR/bundle.tar.gz (the policy library plus that data, built by
    opa build, with a revision derived from the content). Nothing is written
    when any blueprint is invalid.
    """
    try:
        result = compile_blueprints(blueprint_dir, out_dir, policies, bundle=not no_bundle)
    except InvalidBlueprints as e:
        report_problems(e.blueprint_set, to_stdout=False)
        raise
    if as_json:
        emit_json(result.to_json())
        return
    for warning in result.warnings:
        note(escape(warning.format()))
    if not application(ctx).quiet:
        written = [str(result.data_path)]
        if result.bundle_path:
            written.append(str(result.bundle_path))
        note(
            f"[green]compiled[/] {len(result.blueprints)} blueprint(s), revision "
            f"[bold]{result.revision}[/] → {escape(', '.join(written))}"
        )
