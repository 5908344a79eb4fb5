"""Validation reports every problem in one pass, and survives any malformed value.

The semantic checks (quantities, ordering, operation types, approvers,
notification targets) run beside the schema, not after it: so they must read
only the values the schema did not refuse, and never crash on a wrong type.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import signing
from engine.blueprint import load_blueprints
from tests.conftest import RunCli

PUBLIC_KEY = signing.public_key_line(signing.demo_key("sre-lead").public_key())

# Every field a blueprint can have, so that every value gets broken below.
FULL: dict[str, Any] = {
    "apiVersion": "opsgate/v1",
    "kind": "Blueprint",
    "metadata": {"name": "shop", "version": "1.0.0", "owner": "team", "description": "d"},
    "target": {"namespace": "shop", "deployment": "shop"},
    "spec": {
        "resources": {
            "cpu": {"request": "100m", "limit": "500m", "minimum": "50m"},
            "memory": {"request": "128Mi", "limit": "256Mi", "minimum": "64Mi"},
        },
        "performance": {
            "latency_p95_ms": 200,
            "availability_percent": 99.9,
            "error_rate_percent": 1,
            "throughput_rps": 100,
        },
        "scaling": {
            "min_replicas": 2,
            "max_replicas": 5,
            "metric": "cpu",
            "scale_up_threshold_percent": 80,
            "scale_down_threshold_percent": 30,
            "cooldown_seconds": 300,
        },
        "reliability": {
            "max_restart_count": 3,
            "rollback_on_failure": True,
            "stabilization_seconds": 60,
        },
        "deployment": {"strategy": "RollingUpdate", "max_surge": 1, "max_unavailable": "25%"},
    },
    "governance": {
        "agent_authority": {
            "allowed": ["scale"],
            "requires_approval": ["rollback"],
            "forbidden": ["delete_pod"],
        },
        "resource_band_percent": 10,
        "approval_workflow": {
            "approvers": ["alice", {"name": "sre-lead", "public_key": PUBLIC_KEY}],
            "timeout_seconds": 3600,
            "notifications": [
                {
                    "type": "webhook",
                    "url": "https://hooks.example/x",
                    "secret_env": "HOOK_SECRET",
                    "timeout_seconds": 5,
                },
                {"type": "command", "argv": ["/bin/true"]},
            ],
        },
        "audit": {"retention_days": 90, "format": "json"},
        "safety": {"circuit_breaker_threshold": 3, "dry_run": False},
    },
}

REMOVED = "(removed)"

# Values of every JSON type, and strings that look like what the checks parse.
NASTY: list[Any] = [None, True, 0, -1, 2.5, "x", "", "1Gi", [], ["x"], [1, {}], {}, {"a": 1}]


def paths(value: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path in a JSON document, containers and leaves."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from paths(sub, (*prefix, index))


def replaced(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    out = copy.deepcopy(document)
    target = out
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return out


def everywhere(value: Any, leaf: Any) -> Any:
    """``value`` with every leaf replaced by ``leaf`` (mappings and lists kept)."""
    if isinstance(value, dict):
        return {key: everywhere(sub, leaf) for key, sub in value.items()}
    if isinstance(value, list):
        return [everywhere(sub, leaf) for sub in value]
    return copy.deepcopy(leaf)


def check(tmp_path: Path, document: Any, name: str = "shop.yaml") -> list[str]:
    """Validate ``document`` (JSON is YAML) and return the problem lines, checking they agree."""
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    result = load_blueprints([tmp_path])
    lines = [p.format() for p in result.problems]
    assert len(lines) == len(set(lines)), "a problem is reported twice"
    # a set with errors yields no blueprint; one without yields it
    assert bool(result.errors) == (not result.blueprints)
    return lines


def test_the_full_blueprint_is_valid(tmp_path: Path) -> None:
    assert check(tmp_path, FULL) == []


def test_schema_semver_quantity_and_operation_in_one_run(
    tmp_path: Path, minimal_blueprint_text: str, run_cli: RunCli
) -> None:
    text = (
        minimal_blueprint_text.replace('"1.0.0"', '"1.0"')
        .replace("request: 100m", "request: 100 millicores")
        .replace("max_replicas: 5", "max_replicas: 5\n    cooldown_second: 60")
        + "governance:\n  agent_authority:\n    allowed: [restart_pods]\n"
    )
    (tmp_path / "shop.yaml").write_text(text, encoding="utf-8")
    result = run_cli("validate", str(tmp_path / "shop.yaml"))
    assert result.exit_code == 1
    where = tmp_path / "shop.yaml"
    assert result.stdout.splitlines() == [
        f"{where}:5: metadata.version: must be a semantic version MAJOR.MINOR.PATCH such as "
        '1.2.0 (quote it in YAML) (got "1.0")',
        f"{where}:13: spec.resources.cpu.request: not a Kubernetes quantity (examples: 100m, "
        '0.5, 128Mi, 1Gi, 2G) (got "100 millicores")',
        f"{where}:23: spec.scaling.cooldown_second: unknown field 'cooldown_second': did you "
        "mean 'cooldown_seconds'?",
        f"{where}:26: governance.agent_authority.allowed[0]: unknown operation type: did you "
        "mean 'restart_pod'? (got \"restart_pods\")",
    ]
    assert "4 problems" in result.stderr


def test_governance_file_schema_and_operation_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "governance.yaml").write_text(
        "apiVersion: opsgate/v1\nkind: Governance\ngovernance:\n"
        "  resource_band_percent: fifteen\n"
        "  agent_authority:\n    forbidden: [rolback]\n",
        encoding="utf-8",
    )
    where = tmp_path / "governance.yaml"
    assert [p.format() for p in load_blueprints([where]).errors] == [
        f'{where}:4: governance.resource_band_percent: must be a number (got "fifteen")',
        f"{where}:6: governance.agent_authority.forbidden[0]: unknown operation type: did you "
        "mean 'rollback'? (got \"rolback\")",
    ]


def test_blueprint_is_checked_under_invalid_shared_defaults(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    (tmp_path / "governance.yaml").write_text(
        "apiVersion: opsgate/v1\nkind: Governance\ngovernance:\n  resource_band_percent: x\n",
        encoding="utf-8",
    )
    (tmp_path / "shop.yaml").write_text(
        minimal_blueprint_text.replace("max_replicas: 5", "max_replicas: 1"), encoding="utf-8"
    )
    assert [p.format() for p in load_blueprints([tmp_path]).errors] == [
        f"{tmp_path / 'governance.yaml'}:4: governance.resource_band_percent: must be a number "
        '(got "x")',
        f"{tmp_path / 'shop.yaml'}: governance: not checked: the shared defaults in "
        f"{tmp_path / 'governance.yaml'} are invalid",
        f"{tmp_path / 'shop.yaml'}:21: spec.scaling.min_replicas: must be <= max_replicas 1 "
        "(got 2)",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # the schema's bound is the problem; "<= max_replicas" would repeat it
        (("spec", "scaling", "min_replicas", 20000), "must be <= 10000 (got 20000)"),
        # a number that is too high is not also compared with the other threshold
        (
            ("spec", "scaling", "scale_down_threshold_percent", 150),
            "must be < 100 (got 150)",
        ),
        # an entry that is no approver is not also read as one
        (
            ("governance", "approval_workflow", "approvers", 1, "public_key", "rsa AAAA"),
            "must be a name, or {name, public_key} with an ssh-ed25519 public key (got a mapping)",
        ),
        # a webhook without a URL is told so once, not also "must name a host"
        (
            ("governance", "approval_workflow", "notifications", 0, "url", REMOVED),
            "required field is missing",
        ),
    ],
)
def test_a_value_the_schema_refused_is_reported_once(
    tmp_path: Path, change: tuple[Any, ...], expected: str
) -> None:
    *path, value = change
    document = replaced(FULL, tuple(path), value)
    if value is REMOVED:
        target = document
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    (line,) = check(tmp_path, document)
    assert line.endswith(expected)


@pytest.mark.parametrize("value", NASTY, ids=repr)
def test_any_value_anywhere_gives_problems_not_a_crash(tmp_path: Path, value: Any) -> None:
    broken = 0
    for path in paths(FULL):
        document = replaced(FULL, path, value)
        folder = tmp_path / "-".join(map(str, path))
        folder.mkdir()
        if check(folder, document):
            broken += 1
    # most paths can't take any one value: the loop did check something
    assert broken > len(list(paths(FULL))) // 2


@pytest.mark.parametrize("leaf", NASTY, ids=repr)
def test_wrong_types_everywhere_at_once(tmp_path: Path, leaf: Any) -> None:
    lines = check(tmp_path, everywhere(FULL, leaf))
    assert len(lines) > 10


@pytest.mark.parametrize("leaf", NASTY, ids=repr)
def test_wrong_types_everywhere_in_shared_defaults(tmp_path: Path, leaf: Any) -> None:
    shared = {"apiVersion": "opsgate/v1", "kind": "Governance", "governance": FULL["governance"]}
    (tmp_path / "governance.yaml").write_text(
        json.dumps(everywhere(shared, leaf)), encoding="utf-8"
    )
    lines = check(tmp_path, everywhere(FULL, leaf))
    assert any(line.startswith(str(tmp_path / "governance.yaml")) for line in lines)
    assert any("not checked: the shared defaults" in line for line in lines)


def test_cli_on_wrong_types_everywhere(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "shop.yaml").write_text(json.dumps(everywhere(FULL, [1, {}])), encoding="utf-8")
    result = run_cli("validate", str(tmp_path))
    assert result.exit_code == 1
    assert len(result.stdout.splitlines()) > 10
