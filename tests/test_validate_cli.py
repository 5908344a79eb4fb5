"""``opsgate validate`` on bad input: one exact line per problem, exit 1, no traceback.

Each fixture in ``tests/fixtures/bad`` is a small blueprint broken in one way;
the table holds the exact line a user must see for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, RunCli

BAD = FIXTURES / "bad"

EXPECTED = [
    (
        "alias-explosion.yaml",
        "alias-explosion.yaml:"
        + "1: $: document expands to over 20000 values (alias/anchor explosion?): refused",
    ),
    (
        "approvers-missing.yaml",
        "approvers-missing.yaml:"
        + "23: governance.approval_workflow.approvers: must name at least one approver when agent_authority.requires_approval is not empty (got [])",
    ),
    (
        "bad-name.yaml",
        "bad-name.yaml:"
        + "4: metadata.name: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (got \"Shop_Service\")",
    ),
    (
        "band-zero.yaml",
        "band-zero.yaml:" + "24: governance.resource_band_percent: must be > 0 (got 0)",
    ),
    (
        "cpu-binary-suffix.yaml",
        "cpu-binary-suffix.yaml:"
        + '14: spec.resources.cpu.limit: a CPU quantity takes no binary suffix (use 500m or 0.5) (got "1Gi")',
    ),
    (
        "cpu-not-a-quantity.yaml",
        "cpu-not-a-quantity.yaml:"
        + '13: spec.resources.cpu.request: not a Kubernetes quantity (examples: 100m, 0.5, 128Mi, 1Gi, 2G) (got "100 millicores")',
    ),
    (
        "duplicate-key.yaml",
        "duplicate-key.yaml:"
        + "23: spec.scaling.max_replicas: duplicate key 'max_replicas' (first on line 22)",
    ),
    ("empty.yaml", "empty.yaml:" + "1: $: file is empty: expected a blueprint mapping"),
    (
        "infinite-threshold.yaml",
        "infinite-threshold.yaml:"
        + "23: spec.scaling.scale_up_threshold_percent: '.inf' is not a finite number",
    ),
    (
        "memory-in-millibytes.yaml",
        "memory-in-millibytes.yaml:"
        + '17: spec.resources.memory.request: a memory quantity in millibytes is almost surely a typo (use Mi) (got "128m")',
    ),
    (
        "metric-unknown.yaml",
        "metric-unknown.yaml:" + '23: spec.scaling.metric: must be one of: cpu, memory (got "rps")',
    ),
    (
        "min-above-max.yaml",
        "min-above-max.yaml:" + "21: spec.scaling.min_replicas: must be <= max_replicas 5 (got 6)",
    ),
    (
        "min-replicas-zero.yaml",
        "min-replicas-zero.yaml:" + "21: spec.scaling.min_replicas: must be >= 1 (got 0)",
    ),
    (
        "minimum-above-request.yaml",
        "minimum-above-request.yaml:"
        + '19: spec.resources.memory.minimum: must be <= request 128Mi (got "200Mi")',
    ),
    ("missing-name.yaml", "missing-name.yaml:" + "3: metadata.name: required field is missing"),
    ("non-string-key.yaml", "non-string-key.yaml:" + "7: metadata: key '42' is not a string"),
    ("not-utf8.yaml", "not-utf8.yaml:" + "6: $: not UTF-8 text: byte 0xe9 at offset 93"),
    (
        "only-comments.yaml",
        "only-comments.yaml:" + "1: $: file is empty: expected a blueprint mapping",
    ),
    (
        "operation-in-two-lists.yaml",
        "operation-in-two-lists.yaml:"
        + '26: governance.agent_authority.forbidden[0]: operation is also listed in agent_authority.allowed (got "scale")',
    ),
    (
        "python-tag.yaml",
        "python-tag.yaml:"
        + "6: metadata.owner: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    (
        "replicas-as-text.yaml",
        "replicas-as-text.yaml:"
        + '22: spec.scaling.max_replicas: must be a whole number (got "five")',
    ),
    (
        "request-above-limit.yaml",
        "request-above-limit.yaml:"
        + '13: spec.resources.cpu.request: must be <= limit 500m (got "600m")',
    ),
    (
        "scaling-not-a-mapping.yaml",
        "scaling-not-a-mapping.yaml:" + '20: spec.scaling: must be a mapping (got "fast")',
    ),
    (
        "several-documents.yaml",
        "several-documents.yaml:"
        + "24: $: several YAML documents in one file: put one blueprint per file",
    ),
    (
        "surge-not-a-count.yaml",
        "surge-not-a-count.yaml:"
        + '24: spec.deployment.max_surge: must be a whole number of pods or a percentage such as 25% (got "lots")',
    ),
    (
        "threshold-over-100.yaml",
        "threshold-over-100.yaml:"
        + "23: spec.scaling.scale_up_threshold_percent: must be <= 100 (got 120)",
    ),
    (
        "thresholds-inverted.yaml",
        "thresholds-inverted.yaml:"
        + "24: spec.scaling.scale_down_threshold_percent: must be below scale_up_threshold_percent 50 (got 60)",
    ),
    (
        "top-level-list.yaml",
        "top-level-list.yaml:" + "1: $: top level is a list, expected a mapping",
    ),
    (
        "top-level-scalar.yaml",
        "top-level-scalar.yaml:"
        + "1: $: top level is a scalar ('just a sentence'), expected a mapping",
    ),
    (
        "unknown-field-typo.yaml",
        "unknown-field-typo.yaml:"
        + "23: spec.scaling.cooldown_second: unknown field 'cooldown_second': did you mean 'cooldown_seconds'?",
    ),
    (
        "unknown-operation.yaml",
        "unknown-operation.yaml:"
        + "25: governance.agent_authority.allowed[1]: unknown operation type: did you mean 'restart_pod'? (got \"restart_pods\")",
    ),
    (
        "unknown-top-level-field.yaml",
        "unknown-top-level-field.yaml:"
        + "23: labels: unknown field 'labels' (known: apiVersion, governance, kind, metadata, spec, target)",
    ),
    (
        "version-as-number.yaml",
        "version-as-number.yaml:"
        + "5: metadata.version: must be a string: quote it in YAML (got 1.0)",
    ),
    (
        "version-not-semver.yaml",
        "version-not-semver.yaml:"
        + '5: metadata.version: must be a semantic version MAJOR.MINOR.PATCH such as 1.2.0 (quote it in YAML) (got "1.0")',
    ),
    (
        "wrong-api-version.yaml",
        "wrong-api-version.yaml:" + "1: apiVersion: must be 'opsgate/v1' (got \"opsgate/v2\")",
    ),
    ("wrong-kind.yaml", "wrong-kind.yaml:" + "2: kind: must be 'Blueprint' (got \"Deployment\")"),
    (
        "yaml-bad-indentation.yaml",
        "yaml-bad-indentation.yaml:"
        + "6: $: YAML syntax error: did not find expected key (column 2), while parsing a block mapping that started on line 1",
    ),
    (
        "yaml-unclosed-quote.yaml",
        "yaml-unclosed-quote.yaml:"
        + "23: $: YAML syntax error: found unexpected end of stream (column 1), while scanning a quoted scalar that started on line 5",
    ),
    (
        "tab-indentation.yaml",
        "tab-indentation.yaml:12: $: YAML syntax error: found character that cannot start any token (column 1): YAML does not allow tabs for indentation, use spaces",
    ),
    (
        "replicas-huge.yaml",
        "replicas-huge.yaml:22: spec.scaling.max_replicas: must be <= 10000 (got 100000000000000000000000000)",
    ),
    (
        "name-too-long.yaml",
        "name-too-long.yaml:4: metadata.name: must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters (got \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\")",
    ),
]


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(name for name, _ in EXPECTED)
    assert len(EXPECTED) >= 25


@pytest.mark.parametrize(("name", "expected"), EXPECTED, ids=[n for n, _ in EXPECTED])
def test_bad_fixture_exact_line(
    name: str, expected: str, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    result = run_cli("validate", name)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [expected]
    assert "1 problem" in result.stderr


@pytest.mark.parametrize(("name", "expected"), EXPECTED[:5], ids=[n for n, _ in EXPECTED[:5]])
def test_bad_fixture_json(
    name: str, expected: str, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    result = run_cli("validate", "--json", name)
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert len(problems) == 1
    problem = problems[0]
    assert problem["file"] == name
    assert expected.startswith(f"{name}:{problem['line']}: {problem['path']}: {problem['message']}")
    assert problem["severity"] == "error"


def test_file_over_one_mebibyte_refused(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "huge.yaml"
    big.write_text("# padding\n" * 110_000, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", "huge.yaml")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"huge.yaml: $: file is {big.stat().st_size} bytes, over the 1 MiB limit for a blueprint"
    ]


def test_unreadable_file(tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "bps"
    folder.mkdir()
    os.symlink(tmp_path / "gone.yaml", folder / "dangling.yaml")
    monkeypatch.chdir(tmp_path)
    result = run_cli("validate", "bps")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "bps/dangling.yaml: $: can't read file: No such file or directory"
    ]


def test_missing_path_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_no_paths_is_usage_error(run_cli: RunCli) -> None:
    result = run_cli("validate")
    assert result.exit_code == 2


def test_directory_without_yaml(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "no .yaml or .yml files" in result.stderr


def test_all_fixtures_at_once_report_every_problem(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BAD)
    result = run_cli("validate", ".")
    assert result.exit_code == 1
    lines = set(result.stdout.splitlines())
    assert {line for _, line in EXPECTED} <= lines
    # every fixture is named "shop": all but the first valid one clash
    assert any("blueprint name is already used by" in line for line in lines)
