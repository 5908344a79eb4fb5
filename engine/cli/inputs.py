"""Reading JSON given on the command line: a file, '-' for stdin, or inline JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from engine.errors import OpsgateError

MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputError(OpsgateError):
    """A JSON input given on the command line can't be read."""


def read_json(source: str, what: str, *, inline: bool = False) -> Any:
    """Parse JSON from a file path, '-' (stdin), or (with ``inline``) the text itself."""
    if inline and source.lstrip().startswith(("{", "[")):
        text, where = source, f"{what} (inline)"
    elif source == "-":
        text, where = sys.stdin.read(MAX_INPUT_BYTES + 1), f"{what} (stdin)"
    else:
        path = Path(source)
        where = str(path)
        try:
            if path.stat().st_size > MAX_INPUT_BYTES:
                raise InputError(f"{where}: over the 16 MiB limit for {what}")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
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
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from e
