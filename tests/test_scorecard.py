"""scripts/scorecard.py: a row per service and trace, a missed target shown missed, the doc kept."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

sys.path.append(str(REPO / "scripts"))  # the repo scripts are not a package
import scorecard

SCRIPT = str(REPO / "scripts" / "scorecard.py")
COLUMNS = 9


def summary(**figures: Any) -> dict[str, Any]:
    """A simulation summary with quiet figures, ``figures`` changed."""
    return {
        "seconds_over_latency_target": 0.0,
        "replica_minutes": 100.0,
        "flaps": 0,
        "approvals_needed": 0,
        "resource_changes": 0,
        **figures,
    }


def measured(
    trace: str = "daily-wave-24h.csv",
    *,
    beyond_max: bool = False,
    opsgate: dict[str, Any] | None = None,
    approved: dict[str, Any] | None = None,
    hpa: dict[str, Any] | None = None,
) -> scorecard.Measured:
    """One fabricated row of the scorecard: the frontend on ``trace``."""
    return scorecard.Measured(
        trace,
        "frontend",
        opsgate or summary(),
        approved or summary(),
        hpa or summary(),
        beyond_max,
    )


def cells(line: str) -> list[str]:
    """The cells of one markdown table row."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_one_short_trace_gives_a_row_per_service_and_leaves_the_doc_alone() -> None:
    before = scorecard.DOC.read_bytes()
    result = subprocess.run(
        [sys.executable, SCRIPT, "--trace", "demo-ramp.csv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header, rule, *rows = lines[: lines.index("")]
    assert cells(header)[:3] == ["trace", "service", "load"]
    assert cells(header)[-1] == "why"
    assert cells(rule) == ["---"] * COLUMNS
    assert [cells(row)[:2] for row in rows] == [
        ["`demo-ramp.csv`", "backend"],
        ["`demo-ramp.csv`", "frontend"],
    ]
    for row in rows:
        assert len(cells(row)) == COLUMNS
        # a trace that is no daily wave has its latency, cost and flaps judged, nothing else
        verdicts = [c for c in cells(row)[3:8] if c.endswith(("met", "**missed**"))]
        assert len(verdicts) == 3
    assert "Targets met: " in result.stdout and " of 6." in result.stdout
    assert "demo-ramp.csv:" in result.stderr  # its run time
    assert scorecard.DOC.read_bytes() == before  # only a full run writes the doc


def test_a_missed_target_is_shown_missed_and_numbered_with_its_note() -> None:
    row = measured(
        opsgate=summary(seconds_over_latency_target=30.0, approvals_needed=3, flaps=2),
        approved=summary(resource_changes=5),
        hpa=summary(flaps=1),
    )
    notes = {("daily-wave-24h.csv", "frontend", "latency"): "it scales one replica at a time"}
    text, stale = scorecard.table([row], notes)
    line = next(line for line in text.splitlines() if line.startswith("| `daily"))
    found = cells(line)
    assert found[3] == "30 / 0 **missed**"
    assert found[4] == "100.0 / 100.0 met"
    assert found[5] == "2 / 1 **missed**"
    assert found[6] == "3 / 0, ≤ 2 **missed**"
    assert found[7] == "5, ≤ 4 **missed**"
    assert found[8] == "1, 2, 3, 4"
    assert "Targets met: 1 of 5." in text
    assert "1. `daily-wave-24h.csv`, frontend, seconds over the latency target: it scales" in text
    assert "2. `daily-wave-24h.csv`, frontend, flaps: *not explained yet" in text
    assert stale == []


@pytest.mark.parametrize(
    ("row", "target", "holds"),
    [
        # exactly at each bound holds
        (measured(opsgate=summary(replica_minutes=110.0)), "cost", True),
        (measured(opsgate=summary(replica_minutes=110.1)), "cost", False),
        (measured(opsgate=summary(approvals_needed=2)), "approvals", True),
        (measured(approved=summary(approvals_needed=3)), "approvals", False),  # the larger count
        (measured(approved=summary(resource_changes=4)), "rollouts", True),
        (measured(approved=summary(resource_changes=5)), "rollouts", False),
        (measured(opsgate=summary(seconds_over_latency_target=15.0)), "latency", False),
        # approvals count only while the load stays inside max_replicas
        (measured(beyond_max=True, opsgate=summary(approvals_needed=9)), "approvals", None),
        (measured(beyond_max=True, approved=summary(resource_changes=5)), "rollouts", False),
        # neither is judged off the daily-wave traces
        (measured("spike.csv", opsgate=summary(approvals_needed=9)), "approvals", None),
        (measured("spike.csv", approved=summary(resource_changes=9)), "rollouts", None),
    ],
)
def test_targets_and_their_bounds(row: scorecard.Measured, target: str, holds: bool | None) -> None:
    verdict = next(v for v in scorecard.judge(row) if v.target == target)
    assert verdict.holds is holds
    if holds is None:
        assert not verdict.cell().endswith(("met", "**missed**"))
    else:
        assert verdict.cell().endswith(" met" if holds else " **missed**")


def test_a_note_for_a_target_that_holds_is_reported_stale() -> None:
    notes = {("daily-wave-24h.csv", "frontend", "flaps"): "flaps on the way down"}
    text, stale = scorecard.table([measured()], notes)
    assert stale == [("daily-wave-24h.csv", "frontend", "flaps")]
    assert "flaps on the way down" not in text
    assert "Targets met: 5 of 5." in text


def test_the_table_is_replaced_in_place_between_the_markers() -> None:
    old = f"# Doc\n\nbefore\n\n{scorecard.BEGIN} inputs 0 -->\nold table\n{scorecard.END}\nafter\n"
    new = scorecard.block("| new |", seconds=125.4, digest="abc")
    written = scorecard.replace_block(old, new)
    assert written.startswith("# Doc\n\nbefore\n\n")
    assert written.endswith(f"{scorecard.END}\nafter\n")
    assert "old table" not in written and "| new |" in written
    assert "the full run took 2 min 05 s" in written
    assert scorecard.recorded_digest(written) == "abc"
    assert scorecard.replace_block(written, new) == written
    with pytest.raises(SystemExit, match="no <!-- scorecard:begin"):
        scorecard.replace_block("# Doc without markers\n", new)


def test_the_doc_holds_a_scorecard_for_every_trace() -> None:
    text = scorecard.DOC.read_text(encoding="utf-8")
    assert scorecard.recorded_digest(text) is not None
    for trace in sorted(p.name for p in scorecard.TRACES.glob("*.csv")):
        assert f"| `{trace}` |" in text, trace


def test_the_notes_name_known_targets(tmp_path: Path) -> None:
    assert all(key[2] in scorecard.TARGETS for key in scorecard.read_notes())
    wrong = tmp_path / "why.toml"
    wrong.write_text('["spike.csv".frontend]\nspeed = "too slow"\n')
    with pytest.raises(SystemExit, match="unknown target 'speed'"):
        scorecard.read_notes(wrong)


def test_generated_traces_are_what_their_script_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(scorecard.TRACES / "make_traces.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
