"""The public JSON contracts (docs/AGENT_OPERATIONS.md), and checks that OPA's answers keep them.

An answer that breaks the contract is treated like no answer at all
(``PolicyError``): the runner executes nothing on it. Python checks shapes
here; it never decides a tier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict, cast

from jsonschema import Draft202012Validator

from engine import operations, strictjson
from engine.errors import PolicyError

Tier = Literal["allow", "approve", "forbid", "defer"]
TIERS: tuple[Tier, ...] = ("allow", "approve", "forbid", "defer")

# enforce exit codes (docs/AGENT_OPERATIONS.md): 0 allow, 3 approve, 4 forbid, 5 defer
EXIT_CODES: dict[Tier, int] = {"allow": 0, "approve": 3, "forbid": 4, "defer": 5}


class Suggestion(TypedDict):
    """What to do instead of a refused operation."""

    text: str
    operation: dict[str, Any] | None


class Decision(TypedDict):
    """One operation with its verdict (an element of ``decisions``)."""

    id: str
    operation: dict[str, Any]
    tier: Tier
    reasons: list[str]
    rules: list[str]
    blueprint_refs: list[str]
    suggestion: Suggestion | None
    dry_run: bool
    # for a decision that needs approval: ask, keep, supersede or withhold (decide.requests)
    request: NotRequired[dict[str, Any]]


class DecisionDocument(TypedDict):
    """The answer of ``data.opsgate.main.decide`` for one service."""

    service: Any
    blueprint: dict[str, str] | None
    bundle_revision: str
    dry_run: bool
    decisions: list[Decision]
    notes: list[str]
    # the replicas the policies recommend now, recorded for the scale-down window
    recommendation: NotRequired[dict[str, Any]]


class BreakerAnswer(TypedDict):
    """The answer of ``data.opsgate.main.breaker`` for one service."""

    service: Any
    bundle_revision: str
    open: bool
    reason: str | None


_STRINGS = {"type": "array", "items": {"type": "string"}}

_DECISION = {
    "type": "object",
    "required": ["id", "operation", "tier", "reasons", "rules", "blueprint_refs", "suggestion"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "tier": {"enum": list(TIERS)},
        "reasons": {**_STRINGS, "minItems": 1},
        "rules": {**_STRINGS, "minItems": 1},
        "blueprint_refs": _STRINGS,
        "suggestion": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["text"],
                    "properties": {"text": {"type": "string"}},
                },
            ]
        },
        "dry_run": {"type": "boolean"},
        "request": {
            "type": "object",
            "required": ["action", "id"],
            "properties": {
                "action": {"enum": ["new", "keep", "supersede", "withhold"]},
                "id": {"type": ["string", "null"]},
            },
        },
    },
}

_DOCUMENT = {
    "type": "object",
    "required": ["service", "blueprint", "bundle_revision", "dry_run", "decisions", "notes"],
    "properties": {
        "bundle_revision": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "decisions": {"type": "array", "items": _DECISION},
        "notes": _STRINGS,
    },
}

_DECIDE_ALL = {
    "type": "object",
    "required": ["bundle_revision", "services", "notes"],
    "properties": {
        "bundle_revision": {"type": "string"},
        "services": {"type": "array", "items": _DOCUMENT},
        "notes": _STRINGS,
    },
}

_VERDICT = {
    "allOf": [
        _DECISION,
        {
            "type": "object",
            "required": ["service", "blueprint", "bundle_revision", "dry_run"],
        },
    ]
}

_BREAKER = {
    "type": "object",
    "required": ["service", "bundle_revision", "open", "reason"],
    "properties": {
        "bundle_revision": {"type": "string"},
        "open": {"type": "boolean"},
        "reason": {"type": ["string", "null"]},
    },
}

_AUTHORITY = {
    "type": "object",
    "required": ["bundle_revision", "services", "may_act"],
    "properties": {
        "bundle_revision": {"type": "string"},
        "may_act": {"type": "boolean"},
        "services": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["namespace", "may_request"],
                "properties": {"namespace": {"type": "string"}, "may_request": _STRINGS},
            },
        },
    },
}

_VALIDATORS = {
    "authority": Draft202012Validator(_AUTHORITY),
    "breaker": Draft202012Validator(_BREAKER),
    "decide": Draft202012Validator(_DOCUMENT),
    "decide_all": Draft202012Validator(_DECIDE_ALL),
    "enforce": Draft202012Validator(_VERDICT),
}


def _check(kind: str, answer: Any) -> None:
    error = next(iter(_VALIDATORS[kind].iter_errors(answer)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top)"
        raise PolicyError(
            f"OPA's {kind} answer breaks the contract at {where}: {error.message[:200]}"
        )


def decision_document(answer: Any) -> DecisionDocument:
    """Return ``answer`` as a DecisionDocument, or raise PolicyError."""
    _check("decide", answer)
    return cast(DecisionDocument, answer)


_DOCUMENT_TYPES = {
    "bundle_revision": str,
    "dry_run": bool,
    "decisions": list,
    "notes": list,
}


def decision_documents(answer: Any) -> list[DecisionDocument]:
    """Return the per-service documents of a ``decide_all`` answer, or raise PolicyError.

    A tick asks for a thousand services at once, most with no decision, so
    the document frame is checked by hand and only decisions go through the
    JSON Schema (checking everything with it cost more than OPA's answer).
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("services"), list):
        _check("decide_all", answer)  # raises with the schema's explanation
        raise PolicyError("OPA's decide_all answer breaks the contract")
    for index, document in enumerate(answer["services"]):
        if (
            not isinstance(document, dict)
            or "service" not in document
            or "blueprint" not in document
        ):
            raise PolicyError(f"OPA's decide_all answer breaks the contract at services/{index}")
        for key, kind in _DOCUMENT_TYPES.items():
            if not isinstance(document.get(key), kind):
                raise PolicyError(
                    f"OPA's decide_all answer breaks the contract at services/{index}/{key}"
                )
        if document["decisions"]:
            _check("decide", document)
    return cast(list[DecisionDocument], answer["services"])


