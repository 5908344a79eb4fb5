"""What the runner remembers between ticks (engine/history.py) and how the policies use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import moments
from engine.history import (
    USAGE_SAMPLE_SECONDS,
    USAGE_WINDOW_SECONDS,
    History,
    per_pod_usage,
    percentiles,
)
from engine.state import StateStore

START = "2026-02-10T12:00:00Z"


def _at(seconds: float) -> str:
    return moments.later(START, seconds)


def _observation(latency: float | None = 150, cpu: str = "60m", memory: str = "100Mi") -> Any:
    return {
        "metrics": {} if latency is None else {"latency_p95_ms": latency},
        "resources": {"cpu": {"usage": cpu}, "memory": {"usage": memory}},
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(tmp_path / "state.db")
    yield opened
    opened.close()


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles(range(1, 101)) == {"50": 50, "90": 90, "95": 95, "99": 99, "100": 100}
    assert percentiles([7]) == {"50": 7, "90": 7, "95": 7, "99": 7, "100": 7}
    assert percentiles([3, 1, 2]) == {"50": 2, "90": 3, "95": 3, "99": 3, "100": 3}
    assert percentiles([]) == {}


def test_per_pod_usage_parses_or_says_unknown() -> None:
    assert per_pod_usage(_observation(cpu="250m", memory="1Gi")) == (250, 1024**3)
    assert per_pod_usage({"resources": {"cpu": {"usage": "lots"}}}) == (None, None)
    assert per_pod_usage({"resources": "none"}) == (None, None)
    assert per_pod_usage({}) == (None, None)


def test_ticks_cover_the_window_and_one_before(store: StateStore) -> None:
    history = History(store)
    for second in range(0, 600, 15):
        history.record(_at(second), {"web": (2, _observation())}, {"web": 300})
    ticks = history.for_policy("web")["ticks"]
    start = round(moments.parse(START).timestamp())
    # the last tick is at 585 s: the window starts at 285 s, and the tick at 285 s proves it
    assert ticks["seconds"][0] == start + 285
    assert ticks["seconds"][-1] == start + 585
    assert (ticks["replicas"][-1], ticks["latency_p95_ms"][-1]) == (2, 150.0)
    assert len(ticks["seconds"]) == len(ticks["replicas"]) == len(ticks["latency_p95_ms"]) == 21


def test_usage_is_sampled_once_a_minute_for_a_day(store: StateStore) -> None:
    history = History(store)
    for second in range(0, 7200, 15):
        history.record(_at(second), {"web": (2, _observation())}, {"web": 0})
    usage = history.for_policy("web")["usage"]
    assert usage["cpu"]["samples"] == 7200 / USAGE_SAMPLE_SECONDS
    assert usage["memory"]["percentiles"]["95"] == 100 * 1024 * 1024
    history.record(_at(7200 + USAGE_WINDOW_SECONDS), {"web": (2, _observation())}, {"web": 0})
    assert history.for_policy("web")["usage"]["cpu"]["samples"] == 1  # a day later: only now


def test_unknown_values_are_kept_as_unknown(store: StateStore) -> None:
    history = History(store)
    history.record(START, {"web": (None, _observation(latency=None, cpu="x", memory="y"))}, {})
    assert history.for_policy("web") == {
        "ticks": {
            "seconds": [round(moments.parse(START).timestamp())],
            "replicas": [None],
            "latency_p95_ms": [None],
        },
        "usage": {},
    }


def test_history_survives_a_restart(tmp_path: Path) -> None:
    first = StateStore(tmp_path / "state.db")
    history = History(first)
    for second in range(0, 400, 15):
        history.record(_at(second), {"web": (3, _observation())}, {"web": 300})
    remembered = history.for_policy("web")
    first.close()
    again = StateStore(tmp_path / "state.db")
    try:
        assert History(again).for_policy("web") == remembered
        assert len(again.history_ticks()["web"]) == len(remembered["ticks"]["seconds"])  # pruned
    finally:
        again.close()
