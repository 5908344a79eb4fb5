"""Benchmark the policy entrypoints with `opa bench` and print the figures.

* decide for one service (the frontend example observation);
* decide_all for N services (default 1,000) in one evaluation.

Run with ``make bench`` or ``.venv/bin/python scripts/bench_policies.py [N] [--policies DIR]``;
``--policies`` benches another copy of the policy library (an older commit,
say) against the same generated blueprints and observations.
It prints figures; it asserts nothing (speed targets are not tests).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench_compile import generate

from engine.compile import compile_blueprints
from engine.toolchain import find_tool


def observation(service: str, i: int, busy: bool) -> dict[str, Any]:
    """An observation; a busy one needs scaling, resource and recovery decisions."""
    return {
        "service": service,
        "now": "2026-02-10T12:00:00Z",
        "replicas": {"desired": 3, "ready": 3},
        "metrics": {
            "cpu_percent": 85 + i % 10 if busy else 40 + i % 30,
            "memory_percent": 40,
            "latency_p95_ms": 150,
            "error_rate_percent": 0.1,
            "throughput_rps": 80,
        },
        "resources": {
            "cpu": {
                "request": f"{100 + i % 400}m",
                "usage": "60m" if busy else f"{100 + i % 400}m",
            },
            "memory": {"request": f"{128 + i % 256}Mi", "usage": f"{128 + i % 256}Mi"},
        },
        "pods": [
            {
                "name": f"{service}-{n}",
                "phase": "Running",
                "ready": True,
                "restart_count": 1 if busy else 0,
                "reason": "CrashLoopBackOff" if busy and n == 0 else None,
            }
            for n in range(3)
        ],
        "state": {"last_operation_at": None, "consecutive_failures": 0, "breaker_open": False},
    }


def bench(bundle: Path, query: str, input_path: Path, count: int) -> dict[str, Any]:
    """Run ``opa bench`` and return its JSON result."""
    completed = subprocess.run(
        [
            str(find_tool("opa")),
            "bench",
            # the runner starts OPA with this flag too: without it every read
            # of a blueprint converts stored data, ~25 us per service
            "--optimize-store-for-read-speed",
            "--format",
            "json",
            "--count",
            str(count),
            "-b",
            str(bundle),
            "-i",
            str(input_path),
            query,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def work(bundle: Path, query: str, input_path: Path) -> str:
    """How much evaluation one query does, counted by opa eval --profile and --instrument."""
    opa = str(find_tool("opa"))
    common = ["eval", "--format", "json", "-b", str(bundle), "-i", str(input_path), query]
    profile = subprocess.run(
        [opa, *common, "--profile", "--profile-limit", "100000"],
        capture_output=True,
        text=True,
        check=True,
    )
    expressions = sum(entry["num_eval"] for entry in json.loads(profile.stdout)["profile"])
    instrumented = subprocess.run(
        [opa, *common, "--instrument", "--metrics"], capture_output=True, text=True, check=True
    )
    counters = json.loads(instrumented.stdout)["metrics"]
    return (
        f"{expressions} expressions evaluated, "
        f"{counters.get('counter_eval_op_virtual_cache_miss', 0)} function and rule evaluations "
        f"({counters.get('counter_eval_op_virtual_cache_hit', 0)} more from cache), "
        f"{counters.get('counter_eval_op_comprehension_cache_miss', 0)} comprehensions"
    )


def report(label: str, result: dict[str, Any]) -> None:
    """Print ns/op and the p99 of the evaluation timer."""
    extra = result.get("Extra", {})
    per_op_ms = result["T"] / result["N"] / 1e6
    p99 = extra.get("histogram_timer_rego_query_eval_ns_99%")
    p99_text = f", evaluation p99 {p99 / 1e6:.3f} ms" if p99 else ""
    print(f"{label}: {per_op_ms:.3f} ms/op over {result['N']} runs{p99_text}")


def main(count: int, policies: Path | None) -> None:
    """Compile generated blueprints, then bench decide and decide_all."""
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-") as name:
        root = Path(name)
        blueprints = root / "blueprints"
        blueprints.mkdir()
        generate(blueprints, count)
        result = compile_blueprints(blueprints, root / "build", policies)
        assert result.bundle_path is not None
        print(
            f"opa: {find_tool('opa')}; {count} blueprints compiled; "
            f"policies: {policies or 'the repo policies'}"
        )
        for label, busy in (("stable", False), ("busy", True)):
            one = root / f"one-{label}.json"
            one.write_text(json.dumps(observation("svc-1", 1, busy)))
            report(
                f"decide, 1 {label} service",
                bench(result.bundle_path, "data.opsgate.main.decide", one, 1),
            )
            print(f"  work: {work(result.bundle_path, 'data.opsgate.main.decide', one)}")
        for share in (0.0, 0.1, 1.0):
            many = root / f"many-{share}.json"
            every = round(1 / share) if share else 0
            services = [
                observation(f"svc-{i}", i, busy=bool(every) and i % every == 0)
                for i in range(count)
            ]
            many.write_text(json.dumps({"services": services}))
            report(
                f"decide_all, {count} services, {share:.0%} busy, one evaluation",
                bench(result.bundle_path, "data.opsgate.main.decide_all", many, 1),
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", nargs="?", type=int, default=1000, help="services (default 1000)")
    parser.add_argument("--policies", type=Path, help="policy library (default: the repo's)")
    arguments = parser.parse_args()
    main(arguments.count, arguments.policies)
