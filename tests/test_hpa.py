"""The HPA baseline follows Kubernetes' documented algorithm, case by documented case."""

from __future__ import annotations

import pytest

from engine.blueprint import derived_defaults
from engine.hpa import (
    DEFAULT_SCALE_UP,
    HorizontalPodAutoscaler,
    PodSample,
    Policy,
    ScalingRules,
    group_pods,
    replicas_for_utilization,
    target_utilization,
)

NOW = 1000.0  # long after every pod below started: no CPU initialization period applies


def pods(*percents: int | None, request: int = 100) -> list[PodSample]:
    """Ready pods using these percents of a 100m request (None: no metrics sample)."""
    return [
        PodSample(f"p{i}", request, None if p is None else p * request // 100, sampled_at=NOW)
        for i, p in enumerate(percents)
    ]


def hpa(**settings: object) -> HorizontalPodAutoscaler:
    base: dict[str, object] = {"min_replicas": 2, "max_replicas": 20, "target_utilization": 50}
    return HorizontalPodAutoscaler(**{**base, **settings})  # type: ignore[arg-type]


# --- the ratio and the tolerance -----------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        (50, 4),  # on target
        (46, 4),  # ratio 0.92: inside the tolerance
        (45, 4),  # ratio 0.9: |1 - 0.9| = 0.0999... in float64, inside: no change
        (44, 4),  # ratio 0.88: ceil(0.88 x 4) = 4 still
        (30, 3),  # ratio 0.6: ceil(2.4)
        (54, 4),  # ratio 1.08: inside
        # ratio 1.1: |1 - 1.1| = 0.10000000000000009 in float64, outside: Kubernetes scales
        (55, 5),
        (100, 8),  # ratio 2
    ],
)
def test_tolerance_and_proportional_count(percent: int, expected: int) -> None:
    proposal = replicas_for_utilization(4, 50, pods(*[percent] * 4), "cpu", NOW)
    assert proposal == (expected, percent)


def test_utilization_is_summed_usage_over_summed_request_a_whole_percent() -> None:
    samples = [PodSample("a", 100, 33, sampled_at=NOW), PodSample("b", 200, 67, sampled_at=NOW)]
    # 100m used of 300m requested: 33.3% truncated to 33, ratio 0.66 against 50
    assert replicas_for_utilization(2, 50, samples, "cpu", NOW) == (2, 33)


def test_no_usable_metrics_gives_no_proposal() -> None:
    assert replicas_for_utilization(3, 50, pods(None, None, None), "cpu", NOW) is None
    assert replicas_for_utilization(2, 50, pods(0, 0, request=0), "cpu", NOW) is None
    autoscaler = hpa()
    recommendation = autoscaler.reconcile(NOW, 3, pods(None, None, None))
    assert (recommendation.replicas, recommendation.reason) == (3, "FailedGetResourceMetric")


# --- missing metrics -------------------------------------------------------------------------


def test_missing_pod_counts_as_its_whole_request_on_a_scale_down() -> None:
    # 3 pods at 10% and one without a sample: (30 + 100) / 4 = 32% -> ceil(0.64 x 4) = 3,
    # where the 3 measured pods alone would give ceil(0.2 x 3) = 1
    assert replicas_for_utilization(4, 50, pods(10, 10, 10, None), "cpu", NOW) == (3, 10)


def test_missing_pod_counts_as_the_target_when_it_is_over_100() -> None:
    # target 150%: (30 + 150) / 4 = 45% -> ratio 0.3 -> ceil(1.2) = 2
    assert replicas_for_utilization(4, 150, pods(10, 10, 10, None), "cpu", NOW) == (2, 10)


def test_missing_pod_counts_as_idle_on_a_scale_up() -> None:
    # 3 pods at 100%, one missing: 300 / 4 = 75% -> ratio 1.5 -> 6 (the ready 3 alone: 6 too)
    assert replicas_for_utilization(4, 50, pods(100, 100, 100, None), "cpu", NOW) == (6, 100)
    # 2 pods at 60%, 2 missing: counted idle, 30% turns the scale-up into a scale-down: keep 4
    assert replicas_for_utilization(4, 50, pods(60, 60, None, None), "cpu", NOW) == (4, 60)


