"""What every command shares through click's ``ctx.obj``, as hatch does with its Application.

The root group makes one ``Application`` from the global options; a command
asks it for its ``Workspace``, which then asks passphrases and says what went
wrong while closing on this terminal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from engine.cli.options import passphrase_prompt
from engine.cli.terminal import escape, note
from engine.workspace import Workspace


def _warn(message: str) -> None:
    note(f"[red]{escape(message)}[/]")


@dataclass(frozen=True)
class Application:
    """The running ``opsgate``: its global options, and the workspace of its command."""

    quiet: bool = False

    def workspace(self, blueprints: Path | None = None, **options: Any) -> Workspace:
        """The command's workspace (options as ``Workspace``), with the terminal to ask on."""
        return Workspace(blueprints, passphrase=passphrase_prompt, warn=_warn, **options)


def application(ctx: click.Context) -> Application:
    """The Application the root group made (a default one for a command invoked alone)."""
    return ctx.ensure_object(Application)
