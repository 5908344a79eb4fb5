"""The operation catalog: what each operation type is, as Python reads it.

``policies/opsgate/catalog/data.json`` declares every operation type once:
its parameters (each with a kind, a description and an example), the
concern whose Rego rules classify it, its floor tier, the verification
checks after it, how it reads to people, how it is undone, and what counts
as "the same kind of change". Rego reads the concern, floor, protection and
parameters from it (``data.opsgate.catalog.operations``); this module gives
Python the rest. Only the cluster backends know *how* to apply a type: one
``apply_<type>`` method each (see :func:`missing_backend_methods`).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.packaged import operation_catalog

Floor = Literal["allow", "approve", "forbid"]
# how an applied operation is put back (the backend computes the inverse when it applies)
Undo = Literal["observed", "previous_values", "previous_revision", "none", "never_executed"]
UNDO_MEANINGS: dict[str, str] = {
    "observed": "set back to the value observed before the change",
    "previous_values": "the changed keys set back to their previous values",
    "previous_revision": "rolled forward to the revision that was current",
    "none": "can't be undone (a failed verification counts toward the breaker only)",
    "never_executed": "never executed: nothing to undo",
}

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Parameter:
    """One parameter of an operation type."""

    name: str
    kind: str
    description: str
    required: bool
    example: Any
    default: Any = None


@dataclass(frozen=True)
class Observed:
    """Where an operation's ``to`` shows in an observation, and when that applies."""

    path: str
    when: Mapping[str, Any]


@dataclass(frozen=True)
class OperationType:
    """One entry of the catalog."""

    name: str
    description: str
    floor: Floor
    concern: str
    parameters: tuple[Parameter, ...]
    checks: tuple[str, ...]
    summary: tuple[str, ...]
    undo: Undo
    observed: Observed | None
    same_kind: tuple[str, ...]
    synonyms: tuple[str, ...]

    @property
    def executable(self) -> bool:
        """True only for a floor of allow or approve: a type the catalog forbids outright,
        or gives no known floor, is never carried out."""
        return self.floor in ("allow", "approve")

    @property
    def apply_method(self) -> str:
        """The method each cluster backend implements to carry this type out."""
        return f"apply_{self.name}"

    def example(self) -> dict[str, Any]:
        """An operation of this type, from the parameters' examples."""
        return {"type": self.name, **{p.name: p.example for p in self.parameters}}

    def with_defaults(self, operation: Mapping[str, Any]) -> dict[str, Any]:
        """``operation`` with the defaults of the parameters it leaves out."""
        defaults = {p.name: p.default for p in self.parameters if p.default is not None}
        return {**defaults, **operation}


def _parameter(name: str, entry: Mapping[str, Any]) -> Parameter:
    return Parameter(
        name=name,
        kind=str(entry.get("kind", "")),
        description=str(entry.get("description", "")),
        required=bool(entry.get("required")),
        example=entry.get("example"),
        default=entry.get("default"),
    )


def _operation_type(name: str, entry: Mapping[str, Any]) -> OperationType:
    observed = entry.get("observed")
    return OperationType(
        name=name,
        description=str(entry.get("description", "")),
        floor=entry.get("floor", "forbid"),
        concern=str(entry.get("concern", "")),
        parameters=tuple(
            _parameter(n, p) for n, p in sorted((entry.get("parameters") or {}).items())
        ),
        checks=tuple(entry.get("checks") or ()),
        summary=tuple(entry.get("summary") or ()),
        undo=entry.get("undo", "never_executed"),
        observed=(
            Observed(str(observed["path"]), dict(observed.get("when") or {}))
            if isinstance(observed, dict)
            else None
        ),
        same_kind=tuple(entry.get("same_kind") or ()),
        synonyms=tuple(entry.get("synonyms") or ()),
    )


@functools.cache
def catalog() -> dict[str, OperationType]:
    """Every operation type, by name (read once from the packaged policy library)."""
    return {name: _operation_type(name, e) for name, e in sorted(operation_catalog().items())}


def lookup(operation: Any) -> OperationType | None:
    """The catalog entry of ``operation`` (a mapping with a ``type``), or None."""
    kind = operation.get("type") if isinstance(operation, Mapping) else None
    return catalog().get(kind) if isinstance(kind, str) else None


