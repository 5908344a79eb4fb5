"""Load traces for the simulated cluster: what the load (and faults) are at each moment.

A trace is CSV with a header: ``seconds,service,rps`` and optionally
``fault,value``. Each row takes effect when that many virtual seconds have
passed since the start; a row may set the request rate, inject a fault, or
both. Example::

    seconds,service,rps,fault,value
    0,frontend,200,,
    60,frontend,309,,
    300,frontend,,latency_spike_ms,250
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass
from pathlib import Path

from engine.cluster import ClusterError
from engine.cluster.simulated import SimulatedCluster

_FAULTS = ("crash_loop", "latency_spike_ms", "api_errors", "apply_errors", "crash_next_rollout")
MAX_TRACE_BYTES = 16 * 1024 * 1024
# far beyond any real load or fault, and small enough that the load model stays finite
MAX_VALUE = 1_000_000_000


@dataclass(frozen=True)
class TraceRow:
    """One change of load or fault at a moment of the trace."""

    seconds: float
    service: str
    rps: float | None
    fault: str | None
    value: float | None


class LoadTrace:
    """A load trace, replayed onto a simulated cluster as virtual time passes."""

    def __init__(self, rows: list[TraceRow]) -> None:
        self.rows = sorted(rows, key=lambda r: r.seconds)
        self._moments = [row.seconds for row in self.rows]

    @classmethod
    def read(cls, path: Path) -> LoadTrace:
        """Parse a trace file; errors name the file and line."""
        rows = []
        try:
            if path.stat().st_size > MAX_TRACE_BYTES:
                raise ClusterError(f"{path}: over the 16 MiB limit for a load trace")
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                try:
                    missing = {"seconds", "service", "rps"} - set(reader.fieldnames or [])
                    if missing:
                        raise ClusterError(
                            f"{path}:1: trace header lacks {', '.join(sorted(missing))}"
                        )
                    for raw in reader:
                        rows.append(_row(path, reader.line_num, raw))
                except csv.Error as e:
                    # a field over csv's size limit, and the like
                    raise ClusterError(
                        f"{path}:{reader.reader.line_num}: not a CSV load trace: {e}"
                    ) from e
        except OSError as e:
            raise ClusterError(f"can't read trace {path}: {e.strerror or e}") from e
        except UnicodeDecodeError as e:
            raise ClusterError(f"{path}: not UTF-8 text") from e
        if not rows:
            raise ClusterError(f"{path}: the trace has no rows")
        return cls(rows)

    def services(self) -> set[str]:
        """Every service the trace mentions."""
        return {r.service for r in self.rows}

    def rps_at(self, service: str, seconds: float) -> float | None:
        """The request rate the trace gives ``service`` at ``seconds`` (None before any)."""
        rows = self.rows[: bisect.bisect_right(self._moments, seconds)]
        return next(
            (r.rps for r in reversed(rows) if r.service == service and r.rps is not None), None
        )

    def advance(self, cluster: SimulatedCluster) -> list[TraceRow]:
        """Apply every row due by the cluster's virtual time that it has not seen yet.

        The cluster remembers how far into the trace it is, so a run that
        stops and resumes on the same cluster file applies each row once.
        """
        elapsed = cluster.elapsed()
        done = float(cluster.state.get("trace_seconds", -1.0))
        # the rows with done < seconds <= elapsed, found by bisection: a long trace stays cheap
        due = self.rows[
            bisect.bisect_right(self._moments, done) : bisect.bisect_right(self._moments, elapsed)
        ]
        for row in due:
            if row.rps is not None:
                cluster.set_load(row.service, rps=row.rps)
            if row.fault is not None:
                cluster.inject(row.service, row.fault, row.value if row.value is not None else True)
        if due:
            cluster.state["trace_seconds"] = due[-1].seconds
        return due


def _number(path: Path, number: int, name: str, text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError as e:
        raise ClusterError(f"{path}:{number}: {name} must be a number (got {text!r})") from e
    if not math.isfinite(value):
        raise ClusterError(f"{path}:{number}: {name} must be a finite number (got {text!r})")
    if value < 0:
        raise ClusterError(f"{path}:{number}: {name} must not be negative (got {text!r})")
    if value > MAX_VALUE:
        raise ClusterError(f"{path}:{number}: {name} must be at most {MAX_VALUE} (got {text!r})")
    return value


def _row(path: Path, number: int, raw: dict[str, str | None]) -> TraceRow:
    seconds = _number(path, number, "seconds", raw.get("seconds"))
    if seconds is None:
        raise ClusterError(f"{path}:{number}: seconds is missing")
    service = (raw.get("service") or "").strip()
    if not service:
        raise ClusterError(f"{path}:{number}: service is missing")
    fault = (raw.get("fault") or "").strip() or None
    if fault is not None and fault not in _FAULTS:
        raise ClusterError(
            f"{path}:{number}: unknown fault {fault!r} (one of: {', '.join(_FAULTS)})"
        )
    rps = _number(path, number, "rps", raw.get("rps"))
    if rps is None and fault is None:
        raise ClusterError(f"{path}:{number}: a row sets rps, a fault, or both")
    return TraceRow(seconds, service, rps, fault, _number(path, number, "value", raw.get("value")))
