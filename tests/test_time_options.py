"""Times typed on the command line: one reader for ``audit show --since`` and ``enforce --now``.

ISO 8601 times with ``Z`` or an offset and dates are accepted everywhere,
durations (``30m``, ``1h``, ``2d``, ``1w``: that long before now) where a
time before now is meant; anything else is a usage error that shows the
accepted forms, never a string compared with the log's times.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from engine.audit import AuditLog
from tests.conftest import RunCli

NOW = datetime.datetime.now(datetime.UTC)


def stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# decision id → the time its event was written (as the log writes, or by other clocks)
EVENTS = {
    "before-noon": "2020-02-10T11:59:59.999999Z",
    "noon": "2020-02-10T12:00:00Z",
    "noon-written-with-fraction": "2020-02-10T12:00:00.000000Z",  # the same instant
    "one": "2020-02-10T13:00:00.000000Z",
    "three-days-ago": stamp(NOW - datetime.timedelta(days=3)),
    "ninety-minutes-ago": stamp(NOW - datetime.timedelta(minutes=90)),
    "ten-minutes-ago": stamp(NOW - datetime.timedelta(minutes=10)),
}
RECENT = ["three-days-ago", "ninety-minutes-ago", "ten-minutes-ago"]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    log = AuditLog(state / "audit.jsonl")
    for decision_id, time in EVENTS.items():
        log.record("decision", service="frontend", decision_id=decision_id, tier="allow", time=time)
    return state


def shown(run_cli: RunCli, state_dir: Path, since: str) -> list[str]:
    result = run_cli("audit", "show", "--state-dir", str(state_dir), "--since", since, "--json")
    assert result.exit_code == 0, result.output
    return [e["decision_id"] for e in json.loads(result.stdout)]


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        # at or after, compared as instants: both ways of writing noon are kept
        ("2020-02-10T12:00:00Z", ["noon", "noon-written-with-fraction", "one", *RECENT]),
        ("2020-02-10T12:00:00.000000Z", ["noon", "noon-written-with-fraction", "one", *RECENT]),
        ("2020-02-10T12:00:00.000001Z", ["one", *RECENT]),
        # the same instant written with an offset
        ("2020-02-10T14:00:00+02:00", ["noon", "noon-written-with-fraction", "one", *RECENT]),
        # a date is its midnight UTC
        ("2020-02-10", list(EVENTS)),
        ("2020-02-11", RECENT),
        # durations: that long before now
        ("1w", RECENT),
        ("2d", ["ninety-minutes-ago", "ten-minutes-ago"]),
        ("2h", ["ninety-minutes-ago", "ten-minutes-ago"]),
        ("1h", ["ten-minutes-ago"]),
        ("30m", ["ten-minutes-ago"]),
        ("60s", []),
    ],
)
def test_since_takes_times_dates_and_durations(
    run_cli: RunCli, state_dir: Path, since: str, expected: list[str]
) -> None:
    assert shown(run_cli, state_dir, since) == expected


WIDE = "\uff12\uff10\uff12\uff16-02-10"  # 2026-02-10 in full-width digits
FORMS = (
    "give a time such as 2026-02-10T12:00:00Z, 2026-02-10T14:00:00+02:00 or 2026-02-10 "
    "(midnight UTC), or a duration such as 30m, 1h, 2d or 1w (that long before now)"
)


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", f"'yesterday' is not a time: {FORMS}"),
        ("1 h", f"'1 h' is not a time: {FORMS}"),
        ("1M", f"'1M' is not a time: {FORMS}"),  # a month or a minute? neither
        ("1y", f"'1y' is not a time: {FORMS}"),
        ("-1h", f"'-1h' is not a time: {FORMS}"),
        ("", f"'' is not a time: {FORMS}"),
        ("2026-02-30", f"'2026-02-30' is not a time: {FORMS}"),
        ("2026-02-10T25:00:00Z", f"'2026-02-10T25:00:00Z' is not a time: {FORMS}"),
        (WIDE, f"{WIDE!r} is not a time: {FORMS}"),  # digits, but not ASCII ones
        ("999999999w", f"'999999999w' is not a time: {FORMS}"),  # before year 1
        ("0001-01-01T00:00:00+01:00", f"'0001-01-01T00:00:00+01:00' is not a time: {FORMS}"),
        (
            "2026-02-10T12:00:00",
            "'2026-02-10T12:00:00' has no time zone: add Z or an offset such as +02:00",
        ),
    ],
)
def test_since_refuses_anything_else_as_a_usage_error(
    run_cli: RunCli, state_dir: Path, since: str, message: str
) -> None:
    result = run_cli("audit", "show", "--state-dir", str(state_dir), "--since", since)
    assert result.exit_code == 2
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert errors == [f"Error: Invalid value for '--since': {message}"]


def test_since_help_shows_the_forms(run_cli: RunCli) -> None:
    text = " ".join(run_cli("audit", "show", "--help").stdout.split())
    assert "--since TIME|AGO Only events at or after this time: 2026-02-10T12:00:00Z," in text
    assert "or 30m, 1h, 2d or 1w (that long before now)" in text


SCALE = '{"type": "scale", "to": 3}'


@pytest.mark.parametrize(
    ("now", "sent"),
    [
        ("2026-02-10T12:00:00Z", "2026-02-10T12:00:00Z"),
        ("2026-02-10T14:00:00+02:00", "2026-02-10T12:00:00Z"),
        ("2026-02-10", "2026-02-10T00:00:00Z"),
    ],
)
def test_enforce_now_reads_times_the_same_way(
    run_cli: RunCli, tmp_path: Path, now: str, sent: str
) -> None:
    # the cooldown reason shows what time the policies were given
    state = tmp_path / "state.json"
    last = datetime.datetime.fromisoformat(sent) - datetime.timedelta(seconds=42)
    state.write_text(json.dumps({"last_operation_at": stamp(last)}), encoding="utf-8")
    result = run_cli(
        "enforce",
        "--service",
        "frontend",
        "--operation",
        SCALE,
        "--state",
        str(state),
        "--now",
        now,
    )
    assert result.exit_code == 5, result.output
    assert (
        "last operation 42s ago, within cooldown_seconds 300"
        in json.loads(result.stdout)["reasons"]
    )


@pytest.mark.parametrize(
    ("now", "message"),
    [
        (
            "garbage",
            "'garbage' is not a time: give a time such as 2026-02-10T12:00:00Z, "
            "2026-02-10T14:00:00+02:00 or 2026-02-10 (midnight UTC)",
        ),
        # "now" is a moment, not a time before it
        (
            "1h",
            "'1h' is not a time: give a time such as 2026-02-10T12:00:00Z, "
            "2026-02-10T14:00:00+02:00 or 2026-02-10 (midnight UTC)",
        ),
        (
            "2026-02-10T12:00:00",
            "'2026-02-10T12:00:00' has no time zone: add Z or an offset such as +02:00",
        ),
    ],
)
def test_enforce_now_refuses_what_is_not_a_time(run_cli: RunCli, now: str, message: str) -> None:
    result = run_cli("enforce", "--service", "frontend", "--operation", SCALE, "--now", now)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"Error: Invalid value for '--now': {message}" in result.stderr.splitlines()
