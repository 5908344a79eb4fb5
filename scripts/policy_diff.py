"""Record or compare every answer of the policy library over a generated corpus.

Performance work on the Rego must not change a single answer. This script
compiles the repo's blueprints (plus a dry-run variant that also tightens
agent_authority), generates a seeded corpus of observations (half well
formed, half with random and broken values) and enforce requests (every
operation type, good and bad parameters), and evaluates ``decide_all``,
``decide`` for each observation and ``enforce`` for each request with the
working policies. ``bundle_revision`` is left out: it changes with any edit.

    .venv/bin/python scripts/policy_diff.py record /tmp/before.json
    # ... change the policies ...
    .venv/bin/python scripts/policy_diff.py compare /tmp/before.json

``compare`` exits 1 and names the first differences when any answer changed.
A change made on purpose is named, not hidden: ``--expect RULE:FIELD``
(repeatable) lets FIELD differ in the decisions whose strictest rule is
RULE, and the count of answers that differed only there is printed.
It takes about 15 seconds for the default 2,000 + 2,000 cases.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from engine.compile import compile_blueprints
from engine.toolchain import find_tool

ROOT = Path(__file__).resolve().parent.parent

QUERY_MODULE = """\
package policy_diff

answers := {
	"decide_all": data.opsgate.main.decide_all,
	"decide": [d | some o in input.services; d := data.opsgate.main.decide with input as o],
	"enforce": [d | some r in input.requests; d := data.opsgate.main.enforce with input as r],
}
"""

DRY_RUN_BLUEPRINT = """\
apiVersion: opsgate/v1
kind: Blueprint
metadata: {name: hello-dry, version: "0.1.0", owner: dev-experience}
target: {namespace: sandbox, deployment: hello-dry}
spec:
  resources:
    cpu: {request: 50m, limit: 200m, minimum: 10m}
    memory: {request: 64Mi, limit: 128Mi, minimum: 32Mi}
  performance: {latency_p95_ms: 200}
  scaling: {min_replicas: 1, max_replicas: 2}
governance:
  safety: {dry_run: true}
  agent_authority:
    allowed: [adjust_resources]
    forbidden: [scale]
    requires_approval: [restart_pod]
