"""``opsgate decide`` and ``opsgate enforce`` through the real OPA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCli

OBSERVATIONS = REPO / "blueprints" / "examples" / "observations"


def test_decide_prints_the_document(run_cli: RunCli) -> None:
    result = run_cli("decide", "--observation", str(OBSERVATIONS / "frontend-busy.json"))
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["service"] == "frontend"
    tiers = [(d["operation"]["type"], d["tier"]) for d in document["decisions"]]
    assert tiers == [
        ("restart_pod", "allow"),
        ("scale", "allow"),
        # memory from the recorded usage (state.history): p95 100Mi + 15% → 116Mi, in the band
        ("adjust_resources", "allow"),
    ]
    assert "cpu 85% > scale_up_threshold_percent 80%" in result.stderr


@pytest.mark.parametrize(
    ("operation", "code", "tier"),
    [
        ('{"type": "scale", "to": 3}', 0, "allow"),
        ('{"type": "scale", "to": 9}', 3, "approve"),
        ('{"type": "delete_deployment", "name": "frontend"}', 4, "forbid"),
        ('{"type": "reboot", "name": "x"}', 4, "forbid"),
    ],
)
def test_enforce_exit_code_is_the_tier(
    run_cli: RunCli, operation: str, code: int, tier: str
) -> None:
    result = run_cli("enforce", "--service", "frontend", "--operation", operation)
    assert result.exit_code == code
    assert json.loads(result.stdout)["tier"] == tier


def test_enforce_defer_during_cooldown(run_cli: RunCli, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(
        json.dumps({"last_operation_at": "2026-02-10T11:59:00Z", "breaker_open": False})
    )
    result = run_cli(
        "enforce",
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
        "--state",
        str(state),
        "--now",
        "2026-02-10T12:00:00Z",
    )
    assert result.exit_code == 5
    assert json.loads(result.stdout)["tier"] == "defer"


def test_enforce_operation_from_file(run_cli: RunCli, tmp_path: Path) -> None:
    operation = tmp_path / "op.json"
    operation.write_text('{"type": "restart_pod", "pod": "frontend-1"}')
    result = run_cli(
        "enforce", "--service", "frontend", "--operation", str(operation), "--replicas", "2"
    )
    assert result.exit_code == 0


def test_enforce_unknown_service_is_forbid(run_cli: RunCli) -> None:
    result = run_cli(
        "enforce", "--service", "payments", "--operation", '{"type": "scale", "to": 3}'
    )
    assert result.exit_code == 4
    assert json.loads(result.stdout)["reasons"] == [
        'unknown service "payments": no blueprint has that name'
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--operation", '{"type": "scale",'], "operation (inline):1:18: not valid JSON"),
        (["--operation", "missing.json"], "missing.json: no such file (operation)"),
        (
            ["--operation", '{"type": "scale", "to": 3}', "--state", "nope.json"],
            "nope.json: no such file (state)",
        ),
    ],
)
def test_enforce_bad_input_is_one_line_and_exit_1(
    run_cli: RunCli, args: list[str], message: str
) -> None:
    result = run_cli("enforce", "--service", "frontend", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip().startswith("opsgate: error: ")
    assert message in result.stderr


def test_decide_bad_observation_json(run_cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "obs.json"
    bad.write_text("{'service': 'frontend'}")
    result = run_cli("decide", "--observation", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:1:2: not valid JSON" in result.stderr


def test_enforce_invalid_blueprints_refuse(run_cli: RunCli, blueprint_copy: Path) -> None:
    path = blueprint_copy / "frontend" / "blueprint.yaml"
    path.write_text(path.read_text().replace("max_replicas: 5", "max_replicas: 1"))
    result = run_cli(
        "enforce",
        "--blueprints",
        str(blueprint_copy),
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
    )
    assert result.exit_code == 1
    assert "1 problem in the blueprints" in result.stderr


def test_token_file_needs_url(run_cli: RunCli, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("x")
    result = run_cli(
        "enforce", "--service", "frontend", "--operation", "{}", "--opa-token-file", str(token)
    )
    assert result.exit_code == 2
    assert "--opa-token-file, --opa-ca and --opa-insecure need --opa-url" in result.stderr


def test_remote_opa_down_is_exit_1(run_cli: RunCli) -> None:
    result = run_cli(
        "enforce",
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
        "--opa-url",
        "http://127.0.0.1:9",
        "--opa-insecure",
        "--opa-timeout",
        "0.5",
        env={"OPSGATE_OPA_TOKEN": "t"},
    )
    assert result.exit_code == 1
    assert "unreachable" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--opa-url", "http://127.0.0.1:9"], "not reached over TLS"),
        (["--opa-url", "https://127.0.0.1:9"], "needs a bearer token"),
        (["--opa-url", "http://127.0.0.1:9", "--opa-insecure"], "needs a bearer token"),
    ],
)
def test_remote_opa_without_tls_or_token_is_refused(
    run_cli: RunCli, extra: list[str], message: str
) -> None:
    result = run_cli(
        "enforce", "--service", "frontend", "--operation", '{"type": "scale", "to": 3}', *extra
    )
    assert result.exit_code == 2
    assert message in result.stderr


def test_enforce_records_who_asks(run_cli: RunCli) -> None:
    scale = ("enforce", "--service", "frontend", "--operation", '{"type": "scale", "to": 3}')
    assert run_cli(*scale, "--agent", "kagent").exit_code == 0
    for bad in (("--as", "x\x1b[2Ky"), ("--as", "opsgate"), ("--as", "a", "--agent", "b")):
        result = run_cli(*scale, *bad)
        assert result.exit_code == 2, bad
        assert "\x1b" not in result.stderr


def test_a_name_with_a_trailing_newline_is_refused(run_cli: RunCli) -> None:
    """Red team: "sre-lead\\n" passed a `$`-anchored check and let sre-lead approve their own
    request, logged as requested by sre-lead and approved by sre-lead."""
    scale = ("enforce", "--service", "frontend", "--operation", '{"type": "scale", "to": 3}')
    for option in ("--as", "--agent"):
        result = run_cli(*scale, option, "sre-lead\n")
        assert result.exit_code == 2, option


@pytest.mark.parametrize(
    ("to", "code", "reason"),
    [
        ("4.0", 0, "4 replicas is within min_replicas 2 and max_replicas 5"),
        ("6.0", 3, "needs 6 replicas, above max_replicas 5"),
        ("1e0", 3, "needs 1 replicas, below min_replicas 2"),
    ],
)
def test_enforce_whole_number_written_as_float_reads_whole(
    run_cli: RunCli, to: str, code: int, reason: str
) -> None:
    operation = f'{{"type": "scale", "to": {to}}}'
    result = run_cli(
        "enforce", "--service", "frontend", "--replicas", "2", "--operation", operation
    )
    assert result.exit_code == code
    assert "%!" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["reasons"][0] == reason
