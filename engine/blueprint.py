"""Parse and validate blueprints and the shared governance defaults.

Validation has two layers: the JSON Schema shipped in ``blueprints/schema``
(draft 2020-12, checked with the ``jsonschema`` library) and the semantic
checks a schema can't express (ordering of thresholds and quantities,
uniqueness across files, operation names). Both run in one pass, so a user
sees every problem at once; the semantic checks skip the values the schema
refused. Every finding is a ``Problem`` that names the file, the line where
it can be known, the JSON path and why.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from engine import operations, packaged, signing
from engine.errors import BlueprintError
from engine.quantity import QuantityError, cpu_millicores, memory_bytes
from engine.yamldoc import Document, JsonPath, SourceError, load_document

GOVERNANCE_FILE_NAMES = ("governance.yaml", "governance.yml")
BLUEPRINT_SUFFIXES = (".yaml", ".yml")

Severity = Literal["error", "warning"]
_NO_VALUE: Any = object()


@dataclass(frozen=True)
class Problem:
    """One finding about one file: where, what, and the offending value."""

    file: str
    line: int | None
    path: str
    message: str
    got: Any = _NO_VALUE
    severity: Severity = "error"

    def format(self) -> str:
        """Render as ``FILE:LINE: json.path: message (got VALUE)``."""
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        text = f"{where}: {self.path}: {self.message}"
        if self.got is not _NO_VALUE:
            text += f" (got {_show(self.got)})"
        if self.severity == "warning":
            text += " [warning]"
        return text

    def to_json(self) -> dict[str, Any]:
        """Return the finding as a JSON-ready mapping (for ``--json``)."""
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }
        if self.got is not _NO_VALUE:
            out["got"] = self.got
        return out


@dataclass
class Blueprint:
    """A valid blueprint: its source and its effective content (defaults filled)."""

    name: str
    version: str
    file: str
    path: Path
    effective: dict[str, Any]


@dataclass
class BlueprintSet:
    """Everything read from the paths given: blueprints, defaults, problems."""

    blueprints: list[Blueprint] = field(default_factory=list)
    governance_files: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    files_read: int = 0

    @property
    def errors(self) -> list[Problem]:
        """Return only the problems that make the set invalid."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Return the problems that are reported but don't fail validation."""
        return [p for p in self.problems if p.severity == "warning"]


# --- discovery -------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    path: Path
    display: str
    root: Path  # governance.yaml is looked up from the file's folder up to here


def _discover(paths: Sequence[Path]) -> list[_Source]:
    sources: list[_Source] = []
    seen: set[Path] = set()
    for given in paths:
        if given.is_dir():
            found = sorted(
                p
                for p in given.rglob("*")
                if p.suffix in BLUEPRINT_SUFFIXES
                and (p.is_file() or p.is_symlink())
                and not any(part.startswith(".") for part in p.relative_to(given).parts)
            )
            if not found:
                raise BlueprintError(f"{given}: no .yaml or .yml files in this directory")
            items = [(p, given) for p in found]
        elif given.exists():
            parent = given.parent
            items = [(given, parent.parent if parent.parent != parent else parent)]
        else:
            raise BlueprintError(f"{given}: no such file or directory")
        for path, root in items:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(_Source(path, str(path), root))
    return sources


def _is_governance_file(path: Path) -> bool:
    return path.name in GOVERNANCE_FILE_NAMES


def _governance_for(source: _Source) -> Path | None:
    folder = source.path.parent
    root = source.root.resolve()
    while True:
        for name in GOVERNANCE_FILE_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if folder.resolve() == root or folder.parent == folder:
            return None
        folder = folder.parent


# --- schema validation ------------------------------------------------------


def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    blueprint_schema = packaged.load_schema("blueprint.schema.json")
    governance_schema = packaged.load_schema("governance.schema.json")
    registry: Registry[Any] = Registry().with_resources(
        [
            (blueprint_schema["$id"], Resource.from_contents(blueprint_schema)),
            (governance_schema["$id"], Resource.from_contents(governance_schema)),
        ]
    )
    return (
        Draft202012Validator(blueprint_schema, registry=registry),
        Draft202012Validator(governance_schema, registry=registry),
    )


_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "null": "empty",
}


def _type_words(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in expected)
    return _TYPE_WORDS.get(str(expected), str(expected))


