"""How big the audit log grows: replay a trace and measure what the runner wrote.

For each trace (default: blueprints/examples/traces/daily-wave.csv, 60 s ticks)
it replays the trace with ``engine.simulate`` on the example blueprints,
keeps the audit log, and prints: lines and bytes written, bytes per
service-hour (services times the replayed time, the trace and its tail), lines
and bytes by event kind, how many decisions the log stands for (a
``repeated`` line stands for ``count`` of them) against how many decision
lines it holds, and why decisions were not repeats — for each decision, what
differed from the last one of the same service and kind of change. It
checks that the log verifies. It prints figures; it asserts nothing.

    .venv/bin/python scripts/audit_size.py [TRACE.csv ...] [--step 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from engine import operations
from engine.audit import AuditLog
from engine.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "blueprints" / "examples" / "traces"
DEFAULT_TRACE = TRACES / "daily-wave.csv"
# what a repeat may differ in from the decision it repeats (see engine/audit.py)
_PER_TICK = ("time", "decision_id", "prev", "hash")


def measure(trace: Path, step: float) -> dict[str, Any]:
    """Replay ``trace`` and measure its audit log."""
    with tempfile.TemporaryDirectory(prefix="opsgate-audit-size-") as name:
        work = Path(name)
        result = simulate(REPO / "blueprints", trace, step=step, work_dir=work)
        path = work / "audit.jsonl"
        raw = path.read_bytes().splitlines(keepends=True)
        report = AuditLog(path).verify()
    events = [json.loads(line) for line in raw]
    kinds: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    for line, event in zip(raw, events, strict=True):
        kinds[event["event"]] += 1
        sizes[event["event"]] += len(line)
    decision_lines = kinds["decision"]
    repeats = sum(
        int(e.get("count", 0))
        for e in events
        if e["event"] == "repeated" and e.get("kind") == "decision"
    )
    services = len(result.summary)
    service_hours = services * result.duration / 3600
    total = sum(len(line) for line in raw)
    return {
        "trace": str(trace.relative_to(REPO)) if trace.is_relative_to(REPO) else str(trace),
        "step_seconds": step,
        "services": services,
        "service_hours": round(service_hours, 2),
        "events": len(events),
        "bytes": total,
        "bytes_per_service_hour": round(total / service_hours),
        "verifies": report.ok,
        "decisions_made": decision_lines + repeats,
        "decision_lines": decision_lines,
        "by_kind": {
            kind: {"events": count, "bytes": sizes[kind]} for kind, count in kinds.most_common()
        },
        "decisions_differ_in": _differences(events),
    }


def _differences(events: list[dict[str, Any]]) -> dict[str, int]:
    """For each decision line, which fields differ from the last decision line of the same
    service, kind of change and tier ("first" when there was none)."""
    last: dict[tuple[Any, ...], dict[str, Any]] = {}
    found: Counter[str] = Counter()
    for event in events:
        if event["event"] != "decision":
            continue
        key = (
            event.get("service"),
            operations.same_kind(event.get("operation") or {}),
            event.get("tier"),
        )
        content = {k: v for k, v in event.items() if k not in _PER_TICK}
        before = last.get(key)
        if before is None:
            found["first"] += 1
        else:
            changed = sorted(
                k for k in content.keys() | before.keys() if content.get(k) != before.get(k)
            )
            found[" + ".join(changed) or "nothing (a repeat written in full)"] += 1
        last[key] = content
    return dict(found.most_common())


def _print(figures: dict[str, Any]) -> None:
    print(
        f"{figures['trace']} ({figures['services']} services, {figures['service_hours']} "
        f"service-hours, {figures['step_seconds']:g} s ticks)"
    )
    print(
        f"  {figures['events']} events, {figures['bytes'] / 1000:.1f} kB, "
        f"{figures['bytes_per_service_hour'] / 1000:.1f} kB per service-hour; "
        f"verifies: {figures['verifies']}"
    )
    print(
        f"  decisions made: {figures['decisions_made']}, written in full: "
        f"{figures['decision_lines']}"
    )
    print("  by kind:")
    for kind, row in figures["by_kind"].items():
        print(f"    {kind:<22} {row['events']:>5} events {row['bytes'] / 1000:>8.1f} kB")
    print("  each decision line differs from the last of its kind of change in:")
    for what, count in figures["decisions_differ_in"].items():
        print(f"    {count:>5}  {what}")


def main(argv: list[str]) -> None:
    """Measure each trace given (default: daily-wave.csv)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path, default=[DEFAULT_TRACE])
    parser.add_argument("--step", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(trace.resolve(), args.step) for trace in args.traces]
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
        return
    for figures in results:
        _print(figures)


if __name__ == "__main__":
    main(sys.argv[1:])
