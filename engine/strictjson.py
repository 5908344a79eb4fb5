"""Strict JSON for what people and files hand opsgate: refused with line and column, never raised.

Python's json module accepts NaN and Infinity, keeps the last of two equal
keys, recurses once per level of nesting (a deep document is a
RecursionError) and raises ValueError for integers over 4300 digits. Here
each of those is a ``JsonError`` that says where and why: nesting deeper
than ``MAX_DEPTH``, an integer outside 64 bits, a number that is not
finite, a duplicate key, a string with a lone surrogate (not Unicode; it
can't even be printed). Parsing stays in the C scanner; the slower
tokenizer that finds the line and column runs only once something is wrong.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
INTEGER_MIN = -(2**63)
INTEGER_MAX = 2**63 - 1
_SHOWN = 20  # characters of an absurd number shown in a message

_TOKEN = re.compile(
    r'(?P<string>"[^"\\]*(?:\\.[^"\\]*)*")(?P<colon>\s*:)?'
    r"|(?P<open>[\[{])|(?P<close>[\]}])"
    r"|(?P<number>-?\d+(?P<fraction>(?:\.\d+)?(?:[eE][+-]?\d+)?))"
    r"|(?P<constant>NaN|-?Infinity)"
)
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class JsonError(ValueError):
    """JSON text that is refused: why, and the 1-based line and column when known."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column

    def at(self, where: str) -> str:
        """The message as ``WHERE:LINE:COLUMN: reason`` (without the position when unknown)."""
        if self.line is None:
            return f"{where}: {self.reason}"
        return f"{where}:{self.line}:{self.column}: {self.reason}"


def loads(text: str) -> Any:
    """Parse JSON text, refusing what opsgate never needs and a hostile input might carry."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_integer,
            parse_float=_float,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as e:
        raise JsonError(f"not valid JSON: {e.msg}", e.lineno, e.colno) from e
    except JsonError as e:
        problem = _first_problem(text)
        if problem is None:
            raise
        raise problem from e
    except RecursionError as e:
        raise _first_problem(text) or JsonError(too_deep()) from e
    deep = text.count("[") + text.count("{") > MAX_DEPTH and _deeper_than_limit(value)
    if deep or _MAYBE_SURROGATE.search(text):
        problem = _first_problem(text)
        if problem is not None:
            raise problem
        if deep:
            raise JsonError(too_deep())
    return value


def too_deep() -> str:
    """Why a document nested past the limit is refused."""
    return f"nested deeper than {MAX_DEPTH} levels"


def integer_out_of_range(text: str) -> str:
    """Why an integer written as ``text`` is refused."""
    return f"integer {shorten(text)} is out of range (opsgate reads 64-bit integers)"


def shorten(text: str) -> str:
    """An absurdly long number as its first characters and its length."""
    if len(text) <= _SHOWN:
        return text
    digits = text.lstrip("-+")
    unit = f"{len(digits)} digits" if digits.isdigit() else f"{len(text)} characters"
    return f"{text[:_SHOWN]}… ({unit})"


def kind(value: Any) -> str:
    """What a JSON value is, in the words of the messages ("an array", "a whole number")."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


# --- the hooks of the C scanner: refuse, the position is found afterwards --------------------


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _integer_problem(text: str) -> str | None:
    digits = len(text.lstrip("-"))
    if digits < 19 or (digits == 19 and INTEGER_MIN <= int(text) <= INTEGER_MAX):
        return None
    return integer_out_of_range(text)


def _integer(text: str) -> int:
    problem = _integer_problem(text)
    if problem is not None:
        raise JsonError(problem)
    return int(text)


def _float_problem(text: str) -> str | None:
    if math.isfinite(float(text)):
        return None
    return f"number {shorten(text)} is out of range (not a finite number)"


def _float(text: str) -> float:
    problem = _float_problem(text)
    if problem is not None:
        raise JsonError(problem)
    return float(text)


def _constant(name: str) -> Any:
    raise JsonError(f"{name} is not valid JSON (JSON numbers are finite)")


def _deeper_than_limit(value: Any) -> bool:
    stack = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# --- finding where: a tokenizer over the text, run only when something is wrong -------------


def _first_problem(text: str) -> JsonError | None:
    """The first refused thing in ``text``, with its line and column."""
    # one entry per open container: key → offset for an object, None for an array
    open_containers: list[dict[str, int] | None] = []
    for match in _TOKEN.finditer(text):
        start = match.start()
        reason = None
        if match.group("open") is not None:
            open_containers.append({} if match.group("open") == "{" else None)
            if len(open_containers) > MAX_DEPTH:
                reason = too_deep()
        elif match.group("close") is not None:
            if open_containers:
                open_containers.pop()
        elif match.group("string") is not None:
            reason = _string_problem(match, open_containers, text)
        elif match.group("number") is not None:
            token = match.group("number")
            number_problem = _float_problem if match.group("fraction") else _integer_problem
            reason = number_problem(token)
        else:
            reason = f"{match.group('constant')} is not valid JSON (JSON numbers are finite)"
        if reason is not None:
            return JsonError(reason, *_position(text, start))
    return None


def _string_problem(
    match: re.Match[str], open_containers: list[dict[str, int] | None], text: str
) -> str | None:
    token = match.group("string")
    try:
        decoded = json.loads(token) if "\\" in token else token[1:-1]
    except ValueError:
        return None  # the syntax error itself is reported by the parser
    surrogate = _SURROGATE.search(decoded)
    if surrogate is not None:
        return f"not valid Unicode: lone surrogate \\u{ord(surrogate.group()):04x} in a string"
    keys = open_containers[-1] if open_containers else None
    if match.group("colon") is None or keys is None:
        return None
    if decoded in keys:
        first, _ = _position(text, keys[decoded])
        return f"duplicate key {decoded!r} (first on line {first})"
    keys[decoded] = match.start()
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1
