"""The verification engine: after an operation settles, did it do what it should?

Checks depend on the operation type (its catalog entry's ``checks``):
replica count reached, every pod Running and Ready, utilization inside the
blueprint's band, p95 latency under its target, no OOMKilled pod, no new
crash. A check whose metric is unknown
is neither passed nor failed, and so is one whose part of the observation
has the wrong shape (pods that are not a list of mappings, a metric that is
not a number): verification reads what any cluster sent and never raises.
The outcome is ``pass`` (all passed), ``fail`` (any failed) or ``partial``
(none failed, some unknown); :func:`judge` then says what that means for the
operation: complete it, roll it back or mark it failed, and whether it
counts toward the circuit breaker. The executor carries the judgement out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from engine import operations

VerificationOutcome = Literal["pass", "fail", "partial"]

# utilization may sit this many points outside the scaling thresholds after an operation
BAND_SLACK_PERCENT = 10

# the checks of a type the catalog doesn't know (it is never executed; recovery may still ask)
_DEFAULT_CHECKS = ("pods_ready", "no_new_crash")


@dataclass(frozen=True)
class Check:
    """One check: its name, whether it passed (None: unknown), what was seen and wanted."""

    name: str
    passed: bool | None
    observed: Any
    expected: str


@dataclass(frozen=True)
class Verification:
    """The checks of one operation and their outcome."""

    outcome: VerificationOutcome
    checks: list[Check] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready mapping."""
        return {"outcome": self.outcome, "checks": [asdict(c) for c in self.checks]}

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.passed is False]


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping; anything else is read as empty (unknown)."""
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """A finite number, or None (unknown) for anything else, booleans included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _pods(observation: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The observed pods; None (unknown) when they are not a list of mappings."""
    pods = _mapping(observation).get("pods")
    if pods is None:
        return []
    if not isinstance(pods, list) or not all(isinstance(p, dict) for p in pods):
        return None
    return pods


def _name(pod: dict[str, Any]) -> str:
    name = pod.get("name")
    return name if isinstance(name, str) else "?"


def _restarts(pod: dict[str, Any]) -> int | None:
    count = pod.get("restart_count")
    if count is None:
        return 0
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _replicas(operation: dict[str, Any], after: dict[str, Any], _: Any, __: Any) -> Check:
    wanted = operation.get("to")
    replicas = _mapping(_mapping(after).get("replicas"))
    seen = {"desired": replicas.get("desired"), "ready": replicas.get("ready")}
    return Check(
        "replicas", seen["desired"] == wanted and seen["ready"] == wanted, seen, f"{wanted} ready"
    )


def _pods_ready(_: Any, after: dict[str, Any], __: Any, ___: Any) -> Check:
    expected = "every pod Running and Ready"
    pods = _pods(after)
    if pods is None:
        return Check("pods_ready", None, None, expected)
    not_ready = sorted(
        _name(p) for p in pods if p.get("phase") != "Running" or p.get("ready") is not True
    )
    return Check("pods_ready", bool(pods) and not not_ready, not_ready or "all ready", expected)


def _utilization(
    _: Any, after: dict[str, Any], before: dict[str, Any], blueprint: dict[str, Any]
) -> Check:
    """Inside the band, or at least closer to it than before the operation."""
    scaling = blueprint["spec"]["scaling"]
    key = f"{scaling['metric']}_percent"
    low = scaling["scale_down_threshold_percent"] - BAND_SLACK_PERCENT
    high = scaling["scale_up_threshold_percent"] + BAND_SLACK_PERCENT
    value = _number(_mapping(_mapping(after).get("metrics")).get(key))
    earlier = _number(_mapping(_mapping(before).get("metrics")).get(key))
    expected = f"{key} between {low} and {high}, or closer to it than before"
    if value is None:
        return Check("utilization", None, None, expected)

    def distance(x: float) -> float:
        return float(max(low - x, 0.0, x - high))

    improved = earlier is not None and distance(value) < distance(earlier)
    return Check("utilization", distance(value) == 0 or improved, value, expected)


def _latency(
    _: Any, after: dict[str, Any], before: dict[str, Any], blueprint: dict[str, Any]
) -> Check:
    """Under the target, or at least lower than before the operation (it helped)."""
    target = blueprint["spec"]["performance"].get("latency_p95_ms")
    value = _number(_mapping(_mapping(after).get("metrics")).get("latency_p95_ms"))
    earlier = _number(_mapping(_mapping(before).get("metrics")).get("latency_p95_ms"))
    if target is None:
        return Check("latency", True, value, "no latency target")
    expected = f"latency_p95_ms under {target}, or lower than before"
    if value is None:
        return Check("latency", None, None, expected)
    improved = earlier is not None and earlier >= target and value < earlier
    return Check("latency", value < target or improved, value, expected)


def _no_oom(_: Any, after: dict[str, Any], __: Any, ___: Any) -> Check:
    expected = "no pod OOMKilled"
    pods = _pods(after)
    if pods is None:
        return Check("no_oom", None, None, expected)
    killed = sorted(_name(p) for p in pods if p.get("reason") == "OOMKilled")
    return Check("no_oom", not killed, killed or "none", expected)


def _no_new_crash(_: Any, after: dict[str, Any], before: dict[str, Any], __: Any) -> Check:
    expected = "no pod crashed since the operation"
    now, earlier = _pods(after), _pods(before)
    if now is None or earlier is None:
        return Check("no_new_crash", None, None, expected)
    counts = [_restarts(p) for p in now + earlier]
    if any(count is None for count in counts):
        return Check("no_new_crash", None, None, expected)
    restarts_before = {_name(p): _restarts(p) or 0 for p in earlier}
    crashed = sorted(
        _name(p)
        for p in now
        if p.get("reason") in ("CrashLoopBackOff", "Error")
        or (_restarts(p) or 0) > restarts_before.get(_name(p), 0)
    )
    return Check("no_new_crash", not crashed, crashed or "none", expected)


_CHECKS = {
    "replicas": _replicas,
    "pods_ready": _pods_ready,
    "utilization": _utilization,
    "latency": _latency,
    "no_oom": _no_oom,
    "no_new_crash": _no_new_crash,
}


def verify(
    operation: dict[str, Any],
    after: dict[str, Any],
    before: dict[str, Any],
    blueprint: dict[str, Any],
) -> Verification:
    """Run the checks for ``operation``'s kind on the observation taken after it settled."""
    entry = operations.lookup(operation)
    names = entry.checks if entry and entry.checks else _DEFAULT_CHECKS
    checks = [_CHECKS[name](operation, after, before, blueprint) for name in names]
    if any(c.passed is False for c in checks):
        return Verification("fail", checks)
    if any(c.passed is None for c in checks):
        return Verification("partial", checks)
    return Verification("pass", checks)


# checks whose failure is final whenever it is seen: a pod killed for its memory or
# crashing does not get better by waiting out the stabilization time
DEFINITE_CHECKS = ("no_oom", "no_new_crash")


def verify_early(verification: Verification) -> Verification | None:
    """Before the stabilization time is up: a failed verification of the checks that failed
    for good, or None (pods still rolling out, metrics still settling are not judged yet)."""
    failed = [c for c in verification.checks if c.name in DEFINITE_CHECKS and c.passed is False]
    return Verification("fail", failed) if failed else None


def verify_rollback(inverse: dict[str, Any], after: dict[str, Any]) -> Verification:
    """Check that a rollback restored the service: ready pods, and the replica count when
    the inverse's type is checked by it."""
    entry = operations.lookup(inverse)
    names = ("replicas", "pods_ready") if entry and "replicas" in entry.checks else ("pods_ready",)
    checks = [_CHECKS[name](inverse, after, {}, {}) for name in names]
    return Verification("fail" if any(c.passed is not True for c in checks) else "pass", checks)


# what the executor does after a verification: close the journal entry as completed,
# undo the change, or close it as failed
Next = Literal["complete", "roll_back", "fail"]


@dataclass(frozen=True)
class Judgement:
    """What a verification means for the operation, and what to do next."""

    next: Next
    # the operation's outcome before any rollback
    outcome: Literal["succeeded", "partial", "failed"]
    # a pass starts the failure count again; a failure counts toward the breaker
    counts_as_success: bool
    counts_as_failure: bool
    detail: str = ""


def judge(verification: Verification, *, undoable: bool, rollback_on_failure: bool) -> Judgement:
    """Did it work, and what now: complete a pass or a partial, roll back a failure when
    the blueprint says so and the change can be undone, else close it as failed."""
    if verification.outcome == "pass":
        return Judgement("complete", "succeeded", counts_as_success=True, counts_as_failure=False)
    if verification.outcome == "partial":
        return Judgement("complete", "partial", counts_as_success=False, counts_as_failure=False)
    detail = "verification failed: " + ", ".join(c.name for c in verification.failed)
    next_step: Next = "roll_back" if rollback_on_failure and undoable else "fail"
    return Judgement(next_step, "failed", False, True, detail)