# --- unready pods ----------------------------------------------------------------------------


def unready(name: str, percent: int, *, started: float = NOW - 60) -> PodSample:
    """A CPU sample of a pod that started a minute ago and is not ready yet."""
    return PodSample(
        name, 100, percent, ready=False, started=started, ready_changed=started, sampled_at=NOW
    )


def test_unready_pods_count_as_idle_on_a_scale_up() -> None:
    # 2 ready pods at 100%, 2 unready: ratio 2 -> the unready at 0 -> 50% -> inside: keep 4
    samples = [*pods(100, 100), unready("u1", 100), unready("u2", 100)]
    assert replicas_for_utilization(4, 50, samples, "cpu", NOW) == (4, 100)


def test_unready_pods_are_left_out_of_a_scale_down() -> None:
    # 2 ready pods at 20%: ceil(0.4 x 2) = 1, whatever the unready pods' samples say
    samples = [*pods(20, 20), unready("u1", 90), unready("u2", 90)]
    assert replicas_for_utilization(4, 50, samples, "cpu", NOW) == (1, 20)


def test_which_cpu_samples_are_unready() -> None:
    start = NOW - 60  # inside the 5 minute CPU initialization period
    samples = [
        # ready for 20 s: a full 15 s sample window since: counts
        PodSample("settled", 100, 50, started=start, ready_changed=NOW - 20, sampled_at=NOW),
        # ready for 5 s: the sample still covers its start-up
        PodSample("warming", 100, 50, started=start, ready_changed=NOW - 5, sampled_at=NOW),
        unready("starting", 50),
        # long started, unready now but ready once (it went unready 2 minutes after start)
        PodSample(
            "relapsed",
            100,
            50,
            ready=False,
            started=NOW - 900,
            ready_changed=NOW - 780,
            sampled_at=NOW,
        ),
        # long started and never ready (its condition last changed within 30 s of start)
        PodSample(
            "never",
            100,
            50,
            ready=False,
            started=NOW - 900,
            ready_changed=NOW - 890,
            sampled_at=NOW,
        ),
        PodSample("pending", 100, None, phase="Pending"),
        PodSample("failed", 100, 50, phase="Failed", sampled_at=NOW),
        PodSample("leaving", 100, 50, deleting=True, sampled_at=NOW),
        PodSample("unmeasured", 100, None),
    ]
    groups = group_pods(samples, "cpu", NOW)
    assert groups.ready == 2  # settled, relapsed
    assert groups.unready == {"warming", "starting", "never", "pending"}
    assert groups.missing == {"unmeasured"}
    assert groups.ignored == {"failed", "leaving"}
    # memory has no start-up skew: only Pending makes a pod unready
    memory = group_pods(samples, "memory", NOW)
    assert memory.unready == {"pending"}
    assert memory.ready == 5


# --- behavior: rate limits -------------------------------------------------------------------


def test_scale_up_takes_the_larger_of_plus_100_percent_and_plus_4_pods() -> None:
    autoscaler = hpa()
    # utilization 5x the target asks for 10 from 2: +4 pods (6) beats +100% (4)
    first = autoscaler.reconcile(0.0, 2, pods(250, 250))
    assert (first.replicas, first.reason) == (6, "ScaleUpLimit")
    autoscaler.scaled(0.0, 2, 6)
    # 5 s later the 15 s period still holds the +4: it began at 2, so 6 is the limit
    assert autoscaler.reconcile(5.0, 6, pods(*[250] * 6)).replicas == 6
    # at the next sync the period has passed: from 6, +100% (12) beats +4 (10)
    second = autoscaler.reconcile(15.0, 6, pods(*[250] * 6))
    assert (second.replicas, second.reason) == (12, "ScaleUpLimit")


def test_scale_up_stops_at_max_replicas() -> None:
    autoscaler = hpa(max_replicas=5)
    result = autoscaler.reconcile(0.0, 2, pods(250, 250))
    assert (result.replicas, result.reason) == (5, "TooManyReplicas")


def test_select_policy_min_and_disabled() -> None:
    rules = ScalingRules(0.0, DEFAULT_SCALE_UP.policies, "Min")
    assert hpa(scale_up=rules).reconcile(0.0, 2, pods(250, 250)).replicas == 4  # +100%
    disabled = ScalingRules(0.0, DEFAULT_SCALE_UP.policies, "Disabled")
    assert hpa(scale_up=disabled).reconcile(0.0, 2, pods(250, 250)).replicas == 2


