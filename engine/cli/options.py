"""Options shared by several commands, defined once (each with an OPSGATE_* env var)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPSGATE_JSON",
    show_envvar=True,
    help="Print machine-readable JSON on stdout instead of text.",
)

policies_option = click.option(
    "--policies",
    type=click.Path(exists=True, file_okay=False, path_type=__import__("pathlib").Path),
    envvar="OPSGATE_POLICIES",
    show_envvar=True,
    default=None,
    help="Policy library to use instead of the embedded one.",
)
