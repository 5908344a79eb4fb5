"""The verification engine: checks per operation kind; pass, fail and partial."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.blueprint import load_blueprints
from engine.verify import Check, Verification, judge, verify, verify_rollback
from tests.conftest import REPO

FRONTEND = next(
    b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints if b.name == "frontend"
)


def observation(
    replicas: int = 3, cpu: float | None = 57, p95: float | None = 130, **pod: Any
) -> dict[str, Any]:
    metrics = {k: v for k, v in (("cpu_percent", cpu), ("latency_p95_ms", p95)) if v is not None}
    pods = [
        {
            "name": f"p{i}",
            "phase": "Running",
            "ready": True,
            "restart_count": 0,
            "reason": None,
            **pod,
        }
        for i in range(replicas)
    ]
    return {"replicas": {"desired": replicas, "ready": replicas}, "metrics": metrics, "pods": pods}


SCALE = {"type": "scale", "from": 2, "to": 3}


def test_scale_passes_every_check() -> None:
    result = verify(SCALE, observation(), observation(2, cpu=85, p95=300), FRONTEND)
    assert result.outcome == "pass"
    assert [c.name for c in result.checks] == [
        "replicas",
        "pods_ready",
        "utilization",
        "latency",
        "no_oom",
        "no_new_crash",
    ]


def test_unknown_metrics_make_it_partial() -> None:
    result = verify(SCALE, observation(cpu=None, p95=None), observation(2), FRONTEND)
    assert result.outcome == "partial"
    assert {c.name for c in result.checks if c.passed is None} == {"utilization", "latency"}


def test_each_failing_check() -> None:
    cases = [
        (observation(2), "replicas"),
        (observation(ready=False), "pods_ready"),
        (observation(cpu=99, p95=130), "utilization"),
        (observation(p95=250), "latency"),
        (observation(reason="OOMKilled"), "no_oom"),
        (observation(restart_count=2), "no_new_crash"),
    ]
    for after, check in cases:
        result = verify(SCALE, after, observation(2, cpu=70, p95=150), FRONTEND)
        assert result.outcome == "fail", check
        assert check in [c.name for c in result.failed], check


def test_improvement_counts_when_still_outside_the_target() -> None:
    before = observation(2, cpu=120, p95=900)
    after = observation(3, cpu=95, p95=400)  # still over both, but better
    result = verify(SCALE, after, before, FRONTEND)
    assert result.outcome == "pass"


def test_worse_latency_after_a_scale_down_fails() -> None:
    before = observation(3, cpu=57, p95=130)
    after = observation(2, cpu=85, p95=300)
    result = verify({"type": "scale", "from": 3, "to": 2}, after, before, FRONTEND)
    assert [c.name for c in result.failed] == ["latency"]


def test_kinds_have_their_own_checks() -> None:
    restart = verify({"type": "restart_pod", "pod": "p0"}, observation(), observation(), FRONTEND)
    assert [c.name for c in restart.checks] == ["pods_ready", "no_oom", "no_new_crash"]
    unknown = verify({"type": "something"}, observation(), observation(), FRONTEND)
    assert [c.name for c in unknown.checks] == ["pods_ready", "no_new_crash"]


def test_rollback_verification() -> None:
    assert verify_rollback({"type": "scale", "to": 3}, observation()).outcome == "pass"
    assert verify_rollback({"type": "scale", "to": 3}, observation(2)).outcome == "fail"
    assert verify_rollback({"type": "adjust_resources"}, observation(ready=False)).outcome == "fail"
    assert verify_rollback({"type": "adjust_resources"}, {"pods": []}).outcome == "fail"


@pytest.mark.parametrize(
    ("broken", "unknown"),
    [
        ({"pods": "x"}, {"pods_ready", "no_oom", "no_new_crash"}),
        ({"pods": [1, "a", None]}, {"pods_ready", "no_oom", "no_new_crash"}),
        ({"pods": [{"name": {"a": 1}, "restart_count": "3"}]}, {"no_new_crash"}),
        ({"pods": [{"name": "p0", "restart_count": None}]}, set()),
        ({"metrics": [1]}, {"utilization", "latency"}),
        ({"metrics": {"cpu_percent": "high", "latency_p95_ms": True}}, {"utilization", "latency"}),
        ({"metrics": {"cpu_percent": float("nan")}}, {"utilization", "latency"}),
        ({"replicas": "3"}, set()),
        ("not an observation", {"utilization", "latency"}),
    ],
)
def test_any_shape_is_read_as_unknown_or_failed_never_raised(
    broken: Any, unknown: set[str]
) -> None:
    # the runner verifies whatever a cluster sent; a wrong shape is not a crash
    after_broken = verify(SCALE, broken, observation(2), FRONTEND)
    assert after_broken.outcome == "fail"  # the replica count, at least, is not seen
    assert unknown <= {c.name for c in after_broken.checks if c.passed is None}
    before_broken = verify(SCALE, observation(), broken, FRONTEND)
    assert before_broken.outcome != "fail"  # only improvement is judged against "before"
    json.dumps([after_broken.to_json(), before_broken.to_json()])


@pytest.mark.parametrize(
    ("outcome", "undoable", "rollback", "expected"),
    [
        ("pass", True, True, ("complete", "succeeded", True, False)),
        ("partial", True, True, ("complete", "partial", False, False)),
        ("fail", True, True, ("roll_back", "failed", False, True)),
        ("fail", False, True, ("fail", "failed", False, True)),
        ("fail", True, False, ("fail", "failed", False, True)),
    ],
)
def test_the_verification_judges_what_comes_next(
    outcome: str, undoable: bool, rollback: bool, expected: tuple[object, ...]
) -> None:
    checks = [Check("latency", outcome != "fail", 1, "x")] if outcome != "partial" else []
    if outcome == "partial":
        checks = [Check("latency", None, None, "x")]
    judgement = judge(
        Verification(outcome, checks),  # type: ignore[arg-type]
        undoable=undoable,
        rollback_on_failure=rollback,
    )
    assert (
        judgement.next,
        judgement.outcome,
        judgement.counts_as_success,
        judgement.counts_as_failure,
    ) == expected
    assert judgement.detail == ("verification failed: latency" if outcome == "fail" else "")


def test_a_result_is_not_changed_once_built() -> None:
    import dataclasses

    from engine.execute import Result

    result = Result("succeeded", "d", {"type": "scale", "to": 3}, "allow")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.outcome = "failed"  # type: ignore[misc]
