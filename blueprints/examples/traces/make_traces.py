"""Write the generated load traces beside this file: sawtooth, slow ramp, 24-hour daily wave.

The traces are for the example blueprints' frontend (max 5 replicas) and
backend (max 3): each row is ``seconds,service,rps,,`` and rows are no finer
than a minute. The daily wave's noise comes from a seeded generator, so the
same script writes the same bytes every time; ``--check`` says whether the
files here are what it would write (exit 1 if not).

    python blueprints/examples/traces/make_traces.py          # (re)write the CSV files
    python blueprints/examples/traces/make_traces.py --check  # are they up to date?

Where "max_replicas holds the load" is said below, it is measured as the HPA
baseline sees it (usage / request at the blueprint's target utilization, 72%
of the frontend's 100m and 67.5% of the backend's 250m): up to about 650 rps
for the frontend (5 pods at 0.55 millicores per request per second, the
simulator's load model for it) and 1,010 rps for the backend (3 pods at
0.5). Both start at 2 pods, which hold about 260 and 670 rps.
``scripts/scorecard.py`` measures it again on each run and says it per trace
and service.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
MINUTE = 60
SERVICES = ("frontend", "backend")
SEED = 20261126  # the daily wave's noise

Row = tuple[int, str, int]


def sawtooth() -> list[Row]:
    """Six 20-minute teeth: a steady climb for 19 minutes, then the load drops back at once.

    Frontend 130 → 450 rps, backend 220 → 800 rps: each peak needs more than
    the 2 pods the service starts with, and max_replicas holds both.
    """
    levels = {"frontend": (130, 450), "backend": (220, 800)}
    rows = []
    for minute in range(6 * 20 + 1):
        step = minute % 20
        for service in SERVICES:
            low, high = levels[service]
            rows.append((minute * MINUTE, service, round(low + (high - low) * step / 19)))
    return rows


def slow_ramp() -> list[Row]:
    """Two hours of steady growth, then 20 minutes at the top.

    Frontend 140 → 800 rps, backend 260 → 1,300 rps: past what max_replicas
    holds for the last half hour or so (the frontend from about 650 rps, minute
    93; the backend from about 1,010 rps, minute 87).
    """
    levels = {"frontend": (140, 800), "backend": (260, 1300)}
    rows = []
    for minute in range(140 + 1):
        share = min(minute, 120) / 120
        for service in SERVICES:
            low, high = levels[service]
            rows.append((minute * MINUTE, service, round(low + (high - low) * share)))
    return rows


def daily_shape(hour: float) -> float:
    """A working day's traffic, 0 (04:00, the night's low) to 1 (the evening peak near 20:00)."""
    day = (1 - math.cos(2 * math.pi * (hour - 4) / 24)) / 2  # low at 04:00, high at 16:00
    evening = math.exp(-(((hour - 20) / 2.5) ** 2))  # people at home after work
    return 0.8 * day + 0.35 * evening


def daily_wave_24h(seed: int = SEED) -> list[Row]:
    """One day from midnight, a row a minute, with seeded noise on top of the daily shape.

    Frontend 90 → 520 rps, backend 140 → 850 rps before noise; the noise is a
    slowly wandering ±4% (an AR(1) process) plus one-minute jitter of ±2%, so
    the peaks need more than 2 pods and stay inside what max_replicas holds.
    """
    levels = {"frontend": (90, 520), "backend": (140, 850)}
    rng = random.Random(seed)  # Mersenne Twister from an int seed: the same on every Python
    peak = max(daily_shape(m / 60) for m in range(24 * 60))
    wander = dict.fromkeys(SERVICES, 0.0)
    rows = []
    for minute in range(24 * 60):
        shape = daily_shape(minute / 60) / peak
        for service in SERVICES:
            low, high = levels[service]
            drift = 0.95 * wander[service] + 0.011 * (2 * rng.random() - 1)
            wander[service] = max(-0.04, min(0.04, drift))
            noise = wander[service] + 0.02 * (2 * rng.random() - 1)
            rps = (low + (high - low) * shape) * (1 + noise)
            rows.append((minute * MINUTE, service, round(rps)))
    return rows


TRACES: dict[str, Callable[[], list[Row]]] = {
    "sawtooth.csv": sawtooth,
    "slow-ramp.csv": slow_ramp,
    "daily-wave-24h.csv": daily_wave_24h,
}


def render(rows: Iterable[Row]) -> str:
    """The CSV text of a trace: the header, then rows by time, frontend before backend."""
    lines = ["seconds,service,rps,fault,value"]
    lines += [f"{seconds},{service},{rps},," for seconds, service, rps in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Write every trace, or with --check say which differ from what would be written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    arguments = parser.parse_args()
    stale = []
    for name, make in TRACES.items():
        path = HERE / name
        text = render(make())
        if arguments.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({text.count(chr(10)) - 1} rows)")
    if stale:
        print(f"not what make_traces.py writes: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
