"""Reading JSON given on the command line: a file, '-' for stdin, or inline JSON.

The JSON is strict (``engine.strictjson``): nesting deeper than 64 levels,
integers outside 64 bits, NaN and Infinity, duplicate keys and lone
surrogates are refused with the file (or option), line and column.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from engine import strictjson
from engine.errors import OpsgateError, UsageError

MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputError(OpsgateError):
    """A JSON input given on the command line can't be read."""


def _is_inline(source: str, inline: bool) -> bool:
    return inline and source.lstrip().startswith(("{", "["))


def where_of(source: str, what: str, *, inline: bool = False) -> str:
    """How messages name an input: its file, or what it is and that it came inline or on stdin."""
    if _is_inline(source, inline):
        return f"{what} (inline)"
    if source == "-":
        return f"{what} (stdin)"
    return str(Path(source))


def _read_stdin(where: str, what: str) -> str:
    if sys.stdin is None:  # started with stdin closed
        raise InputError(f"{where}: there is no stdin to read ({what})")
    try:
        stream = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stdin (embedded) has decoded already
            return str(sys.stdin.read(MAX_INPUT_BYTES + 1))
        raw = stream.read(MAX_INPUT_BYTES + 1)
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text ({what})") from e
    except OSError as e:
        raise InputError(f"{where}: can't read ({e.strerror or e})") from e
    if len(raw) > MAX_INPUT_BYTES:
        raise InputError(f"{where}: over the 16 MiB limit for {what}")
    try:
        return str(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from e


def read_json(source: str, what: str, *, inline: bool = False) -> Any:
    """Parse JSON from a file path, '-' (stdin), or (with ``inline``) the text itself."""
    where = where_of(source, what, inline=inline)
    if _is_inline(source, inline):
        text = source
    elif source == "-":
        text = _read_stdin(where, what)
    else:
        path = Path(source)
        try:
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise InputError(f"{where}: over the 16 MiB limit for {what}")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            words = any(c.isspace() for c in source) and "/" not in source
            if inline and words and not source.endswith(".json"):  # words, not a file name
                raise UsageError(
                    f"{where}: neither inline JSON nor an existing file ({what}): give JSON "
                    'such as \'{"type": "scale", "to": 3}\', a file, or - for stdin'
                ) from e
            raise InputError(f"{where}: no such file ({what})") from e
        except IsADirectoryError as e:
            raise InputError(f"{where}: is a directory, expected a JSON file ({what})") from e
        except UnicodeDecodeError as e:
            raise InputError(f"{where}: not UTF-8 text ({what})") from e
        except OSError as e:
            raise InputError(f"{where}: can't read ({e.strerror or e})") from e
    if len(text) > MAX_INPUT_BYTES:
        raise InputError(f"{where}: over the 16 MiB limit for {what}")
    try:
        return strictjson.loads(text)
    except strictjson.JsonError as e:
        raise InputError(e.at(where)) from e


def read_json_object(
    source: str, what: str, option: str, *, inline: bool = False
) -> dict[str, Any]:
    """Like ``read_json``, for an input that must be a JSON object (a usage error if not)."""
    value = read_json(source, what, inline=inline)
    if not isinstance(value, dict):
        where = where_of(source, what, inline=inline)
        raise UsageError(f"{where}: {option} must be a JSON object (got {strictjson.kind(value)})")
    return value
