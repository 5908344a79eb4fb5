"""Bad input never gets a traceback, a hang or a half-written file.

Each attack goes through the real command line and must end quickly with
exit 1 (2 for usage) and one error line that says where and why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import cli
from tests.conftest import REPO

DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5000
SCALE = '{"type": "scale", "to": 3}'
TRACE = REPO / "blueprints" / "examples" / "traces" / "spike.csv"


def refused(*args: str, code: int = 1, stdin: bytes | str | None = None) -> str:
    """Run opsgate in-process; assert a quick refusal with one error line; return that line."""
    started = time.monotonic()
    result = CliRunner().invoke(cli, list(args), input=stdin, prog_name="opsgate")
    took = time.monotonic() - started
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    errors = [line for line in result.stderr.splitlines() if "error:" in line.lower()]
    assert len(errors) == 1, result.stderr
    if code == 1:
        assert result.stderr.strip() == errors[0], result.stderr
        assert errors[0].startswith("opsgate: error: ")
    assert took < 20
    return errors[0]


def written(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def verify_args(operation: str, before: str, after: str) -> list[str]:
    return [
        "verify",
        "--service",
        "frontend",
        "--operation",
        operation,
        "--before",
        before,
        "--after",
        after,
    ]


# --- JSON on the command line: depth, numbers, NaN, duplicate keys, stdin -----------------


@pytest.mark.parametrize(
    "where",
    ["enforce --operation", "enforce --state", "decide --observation", "verify --before"],
)
def test_a_deep_json_file_is_refused_with_the_depth_limit(tmp_path: Path, where: str) -> None:
    deep = written(tmp_path, "deep.json", DEEP)
    empty = written(tmp_path, "empty.json", "{}")
    args = {
        "enforce --operation": ["enforce", "--service", "frontend", "--operation", deep],
        "enforce --state": ["enforce", "--service", "frontend", "--operation", SCALE],
        "decide --observation": ["decide", "--observation", deep],
        "verify --before": verify_args(SCALE, deep, empty),
    }[where]
    if where == "enforce --state":
        args += ["--state", deep]
    line = refused(*args)
    assert f"{deep}:1:65: nested deeper than 64 levels" in line


def test_deep_json_inline_and_on_stdin(tmp_path: Path) -> None:
    inline = refused("enforce", "--service", "frontend", "--operation", DEEP)
    assert "operation (inline):1:65: nested deeper than 64 levels" in inline
    piped = refused("decide", "--observation", "-", stdin=DEEP)
    assert "observation (stdin):1:65: nested deeper than 64 levels" in piped


def test_deep_json_in_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "decide", "--observation", "-"],
        input=DEEP,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        "opsgate: error: observation (stdin):1:65: nested deeper than 64 levels"
    ]


def test_just_over_the_depth_limit_is_refused_before_opa() -> None:
    operation = '{"type": "scale", "to": ' + "[" * 64 + "]" * 64 + "}"
    line = refused("enforce", "--service", "frontend", "--operation", operation)
    assert "operation (inline):1:88: nested deeper than 64 levels" in line


def test_a_5000_digit_integer_is_refused(tmp_path: Path) -> None:
    inline = refused(
        "enforce", "--service", "frontend", "--operation", '{"type": "scale", "to": ' + HUGE + "}"
    )
    assert "operation (inline):1:25: integer 99999999999999999999… (5000 digits)" in inline
    assert "is out of range (opsgate reads 64-bit integers)" in inline
    observation = written(tmp_path, "obs.json", '{\n  "replicas": {"desired": ' + HUGE + "}}")
    line = refused("decide", "--observation", observation)
    assert f"{observation}:2:27: integer" in line


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("NaN", "NaN is not valid JSON (JSON numbers are finite)"),
        ("Infinity", "Infinity is not valid JSON (JSON numbers are finite)"),
        ("-Infinity", "-Infinity is not valid JSON (JSON numbers are finite)"),
        ("1e400", "number 1e400 is out of range (not a finite number)"),
    ],
)
def test_nan_and_infinity_are_refused_at_read_time(value: str, message: str) -> None:
    operation = '{"type": "scale", "to": ' + value + "}"
    line = refused("enforce", "--service", "frontend", "--operation", operation)
    assert f"operation (inline):1:25: {message}" in line
    assert "OPA" not in line


def test_duplicate_keys_are_refused_with_the_key_and_where(tmp_path: Path) -> None:
    inline = refused(
        "enforce", "--service", "frontend", "--operation", '{"type": "scale", "to": 3, "to": 4}'
    )
    assert "operation (inline):1:28: duplicate key 'to' (first on line 1)" in inline
    observation = written(
        tmp_path, "obs.json", '{"metrics": {\n  "cpu_percent": 10,\n  "cpu_percent": 99}}'
    )
    line = refused("decide", "--observation", observation)
    assert f"{observation}:3:3: duplicate key 'cpu_percent' (first on line 2)" in line


def test_the_limits_themselves_are_accepted_and_one_past_them_is_not() -> None:
    from engine.cli.inputs import InputError, read_json

    def read(text: str) -> object:
        return read_json(text, "operation", inline=True)

    assert read("[" * 64 + "]" * 64) is not None
    with pytest.raises(InputError, match="nested deeper than 64 levels"):
        read("[" * 65 + "]" * 65)
    top, bottom = 2**63 - 1, -(2**63)
    assert read(f"[{top}, {bottom}, 1e308, 1.5]") == [top, bottom, 1e308, 1.5]
    for outside in (top + 1, bottom - 1):
        with pytest.raises(InputError, match="is out of range"):
            read(f"[{outside}]")
    siblings = '{"a": {"x": 1}, "b": {"x": 2}, "x": [{"x": 3}]}'
    assert read(siblings) == {"a": {"x": 1}, "b": {"x": 2}, "x": [{"x": 3}]}
    with pytest.raises(InputError, match="duplicate key 'x'"):
        read('{"a": {"x": 1, "x": 2}}')
    assert read('["\\ud83d\\ude00"]') == ["\U0001f600"]


def test_a_lone_surrogate_is_refused(tmp_path: Path) -> None:
    line = refused(
        "enforce", "--service", "frontend", "--operation", '{"type": "scale\\ud800", "to": 3}'
    )
    assert "operation (inline):1:10: not valid Unicode: lone surrogate \\ud800 in a string" in line
    after = written(tmp_path, "after.json", '{"pods": [{"name": "\\udc00x", "phase": "Failed"}]}')
    assert "lone surrogate" in refused(
        *verify_args(SCALE, written(tmp_path, "before.json", "{}"), after)
    )


def test_stdin_that_is_not_utf8() -> None:
    line = refused("decide", "--observation", "-", stdin=b'{"service": "\xff"}')
    assert "observation (stdin): not UTF-8 text" in line


def test_stdin_that_is_closed() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "decide", "--observation", "-"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
        preexec_fn=lambda: os.close(0),
    )
    assert completed.returncode == 1
    assert completed.stderr.strip().splitlines() == [
        "opsgate: error: observation (stdin): there is no stdin to read (observation)"
    ]


def test_state_and_observation_must_be_objects(tmp_path: Path) -> None:
    state = written(tmp_path, "state.json", "[1]")
    line = refused(
        "enforce", "--service", "frontend", "--operation", SCALE, "--state", state, code=2
    )
    assert f"{state}: --state must be a JSON object (got an array)" in line
    observation = written(tmp_path, "obs.json", '"frontend"')
    line = refused("decide", "--observation", observation, code=2)
    assert f"{observation}: --observation must be a JSON object (got a string)" in line


def test_now_must_be_a_time() -> None:
    line = refused(
        "enforce", "--service", "frontend", "--operation", SCALE, "--now", "garbage", code=2
    )
    assert line == (
        "Error: Invalid value for '--now': 'garbage' is not a time: give a time such as "
        "2026-02-10T12:00:00Z, 2026-02-10T14:00:00+02:00 or 2026-02-10 (midnight UTC)"
    )


# --- verify and execute: observations and operations of any shape -------------------------


@pytest.mark.parametrize(
    ("observation", "message"),
    [
        ({"pods": "x"}, "pods: must be an array (got a string)"),
        ({"pods": [1]}, "pods[0]: must be an object (got a whole number)"),
        ({"pods": [{"name": {"a": 1}}]}, "pods[0].name: must be a string (got an object)"),
        ({"pods": [{"restart_count": "3"}]}, "pods[0].restart_count: must be a whole number"),
        ({"pods": [{"ready": "yes"}]}, "pods[0].ready: must be true or false (got a string)"),
        ({"metrics": [1]}, "metrics: must be an object (got an array)"),
        ({"metrics": {"cpu_percent": "high"}}, "metrics.cpu_percent: must be a number or null"),
        ({"replicas": "3"}, "replicas: must be an object (got a string)"),
        ({"replicas": {"ready": 2.5}}, "replicas.ready: must be a whole number or null"),
    ],
)
@pytest.mark.parametrize("which", ["before", "after"])
def test_verify_names_a_wrong_shape(
    tmp_path: Path, observation: dict[str, object], message: str, which: str
) -> None:
    good = written(tmp_path, "good.json", "{}")
    bad = written(tmp_path, "bad.json", json.dumps(observation))
    before, after = (bad, good) if which == "before" else (good, bad)
    line = refused(*verify_args(SCALE, before, after))
    assert f"{bad}: {message}" in line


def test_execute_describes_an_operation_of_any_shape(tmp_path: Path) -> None:
    operation = '{"type": "update_configmap", "name": "frontend-config", "changes": [1]}'
    result = CliRunner().invoke(
        cli,
        ["execute", "--service", "frontend", "--operation", operation],
        env={"OPSGATE_STATE_DIR": str(tmp_path / "state")},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 4, result.output
    assert "blocked: update_configmap frontend-config ([1])" in result.stderr


# --- an error is one line, whatever it quotes ---------------------------------------------


def test_a_service_name_with_a_newline_stays_on_one_line(tmp_path: Path) -> None:
    trace = written(tmp_path, "trace.csv", 'seconds,service,rps\n0,"front\nend\x1b[31m",5\n')
    line = refused("run", "--once", "--state-dir", str(tmp_path / "state"), "--load", trace, code=2)
    assert line.startswith("opsgate: error: ")
    assert "no blueprint for front\\nend\\x1b[31m" in line


# --- load traces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("0,frontend,nan", ":2: rps must be a finite number (got 'nan')"),
        ("0,frontend,inf", ":2: rps must be a finite number (got 'inf')"),
        ("0,frontend,-inf", ":2: rps must be a finite number (got '-inf')"),
        ("0,frontend,1e400", ":2: rps must be a finite number (got '1e400')"),
        ("0,frontend,1e300", ":2: rps must be at most 1000000000 (got '1e300')"),
        ("nan,frontend,5", ":2: seconds must be a finite number (got 'nan')"),
        ("0,frontend,,latency_spike_ms,nan", ":2: value must be a finite number (got 'nan')"),
    ],
)
@pytest.mark.parametrize("command", ["simulate", "run"])
def test_a_trace_number_that_is_not_finite(
    tmp_path: Path, row: str, message: str, command: str
) -> None:
    trace = written(tmp_path, "trace.csv", "seconds,service,rps,fault,value\n" + row + "\n")
    args = ["simulate", "--load", trace]
    if command == "run":
        args = ["run", "--once", "--state-dir", str(tmp_path / "state"), "--load", trace]
    line = refused(*args)
    assert f"{trace}{message}" in line
    assert not (tmp_path / "state" / "cluster.json").exists()


def test_a_trace_field_over_the_csv_limit(tmp_path: Path) -> None:
    trace = written(tmp_path, "trace.csv", "seconds,service,rps\n0,frontend," + "1" * 200_000)
    line = refused("simulate", "--load", trace)
    assert f"{trace}:2: not a CSV load trace: field larger than field limit" in line


def test_a_trace_over_the_size_limit(tmp_path: Path) -> None:
    rows = "0,frontend,100\n" * (17 * 1024 * 1024 // 15 + 1)
    trace = written(tmp_path, "trace.csv", "seconds,service,rps\n" + rows)
    line = refused("simulate", "--load", trace)
    assert f"{trace}: over the 16 MiB limit for a load trace" in line


# --- how long a simulation runs, and numbers given as options -----------------------------


def test_a_trace_that_lasts_too_long_is_refused_quickly(tmp_path: Path) -> None:
    trace = written(
        tmp_path, "trace.csv", "seconds,service,rps\n0,frontend,100\n86400000,frontend,5\n"
    )
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "simulate", "--load", trace],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert time.monotonic() - started < 30
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines() == [
        f"opsgate: error: {trace}: the trace lasts 86400000 s, 5760041 ticks of --step 15: "
        "over the limit of 10000 ticks (use a larger --step or a shorter trace)"
    ]


def test_simulate_help_states_the_tick_limit() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--help"])
    assert "at most 10000 ticks" in " ".join(result.stdout.split())


def test_a_simulation_step_that_is_not_positive_is_refused_by_the_library() -> None:
    # the CLI bounds --step; a caller of engine.simulate must not loop forever either
    code = (
        "from pathlib import Path\n"
        "from engine.simulate import SimulationError, simulate\n"
        "try:\n"
        f"    simulate(Path({str(REPO / 'blueprints')!r}), Path({str(TRACE)!r}), step=0)\n"
        "except SimulationError as e:\n"
        "    print(e)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert completed.stdout.strip() == "the step must be a positive number of seconds (got 0)"


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "--load", str(TRACE), "--step", "nan"],
        ["simulate", "--load", str(TRACE), "--step", "inf"],
        ["run", "--once", "--interval", "nan"],
        ["run", "--ticks", "2", "--pause", "0", "--interval", "inf"],
        ["run", "--ticks", "2", "--pause", "0", "--interval", "1e300"],
        ["run", "--ticks", "2", "--pause", "nan"],
        ["enforce", "--service", "frontend", "--operation", SCALE, "--opa-timeout", "nan"],
    ],
)
def test_a_number_option_that_is_not_finite_or_absurd(tmp_path: Path, args: list[str]) -> None:
    if args[0] == "run":
        args = [*args, "--state-dir", str(tmp_path / "state")]
    line = refused(*args, code=2)
    assert "Error: Invalid value for '--" in line


# --- blueprints with absurd YAML ----------------------------------------------------------


def problems_of(tmp_path: Path, text: str) -> str:
    folder = tmp_path / "blueprints"
    folder.mkdir()
    (folder / "x.yaml").write_text(text, encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["validate", str(folder)], prog_name="opsgate")
    assert time.monotonic() - started < 10
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "1 problem in 1 file(s)"
    return result.stdout.strip()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (HUGE, "x.yaml:1: a: integer 99999999999999999999… (5000 digits) is out of range"),
        ("0x" + "f" * 5000, "x.yaml:1: a: integer 0xffffffffffffffffff… (5002 characters)"),
        ("0b" + "1" * 20000, "x.yaml:1: a: integer 0b111111111111111111… (20002 characters)"),
        (":".join(["1"] * 200_000), "x.yaml:1: a: integer 1:1:1:1:1:1:1:1:1:1:… (399999 char"),
    ],
)
def test_a_yaml_integer_out_of_range(tmp_path: Path, value: str, message: str) -> None:
    assert message in problems_of(tmp_path, f"a: {value}\n")


def test_a_yaml_date_that_does_not_exist_is_kept_as_text(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    folder = tmp_path / "blueprints"
    folder.mkdir()
    text = minimal_blueprint_text.replace("  version:", "  description: 2026-13-45\n  version:", 1)
    assert "2026-13-45" in text
    (folder / "x.yaml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(folder)], prog_name="opsgate")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 0, result.output


# --- the simulated cluster file of execute and run ----------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (DEEP, "1:65: nested deeper than 64 levels"),
        ('{"clock": NaN, "services": {}}', "1:11: NaN is not valid JSON"),
        ('{"clock": "soon", "services": {}}', "is not a simulated cluster"),
    ],
)
def test_a_damaged_cluster_file(tmp_path: Path, text: str, message: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "cluster.json").write_text(text, encoding="utf-8")
    line = refused(
        "execute", "--service", "frontend", "--operation", SCALE, "--state-dir", str(state)
    )
    assert message in line
    assert str(state / "cluster.json") in line


@pytest.mark.parametrize("command", [["audit", "verify"], ["audit", "show"]])
def test_a_deep_line_in_the_audit_log_is_one_line(tmp_path: Path, command: list[str]) -> None:
    from engine.state import StateStore

    state = tmp_path / "state"
    StateStore(state / "state.db").close()
    (state / "audit.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    (state / "audit.jsonl").chmod(0o600)
    message = refused(*command, "--state-dir", str(state))
    assert "audit.jsonl" in message


def test_words_given_as_an_operation_are_a_usage_error() -> None:
    message = refused("enforce", "--service", "frontend", "--operation", "scale to 3", code=2)
    assert "neither inline JSON nor an existing file" in message


def test_an_approval_id_prefix_under_six_characters_says_so(tmp_path: Path) -> None:
    from engine.state import StateStore

    StateStore(tmp_path / "state" / "state.db").close()
    message = refused("approvals", "show", "abcd", "--state-dir", str(tmp_path / "state"), code=2)
    assert "is too short: give the whole id or at least its first 6 characters" in message
