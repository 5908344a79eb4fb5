"""What the runner remembers of each service between ticks, for the policies to decide on.

Two windows per service, kept in the state database so they survive a
restart, and handed to OPA as ``state.history`` of the observation:

- **ticks**: at each tick, the replicas the policies recommended and the p95
  latency observed (handed over as columns: seconds since the epoch, replicas,
  p95) — the scale-down stabilization window and the sustained
  latency window are read from them. Kept as long as the blueprint's longest
  window, plus the last tick before it (the proof that the runner watched the
  whole window).
- **usage**: one sample of the per-pod CPU and memory usage a minute, for a
  day. The policies get a summary — how many samples, and percentiles — and
  decide from it which request to recommend.

Python only records and summarises what was observed; every decision about
it (which percentile, what margin, when the window is long enough) is in
Rego. Nothing here can make an operation run: a lost or unreadable history
means the policies wait (no scale-down, no right-sizing) until it refills.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine import moments
from engine.quantity import QuantityError, cpu_millicores, memory_bytes

USAGE_SAMPLE_SECONDS = 60.0  # at most one usage sample a minute
USAGE_WINDOW_SECONDS = 86400.0  # a day of samples
MAX_TICKS = 4000  # per service: an hour of one-second ticks; older ones are dropped
PERCENTILES = (50, 90, 95, 99, 100)


@dataclass(frozen=True)
class Tick:
    """One tick of one service: when, the replicas recommended, the p95 latency seen."""

    at: str
    seconds: float
    replicas: int | None
    latency_p95_ms: float | None


@dataclass(frozen=True)
class UsageSample:
    """Per-pod usage of one service at one moment (millicores, bytes; None when unknown)."""

    seconds: float
    cpu: int | None
    memory: int | None


class HistoryStore(Protocol):
    """Where the history is kept (``engine.state.StateStore``)."""

    def history_ticks(self) -> dict[str, list[Tick]]: ...

    def usage_samples(self) -> dict[str, list[UsageSample]]: ...

    def record_history(
        self,
        ticks: Mapping[str, Tick],
        samples: Mapping[str, UsageSample],
        keep_ticks_from: Mapping[str, float],
        keep_usage_from: float,
    ) -> None: ...


def percentiles(values: Iterable[float]) -> dict[str, float]:
    """Nearest-rank percentiles (50, 90, 95, 99, 100) of ``values``; empty when there are none."""
    ordered = sorted(values)
    if not ordered:
        return {}
    return {str(p): ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] for p in PERCENTILES}


def tick_window(blueprint: Mapping[str, Any]) -> float:
    """How many seconds of ticks a service's rules read: its longest window."""
    scaling = blueprint["spec"]["scaling"]
    return float(
        max(
            scaling.get("scale_down_stabilization_seconds", 0),
            scaling.get("latency_scale_out_seconds", 0),
        )
    )


def per_pod_usage(observation: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """The per-pod CPU (millicores) and memory (bytes) usage of an observation, if known."""
    resources = observation.get("resources")
    found: list[int | None] = []
    for resource, parse in (("cpu", cpu_millicores), ("memory", memory_bytes)):
        usage = (
            (resources or {}).get(resource, {}).get("usage")
            if isinstance(resources, dict)
            else None
        )
        try:
            found.append(parse(usage) if isinstance(usage, str | int | float) else None)
        except (QuantityError, AttributeError):
            found.append(None)
    return found[0], found[1]


@dataclass
class History:
    """The ticks and usage samples of every service, in memory and in the state store."""

    store: HistoryStore
    ticks: dict[str, deque[Tick]] = field(default_factory=dict)
    usage: dict[str, deque[UsageSample]] = field(default_factory=dict)
    _loaded: bool = False
    # each service's usage summary, until its samples change (at most once a minute)
    _summaries: dict[str, dict[str, Any]] = field(default_factory=dict)

    def load(self) -> None:
        """Read what the state store kept (once; later calls do nothing)."""
        if self._loaded:
            return
        self.ticks = {s: deque(t, maxlen=MAX_TICKS) for s, t in self.store.history_ticks().items()}
        self.usage = {s: deque(u) for s, u in self.store.usage_samples().items()}
        self._loaded = True

    def for_policy(self, service: str) -> dict[str, Any]:
        """The ``state.history`` object of one service's observation."""
        self.load()
        summary = self._summaries.get(service)
        if summary is None:
            summary = self._summaries[service] = self._summary(service)
        ticks = self.ticks.get(service, ())
        return {
            # columns, not one object a tick: a thousand services' windows are the bulk of
            # the tick's input to OPA. Whole seconds, rounded up (a tick never claims to be
            # earlier than it was, so a window is never counted as watched too soon).
            "ticks": {
                "seconds": [math.ceil(t.seconds) for t in ticks],
                "replicas": [t.replicas for t in ticks],
                "latency_p95_ms": [t.latency_p95_ms for t in ticks],
            },
            "usage": summary,
        }

    def _summary(self, service: str) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        samples = self.usage.get(service, ())
        for resource in ("cpu", "memory"):
            values = [
                value
                for value in (getattr(sample, resource) for sample in samples)
                if value is not None
            ]
            if values:
                summary[resource] = {"samples": len(values), "percentiles": percentiles(values)}
        return summary

    def record(
        self,
        now: str,
        observed: Mapping[str, tuple[int | None, Mapping[str, Any]]],
        windows: Mapping[str, float],
    ) -> None:
        """Remember one tick: for each service, (recommended replicas, observation).

        ``windows`` gives each service's longest rule window in seconds: ticks
        older than it are dropped, except the last one before it.
        """
        self.load()
        seconds = moments.parse(now).timestamp()
        new_ticks: dict[str, Tick] = {}
        new_samples: dict[str, UsageSample] = {}
        keep_from: dict[str, float] = {}
        for service, (replicas, observation) in observed.items():
            latency = (observation.get("metrics") or {}).get("latency_p95_ms")
            tick = Tick(
                now,
                seconds,
                replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None,
                float(latency)
                if isinstance(latency, int | float) and not isinstance(latency, bool)
                else None,
            )
            ticks = self.ticks.setdefault(service, deque(maxlen=MAX_TICKS))
            ticks.append(tick)
            start = seconds - windows.get(service, 0.0)
            while len(ticks) >= 2 and ticks[1].seconds <= start:
                ticks.popleft()
            new_ticks[service] = tick
            keep_from[service] = ticks[0].seconds
            samples = self.usage.setdefault(service, deque())
            if not samples or seconds - samples[-1].seconds >= USAGE_SAMPLE_SECONDS:
                cpu, memory = per_pod_usage(observation)
                if cpu is not None or memory is not None:
                    sample = UsageSample(seconds, cpu, memory)
                    samples.append(sample)
                    new_samples[service] = sample
                    self._summaries.pop(service, None)
            while samples and samples[0].seconds < seconds - USAGE_WINDOW_SECONDS:
                samples.popleft()
                self._summaries.pop(service, None)
        self.store.record_history(new_ticks, new_samples, keep_from, seconds - USAGE_WINDOW_SECONDS)