"""

OPERATION_TYPES = [
    "scale",
    "adjust_resources",
    "restart_pod",
    "rollback",
    "delete_pod",
    "update_configmap",
    "update_strategy",
    "update_health_checks",
    "delete_deployment",
    "delete_service",
    "delete_pvc",
    "modify_secret",
    "modify_network_policy",
    "modify_rbac",
    "launch_rockets",
]

METRICS = [
    "cpu_percent",
    "memory_percent",
    "latency_p95_ms",
    "error_rate_percent",
    "throughput_rps",
]


class Corpus:
    """Seeded generator of observations and enforce requests."""

    def __init__(self, seed: int, services: list[str]) -> None:
        self.rng = random.Random(seed)
        self.services = services

    def pick(self, *choices: Any) -> Any:
        return self.rng.choice(choices)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def metric(self) -> Any:
        if self.chance(0.03):
            return self.pick("80", -1, 2e9, None, True)
        return self.pick(
            self.rng.randint(0, 100), self.rng.randint(0, 20) * 5, round(self.rng.random() * 100, 2)
        )

    def quantity(self, resource: str) -> Any:
        r = self.rng
        if self.chance(0.03):
            return self.pick("lots", -5, None, "1Ki" if resource == "cpu" else "5m", "")
        if resource == "cpu":
            return self.pick(
                f"{r.randint(1, 2500)}m", str(r.randint(1, 3)), f"{r.randint(1, 9)}00m", 0.25, "0.5"
            )
        return self.pick(
            f"{r.randint(16, 4096)}Mi",
            f"{r.randint(1, 4)}Gi",
            str(r.randint(1, 5) * 1048576),
            f"{r.randint(1, 900)}M",
            f"{r.randint(1000, 500000)}Ki",
        )

    def pods(self, count: int, calm: bool) -> list[dict[str, Any]]:
        pods = []
        for n in range(count):
            pod: dict[str, Any] = {
                "name": f"p-{n}",
                "phase": "Running"
                if calm
                else self.pick("Running", "Running", "Failed", "Pending"),
                "ready": calm or self.chance(0.8),
                "restart_count": self.rng.randint(0, 2 if calm else 5),
                "reason": self.pick(
                    None, None, None, None, None, None, None, None, None, "CrashLoopBackOff"
                )
                if calm
                else self.pick(
                    None, None, None, "CrashLoopBackOff", "Error", "OOMKilled", "Completed"
                ),
            }
            if not calm and self.chance(0.05):
                pod["restart_count"] = self.pick(-1, "2", 1.5)
            if not calm and self.chance(0.03):
                del pod["name"]
            for field in ("reason", "phase"):
                if self.chance(0.1):
                    del pod[field]
            pods.append(pod)
        return pods

    def observation(self) -> dict[str, Any]:
        """Anything goes: random values, some of them broken."""
        r = self.rng
        item: dict[str, Any] = {
            "service": self.pick(*self.services)
            if not self.chance(0.03)
            else self.pick("nope", None, 5)
        }
        if not self.chance(0.03):
            item["now"] = (
                self.pick("2026-02-10T12:00:00Z", "2026-02-10T12:10:00Z")
                if not self.chance(0.05)
                else self.pick("noon", 5)
            )
        if not self.chance(0.03):
            desired = r.randint(0, 7)
            item["replicas"] = {"desired": desired, "ready": max(0, desired - r.randint(0, 2))}
            if self.chance(0.05):
                item["replicas"] = self.pick(
                    {"desired": -1, "ready": 1},
                    {"desired": 2.5, "ready": 2},
                    {"desired": "3", "ready": 3},
                    "x",
                )
        if not self.chance(0.03):
            item["metrics"] = {name: self.metric() for name in METRICS if not self.chance(0.1)}
            if self.chance(0.05):
                item["metrics"]["weird_metric"] = 5
        if not self.chance(0.05):
            item["resources"] = {}
            for resource in ("cpu", "memory"):
                if self.chance(0.05):
                    continue
                fields = {"request": self.quantity(resource), "usage": self.quantity(resource)}
                if self.chance(0.3):
                    fields["limit"] = self.quantity(resource)
                if self.chance(0.3):
                    fields["usage"] = fields["request"]
                item["resources"][resource] = fields
        if not self.chance(0.05):
            item["pods"] = self.pods(r.randint(0, 4), calm=False)
        if not self.chance(0.05):
            item["state"] = {
                "last_operation_at": self.pick(
                    None, None, "2026-02-10T11:59:00Z", "2026-02-10T10:00:00Z", "garbage"
                ),
                "consecutive_failures": r.randint(0, 3),
                "breaker_open": self.pick(False, False, False, True, "no"),
            }
        return item

    def calm_observation(self) -> dict[str, Any]:
        """Well formed and mostly inside thresholds: what most ticks look like."""
        r = self.rng
        desired = r.randint(1, 4)
        request = {
            "cpu": self.pick("100m", "1", "250m", "50m"),
            "memory": self.pick("128Mi", "2Gi", "256Mi", "64Mi"),
        }
        return {
            "service": self.pick(*self.services),
            "now": "2026-02-10T12:00:00Z",
            "replicas": {"desired": desired, "ready": desired},
            "metrics": {
                "cpu_percent": r.randint(20, 90),
                "memory_percent": r.randint(20, 90),
                "latency_p95_ms": r.randint(5, 300),
                "error_rate_percent": round(r.random(), 2),
                "throughput_rps": 50,
            },
            "resources": {
                name: {
                    "request": request[name],
                    "usage": request[name] if self.chance(0.8) else self.quantity(name),
                }
                for name in ("cpu", "memory")
            },
            "pods": self.pods(desired, calm=True),
            "state": {
                "last_operation_at": self.pick(None, None, "2026-02-10T11:59:00Z"),
                "consecutive_failures": 0,
                "breaker_open": False,
            },
        }

    def operation(self) -> Any:
        kind = self.pick(*OPERATION_TYPES)
        operation: dict[str, Any] = {"type": kind}
        if kind == "scale":
            operation["to"] = self.pick(0, 1, 2, 3, 4, 5, 6, 9, -1, 2.5, "3")
        elif kind == "adjust_resources":
            operation["resource"] = self.pick("cpu", "memory", "gpu")
            if self.chance(0.5):
                operation["field"] = self.pick("request", "limit", "usage")
            operation["to"] = self.quantity(
                "memory" if operation["resource"] == "memory" else "cpu"
            )
        elif kind == "restart_pod":
            operation["pod"] = self.pick("p-0", "", 5)
        elif kind == "rollback" and self.chance(0.5):
            operation["to_revision"] = self.pick(1, 3, 0, "2")
        elif kind.startswith(("delete_", "modify_")):
            operation["name"] = "x"
        elif kind == "update_configmap":
            operation["name"] = "cfg"
            operation["changes"] = self.pick(
                {"LOG_LEVEL": "DEBUG"},
                {"db_password": "x"},
                {},
                {"API_TOKEN": 1},
                {"tls_cert": "a", "mode": "b"},
            )
        elif kind == "update_strategy":
            operation["changes"] = self.pick({"max_unavailable": 1}, {})
        elif kind == "update_health_checks":
            operation["probe"] = self.pick("liveness", "readiness", "heart")
            operation["changes"] = {"period_seconds": 5}
        if self.chance(0.05):
            operation["surprise"] = 1
        if self.chance(0.03):
            return self.pick("scale", None, {"to": 3})
        return operation

    def request(self) -> dict[str, Any]:
        request = self.observation()
        request.pop("metrics", None)
        request.pop("pods", None)
        request["operation"] = self.operation()
        return request


def answers(policies: Path, cases: int, seed: int) -> dict[str, Any]:
    """Every answer of the policies over the corpus, bundle_revision left out."""
    with tempfile.TemporaryDirectory(prefix="opsgate-policy-diff-") as name:
        work = Path(name)
        blueprints = work / "blueprints"
        blueprints.mkdir()
        for path in sorted((ROOT / "blueprints").glob("*/blueprint.yaml")):
            shutil.copy(path, blueprints / f"{path.parent.name}.yaml")
        for path in sorted((ROOT / "blueprints").glob("examples/*.yaml")):
            shutil.copy(path, blueprints / path.name)
        shutil.copy(ROOT / "blueprints" / "governance.yaml", blueprints / "governance.yaml")
        (blueprints / "hello-dry.yaml").write_text(DRY_RUN_BLUEPRINT)
        compiled = compile_blueprints(blueprints, work / "build", bundle=False)
        services = sorted(json.loads(compiled.data_path.read_text())["opsgate"]["blueprints"])
        corpus = Corpus(seed, services)
        observations = [
            corpus.calm_observation() if corpus.chance(0.5) else corpus.observation()
            for _ in range(cases)
        ]
        requests = [corpus.request() for _ in range(cases)]
        (work / "input.json").write_text(
            json.dumps({"services": observations, "requests": requests})
        )
        (work / "query.rego").write_text(QUERY_MODULE)
        completed = subprocess.run(
            [
                str(find_tool("opa")),
                "eval",
                "--format",
                "json",
                "-d",
                str(policies),
                "-d",
                str(compiled.data_path),
                "-d",
                str(work / "query.rego"),
                "-i",
                str(work / "input.json"),
                "data.policy_diff.answers",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode != 0:
        sys.exit(
            f"policy_diff: opa eval failed: {completed.stderr.strip() or completed.stdout[:500]}"
        )
    result: dict[str, Any] = json.loads(completed.stdout)["result"][0]["expressions"][0]["value"]
    result["decide_all"].pop("bundle_revision", None)
    for document in [*result["decide_all"]["services"], *result["decide"], *result["enforce"]]:
        document.pop("bundle_revision", None)
    return result


def _expected_away(answer: Any, expected: list[tuple[str, str]]) -> Any:
    """``answer`` with the FIELDs of ``expected`` (RULE, FIELD) blanked where RULE leads."""
    if isinstance(answer, dict):
        rules = answer.get("rules")
        leading = rules[0] if isinstance(rules, list) and rules else None
        return {
            key: "(expected to change)"
            if (leading, key) in expected
            else _expected_away(value, expected)
            for key, value in answer.items()
        }
    if isinstance(answer, list):
        return [_expected_away(item, expected) for item in answer]
    return answer


def differences(
    before: dict[str, Any], after: dict[str, Any], expected: list[tuple[str, str]] | None = None
) -> tuple[list[str], int]:
    """One line per answer that changed, and how many changed only where expected."""
    lines, as_expected = [], 0
    for key in ("decide_all", "decide", "enforce"):
        old = before[key]["services"] if key == "decide_all" else before[key]
        new = after[key]["services"] if key == "decide_all" else after[key]
        if len(old) != len(new):
            lines.append(f"{key}: {len(old)} answers before, {len(new)} now")
            continue
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b and expected and _expected_away(a, expected) == _expected_away(b, expected):
                as_expected += 1
            elif a != b:
                lines.append(
                    f"{key}[{index}]: was {json.dumps(a, sort_keys=True)}\n"
                    f"  now {json.dumps(b, sort_keys=True)}"
                )
    return lines, as_expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["record", "compare"])
    parser.add_argument(
        "file", type=Path, help="where to write the answers (record) or the answers to compare with"
    )
    parser.add_argument(
        "--policies",
        type=Path,
        default=ROOT / "policies",
        help="policy directory (default: the repo's)",
    )
    parser.add_argument(
        "--cases", type=int, default=2000, help="observations and requests each (default 2000)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="RULE:FIELD",
        help="a change made on purpose: FIELD may differ where RULE is the leading rule",
    )
    args = parser.parse_args()
    if args.action == "compare":
        try:
            recorded = json.loads(args.file.read_text())
        except (OSError, ValueError) as error:
            sys.exit(f"policy_diff: can't read recorded answers {args.file}: {error}")
        if (recorded["cases"], recorded["seed"]) != (args.cases, args.seed):
            sys.exit(
                f"policy_diff: {args.file} was recorded with "
                f"--cases {recorded['cases']} --seed {recorded['seed']}"
            )
    result = answers(args.policies, args.cases, args.seed)
    if args.action == "record":
        args.file.write_text(
            json.dumps({"cases": args.cases, "seed": args.seed, "answers": result}, sort_keys=True)
        )
        decisions = sum(len(document["decisions"]) for document in result["decide_all"]["services"])
        print(
            f"recorded {len(result['decide'])} observations ({decisions} decisions) "
            f"and {len(result['enforce'])} requests → {args.file}"
        )
        return
    expected = [tuple(item.rsplit(":", 1)) for item in args.expect]
    if any(len(pair) != 2 for pair in expected):
        sys.exit("policy_diff: --expect takes RULE:FIELD")
    changed, as_expected = differences(recorded["answers"], result, expected)  # type: ignore[arg-type]
    if result["decide"] != result["decide_all"]["services"]:
        changed.append("decide and decide_all disagree for the same observation")
    for line in changed[:5]:
        print(line)
    if changed:
        sys.exit(f"policy_diff: {len(changed)} answers changed")
    if as_expected:
        print(f"{as_expected} answers changed only where expected ({', '.join(args.expect)})")
    print(
        f"same answers for all {len(result['decide'])} observations "
        f"and {len(result['enforce'])} requests" + (" apart from those" if as_expected else "")
    )


if __name__ == "__main__":
    main()
