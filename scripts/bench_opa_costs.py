"""What OPA's evaluator costs per step on this machine, measured with ``opa bench``.

Each query does one kind of step for each of 3,000 input items; the script
prints the time per item above the cost of the bare iteration. These are
the unit costs behind the policy figures in docs/PERFORMANCE.md.

Run with ``.venv/bin/python scripts/bench_opa_costs.py``. It prints figures;
it asserts nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from engine.toolchain import find_tool

ITEMS = 3000

MODULE = """\
package costs

iterate := [x | some x in input.items]

one_builtin := [1 | some x in input.items; is_string(x.name)]

one_comparison := [1 | some x in input.items; x.n >= 0]

three_builtins := [1 | some x in input.items; is_number(x.n); x.n >= 0; floor(x.n) == x.n]

function_call := [_value(x) | some x in input.items]

_value(x) := x.n

function_call_else := [_kind(x) | some x in input.items]

_kind(x) := "big" if x.n > 1000000 else := "small"

function_call_eight := [_eighth("h", x) | some x in input.items]

_eighth("a", x) := x.n

_eighth("b", x) := x.n

_eighth("c", x) := x.n

_eighth("d", x) := x.n

_eighth("e", x) := x.n

_eighth("f", x) := x.n

_eighth("g", x) := x.n

_eighth("h", x) := x.n

comprehension := [[y | some y in x.tags] | some x in input.items]

rule_lookup := [1 | some x in input.items; not _names[x.name]]

_names := {"a", "b", "c"}

set_literal := [1 | some x in input.items; not x.name in {"a", "b", "c"}]

data_read := [data.costs_data.services[x.name].limit | some x in input.items]

formatted := [sprintf("%s has %d", [x.name, x.n]) | some x in input.items]

object_literal := [{"name": x.name, "n": x.n, "tier": "allow"} | some x in input.items]
"""

STEPS = [
    ("one builtin call (is_string)", "one_builtin"),
    ("one comparison (>=)", "one_comparison"),
    ("three builtins (a whole-number check)", "three_builtins"),
    ("one call of a one-line function", "function_call"),
    ("one call of a function with an else", "function_call_else"),
    ("one call of a function of 8 clauses f(k, x)", "function_call_eight"),
    ("one inner comprehension over 3 elements", "comprehension"),
    ("one lookup in a rule's set (not _names[x])", "rule_lookup"),
    ("one membership test in a set literal", "set_literal"),
    ("one read of a document from data", "data_read"),
    ("one sprintf", "formatted"),
    ("one object literal of 3 keys", "object_literal"),
]


def bench(directory: Path, query: str) -> float:
    """Nanoseconds per evaluation of data.costs.<query>, best of three runs."""
    best = float("inf")
    for _ in range(3):
        completed = subprocess.run(
            [
                str(find_tool("opa")), "bench", "--format", "json",
                "--optimize-store-for-read-speed",
                "-d", str(directory / "costs.rego"), "-d", str(directory / "data.json"),
                "-i", str(directory / "input.json"), f"data.costs.{query}",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            sys.exit(
                f"bench_opa_costs: opa bench {query} failed: {completed.stdout or completed.stderr}"
            )
        result = json.loads(completed.stdout)
        best = min(best, result["T"] / result["N"])
    return best


def main() -> None:
    """Write the module and inputs, bench each step, print µs per item."""
    with tempfile.TemporaryDirectory(prefix="opsgate-costs-") as name:
        directory = Path(name)
        (directory / "costs.rego").write_text(MODULE)
        items = [{"name": f"svc-{i}", "n": i, "tags": ["a", "b", "c"]} for i in range(ITEMS)]
        (directory / "input.json").write_text(json.dumps({"items": items}))
        services = {f"svc-{i}": {"limit": i, "owner": "team"} for i in range(ITEMS)}
        (directory / "data.json").write_text(json.dumps({"costs_data": {"services": services}}))
        base = bench(directory, "iterate")
        print(f"opa: {find_tool('opa')}; {ITEMS} items per query")
        print(f"{'iterating over an item':45} {base / ITEMS / 1000:6.2f} µs per item")
        for label, query in STEPS:
            extra = (bench(directory, query) - base) / ITEMS / 1000
            print(f"{label:45} {extra:6.2f} µs per item, above the iteration")


if __name__ == "__main__":
    main()
