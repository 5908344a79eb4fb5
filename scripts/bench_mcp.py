"""Benchmark check_operation through MCP stdio: p50/p99 of N round trips (default 1,000).

Starts ``opsgate mcp --agent ops-assistant`` on the repo's blueprints with the
SDK's own stdio client, as an agent would, and times N sequential
``check_operation`` calls (each a fresh verdict: the state opened, the
simulated cluster observed, OPA asked, the answer validated and masked).
For where the time goes it also times the same call on the gate in-process
(no MCP, no process boundary) and one OPA enforce query alone. Prints
figures; asserts nothing (speed targets are not tests).

    .venv/bin/python scripts/bench_mcp.py [N]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.agents import AgentGate  # noqa: E402
from engine.workspace import Workspace  # noqa: E402

CHECK = {"service": "frontend", "operation": {"type": "scale", "to": 3}}
WARMUP = 50


def _figures(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return (
        f"{label:<34} n={len(ms):>5}  p50 {p(0.50):6.2f} ms  p90 {p(0.90):6.2f} ms  "
        f"p99 {p(0.99):6.2f} ms  max {ms[-1]:6.2f} ms  mean {statistics.fmean(ms):6.2f} ms"
    )


async def _over_stdio(state: Path, count: int, mode: str) -> list[float]:
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engine", "mcp", "--agent", "ops-assistant", "--state-dir", str(state)],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=str(ROOT),
    )
    times = []
    async with Client(server, mode=mode) as client:  # type: ignore[arg-type]
        for index in range(WARMUP + count):
            start = time.perf_counter()
            result = await client.call_tool("check_operation", CHECK)
            elapsed = time.perf_counter() - start
            if result.is_error or (result.structured_content or {}).get("tier") != "allow":
                sys.exit(f"bench_mcp: unexpected answer {result.content}")
            if index >= WARMUP:
                times.append(elapsed)
    return times


def _in_process(state: Path, count: int) -> tuple[list[float], list[float]]:
    gate_times, opa_times = [], []
    with Workspace(ROOT / "blueprints") as workspace:
        gate = AgentGate(workspace, state, "ops-assistant", opa="managed")
        request = {
            **CHECK,
            "now": "2026-02-10T12:00:00Z",
            "replicas": {"desired": 2, "ready": 2},
            "state": {},
            "actor": {"kind": "agent", "name": "ops-assistant"},
        }
        for index in range(WARMUP + count):
            start = time.perf_counter()
            gate.check_operation(CHECK["service"], CHECK["operation"])  # type: ignore[arg-type]
            middle = time.perf_counter()
            workspace.session.enforce(request)
            end = time.perf_counter()
            if index >= WARMUP:
                gate_times.append(middle - start)
                opa_times.append(end - middle)
    return gate_times, opa_times


def main(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-mcp-") as scratch:
        state = Path(scratch) / "state"
        print(f"check_operation, {count} calls after {WARMUP} warm-up, on {os.cpu_count()} cores")
        for mode, label in (("legacy", "initialize handshake"), ("auto", "2026-07-28")):
            times = asyncio.run(_over_stdio(state, count, mode))
            print(_figures(f"MCP stdio round trip ({label})", times))
        gate_times, opa_times = _in_process(state, count)
        print(_figures("gate in-process (no MCP)", gate_times))
        print(_figures("OPA enforce query alone", opa_times))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
