"""The ``opsgate`` command line: a root click group and one module per command."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from engine import __version__
from engine.cli import approvals as approvals_command
from engine.cli import audit as audit_command
from engine.cli import breaker as breaker_command
from engine.cli import compile as compile_command
from engine.cli import decide as decide_command
from engine.cli import demo as demo_command
from engine.cli import enforce as enforce_command
from engine.cli import execute as execute_command
from engine.cli import run as run_command
from engine.cli import simulate as simulate_command
from engine.cli import validate as validate_command
from engine.cli.terminal import console, escape, printable
from engine.errors import OpsgateError


class _OpsgateFailure(click.ClickException):
    """Carries an OpsgateError to click's error printing (exit code 1)."""

    def show(self, file: Any = None) -> None:
        console.print(f"[bold red]opsgate: error:[/] {escape(printable(self.message))}")


class _OpsgateUsageFailure(_OpsgateFailure):
    """An OpsgateError that is the caller's usage mistake (exit code 2)."""

    exit_code = 2


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsgateError as e:
            failure = _OpsgateUsageFailure if e.exit_code == 2 else _OpsgateFailure
            raise failure(str(e)) from e


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example:  opsgate validate blueprints/ && opsgate compile blueprints -o build",
)
@click.version_option(__version__, "--version", prog_name="opsgate")
@click.option(
    "-v",
    "--verbose",
    count=True,
    envvar="OPSGATE_VERBOSE",
    show_envvar=True,
    help="Say more (repeat for debug output).",
)
@click.option(
    "-q",
    "--quiet",
    is_flag=True,
    envvar="OPSGATE_QUIET",
    show_envvar=True,
    help="Only print results and errors.",
)
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Blueprint-driven, Rego-governed infrastructure operations.

    Platform teams declare each service in a YAML blueprint; the blueprints
    compile into OPA data; Rego policies decide what each service needs and
    classify every operation as allow, approve or forbid.
    """
    level = logging.WARNING
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    if quiet:
        level = logging.ERROR
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = {"quiet": quiet}


cli.add_command(validate_command.validate)
cli.add_command(compile_command.compile_)
cli.add_command(decide_command.decide)
cli.add_command(enforce_command.enforce)
cli.add_command(run_command.run)
cli.add_command(execute_command.execute)
cli.add_command(execute_command.verify)
cli.add_command(approvals_command.approvals)
cli.add_command(breaker_command.breaker)
cli.add_command(audit_command.audit)
cli.add_command(demo_command.demo)
cli.add_command(simulate_command.simulate)


def main() -> None:
    """Run the ``opsgate`` command (the console-script entry point)."""
    try:
        cli.main(prog_name="opsgate")
    except KeyboardInterrupt:
        console.print("opsgate: interrupted")
        sys.exit(130)
