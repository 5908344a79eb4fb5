"""opsgate simulate: summaries match an independent recount of the audit log; plots are drawn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.cluster import Applied
from engine.cluster.simulated import Change
from engine.hpa import SYNC_PERIOD_SECONDS
from engine.simulate import SimulationError, count_flaps, count_resource_changes, simulate
from tests.conftest import REPO, RunCli

TRACES = REPO / "blueprints" / "examples" / "traces"


def recount(audit: Path, service: str) -> dict[str, object]:
    """Count decisions by tier, approvals, breaker trips and changes straight from the log
    (a ``repeated`` line stands for ``count`` decisions like the full copy it refers to)."""
    decisions = {"allow": 0, "approve": 0, "forbid": 0, "defer": 0}
    approvals = trips = changes = resources = 0
    full: dict[str, dict[str, object]] = {}
    for line in audit.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event.get("service") != service:
            continue
        if event["event"] == "decision":
            decisions[event["tier"]] += 1
            full[event["hash"]] = event
        if event["event"] == "repeated" and event["kind"] == "decision":
            decisions[str(full[event["of"]]["tier"])] += event["count"]
        approvals += event["event"] == "approval_requested"
        trips += event["event"] == "breaker_opened"
        changed = event["event"] in ("execution_succeeded", "rollback_succeeded")
        changes += changed
        resources += changed and event["operation"]["type"] == "adjust_resources"
    return {
        "decisions": decisions,
        "approvals_needed": approvals,
        "breaker_trips": trips,
        "operations": changes,
        "resource_changes": resources,
    }


def test_summary_matches_an_independent_recount(tmp_path: Path) -> None:
    result = simulate(REPO / "blueprints", TRACES / "spike.csv", work_dir=tmp_path)
    assert set(result.summary) == {"frontend", "backend"}
    for service, numbers in result.summary.items():
        counted = recount(result.audit_path, service)
        assert {k: numbers[k] for k in counted} == counted
    frontend = result.summary["frontend"]
    assert frontend["decisions"]["allow"] >= 1  # the spike is answered by scaling
    series = result.series["frontend"]
    assert max(series.replicas) > min(series.replicas)
    ends = [*series.times[1:], series.times[-1] + SYNC_PERIOD_SECONDS]
    target = result.blueprints["frontend"]["spec"]["performance"]["latency_p95_ms"]
    over = sum(
        end - start
        for p95, start, end in zip(series.latency, series.times, ends, strict=True)
        if p95 is not None and p95 > target
    )
    assert frontend["seconds_over_latency_target"] == over
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
        "operations",
        "resource_changes",
        "flaps",
    }
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # five panels of lines and markers, not an empty canvas


def test_approve_all_grants_every_request_signed_and_runs_it(tmp_path: Path) -> None:
    result = simulate(
        REPO / "blueprints",
        TRACES / "spike.csv",
        services=["backend"],
        work_dir=tmp_path,
        approve_all=True,
    )
    assert result.approve_all
    events = [json.loads(line) for line in result.audit_path.read_text().splitlines()]
    requested = {e["approval_id"] for e in events if e["event"] == "approval_requested"}
    granted = [e for e in events if e["event"] == "approval_granted"]
    assert requested and {e["approval_id"] for e in granted} == requested
    assert all(e["signed"] for e in granted)
    assert not [e for e in events if e["event"] == "approval_refused"]
    # each approved operation runs
    started = {e.get("approval_id") for e in events if e["event"] == "execution_started"}
    assert requested <= started
    counted = recount(result.audit_path, "backend")
    summary = result.summary["backend"]
    assert {k: summary[k] for k in counted} == counted
    # the repo's blueprints are not the ones keyed for the simulation
    assert "opsgate-simulation" not in (REPO / "blueprints" / "governance.yaml").read_text()


def test_approve_all_is_said_and_left_unanswered_without_it(run_cli: RunCli) -> None:
    for flag, said in (("--approve-all", "all approved at once"), (None, "left unanswered")):
        arguments = ["simulate", "--load", str(TRACES / "spike.csv"), "--service", "backend"]
        result = run_cli(*arguments, *([flag] if flag else []), "--json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["approval_requests"] == said


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


# --- the HPA baseline ---------------------------------------------------------------------


def test_baseline_hpa_runs_beside_opsgate_with_the_same_fields(
    run_cli: RunCli, tmp_path: Path
) -> None:
    plot = tmp_path / "hpa.png"
    result = run_cli(
        "simulate",
        "--load",
        str(TRACES / "spike.csv"),
        "--service",
        "frontend",
        "--baseline",
        "hpa",
        "--plot",
        str(plot),
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    runs = document["runs"]
    assert list(runs) == ["as is", "hpa"]
    opsgate, hpa = runs["as is"]["frontend"], runs["hpa"]["frontend"]
    assert set(hpa) == set(opsgate)
    # the HPA decides alone: each change is an allowed decision, none asks
    assert hpa["approvals_needed"] == 0
    assert hpa["decisions"] == {"allow": hpa["operations"], "approve": 0, "forbid": 0, "defer": 0}
    assert hpa["operations"] >= 2  # it scaled out for the spike and back in after it
    # the blueprint's target, 80 / 1.1 = 72.7, as the HPA's whole percent
    assert document["baseline"]["hpa"]["target_utilization_percent"] == {"frontend": 73}
    assert document["audit_logs"]["hpa"] is None
    assert len(plot.read_bytes()) > 20_000


def test_hpa_holds_a_scale_in_for_its_300_second_window() -> None:
    result = simulate(
        REPO / "blueprints", TRACES / "spike.csv", services=["frontend"], controller="hpa"
    )
    series = result.series["frontend"]
    peak = max(series.replicas)
    assert peak > min(series.replicas)  # the spike asks for more
    assert len(series.hpa_reasons) == len(series.times)
    # the spike ends at 2400 s; the last sync that saw it recommended the peak, and the
    # scale-in comes when that recommendation leaves the window (now - 300 s, now]
    last_high = max(t for t in series.times if t < 2400)
    after = [(t, r) for t, r in zip(series.times, series.replicas, strict=True) if t >= 2400]
    first_lower = next(t for t, r in after if r < peak)
    # the series is sampled before each sync: the sync at last_high + 300 shows a step later
    assert first_lower == last_high + 300 + SYNC_PERIOD_SECONDS
    assert result.audit_path is None


def test_human_table_puts_a_services_runs_together(run_cli: RunCli) -> None:
    result = run_cli("simulate", "--load", str(TRACES / "spike.csv"), "--baseline", "hpa")
    assert result.exit_code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[-3:] == ["operations", "resources", "flaps"]
    # run (8 wide), service (14 wide): each service's opsgate row, then its HPA row
    assert [(row[:8].strip(), row[9:23].strip()) for row in rows] == [
        ("as is", "backend"),
        ("hpa", "backend"),
        ("as is", "frontend"),
        ("hpa", "frontend"),
    ]


def change(at: float, before: object, after: object, kind: str = "scale") -> Change:
    """A change the simulated cluster made: replicas, or a CPU request."""
    if kind == "scale":
        operation = {"type": "scale", "to": after}
        inverse = {"type": "scale", "to": before}
    else:
        operation = {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": after}
        inverse = {**operation, "to": before}
    return Change(at, "frontend", Applied(operation, inverse))


@pytest.mark.parametrize(
    ("changes", "flaps"),
    [
        ([change(0, 2, 3), change(600, 3, 2)], 1),  # undone within 10 minutes, edge included
        ([change(0, 2, 3), change(601, 3, 2)], 0),  # later than 10 minutes: not a flap
        ([change(0, 2, 3), change(60, 3, 4), change(120, 4, 5)], 0),  # one way
        ([change(0, 2, 3), change(60, 3, 2), change(120, 2, 3)], 2),  # up, down, up
        ([change(0, 2, 3), change(60, "100m", "90m", "cpu")], 0),  # another quantity
        ([change(0, "100m", "110m", "cpu"), change(60, "110m", "99m", "cpu")], 1),
        ([change(0, 2, 3), change(30, 3, 3), change(60, 3, 2)], 1),  # no-op changes don't count
        # a change that moves no amount (a restart) neither flaps nor breaks a pair
        (
            [
                change(0, 2, 3),
                Change(30, "frontend", Applied({"type": "restart_pod"}, None)),
                change(60, 3, 2),
            ],
            1,
        ),
    ],
)
def test_flaps_are_reversals_of_one_quantity_within_ten_minutes(
    changes: list[Change], flaps: int
) -> None:
    assert count_flaps(changes) == flaps


def test_a_memory_scaled_service_settles_under_a_steady_load(tmp_path: Path) -> None:
    # report-worker scales on memory (85% up, target 76.5%); most of a pod's memory does not
    # shrink with more pods, so a service that right-sized its memory to usage could never
    # get under the threshold. Now: scaled once, then left alone, and no breaker trip.
    trace = tmp_path / "steady.csv"
    trace.write_text("seconds,service,rps\n0,report-worker,8000\n3600,report-worker,8000\n")
    result = simulate(REPO / "blueprints", trace, services=["report-worker"])
    summary = result.summary["report-worker"]
    replicas = result.series["report-worker"].replicas
    assert max(replicas) > 1  # it did scale out
    settled = [
        r for t, r in zip(result.series["report-worker"].times, replicas, strict=True) if t >= 1800
    ]
    assert len(set(settled)) == 1, settled
    assert summary["breaker_trips"] == 0
    assert summary["flaps"] == 0


def test_resource_changes_count_every_request_or_limit_set() -> None:
    changes = [
        change(0, 2, 3),
        change(60, "100m", "90m", "cpu"),
        change(120, "90m", "100m", "cpu"),  # an undo is a rollout too
        Change(180, "frontend", Applied({"type": "restart_pod"}, None)),
    ]
    assert count_resource_changes(changes) == 2


def test_the_series_is_sampled_every_step_inside_a_verification_wait_too() -> None:
    # opsgate's runner waits (virtually) for stabilization inside a tick; the series still
    # has one sample per step, so both controllers are measured on the same grid
    result = simulate(REPO / "blueprints", TRACES / "spike.csv", services=["frontend"])
    times = result.series["frontend"].times
    assert result.summary["frontend"]["operations"] >= 1  # there was a wait to sample through
    assert times == [i * SYNC_PERIOD_SECONDS for i in range(len(times))]
    assert times[-1] == pytest.approx(result.duration, abs=SYNC_PERIOD_SECONDS)
