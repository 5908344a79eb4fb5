"""Benchmark one runner tick over N simulated services (default 1,000) with one OPA query.

Prints ticks per second and the ratio of the tick's wall time to OPA's own
evaluation time for the same decide_all query (OPA's timer_rego_query_eval_ns),
and to the same query sent bare over HTTP (what the runner adds on top).
Run with ``make bench`` or ``cd scripts && ../.venv/bin/python bench_tick.py [N]``.
It prints figures; it asserts nothing (speed targets are not tests).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_compile import generate

from engine.workspace import Workspace


def main(count: int, ticks: int = 5) -> None:
    """Build N services, then time ticks and the raw evaluation of the same query."""
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-") as name:
        root = Path(name)
        blueprints = root / "blueprints"
        blueprints.mkdir()
        generate(blueprints, count)
        with Workspace(
            blueprints, build_dir=root / "build", state_dir=root / "state", fresh=True
        ) as workspace:
            cluster = workspace.simulated
            runner = workspace.runner()
            session = workspace.session
            # the very input the runner sent (with each service's history), for the raw runs
            sent: list[Any] = []
            decide_all = session.decide_all

            def keep(observations: list[Any]) -> Any:
                sent[:] = observations
                return decide_all(observations)

            session.decide_all = keep  # type: ignore[method-assign]
            runner.tick()  # warm up
            tick_times, eval_times, query_times = [], [], []
            for _ in range(ticks):
                cluster.wait(30)
                started = time.perf_counter()
                report = runner.tick()
                tick_times.append(time.perf_counter() - started)
                assert not report.errors, report.errors
                observations = list(sent)
                eval_times.append(
                    session.gateway.evaluation_seconds(
                        "opsgate.main", "decide_all", {"services": observations}
                    )
                )
                started = time.perf_counter()
                session.gateway.evaluate("opsgate.main", "decide_all", {"services": observations})
                query_times.append(time.perf_counter() - started)
    tick = statistics.median(tick_times)
    evaluation = statistics.median(eval_times)
    query = statistics.median(query_times)
    print(f"{count} services, {ticks} ticks, nothing to execute")
    print(f"tick: {tick * 1000:.0f} ms median, {1 / tick:.2f} ticks per second")
    print(f"OPA's evaluation timer for the same decide_all: {evaluation * 1000:.0f} ms median")
    print(f"the same decide_all as a bare HTTP query: {query * 1000:.0f} ms median")
    print(f"tick / OPA evaluation timer: {tick / evaluation:.2f}x")
    print(f"tick / bare query: {tick / query:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
