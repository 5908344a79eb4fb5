"""How big the audit log grows: replay a trace and measure what the runner wrote.

For each trace (default: blueprints/examples/traces/daily-wave.csv, 60 s ticks)
it replays the trace with ``engine.simulate`` on the repo's blueprints,
keeps the audit log, and prints: lines and bytes written, bytes per
service-hour (services times the replayed time, the trace and its tail; once
for the trace's services, as issue 12 counts them, and once for every
service the runner watched — the blueprints the trace does not load run at
their quiet default load and are decided on too), lines
and bytes by event kind, how many decisions the log stands for (a
``repeated`` line stands for ``count`` of them) against how many decision
lines it holds, and why decisions were not repeats — for each decision, what
differed from the last one of the same service and kind of change. It
checks that the log verifies. Then the same replay once more as a what-if:
every number in a reason replaced by ``N`` before it is recorded — what the
log would be if the reasons named the rule and its threshold instead of
quoting the tick's measurement (a sample count, a CPU percentage).

Then, for the first trace, a steady state: the trace's own first approve and
defer decisions of each service (with the deferral the executor records),
decided again unchanged every tick for ``--hours`` on a virtual clock, into a
signed log — once written in full every tick, as before repeats, and once
within runner ticks, as the runner writes them now. That is what a pending
decision costs when nothing changes.

It prints figures; it asserts nothing.

    .venv/bin/python scripts/audit_size.py [TRACE.csv ...] [--step 60] [--hours 4] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from engine import operations, signing
from engine.audit import AuditLog
from engine.simulate import simulate
from engine.state import StateStore

REPO = Path(__file__).resolve().parent.parent
TRACES = REPO / "blueprints" / "examples" / "traces"
DEFAULT_TRACE = TRACES / "daily-wave.csv"
# what a repeat may differ in from the decision it repeats (see engine/audit.py)
_PER_TICK = ("time", "decision_id", "prev", "hash")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def measure(trace: Path, step: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Replay ``trace`` and measure its audit log; return the figures and its events."""
    with tempfile.TemporaryDirectory(prefix="opsgate-audit-size-") as name:
        work = Path(name)
        result = simulate(REPO / "blueprints", trace, step=step, work_dir=work)
        path = work / "audit.jsonl"
        raw = path.read_bytes().splitlines(keepends=True)
        report = AuditLog(path).verify()
    events = [json.loads(line) for line in raw]
    watched = len(result.blueprints)
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
    figures = {
        "trace": str(trace.relative_to(REPO)) if trace.is_relative_to(REPO) else str(trace),
        "step_seconds": step,
        "services": services,
        "service_hours": round(service_hours, 2),
        "services_watched": watched,
        "events": len(events),
        "bytes": total,
        "bytes_per_service_hour": round(total / service_hours),
        "bytes_per_watched_service_hour": round(total / (watched * result.duration / 3600)),
        "verifies": report.ok,
        "decisions_made": decision_lines + repeats,
        "decision_lines": decision_lines,
        "by_kind": {
            kind: {"events": count, "bytes": sizes[kind]} for kind, count in kinds.most_common()
        },
        "decisions_differ_in": _differences(events),
    }
    return figures, events