def floor_of(operation: Any) -> Floor:
    """The floor tier of ``operation``'s type; forbid for a type the catalog doesn't know."""
    entry = lookup(operation)
    return entry.floor if entry else "forbid"


# --- for people -------------------------------------------------------------------


def _render(name: str, value: Any, operation: Mapping[str, Any]) -> str:
    if name == "changes" and isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def describe(operation: Any) -> str:
    """An operation in a few words for people: ``scale 2 → 3``, ``cpu request 100m → 90m``.

    The first of the type's summary templates whose placeholders the operation
    fills (defaults included) is used.
    """
    if not isinstance(operation, Mapping):
        return str(operation)
    entry = lookup(operation)
    if entry is None:
        kind, name = operation.get("type", "?"), operation.get("name")
        return f"{kind} {name}" if name else str(kind)
    filled = entry.with_defaults(operation)
    for template in entry.summary:
        names = _PLACEHOLDER.findall(template)
        if all(filled.get(n) is not None for n in names):
            return _PLACEHOLDER.sub(lambda m: _render(m[1], filled[m[1]], filled), template)
    return entry.name


# --- undoing and re-reading ---------------------------------------------------------


def _observed_at(entry: OperationType, operation: Mapping[str, Any]) -> list[str] | None:
    """The path in an observation where ``operation``'s result shows, or None."""
    if entry.observed is None:
        return None
    filled = entry.with_defaults(operation)
    if any(filled.get(k) != v for k, v in entry.observed.when.items()):
        return None
    try:
        path = entry.observed.path.format_map({k: str(v) for k, v in filled.items()})
    except KeyError:
        return None
    return path.split(".")


def _read(observation: Mapping[str, Any], path: list[str]) -> Any:
    value: Any = observation
    for step in path:
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def inverse_from(operation: Mapping[str, Any], before: Mapping[str, Any]) -> dict[str, Any] | None:
    """How to put back what ``before`` shows, for types whose result is observed (else None)."""
    entry = lookup(operation)
    path = _observed_at(entry, operation) if entry else None
    if entry is None or path is None:
        return None
    value = _read(before, path)
    if value is None:
        return None
    filled = entry.with_defaults(operation)
    return {"type": entry.name, **{k: filled[k] for k in entry.same_kind}, "to": value}


def reached(operation: Mapping[str, Any], observation: Mapping[str, Any]) -> bool:
    """Whether the cluster shows ``operation`` applied (True when that can't be told)."""
    entry = lookup(operation)
    path = _observed_at(entry, operation) if entry else None
    if path is None:
        return True
    return bool(_read(observation, path) == operation.get("to"))


def same_kind(operation: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a change is about, whatever its amount: its type and the parameters that
    name what it changes (the catalog's ``same_kind``)."""
    entry = lookup(operation)
    if entry is None:
        return (operation.get("type"),)
    filled = entry.with_defaults(operation)
    return (entry.name, *(filled.get(k) for k in entry.same_kind))


# --- for someone guessing a name ------------------------------------------------------


def closest(name: str) -> str | None:
    """The operation type ``name`` most likely means: by meaning first (the catalog's
    synonyms: ``update_probe`` → ``update_health_checks``), then by spelling."""
    words = {w for w in re.split(r"[^a-z0-9]+", name.lower()) if w}
    best, score = None, 0
    for entry in catalog().values():
        vocabulary = {*entry.synonyms, *entry.name.split("_")} - {"update", "delete", "modify"}
        hits = len(words & vocabulary) + sum(1 for s in entry.synonyms if s == name.lower()) * 2
        if hits > score:
            best, score = entry.name, hits
    if best is not None:
        return best
    spelled = difflib.get_close_matches(name, list(catalog()), n=1)
    return spelled[0] if spelled else None


# --- for the cluster backends --------------------------------------------------------


def missing_backend_methods(backend: type) -> list[str]:
    """The executable operation types ``backend`` has no ``apply_<type>`` method for."""
    return [
        entry.name
        for entry in catalog().values()
        if entry.executable and not callable(getattr(backend, entry.apply_method, None))
    ]
