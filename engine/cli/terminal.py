"""The one terminal object: human output to stderr, machine output to stdout.

Strings from outside (operations, blueprints, traces, answers, errors) never
reach a terminal raw: control characters and bidi overrides are shown as
visible escapes (``\\x1b``), so an operation can't move the cursor, clear a
line, hide text or reorder it. rich reads neither markup nor emoji codes in
them, so ``[red]`` and ``:100:`` stay text.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape as rich_escape

from engine.contracts import describe
from engine.redact import mask_operation

# Human-readable lines go to stderr so stdout stays clean for JSON and piping.
# emoji=False: rich would turn ":100:" in an error's FILE:LINE: into an emoji.
console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

# C0 (ESC, CR, NUL, BEL, backspace, newline, tab …), DEL, C1 (0x80-0x9f, 0x9b is CSI),
# and the bidi embeddings, overrides and isolates that reorder what follows them.
# Also what draws nothing yet can hide or steer text: soft hyphen, joiners and marks,
# line/paragraph separators, word joiners and invisible operators, variation selectors,
# interlinear annotations, musical format marks, Hangul fillers, and the tag block that
# smuggles ASCII past a reader (U+E0000-E007F).
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f\u2028\u2029"
    "\u2060-\u2065\u206a-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef"
)
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069{_INVISIBLE}]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# What JSON with ensure_ascii=False leaves raw: DEL, C1, bidi and invisible characters.
_JSON_RAW = re.compile(f"[\x7f-\x9f\u202a-\u202e\u2066-\u2069{_INVISIBLE}]")


def _visible(match: re.Match[str]) -> str:
    character = match.group()
    if character in _SHORT:
        return _SHORT[character]
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, keep: str = "") -> str:
    """Return ``text`` with control characters and bidi overrides as visible escapes.

    Characters in ``keep`` (a newline in a multi-line note) stay as they are.
    """
    if not keep:
        return _CONTROL.sub(_visible, text)
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _visible(m), text)


def _json_escape(match: re.Match[str]) -> str:
    """A character as JSON's \\uXXXX escape (a surrogate pair above U+FFFF)."""
    code = ord(match.group())
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def emit_json(document: Any) -> None:
    """Write one JSON document to stdout, the machine-readable channel.

    JSON escapes C0 itself; DEL, C1 and bidi characters are written as
    ``\\uXXXX`` too, the same string to a JSON reader, inert on a terminal.
    """
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    text = _JSON_RAW.sub(_json_escape, text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def line(text: str) -> None:
    """Write one plain result line to stdout (no markup, control characters escaped)."""
    sys.stdout.write(printable(text) + "\n")


def note(text: str) -> None:
    """Tell the person at the terminal something, on stderr (``text`` is rich markup)."""
    console.print(printable(text, keep="\n"), markup=True)


def escape(text: str) -> str:
    """Make text from outside safe inside a ``note``: no control characters, no markup."""
    return rich_escape(printable(text))


def describe_masked(operation: Any) -> str:
    """An operation in a few words for people, its secrets masked (escape it before showing)."""
    return describe(mask_operation(operation))