class _Clock:
    """A virtual clock, moved by the caller."""

    def __init__(self) -> None:
        self.now = datetime.datetime(2026, 2, 10, 12, 0, tzinfo=datetime.UTC)

    def __call__(self) -> str:
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _steady_decisions(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per service, its first approve and first defer decision (with the deferral recorded
    right after it), as the runner recorded them, without time, chain or event kind."""
    chosen: dict[str, list[dict[str, Any]]] = {}
    taken: set[tuple[Any, ...]] = set()
    for index, event in enumerate(events):
        service, tier = event.get("service"), event.get("tier")
        if event["event"] != "decision" or tier not in ("approve", "defer"):
            continue
        if (service, tier) in taken:
            continue
        taken.add((service, tier))
        records = [event]
        following = events[index + 1] if index + 1 < len(events) else {}
        if tier == "defer" and following.get("event") == "deferred":
            records.append(following)
        chosen.setdefault(str(service), []).extend(records)
    return chosen


def steady(events: list[dict[str, Any]], hours: float, step: float) -> dict[str, Any]:
    """The same decisions every tick for ``hours``: bytes written in full, and as repeats."""
    decisions = _steady_decisions(events)
    ticks = int(hours * 3600 / step)
    service_hours = len(decisions) * hours
    figures: dict[str, Any] = {
        "services": len(decisions),
        "hours": hours,
        "step_seconds": step,
        "records_per_tick": sum(len(r) for r in decisions.values()),
    }
    for label, in_ticks in (("written_in_full", False), ("with_repeats", True)):
        with tempfile.TemporaryDirectory(prefix="opsgate-audit-steady-") as name:
            work = Path(name)
            state = StateStore(work / "state.db")
            clock = _Clock()
            log = AuditLog(
                work / "audit.jsonl",
                clock=clock,
                signer=signing.demo_key("audit size"),
                ledger=state.audit_ledger(durable=False),
            )
            for number in range(ticks):
                clock.now += datetime.timedelta(seconds=step)
                with log.tick() if in_ticks else contextlib.nullcontext():
                    for records in decisions.values():
                        for record in records:
                            fields = {
                                k: v
                                for k, v in record.items()
                                if k not in ("time", "event", "prev", "hash")
                            }
                            fields["decision_id"] = f"{record['decision_id']}-{number}"
                            log.record(record["event"], **fields)
            log.close()
            raw = log.path.read_bytes().splitlines(keepends=True)
            total = sum(len(line) for line in raw)
            kinds = Counter(json.loads(line)["event"] for line in raw)
            report = log.verify(
                public_key=signing.demo_key("audit size").public_key(),
                counts=state.audit_counts(),
                runs=state.audit_ledger().runs(),
            )
            state.close()
        figures[label] = {
            "events": len(raw),
            "bytes": total,
            "bytes_per_service_hour": round(total / service_hours),
            "by_kind": dict(kinds.most_common()),
            "verifies": report.ok,
        }
    return figures


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


def without_numbers_in_reasons(trace: Path, step: float) -> dict[str, Any]:
    """The same replay, each number in a reason replaced by N as it is recorded (a what-if)."""
    record = AuditLog.record

    def steady_reasons(self: AuditLog, kind: str, **fields: Any) -> dict[str, Any]:
        if isinstance(fields.get("reasons"), list):
            fields["reasons"] = [_NUMBER.sub("N", str(r)) for r in fields["reasons"]]
        return record(self, kind, **fields)

    AuditLog.record = steady_reasons  # type: ignore[method-assign]
    try:
        figures, _events = measure(trace, step)
    finally:
        AuditLog.record = record  # type: ignore[method-assign]
    return figures


def _print(figures: dict[str, Any], title: str = "") -> None:
    print(
        f"{title or figures['trace']} ({figures['services']} services in the trace, "
        f"{figures['services_watched']} watched; {figures['service_hours']} service-hours of "
        f"the trace's, {figures['step_seconds']:g} s ticks)"
    )
    print(
        f"  {figures['events']} events, {figures['bytes'] / 1000:.1f} kB, "
        f"{figures['bytes_per_service_hour'] / 1000:.1f} kB per service-hour of the trace's "
        f"services ({figures['bytes_per_watched_service_hour'] / 1000:.1f} kB per service-hour "
        f"watched); verifies: {figures['verifies']}"
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


def _print_steady(figures: dict[str, Any]) -> None:
    print(
        f"steady state: {figures['records_per_tick']} records a tick for {figures['services']} "
        f"services, {figures['hours']:g} h of {figures['step_seconds']:g} s ticks"
    )
    for label in ("written_in_full", "with_repeats"):
        row = figures[label]
        print(
            f"  {label.replace('_', ' ')}: {row['events']} events, {row['bytes'] / 1000:.1f} kB, "
            f"{row['bytes_per_service_hour'] / 1000:.1f} kB per service-hour; verifies: "
            f"{row['verifies']}; {', '.join(f'{k} {n}' for k, n in row['by_kind'].items())}"
        )


def main(argv: list[str]) -> None:
    """Measure each trace given (default: daily-wave.csv), then the steady state."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces", nargs="*", type=Path, default=[DEFAULT_TRACE])
    parser.add_argument("--step", type=float, default=60.0)
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    measured = [measure(trace.resolve(), args.step) for trace in args.traces]
    what_if = [without_numbers_in_reasons(trace.resolve(), args.step) for trace in args.traces]
    still = steady(measured[0][1], args.hours, args.step)
    if args.json:
        json.dump(
            {
                "traces": [m[0] for m in measured],
                "without_numbers_in_reasons": what_if,
                "steady": still,
            },
            sys.stdout,
            indent=2,
        )
        print()
        return
    for (figures, _events), steadier in zip(measured, what_if, strict=True):
        _print(figures)
        _print(steadier, f"what-if, no number in a reason: {steadier['trace']}")
    _print_steady(still)


if __name__ == "__main__":
    main(sys.argv[1:])