def _dotted(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "$"


@dataclass(frozen=True)
class _Known:
    """A document's values that later checks may read: present, and not refused by the schema.

    Every check runs in the same pass as the schema, so a check must not
    trust a value the schema refused (it would crash on a wrong type, or
    report the same value twice): those values, and everything under them,
    read as absent.
    """

    data: Any
    refused: frozenset[JsonPath] = frozenset()

    def get(self, *path: str | int) -> Any:
        """Return the value at ``path``, or ``_NO_VALUE`` when absent or refused."""
        if any(path[:n] in self.refused for n in range(len(path) + 1)):
            return _NO_VALUE
        value = self.data
        for key in path:
            if isinstance(key, str):
                found = isinstance(value, dict) and key in value
            else:
                found = isinstance(value, list) and 0 <= key < len(value)
            if not found:
                return _NO_VALUE
            value = value[key]
        return value

    def entries(self, *path: str | int) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, item)`` of the list at ``path``, skipping refused items."""
        items = self.get(*path)
        for index in range(len(items) if isinstance(items, list) else 0):
            item = self.get(*path, index)
            if item is not _NO_VALUE:
                yield index, item


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _schema_check(
    document: Document, validator: Draft202012Validator
) -> tuple[list[Problem], frozenset[JsonPath]]:
    """The schema's problems with a document, and the paths of the values it refused."""
    problems: list[Problem] = []
    refused: set[JsonPath] = set()
    for error in validator.iter_errors(document.data):
        problems.extend(_translate(document, error))
        refused.update(_refused_paths(error))
    return problems, frozenset(refused)


def _refused_paths(error: ValidationError) -> Iterator[JsonPath]:
    path: JsonPath = tuple(error.absolute_path)
    if error.validator == "required":
        present = error.instance if isinstance(error.instance, dict) else {}
        names = cast(list[str], error.validator_value)
        yield from ((*path, name) for name in names if name not in present)
    elif error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        if isinstance(error.instance, dict):
            yield from ((*path, key) for key in error.instance if key not in known)
    elif error.validator != "uniqueItems":
        # a list with a repeated entry still has entries worth checking one by one
        yield path


def _translate(document: Document, error: ValidationError) -> Iterator[Problem]:
    path: JsonPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(error.message)
        yield Problem(
            document.file,
            document.line_of(path),
            _dotted((*path, missing)),
            "required field is missing",
        )
        return
    if kind == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        assert isinstance(error.instance, dict)
        for key in sorted(set(error.instance) - set(known)):
            hint = difflib.get_close_matches(key, known, n=1)
            message = f"unknown field {key!r}"
            message += f": did you mean {hint[0]!r}?" if hint else f" (known: {', '.join(known)})"
            yield Problem(
                document.file, document.line_of((*path, key)), _dotted((*path, key)), message
            )
        return
    line = document.line_of(path)
    dotted = _dotted(path)
    got = _summarise(error.instance)
    if "x-message" in schema and kind in {"pattern", "oneOf", "anyOf"}:
        yield Problem(document.file, line, dotted, str(schema["x-message"]), got)
        return
    if kind == "type":
        message = f"must be {_type_words(error.validator_value)}"
        if error.validator_value == "string" and isinstance(error.instance, int | float):
            message += ": quote it in YAML"
        yield Problem(document.file, line, dotted, message, got)
    elif kind == "const":
        yield Problem(document.file, line, dotted, f"must be {error.validator_value!r}", got)
    elif kind == "enum":
        choices = ", ".join(str(c) for c in cast(list[Any], error.validator_value))
        yield Problem(document.file, line, dotted, f"must be one of: {choices}", got)
    elif kind in _BOUNDS:
        yield Problem(
            document.file, line, dotted, f"must be {_BOUNDS[kind]} {error.validator_value}", got
        )
    elif kind in ("minLength", "minItems"):
        yield Problem(document.file, line, dotted, "must not be empty", got)
    elif kind == "uniqueItems":
        yield Problem(document.file, line, dotted, "has duplicate entries", got)
    else:
        yield Problem(document.file, line, dotted, error.message)


_BOUNDS = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
}


def _summarise(value: Any) -> Any:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return value


def _show(value: Any) -> str:
    if value == "a mapping" or value == "a list":
        return str(value)
    if isinstance(value, str) and len(value) > 60:
        value = value[:57] + "..."
    return json.dumps(value, ensure_ascii=False)


