"""Kubernetes' HorizontalPodAutoscaler (autoscaling/v2) as a baseline: its algorithm, no policies.

``opsgate simulate --baseline hpa`` replays a trace with this controller in
place of opsgate, so opsgate's decisions can be measured against the
autoscaler it would replace. It is not a decision of opsgate: no OPA, no
tiers, no approvals. Everything is a pure function of the pods' samples and
the controller's clock (seconds), and follows the Kubernetes source:

- ``replicas_for_utilization``: ``GetResourceReplicas`` and ``groupPods`` in
  pkg/controller/podautoscaler/replica_calculator.go, with
  ``GetResourceUtilizationRatio`` (metrics/utilization.go): utilization is
  sum(usage) / sum(request) of the pods with metrics, a whole percent;
  ``desired = ceil(ratio * ready pods)`` unless ``|1 - ratio| <= 0.1``;
  missing metrics count as ``max(100%, target)`` of the request on a scale-down
  and 0 on a scale-up; unready CPU pods are left out, and count as 0 on a
  scale-up; a re-computed ratio that turns the direction round, or lands in the
  tolerance, keeps the current count.
- ``HorizontalPodAutoscaler``: ``reconcileAutoscaler`` and the behavior path of
  horizontal.go (``stabilizeRecommendationWithBehaviors``,
  ``convertDesiredReplicasWithBehaviorRate``,
  ``calculateScale{Up,Down}Limit…``, ``storeScaleEvent``) with the documented
  default behavior: up, stabilization 0 s, the larger of +100% and +4 pods per
  15 s; down, stabilization 300 s (the highest recommendation of the window
  wins), -100% per 15 s.

Defaults of kube-controller-manager: sync period 15 s, tolerance 0.1, CPU
initialization period 5 min, initial readiness delay 30 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SYNC_PERIOD_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period
TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
CPU_INITIALIZATION_PERIOD_SECONDS = 300.0  # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY_SECONDS = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
# metrics-server's default --metric-resolution: the window a pod's usage sample covers
METRIC_WINDOW_SECONDS = 15.0

Resource = Literal["cpu", "memory"]


@dataclass(frozen=True)
class Policy:
    """One scaling policy: at most ``value`` pods (or percent) per ``period_seconds``."""

    kind: Literal["Pods", "Percent"]
    value: int
    period_seconds: float


@dataclass(frozen=True)
class ScalingRules:
    """The ``behavior`` of one direction: stabilization window, policies, how to pick one."""

    stabilization_window_seconds: float
    policies: tuple[Policy, ...]
    select_policy: Literal["Max", "Min", "Disabled"] = "Max"


# the documented defaults (autoscaling/v2 GenerateHPAScaleUpRules / GenerateHPAScaleDownRules)
DEFAULT_SCALE_UP = ScalingRules(0.0, (Policy("Percent", 100, 15.0), Policy("Pods", 4, 15.0)))
DEFAULT_SCALE_DOWN = ScalingRules(300.0, (Policy("Percent", 100, 15.0),))


@dataclass(frozen=True)
class PodSample:
    """What the controller knows of one pod: its request, its usage sample and its status.

    Amounts are in one unit per resource (millicores, bytes); times are on the
    controller's clock. ``usage`` None: the metrics API has no sample for it.
    """

    name: str
    request: int
    usage: int | None = None
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"] = "Running"
    ready: bool | None = True  # the Ready condition (None: the pod has none yet)
    started: float | None = 0.0  # status.startTime
    ready_changed: float | None = 0.0  # the Ready condition's lastTransitionTime
    sampled_at: float = 0.0  # the end of the usage sample's window
    window: float = METRIC_WINDOW_SECONDS
    deleting: bool = False


@dataclass(frozen=True)
class PodGroups:
    """``groupPods``: ready pods with metrics, and the three kinds set apart."""

    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(samples: Iterable[PodSample], resource: Resource, now: float) -> PodGroups:
    """Sort pods as ``groupPods`` does: ignored (deleted, failed), unready, missing, ready."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in samples:
        if pod.deleting or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        if pod.usage is None:
            missing.add(pod.name)
            continue
        # only CPU is skewed by start-up; a memory sample always counts
        if resource == "cpu" and _cpu_sample_unready(pod, now):
            unready.add(pod.name)
            continue
        ready += 1
    return PodGroups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_unready(pod: PodSample, now: float) -> bool:
    if pod.ready is None or pod.started is None or pod.ready_changed is None:
        return True
    if pod.started + CPU_INITIALIZATION_PERIOD_SECONDS > now:
        # still starting: unready, or no full sample window since it became ready
        return not pod.ready or pod.sampled_at < pod.ready_changed + pod.window
    # later, an unready pod counts unless it has never been ready
    return not pod.ready and pod.started + INITIAL_READINESS_DELAY_SECONDS > pod.ready_changed


