"""Read one YAML document safely and remember the line of every value.

PyYAML's safe loader is used only to scan and compose; this module builds the
Python values itself so it can refuse what a blueprint never needs and a
hostile file might carry: duplicate keys, alias explosions, several documents,
non-string keys, integers written with over 100 characters, files over
1 MiB and bytes that are not UTF-8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import BlueprintError
from engine.strictjson import shorten

MAX_FILE_BYTES = 1024 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 64

JsonPath = tuple[str | int, ...]
_PLAIN_TAGS = {"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_INTEGER = "tag:yaml.org,2002:int"
# any integer a blueprint needs fits (the schema then says which range); longer ones are
# costly to build (base 60), can't be built (over 4300 digits) or can't be printed
_MAX_INTEGER_TEXT = 100


class SourceError(BlueprintError):
    """A file can't be read as one YAML mapping; carries where and why."""

    def __init__(self, file: str, line: int | None, message: str, path: JsonPath = ()) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.path = path
        self.message = message


@dataclass
class Document:
    """A parsed YAML mapping with the 1-based line of each JSON path in it."""

    file: str
    data: dict[str, Any]
    lines: dict[JsonPath, int] = field(default_factory=dict)

    def line_of(self, path: JsonPath) -> int | None:
        """Return the line of ``path``, or of its nearest ancestor that has one."""
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


def read_text(path: Path, display: str) -> str:
    """Read a file as UTF-8 text, refusing huge files and undecodable bytes."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(
                display, None, f"file is {size} bytes, over the 1 MiB limit for a blueprint"
            )
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except SourceError:
        raise
    except IsADirectoryError as e:
        raise SourceError(display, None, "is a directory, not a YAML file") from e
    except OSError as e:
        raise SourceError(display, None, f"can't read file: {e.strerror or e}") from e
    if len(raw) > MAX_FILE_BYTES:
        raise SourceError(display, None, "file is over the 1 MiB limit for a blueprint")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise SourceError(
            display, line, f"not UTF-8 text: byte 0x{raw[e.start]:02x} at offset {e.start}"
        ) from e


def load_document(path: Path, display: str | None = None) -> Document:
    """Parse ``path`` as exactly one YAML mapping and return it with line numbers."""
    name = display if display is not None else str(path)
    text = read_text(path, name)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        nodes = list(yaml.compose_all(text, Loader=_loader_class()))
    except yaml.MarkedYAMLError as e:
        raise SourceError(name, *_describe_syntax_error(e, text)) from e
    except yaml.YAMLError as e:
        raise SourceError(name, None, f"YAML syntax error: {e}") from e
    if not nodes:
        raise SourceError(name, 1, "file is empty: expected a blueprint mapping")
    if len(nodes) > 1:
        second = nodes[1].start_mark.line + 1
        raise SourceError(
            name, second, "several YAML documents in one file: put one blueprint per file"
        )
    root = nodes[0]
    if not isinstance(root, yaml.MappingNode):
        kind = _node_kind(root)
        raise SourceError(
            name, root.start_mark.line + 1, f"top level is {kind}, expected a mapping"
        )
    builder = _Builder(name)
    data = builder.build(root, (), 0)
    assert isinstance(data, dict)
    return Document(file=name, data=data, lines=builder.lines)


def _describe_syntax_error(error: yaml.MarkedYAMLError, text: str) -> tuple[int | None, str]:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    message = f"YAML syntax error: {error.problem or error.context}"
    if mark is not None:
        message += f" (column {mark.column + 1})"
        lines = text.splitlines()
        if mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            message += ": YAML does not allow tabs for indentation, use spaces"
    started = error.context_mark
    if error.context and started is not None and mark is not None and started.line != mark.line:
        message += f", {error.context} that started on line {started.line + 1}"
    return line, message


def _loader_class() -> type[yaml.SafeLoader]:
    # The C composer is much faster and yields the same node tree with marks.
    loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return loader


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return "empty (null)"
        return f"a scalar ({node.value!r})"
    return "not a mapping"


class _Builder:
    """Turn a composed node tree into JSON-like values, recording lines."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[JsonPath, int] = {}
        self.visited = 0
        self._scalars = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: JsonPath, depth: int) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise SourceError(
                self.file,
                node.start_mark.line + 1,
                f"document expands to over {MAX_NODES} values (alias/anchor explosion?): refused",
            )
        if depth > MAX_DEPTH:
            raise SourceError(
                self.file, node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels", path
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN_TAGS:
            raise SourceError(
                self.file, node.start_mark.line + 1, f"unsupported YAML tag {node.tag!r}", path
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: JsonPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise SourceError(self.file, line, "merge keys (<<) are not supported", path)
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                shown = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
                raise SourceError(self.file, line, f"key {shown!r} is not a string", path)
            if key in result:
                first = self.lines.get((*path, key))
                where = f" (first on line {first})" if first else ""
                raise SourceError(self.file, line, f"duplicate key {key!r}{where}", (*path, key))
            self.lines[(*path, key)] = line
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _scalar(self, node: yaml.Node, path: JsonPath) -> Any:
        line = node.start_mark.line + 1
        if node.tag == _TIMESTAMP:
            return node.value  # kept as written, never built: 2026-13-45 matches but is no date
        if node.tag == _INTEGER and len(node.value) > _MAX_INTEGER_TEXT:
            # never built: 1:1:1:... (base 60) takes quadratic time, 5000 digits a ValueError
            shown, limit = shorten(node.value), _MAX_INTEGER_TEXT
            message = f"integer {shown} is out of range (over {limit} characters)"
            raise SourceError(self.file, line, message, path)
        try:
            value = self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as e:
            raise SourceError(self.file, line, f"unsupported YAML value: {e.problem}", path) from e
        except ValueError as e:
            raise SourceError(self.file, line, f"unsupported YAML value: {e}", path) from e
        if isinstance(value, float) and not math.isfinite(value):
            raise SourceError(self.file, line, f"{node.value!r} is not a finite number", path)
        if isinstance(value, bytes):
            raise SourceError(self.file, line, "binary values are not supported", path)
        return value
