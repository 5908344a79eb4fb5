"""The ``opsgate`` command line: a root click group and one module per command."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click

from engine import __version__
from engine.cli import agents as agents_command
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
from engine.cli.application import Application
from engine.cli.terminal import console, escape, printable
from engine.errors import OpsgateError
from engine.redact import mask_text


class _OpsgateFailure(click.ClickException):
    """Carries an OpsgateError to click's error printing (exit code 1)."""

    def show(self, file: Any = None) -> None:
        console.print(f"[bold red]opsgate: error:[/] {escape(mask_text(self.message))}")


class _OpsgateUsageFailure(_OpsgateFailure):
    """An OpsgateError that is the caller's usage mistake (exit code 2)."""

    exit_code = 2


def _made_printable(error: click.ClickException) -> click.ClickException:
    """Mask and escape what click would print raw: its messages quote the command line."""
    if not isinstance(error, _OpsgateFailure):
        # click types the message Final; its exceptions are plain objects and show() reads it
        setattr(error, "message", printable(mask_text(error.message)))  # noqa: B010
    return error


class _Group(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.ClickException as e:
            raise _made_printable(e) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsgateError as e:
            failure = _OpsgateUsageFailure if e.exit_code == 2 else _OpsgateFailure
            raise failure(str(e)) from e
        except click.ClickException as e:
            raise _made_printable(e) from None


class _LogFormatter(logging.Formatter):
    """Log lines from library code: secrets masked, control characters escaped, line by line."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return "\n".join(printable(mask_text(part)) for part in text.split("\n"))


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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    ctx.obj = Application(quiet=quiet)


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
cli.add_command(agents_command.mcp)
cli.add_command(agents_command.gate)


def _stop_on(signum: int, frame: Any) -> None:
    """SIGTERM or SIGHUP: unwind like Ctrl-C, so every with-block stops what it started."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Run the ``opsgate`` command (the console-script entry point)."""
    # `kill`, `timeout` and a closed terminal must stop OPA too, not leave it orphaned
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on)
    try:
        cli.main(prog_name="opsgate")
    except KeyboardInterrupt:
        console.print("opsgate: interrupted")
        sys.exit(130)