# --- defaults and merging ----------------------------------------------------


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(target)
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def fill_defaults(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """Return ``value`` with every schema ``default`` filled in where absent."""
    schema = _resolve(schema, root)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [fill_defaults(item, items, root) for item in value]
    properties = schema.get("properties")
    if not isinstance(value, dict) or not isinstance(properties, dict):
        return value
    out = dict(value)
    for key, sub in properties.items():
        resolved = _resolve(sub, root)
        if key not in out and "default" in resolved:
            out[key] = copy.deepcopy(resolved["default"])
        if key in out:
            out[key] = fill_defaults(out[key], resolved, root)
    return out


def derived_defaults(blueprint: Any) -> Any:
    """Fill the defaults that depend on other fields (after the schema's own defaults).

    ``spec.scaling.target_utilization_percent`` left out is the target whose
    tolerance ends at the scale-up threshold: threshold ÷ (1 + tolerance_percent)
    (80 and 10 → 72.7). A proportional decision then starts where the step rule
    does, just above the threshold, which is also where an HPA with that target
    would start. A value the schema refused is left for the problems to report.
    """
    spec = blueprint.get("spec") if isinstance(blueprint, dict) else None
    scaling = spec.get("scaling") if isinstance(spec, dict) else None
    if not isinstance(scaling, dict) or "target_utilization_percent" in scaling:
        return blueprint
    up, tolerance = scaling.get("scale_up_threshold_percent"), scaling.get("tolerance_percent")
    if _is_number(up) and _is_number(tolerance):
        scaling["target_utilization_percent"] = round(
            cast(float, up) * 100 / (100 + cast(float, tolerance)), 1
        )
    return blueprint


def whole_numbers(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """Return ``value`` with ``2.0`` made ``2`` wherever the schema wants an integer.

    JSON Schema counts 2.0 as an integer and YAML reads it as a float; the
    policies, the cluster and the audit log should all see the 2 that was meant.
    """
    schema = _resolve(schema, root)
    if isinstance(value, float) and value.is_integer() and _wants_integer(schema, root):
        return int(value)
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [whole_numbers(item, items, root) for item in value]
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, dict):
        return {
            key: whole_numbers(sub, properties[key], root) if key in properties else sub
            for key, sub in value.items()
        }
    return value


def _wants_integer(schema: dict[str, Any], root: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind == "integer" or (isinstance(kind, list) and "integer" in kind):
        return True
    branches = [*schema.get("oneOf", []), *schema.get("anyOf", [])]
    return any(_wants_integer(_resolve(branch, root), root) for branch in branches)


def merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; anything else in ``override`` replaces ``base``."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def builtin_governance() -> dict[str, Any]:
    """Return the built-in governance defaults (from the schema's defaults)."""
    root = packaged.load_schema("blueprint.schema.json")
    filled = fill_defaults({}, root["$defs"]["governance"], root)
    assert isinstance(filled, dict)
    return filled


# --- semantic checks -----------------------------------------------------------


def _locate(
    path: JsonPath, document: Document, governance: Document | None
) -> tuple[str, int | None]:
    """Find where a value of the effective blueprint was written.

    The blueprint wins when it sets the value; then the shared governance
    file; when neither does, the deepest enclosing mapping that one of them
    writes (that is where the missing value belongs).
    """
    if path in document.lines or governance is None:
        return document.file, document.line_of(path)
    if path in governance.lines:
        return governance.file, governance.lines[path]

    def depth(doc: Document) -> int:
        return max((n for n in range(len(path) + 1) if path[:n] in doc.lines), default=0)

    if depth(governance) > depth(document):
        return governance.file, governance.line_of(path)
    return document.file, document.line_of(path)


def _operation_problems(
    known: _Known, file_of: Callable[[JsonPath], tuple[str, int | None]]
) -> Iterator[Problem]:
    """Each operation type in ``governance.agent_authority`` and in each entry of
    ``governance.agents`` exists and is in one tier of its entry only."""
    yield from _tier_problems(known, ("governance", "agent_authority"), file_of)
    agents = known.get("governance", "agents")
    for name in sorted(agents) if isinstance(agents, dict) else ():
        yield from _tier_problems(known, ("governance", "agents", name), file_of)


def _tier_problems(
    known: _Known, entry: JsonPath, file_of: Callable[[JsonPath], tuple[str, int | None]]
) -> Iterator[Problem]:
    """The operation lists of one entry (allowed, requires_approval, forbidden)."""
    catalog = operations.catalog()
    names = sorted(catalog)
    listed_in: dict[str, str] = {}
    for tier in ("allowed", "requires_approval", "forbidden"):
        for index, operation in known.entries(*entry, tier):
            if not isinstance(operation, str):
                continue
            path = (*entry, tier, index)
            file, line = file_of(path)
            if operation not in catalog:
                hint = operations.closest(operation)
                message = "unknown operation type"
                message += f": did you mean {hint!r}?" if hint else f" (known: {', '.join(names)})"
                yield Problem(file, line, _dotted(path), message, operation)
                continue
            # a repeat within one tier is the schema's "has duplicate entries"
            if listed_in.get(operation, tier) != tier:
                yield Problem(
                    file,
                    line,
                    _dotted(path),
                    f"operation is also listed in {entry[-1]}.{listed_in[operation]}",
                    operation,
                )
            listed_in.setdefault(operation, tier)
            if tier == "allowed" and not catalog[operation].executable:
                yield Problem(
                    file,
                    line,
                    _dotted(path),
                    "listed as allowed but the built-in tiers forbid it: forbid still wins",
                    operation,
                    severity="warning",
                )


_NOTIFICATIONS: JsonPath = ("governance", "approval_workflow", "notifications")
# Fields that belong to one kind of notification target only.
_TARGET_FIELDS = {
    "url": "webhook",
    "secret_env": "webhook",
    "secret_file": "webhook",
    "argv": "command",
}


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (where plain http stays on this host)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_problem(url: str) -> str | None:
    """Why a webhook URL (already http or https by the schema) is refused, if it is."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a malformed port raises here)
    except ValueError:
        return "is not a valid URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username is not None or parts.password is not None:
        return (
            "must not carry a user name or password (the URL is kept in the compiled data): "
            "sign requests with secret_env or secret_file instead"
        )
    if parts.scheme.lower() == "http" and not is_loopback(parts.hostname):
        return (
            "plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost): use "
            "https so approval details can't be read or changed on the way"
        )
    return None


def _notification_problems(document: Document, refused: frozenset[JsonPath]) -> Iterator[Problem]:
    """What the schema can't say about the notification targets a file writes itself.

    Only the file's own list is checked, so a target in governance.yaml is
    reported once, there, not once per blueprint that inherits it.
    """
    known = _Known(document.data, refused)
    for index, target in known.entries(*_NOTIFICATIONS):
        if not isinstance(target, dict):
            continue

        def at(key: str, index: int = index) -> tuple[str, int | None, str]:
            path = (*_NOTIFICATIONS, index, key)
            return document.file, document.line_of(path), _dotted(path)

        def value(key: str, index: int = index) -> Any:
            return known.get(*_NOTIFICATIONS, index, key)

        kind = value("type")
        if kind is _NO_VALUE:
            continue
        for key, owner in _TARGET_FIELDS.items():
            if key in target and kind != owner:
                yield Problem(*at(key), f"is for {owner} targets only")
        if kind != "webhook":
            continue
        url = value("url")
        problem = _url_problem(url) if isinstance(url, str) else None
        if problem:
            yield Problem(*at("url"), problem, url)
        secret_file = value("secret_file")
        if "secret_env" in target and "secret_file" in target:
            yield Problem(
                *at("secret_file"),
                "give secret_env or secret_file, not both",
                target["secret_file"],
            )
        elif isinstance(secret_file, str) and not Path(secret_file).is_absolute():
            yield Problem(
                *at("secret_file"),
                "must be an absolute path: the runner and opsgate approvals may start in "
                "other directories",
                secret_file,
            )


def _semantic_problems(
    known: _Known, document: Document, governance: Document | None, *, with_governance: bool
) -> Iterator[Problem]:
    """The checks a schema can't express, on every value the schema did not refuse.

    ``with_governance`` is false when the shared defaults are invalid: then
    the effective governance can't be known, and only the rest is checked.
    """

    def at(*path: str | int) -> tuple[str, int | None, str]:
        file, line = _locate(path, document, governance)
        return file, line, _dotted(path)

    def scaling(key: str) -> Any:
        return known.get("spec", "scaling", key)

    low, high = scaling("min_replicas"), scaling("max_replicas")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        yield Problem(
            *at("spec", "scaling", "min_replicas"), f"must be <= max_replicas {high}", low
        )
    down, up = scaling("scale_down_threshold_percent"), scaling("scale_up_threshold_percent")
    if _is_number(down) and _is_number(up) and down >= up:
        yield Problem(
            *at("spec", "scaling", "scale_down_threshold_percent"),
            f"must be below scale_up_threshold_percent {up}",
            down,
        )
    target = scaling("target_utilization_percent")
    numbers = _is_number(target) and _is_number(down) and _is_number(up)
    # inverted thresholds are reported above; a target between them then means nothing
    if numbers and down < up and not down < target <= up:
        yield Problem(
            *at("spec", "scaling", "target_utilization_percent"),
            f"must be above scale_down_threshold_percent {down} "
            f"and at most scale_up_threshold_percent {up}",
            target,
        )

    for resource, convert, unit in (("cpu", cpu_millicores, "m"), ("memory", memory_bytes, "B")):
        amounts = {
            key: known.get("spec", "resources", resource, key)
            for key in ("minimum", "request", "limit")
        }
        parsed: dict[str, int] = {}
        for key, amount in amounts.items():
            if not isinstance(amount, str) and not _is_number(amount):
                continue
            try:
                parsed[key] = convert(amount)
            except QuantityError as e:
                yield Problem(*at("spec", "resources", resource, key), str(e), amount)
        if len(parsed) == 3:
            if parsed["minimum"] > parsed["request"]:
                yield Problem(
                    *at("spec", "resources", resource, "minimum"),
                    f"must be <= request {amounts['request']}",
                    amounts["minimum"],
                )
            if parsed["request"] > parsed["limit"]:
                yield Problem(
                    *at("spec", "resources", resource, "request"),
                    f"must be <= limit {amounts['limit']}",
                    amounts["request"],
                )
            if parsed["request"] == 0:
                yield Problem(
                    *at("spec", "resources", resource, "request"),
                    f"must be above 0{unit}",
                    amounts["request"],
                )

    yield from _notification_problems(document, known.refused)
    if not with_governance:
        return
    yield from _operation_problems(known, lambda p: _locate(p, document, governance))
    yield from _approver_problems(known, at)
    requires_approval = known.get("governance", "agent_authority", "requires_approval")
    approvers = known.get("governance", "approval_workflow", "approvers")
    if isinstance(requires_approval, list) and requires_approval and approvers == []:
        yield Problem(
            *at("governance", "approval_workflow", "approvers"),
            "must name at least one approver when agent_authority.requires_approval is not empty",
            [],
        )


def _approver_problems(
    known: _Known, at: Callable[..., tuple[str, int | None, str]]
) -> Iterator[Problem]:
    """Each approver once, no reserved name, and every public key a real ssh-ed25519 key."""
    seen: set[str] = set()
    for index, entry in known.entries("governance", "approval_workflow", "approvers"):
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str):
            continue
        where = ("governance", "approval_workflow", "approvers", index)
        if not signing.valid_name(name):
            yield Problem(*at(*where), "must be a plain name (no line breaks)", name)
        if name in seen:
            yield Problem(*at(*where), "names an approver listed before", name)
        if name in signing.RESERVED_NAMES:
            yield Problem(*at(*where), f"{name!r} is the runner's own name", name)
        seen.add(name)
        public_key = known.get(*where, "public_key")
        if isinstance(public_key, str):
            try:
                signing.parse_public_key(public_key)
            except signing.SigningError as e:
                yield Problem(*at(*where, "public_key"), str(e), public_key[:40])


# --- the public entry points ---------------------------------------------------


def load_blueprints(paths: Sequence[Path]) -> BlueprintSet:
    """Read, validate and complete every blueprint under ``paths``.

    Raises ``BlueprintError`` only when a path doesn't exist; every problem
    with a file's content is collected in the returned set instead.
    """
    result = BlueprintSet()
    blueprint_validator, governance_validator = _validators()
    schema_root = packaged.load_schema("blueprint.schema.json")
    sources = _discover(paths)
    governance_docs: dict[Path, Document | None] = {}

    def governance_document(path: Path) -> Document | None:
        key = path.resolve()
        if key not in governance_docs:
            governance_docs[key] = None
            try:
                document = load_document(path)
            except SourceError as e:
                result.problems.append(_source_problem(e))
                return None
            problems, refused = _schema_check(document, governance_validator)
            problems += _operation_problems(
                _Known(document.data, refused), lambda p: (document.file, document.line_of(p))
            )
            problems += _notification_problems(document, refused)
            result.problems.extend(problems)
            result.files_read += 1
            if any(p.severity == "error" for p in problems):
                return None
            governance_docs[key] = document
            result.governance_files[document.file] = document.data["governance"]
        return governance_docs[key]

    names: dict[str, str] = {}
    targets: dict[tuple[str, str], str] = {}
    for source in sources:
        if _is_governance_file(source.path):
            governance_document(source.path)
            continue
        result.files_read += 1
        try:
            document = load_document(source.path, source.display)
        except SourceError as e:
            result.problems.append(_source_problem(e))
            continue
        if document.data.get("kind") == "Governance":
            result.problems.append(
                Problem(
                    document.file,
                    document.line_of(("kind",)),
                    "kind",
                    "governance defaults must be in a file named governance.yaml",
                    "Governance",
                )
            )
            continue
        problems, refused = _schema_check(document, blueprint_validator)
        governance_path = _governance_for(source)
        governance = governance_document(governance_path) if governance_path else None
        with_governance = governance_path is None or governance is not None
        if not with_governance:
            problems.append(
                Problem(
                    document.file,
                    None,
                    "governance",
                    f"not checked: the shared defaults in {governance_path} are invalid",
                )
            )
        shared = governance.data["governance"] if governance is not None else {}
        data = copy.deepcopy(document.data)
        data["governance"] = merge(shared, data.get("governance", {}))
        effective = derived_defaults(
            whole_numbers(fill_defaults(data, schema_root, schema_root), schema_root, schema_root)
        )
        known = _Known(effective, refused)
        problems += _semantic_problems(known, document, governance, with_governance=with_governance)
        result.problems.extend(problems)

        name = known.get("metadata", "name")
        namespace, deployment = known.get("target", "namespace"), known.get("target", "deployment")
        if not isinstance(name, str):
            continue
        # a target the schema refused is not compared (its parts may not even be hashable)
        target = (
            (namespace, deployment)
            if isinstance(namespace, str) and isinstance(deployment, str)
            else None
        )
        if name in names:
            result.problems.append(
                Problem(
                    document.file,
                    document.line_of(("metadata", "name")),
                    "metadata.name",
                    f"blueprint name is already used by {names[name]}",
                    name,
                )
            )
        elif target is not None and target in targets:
            result.problems.append(
                Problem(
                    document.file,
                    document.line_of(("target",)),
                    "target",
                    f"{namespace}/{deployment} is already governed by {targets[target]}",
                    f"{namespace}/{deployment}",
                )
            )
        if any(p.severity == "error" for p in problems) or name in names or target in targets:
            names.setdefault(name, document.file)
            continue
        names[name] = document.file
        assert target is not None  # the schema requires both as strings
        targets[target] = document.file
        result.blueprints.append(
            Blueprint(
                name=name,
                version=effective["metadata"]["version"],
                file=document.file,
                path=source.path,
                effective=effective,
            )
        )
    result.problems.sort(key=lambda p: (p.file, p.line or 0, p.path, p.message))
    return result


def _source_problem(error: SourceError) -> Problem:
    return Problem(error.file, error.line, _dotted(error.path), error.message)


def normalise_resources(effective: dict[str, Any]) -> dict[str, Any]:
    """Add integer millicores and bytes beside the quantities as written."""
    out = copy.deepcopy(effective)
    cpu = out["spec"]["resources"]["cpu"]
    memory = out["spec"]["resources"]["memory"]
    cpu["millicores"] = {k: cpu_millicores(cpu[k]) for k in ("request", "limit", "minimum")}
    memory["bytes"] = {k: memory_bytes(memory[k]) for k in ("request", "limit", "minimum")}
    return out


def keyed_blueprints(source: Path, target: Path, keys: dict[str, str]) -> Path:
    """Copy a blueprint directory, giving the named approvers their public keys.

    Every ``approval_workflow.approvers`` list in the copy has each name of
    ``keys`` replaced by ``{name, public_key}``: how a team adopts signed
    approvals, done here with keys made for a demonstration or a simulation.
    """
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    for path in sorted(target.rglob("*.y*ml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        workflow = (
            ((document or {}).get("governance") or {}).get("approval_workflow")
            if isinstance(document, dict)
            else None
        )
        if not isinstance(workflow, dict) or not isinstance(workflow.get("approvers"), list):
            continue
        workflow["approvers"] = [
            {"name": entry, "public_key": keys[entry]}
            if isinstance(entry, str) and entry in keys
            else entry
            for entry in workflow["approvers"]
        ]
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return target