def utilization_ratio(
    usage: Mapping[str, int], requests: Mapping[str, int], target: int
) -> tuple[float, int]:
    """(usage ratio, utilization %): sum of usage over sum of requests, a whole percent.

    The pods of ``usage`` must request more than nothing in all.
    """
    used = sum(value for name, value in usage.items() if name in requests)
    requested = sum(requests[name] for name in usage if name in requests)
    utilization = used * 100 // requested  # integer division, as Go's int64
    return utilization / target, utilization


def replicas_for_utilization(
    current: int,
    target: int,
    samples: list[PodSample],
    resource: Resource,
    now: float,
    *,
    tolerance: float = TOLERANCE,
) -> tuple[int, int] | None:
    """(replicas, utilization %) the metric asks for (``GetResourceReplicas``).

    None: no pod has a usable sample (Kubernetes reports an error and does not scale).
    """
    groups = group_pods(samples, resource, now)
    usage = {
        pod.name: pod.usage
        for pod in samples
        if pod.usage is not None and pod.name not in groups.unready | groups.ignored
    }
    requests = {pod.name: pod.request for pod in samples}
    if sum(requests[name] for name in usage) <= 0:
        # "did not receive metrics for targeted pods (pods might be unready)", or no request
        return None
    ratio, utilization = utilization_ratio(usage, requests, target)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, utilization
        return math.ceil(ratio * groups.ready), utilization
    if groups.missing:
        if ratio < 1.0:
            # scale-down: a pod without a sample is taken to use its whole request (or the target)
            fallback = max(100, target)
            usage.update({name: requests[name] * fallback // 100 for name in groups.missing})
        elif ratio > 1.0:
            usage.update(dict.fromkeys(groups.missing, 0))
    if scale_up_with_unready:
        usage.update(dict.fromkeys(groups.unready, 0))
    new_ratio, _ = utilization_ratio(usage, requests, target)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization
    proposal = math.ceil(new_ratio * len(usage))
    if (new_ratio < 1.0 and proposal > current) or (new_ratio > 1.0 and proposal < current):
        return current, utilization
    return proposal, utilization


@dataclass
class _ScaleEvent:
    at: float
    change: int
    outdated: bool = False


@dataclass(frozen=True)
class Recommendation:
    """What one sync decided: the replica count to set, and why (HPA's condition reason)."""

    replicas: int
    reason: str
    utilization: int | None = None  # the metric's utilization %, when it had one


@dataclass
class HorizontalPodAutoscaler:
    """One HPA on one workload, with the history its behavior needs (kept in memory)."""

    min_replicas: int
    max_replicas: int
    target_utilization: int
    resource: Resource = "cpu"
    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    tolerance: float = TOLERANCE
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    _up_events: list[_ScaleEvent] = field(default_factory=list)
    _down_events: list[_ScaleEvent] = field(default_factory=list)

    def reconcile(self, now: float, current: int, samples: list[PodSample]) -> Recommendation:
        """One sync (``reconcileAutoscaler``): the replica count to set now."""
        if not self.recommendations:
            self.recommendations.append((now, current))  # recordInitialRecommendation
        if current == 0 and self.min_replicas != 0:
            return Recommendation(current, "ScalingDisabled")
        if current > self.max_replicas:
            return Recommendation(self.max_replicas, "above max_replicas")
        if current < self.min_replicas:
            return Recommendation(self.min_replicas, "below min_replicas")
        proposal = replicas_for_utilization(
            current,
            self.target_utilization,
            samples,
            self.resource,
            now,
            tolerance=self.tolerance,
        )
        if proposal is None:
            return Recommendation(current, "FailedGetResourceMetric")
        desired, utilization = max(0, proposal[0]), proposal[1]
        stabilized = self._stabilize(now, current, desired)
        replicas, reason = self._limit_rate(now, current, stabilized)
        return Recommendation(replicas, reason, utilization)

    def scaled(self, now: float, before: int, after: int) -> None:
        """Remember a change that was applied (``storeScaleEvent``): the rate limits count it."""
        if after == before:
            return
        rules, events = (
            (self.scale_up, self._up_events)
            if after > before
            else (self.scale_down, self._down_events)
        )
        longest = max((p.period_seconds for p in rules.policies), default=0.0)
        for event in events:
            if event.at < now - longest:
                event.outdated = True
        new = _ScaleEvent(now, abs(after - before))
        reusable = [i for i, event in enumerate(events) if event.outdated]
        if reusable:
            events[reusable[-1]] = new  # Kubernetes reuses the last outdated slot
        else:
            events.append(new)

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        """The lowest recommendation of the up window, the highest of the down window."""
        up_cutoff = now - self.scale_up.stabilization_window_seconds
        down_cutoff = now - self.scale_down.stabilization_window_seconds
        up, down = desired, desired
        for at, replicas in self.recommendations:
            if at > up_cutoff:
                up = min(up, replicas)
            if at > down_cutoff:
                down = max(down, replicas)
        # the unstabilized recommendation is what is remembered; older ones no window sees go
        self.recommendations = [
            (at, r) for at, r in self.recommendations if not (at < up_cutoff and at < down_cutoff)
        ]
        self.recommendations.append((now, desired))
        return min(max(current, up), down)

    def _limit_rate(self, now: float, current: int, desired: int) -> tuple[int, str]:
        if desired > current:
            limit = max(current, self._limit(now, current, self.scale_up, up=True))
            if self.max_replicas > limit:
                return (
                    (limit, "ScaleUpLimit") if desired > limit else (desired, "DesiredWithinRange")
                )
            if desired > self.max_replicas:
                return self.max_replicas, "TooManyReplicas"
        elif desired < current:
            limit = min(current, self._limit(now, current, self.scale_down, up=False))
            if self.min_replicas < limit:
                return (
                    (limit, "ScaleDownLimit")
                    if desired < limit
                    else (desired, "DesiredWithinRange")
                )
            if desired < self.min_replicas:
                return self.min_replicas, "TooFewReplicas"
        return desired, "DesiredWithinRange"

    def _limit(self, now: float, current: int, rules: ScalingRules, *, up: bool) -> int:
        """``calculateScale{Up,Down}Limit…``: how far the policies let it go from ``current``."""
        if rules.select_policy == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            cutoff = now - policy.period_seconds
            added = sum(e.change for e in self._up_events if e.at > cutoff)
            deleted = sum(e.change for e in self._down_events if e.at > cutoff)
            start = current - added + deleted  # the replicas when the period began
            if policy.kind == "Pods":
                proposals.append(start + policy.value if up else start - policy.value)
            elif up:
                # rounded up, so a small workload can still grow
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        if not proposals:
            return current
        # "Max" is the policy that allows the largest change: highest up, lowest down
        largest_change = (rules.select_policy == "Max") == up
        return max(proposals) if largest_change else min(proposals)


def target_utilization(blueprint: Mapping[str, Any]) -> int:
    """The HPA target for a blueprint: its ``target_utilization_percent``, a whole percent.

    The same target opsgate's proportional scaling aims at (the blueprint's
    field, or its default derived from the scale-up threshold when the
    blueprint was read), so the two runs differ in how they decide, not in
    what they aim for.
    """
    target = float(blueprint["spec"]["scaling"]["target_utilization_percent"])
    # a whole percent, as the HPA's targetAverageUtilization (an int32); halves round up
    return max(1, math.floor(target + 0.5))