def test_scale_down_policy_limits_the_pods_removed_per_period() -> None:
    one_pod = ScalingRules(0.0, (Policy("Pods", 1, 60.0),))
    autoscaler = hpa(scale_down=one_pod)
    result = autoscaler.reconcile(0.0, 8, pods(*[10] * 8))
    assert (result.replicas, result.reason) == (7, "ScaleDownLimit")
    autoscaler.scaled(0.0, 8, 7)
    # the minute's one pod is spent
    assert autoscaler.reconcile(30.0, 7, pods(*[10] * 7)).replicas == 7
    assert autoscaler.reconcile(60.0, 7, pods(*[10] * 7)).replicas == 6


# --- behavior: the 300 s down stabilization window ---------------------------------------------


def test_scale_down_waits_for_the_highest_recommendation_of_300_seconds() -> None:
    autoscaler = hpa()
    assert autoscaler.reconcile(0.0, 8, pods(*[50] * 8)).replicas == 8  # on target: 8
    # from 15 s on the load asks for 2; the 8 of t=0 stays in the window (now - 300, now]
    for now in range(15, 300, 15):
        result = autoscaler.reconcile(float(now), 8, pods(*[10] * 8))
        assert result.replicas == 8, now
    # at 300 s the 8 recommended at 0 s has left the window; only 2s are in it
    assert autoscaler.reconcile(300.0, 8, pods(*[10] * 8)).replicas == 2


def test_a_higher_recommendation_inside_the_window_holds_the_scale_down() -> None:
    autoscaler = hpa()
    autoscaler.reconcile(0.0, 8, pods(*[10] * 8))  # asks for 2, held at 8 by the initial 8
    autoscaler.reconcile(150.0, 8, pods(*[30] * 8))  # asks for 5
    # at 300 s the initial 8 is gone, the 5 of 150 s is the highest of the window
    assert autoscaler.reconcile(300.0, 8, pods(*[10] * 8)).replicas == 5
    assert autoscaler.reconcile(450.0, 8, pods(*[10] * 8)).replicas == 2


def test_scale_up_is_not_stabilized() -> None:
    autoscaler = hpa()
    autoscaler.reconcile(0.0, 4, pods(*[10] * 4))  # a low recommendation first
    assert autoscaler.reconcile(15.0, 4, pods(*[100] * 4)).replicas == 8


# --- min and max ------------------------------------------------------------------------------


def test_min_and_max_clamp_the_count() -> None:
    assert hpa().reconcile(0.0, 25, pods(*[50] * 25)).replicas == 20  # above max: to max
    assert hpa().reconcile(0.0, 1, pods(50)).replicas == 2  # below min: to min
    low = hpa()
    low.reconcile(0.0, 2, pods(1, 1))
    assert low.reconcile(300.0, 2, pods(1, 1)).replicas == 2  # asks for 1: min is 2
    assert hpa().reconcile(0.0, 0, []).replicas == 0  # scaled to 0 by hand: HPA stays off


# --- the target from a blueprint ---------------------------------------------------------------


@pytest.mark.parametrize(("target", "whole"), [(72.0, 72), (67.5, 68), (0.4, 1), (100, 100)])
def test_target_is_the_blueprints_target_utilization(target: float, whole: int) -> None:
    blueprint = {"spec": {"scaling": {"target_utilization_percent": target}}}
    assert target_utilization(blueprint) == whole


@pytest.mark.parametrize(
    ("up", "tolerance", "target"), [(80, 10, 72.7), (75, 10, 68.2), (90, 0, 90.0), (1, 10, 0.9)]
)
def test_a_blueprint_without_a_target_gets_the_one_whose_tolerance_ends_at_the_threshold(
    up: float, tolerance: float, target: float
) -> None:
    scaling = {"scale_up_threshold_percent": up, "tolerance_percent": tolerance}
    assert derived_defaults({"spec": {"scaling": scaling}})["spec"]["scaling"] == {
        **scaling,
        "target_utilization_percent": target,
    }