def verdict(answer: Any) -> dict[str, Any]:
    """Return ``answer`` as an enforce verdict, or raise PolicyError."""
    _check("enforce", answer)
    return cast(dict[str, Any], answer)


def authority_answer(answer: Any) -> dict[str, Any]:
    """Return ``answer`` as an authority answer (what an actor may request), or raise."""
    _check("authority", answer)
    return cast(dict[str, Any], answer)


def breaker_answer(answer: Any) -> BreakerAnswer:
    """Return ``answer`` as a breaker answer, or raise PolicyError."""
    _check("breaker", answer)
    return cast(BreakerAnswer, answer)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_POD_FIELDS: tuple[tuple[str, str, Callable[[Any], bool]], ...] = (
    ("name", "a string", lambda v: isinstance(v, str)),
    ("phase", "a string or null", lambda v: v is None or isinstance(v, str)),
    ("ready", "true or false", lambda v: isinstance(v, bool)),
    ("restart_count", "a whole number or null", lambda v: v is None or _is_whole(v)),
    ("reason", "a string or null", lambda v: v is None or isinstance(v, str)),
)


def observation_problem(observation: dict[str, Any]) -> str | None:
    """The first field that breaks the Observation contract, as ``path: why``
    (docs/AGENT_OPERATIONS.md).

    Only the parts the verification checks read are checked (replicas,
    metrics, pods); a missing or null part is allowed: it means unknown.
    """

    def wrong(path: str, value: Any, wanted: str) -> str:
        return f"{path}: must be {wanted} (got {strictjson.kind(value)})"

    replicas = observation.get("replicas")
    if replicas is not None:
        if not isinstance(replicas, dict):
            return wrong("replicas", replicas, "an object")
        for key in ("desired", "ready"):
            value = replicas.get(key)
            if value is not None and not _is_whole(value):
                return wrong(f"replicas.{key}", value, "a whole number or null")
    metrics = observation.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, dict):
            return wrong("metrics", metrics, "an object")
        for key, value in metrics.items():
            if value is not None and not _is_number(value):
                return wrong(f"metrics.{key}", value, "a number or null")
    pods = observation.get("pods")
    if pods is not None:
        if not isinstance(pods, list):
            return wrong("pods", pods, "an array")
        for index, pod in enumerate(pods):
            if not isinstance(pod, dict):
                return wrong(f"pods[{index}]", pod, "an object")
            for key, wanted, fits in _POD_FIELDS:
                if key in pod and not fits(pod[key]):
                    return wrong(f"pods[{index}].{key}", pod[key], wanted)
    return None


def describe(operation: Any) -> str:
    """An operation in a few words for people: ``scale 2 → 3``, ``cpu request 100m → 90m``."""
    return operations.describe(operation)
