"""The one terminal object: human output to stderr, machine output to stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# Human-readable lines go to stderr so stdout stays clean for JSON and piping.
console = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout, the machine-readable channel."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def line(text: str) -> None:
    """Write one plain result line to stdout (no markup, safe to pipe)."""
    sys.stdout.write(text + "\n")


def note(text: str) -> None:
    """Tell the person at the terminal something, on stderr."""
    console.print(printable(text, keep="\n"), markup=True)


def printable(text: str, keep: str = "") -> str:
    """``text`` with control characters written as escapes (``\\x1b``, ``\\n``), except ``keep``.

    Messages quote what came from outside (file names, service names, JSON
    keys); an escape sequence or a newline in one must not reach the
    terminal raw, and an error stays one line.
    """
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c in keep else c.encode("unicode_escape").decode("ascii")
        for c in text
    )


def escape(text: str) -> str:
    """Protect text taken from files from being read as rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
