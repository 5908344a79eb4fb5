"""Pictures of a simulation (matplotlib): load, replicas, utilization, p95, decisions by tier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import operations
from engine.errors import OpsgateError
from engine.simulate import Simulation

_TIER_STYLE = {
    "allow": ("tab:green", "^"),
    "approve": ("tab:orange", "s"),
    "forbid": ("tab:red", "x"),
    "defer": ("tab:blue", "."),
}


def plot(simulations: list[tuple[str, Simulation]], service: str, output: Path) -> None:
    """Draw one column per simulation (--compare, --baseline: side by side) for one service."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise OpsgateError("plotting needs matplotlib: pip install 'opsgate[plot]'") from e
    columns = len(simulations)
    figure, axes = plt.subplots(5, columns, figsize=(7 * columns, 12), sharex="col", squeeze=False)
    for column, (label, simulation) in enumerate(simulations):
        series = simulation.series[service]
        scaling = simulation.blueprints[service]["spec"]["scaling"]
        target = simulation.blueprints[service]["spec"]["performance"].get("latency_p95_ms")
        minutes = [t / 60 for t in series.times]
        load, replicas, utilization, latency, decisions = (axes[row][column] for row in range(5))
        load.set_title(f"{service} — {label}")
        load.plot(minutes, series.rps, color="tab:gray")
        load.set_ylabel("load (req/s)")
        replicas.step(minutes, series.replicas, where="post", color="tab:purple")
        replicas.axhline(
            scaling["max_replicas"], color="tab:red", linestyle=":", label="max_replicas"
        )
        replicas.axhline(
            scaling["min_replicas"], color="tab:blue", linestyle=":", label="min_replicas"
        )
        replicas.set_ylabel("replicas")
        replicas.legend(loc="upper left", fontsize="small")
        utilization.plot(minutes, _gaps(series.utilization), color="tab:olive")
        utilization.axhline(
            scaling["scale_up_threshold_percent"], color="tab:red", linestyle="--", label="scale up"
        )
        utilization.axhline(
            scaling["scale_down_threshold_percent"],
            color="tab:blue",
            linestyle="--",
            label="scale down",
        )
        if simulation.controller == "hpa" and any(v is not None for v in series.hpa_utilization):
            # what the HPA steers by: usage / request, which the simulator's % need not be
            utilization.plot(
                minutes,
                _gaps([None if v is None else float(v) for v in series.hpa_utilization]),
                color="tab:cyan",
                label="HPA: usage / request",
            )
            utilization.axhline(
                simulation.targets[service], color="tab:cyan", linestyle=":", label="HPA target"
            )
        utilization.set_ylabel(f"{scaling['metric']} %")
        utilization.legend(loc="upper left", fontsize="small")
        latency.plot(minutes, _gaps(series.latency), color="tab:brown")
        if target is not None:
            latency.axhline(target, color="tab:red", linestyle="--", label="p95 target")
            latency.legend(loc="upper left", fontsize="small")
        latency.set_ylabel("p95 (ms)")
        for tier, (colour, marker) in _TIER_STYLE.items():
            points = [
                (t / 60, _row(kind)) for t, decided, kind in series.decisions if decided == tier
            ]
            if points:
                decisions.scatter(
                    *zip(*points, strict=True), color=colour, marker=marker, label=tier
                )
        decisions.set_yticks([0, 1, 2], [*_ROWS, "other"])
        decisions.set_ylim(-0.5, 2.5)
        decisions.set_ylabel("decisions")
        decisions.set_xlabel("minutes")
        if series.decisions:
            decisions.legend(loc="upper left", fontsize="small", ncol=4)
    figure.tight_layout()
    try:
        figure.savefig(output, dpi=90)
    except OSError as e:
        raise OpsgateError(f"can't write {output}: {e.strerror or e}") from e
    finally:
        plt.close(figure)


def _gaps(values: list[float | None]) -> list[float]:
    return [float("nan") if v is None else v for v in values]


# a row of the decisions panel per concern (the catalog's), the rest on a third
_ROWS = {"scaling": 0, "resources": 1}


def _row(kind: str) -> int:
    entry = operations.catalog().get(kind)
    return _ROWS.get(entry.concern, 2) if entry else 2


def summary_table(simulations: list[tuple[str, Simulation]]) -> list[dict[str, Any]]:
    """One row per (label, service) for printing: a service's runs next to each other."""
    services = list(simulations[0][1].summary) if simulations else []
    return [
        {"run": label, "service": name, **simulation.summary[name]}
        for name in services
        for label, simulation in simulations
        if name in simulation.summary
    ]
