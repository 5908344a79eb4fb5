"""Benchmark: compile N generated blueprints (default 1,000) and print the time.

Run with ``make bench`` or ``.venv/bin/python scripts/bench_compile.py [N]``.
It prints figures; it asserts nothing (speed targets are not tests).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from engine.compile import compile_blueprints

TEMPLATE = """\
apiVersion: opsgate/v1
kind: Blueprint
metadata:
  name: svc-{i}
  version: "1.{minor}.0"
  owner: team-{team}
  description: generated service {i}
target:
  namespace: ns-{team}
  deployment: svc-{i}
spec:
  resources:
    cpu: {{request: {cpu}m, limit: 1000m, minimum: 50m}}
    memory: {{request: {mem}Mi, limit: 1Gi, minimum: 64Mi}}
  performance: {{latency_p95_ms: {latency}, error_rate_percent: 1}}
  scaling:
    min_replicas: 2
    max_replicas: {max_replicas}
    scale_up_threshold_percent: 80
    scale_down_threshold_percent: 30
governance:
  resource_band_percent: 10
"""

GOVERNANCE = """\
apiVersion: opsgate/v1
kind: Governance
governance:
  agent_authority:
    allowed: [scale, adjust_resources, restart_pod, update_configmap]
    requires_approval: [rollback, update_strategy, update_health_checks]
  approval_workflow: {approvers: [oncall]}
"""


def generate(folder: Path, count: int) -> None:
    """Write ``count`` distinct, valid blueprints and a governance.yaml into ``folder``."""
    (folder / "governance.yaml").write_text(GOVERNANCE, encoding="utf-8")
    for i in range(count):
        text = TEMPLATE.format(
            i=i,
            minor=i % 7,
            team=i % 40,
            cpu=100 + i % 400,
            mem=128 + i % 256,
            latency=150 + i % 250,  # above the quiet load's p95 (about 130 ms): nothing to decide
            max_replicas=3 + i % 8,
        )
        (folder / f"svc-{i}.yaml").write_text(text, encoding="utf-8")


def main(count: int) -> None:
    """Generate, then time compilation with and without ``opa build``."""
    with tempfile.TemporaryDirectory(prefix="opsgate-bench-") as name:
        root = Path(name)
        blueprints = root / "blueprints"
        blueprints.mkdir()
        generate(blueprints, count)
        for label, bundle in (("data.json only", False), ("data.json + opa build", True)):
            start = time.perf_counter()
            result = compile_blueprints(blueprints, root / f"out-{bundle}", bundle=bundle)
            elapsed = time.perf_counter() - start
            assert len(result.blueprints) == count
            print(f"compile {count} blueprints ({label}): {elapsed:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
