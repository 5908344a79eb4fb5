"""opsgate simulate: summaries match an independent recount of the audit log; plots are drawn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.simulate import SimulationError, simulate
from tests.conftest import REPO, RunCli

TRACES = REPO / "blueprints" / "examples" / "traces"


def recount(audit: Path, service: str) -> dict[str, object]:
    """Count decisions by tier, approval requests and breaker trips straight from the log."""
    decisions = {"allow": 0, "approve": 0, "forbid": 0, "defer": 0}
    approvals = trips = 0
    for line in audit.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("service") != service:
            continue
        if event["event"] == "decision":
            decisions[event["tier"]] += 1
        approvals += event["event"] == "approval_requested"
        trips += event["event"] == "breaker_opened"
    return {"decisions": decisions, "approvals_needed": approvals, "breaker_trips": trips}


def test_summary_matches_an_independent_recount(tmp_path: Path) -> None:
    result = simulate(REPO / "blueprints", TRACES / "spike.csv", work_dir=tmp_path)
    assert set(result.summary) == {"frontend", "backend"}
    for service, numbers in result.summary.items():
        counted = recount(result.audit_path, service)
        assert {k: numbers[k] for k in counted} == counted
    frontend = result.summary["frontend"]
    assert frontend["decisions"]["allow"] >= 1  # the spike is answered by scaling
    assert frontend["seconds_over_latency_target"] > 0  # before the new replicas were ready
    series = result.series["frontend"]
    assert max(series.replicas) > min(series.replicas)
    ends = [*series.times[1:], series.times[-1] + 60]
    seconds = sum(
        r * (end - start) for r, start, end in zip(series.replicas, series.times, ends, strict=True)
    )
    assert frontend["replica_minutes"] == pytest.approx(seconds / 60, abs=0.1)


@pytest.mark.parametrize("trace", ["daily-wave.csv", "spike.csv", "slow-leak.csv"])
def test_each_sample_trace_gives_a_plot_and_a_json_summary(
    run_cli: RunCli, tmp_path: Path, trace: str
) -> None:
    plot = tmp_path / "out.png"
    result = run_cli(
        "simulate",
        "--load",
        str(TRACES / trace),
        "--service",
        "frontend",
        "--plot",
        str(plot),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["runs"]["as is"]["frontend"]
    assert set(summary) == {
        "decisions",
        "approvals_needed",
        "breaker_trips",
        "seconds_over_latency_target",
        "replica_minutes",
    }
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # five panels of lines and markers, not an empty canvas


def test_compare_a_changed_blueprint(run_cli: RunCli, blueprint_copy: Path, tmp_path: Path) -> None:
    path = blueprint_copy / "frontend" / "blueprint.yaml"
    path.write_text(path.read_text().replace("max_replicas: 5 ", "max_replicas: 3 "))
    plot = tmp_path / "compare.png"
    result = run_cli(
        "simulate",
        "--load",
        str(TRACES / "spike.csv"),
        "--service",
        "frontend",
        "--compare-blueprints",
        str(blueprint_copy),
        "--plot",
        str(plot),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert set(runs) == {"as is", "changed"}
    assert (
        runs["changed"]["frontend"]["replica_minutes"]
        <= runs["as is"]["frontend"]["replica_minutes"]
    )
    assert plot.exists()


def test_unknown_service_in_the_trace(tmp_path: Path) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("seconds,service,rps\n0,payments,5\n")
    with pytest.raises(SimulationError, match="no blueprint for payments"):
        simulate(REPO / "blueprints", trace, work_dir=tmp_path / "work")


def test_human_table(run_cli: RunCli) -> None:
    result = run_cli("simulate", "--load", str(TRACES / "spike.csv"), "--service", "backend")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split()[:3] == ["run", "service", "allow"]
    assert "backend" in result.stdout.splitlines()[1]


def test_compare_a_changed_policy_library(run_cli: RunCli, tmp_path: Path) -> None:
    import shutil

    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    scaling = policies / "opsgate" / "govern" / "scaling" / "scaling.rego"
    # a stricter library: every scale needs approval
    source = scaling.read_text()
    stricter = re.sub(
        r'\t"allow",(\n\tsprintf\(\n\t\t"%\w replicas is within)', r'\t"approve",\1', source
    )
    assert stricter != source  # else the comparison below compares a library with itself
    scaling.write_text(stricter)
    result = run_cli(
        "simulate",
        "--load",
        str(TRACES / "spike.csv"),
        "--service",
        "frontend",
        "--compare",
        str(policies),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    runs = json.loads(result.stdout)["runs"]
    assert (
        runs["changed"]["frontend"]["approvals_needed"]
        > runs["as is"]["frontend"]["approvals_needed"]
    )


def test_plot_of_one_service_is_the_file_named(run_cli: RunCli, tmp_path: Path) -> None:
    plot = tmp_path / "out.png"
    result = run_cli(
        "simulate", "--load", str(TRACES / "spike.csv"), "--service", "backend", "--plot", str(plot)
    )
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
    assert f"plot of backend: {plot}" in result.stderr
    assert "one file each" not in result.stderr


def test_plot_of_several_services_says_each_file(run_cli: RunCli, tmp_path: Path) -> None:
    plot = tmp_path / "out.png"
    result = run_cli("simulate", "--load", str(TRACES / "spike.csv"), "--plot", str(plot), "--json")
    assert result.exit_code == 0, result.stderr
    written = {"backend": tmp_path / "out-backend.png", "frontend": tmp_path / "out-frontend.png"}
    assert sorted(tmp_path.iterdir()) == sorted(written.values())
    assert json.loads(result.stdout)["plots"] == {s: str(p) for s, p in written.items()}
    told = [line for line in result.stderr.splitlines() if line.startswith("plot")]
    assert told == [
        f"plot: 2 services, one file each ({plot} is not written)",
        *(f"plot of {s}: {p}" for s, p in json.loads(result.stdout)["plots"].items()),
    ]


def test_plot_option_help_says_where_the_files_go(run_cli: RunCli) -> None:
    text = " ".join(run_cli("simulate", "--help").stdout.split())
    assert "for several, one file each with the service added to the name" in text
    assert "Each path written is told on stderr" in text
