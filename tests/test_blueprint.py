"""Blueprint loading: defaults, shared governance, cross-file checks, warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.blueprint import builtin_governance, load_blueprints, merge
from engine.errors import BlueprintError
from tests.conftest import RunCli

GOVERNANCE = """\
apiVersion: opsgate/v1
kind: Governance
governance:
  resource_band_percent: 15
  approval_workflow:
    approvers: [alice]
  agent_authority:
    requires_approval: [rollback]
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_repo_blueprints_are_valid(repo_blueprints: Path) -> None:
    result = load_blueprints([repo_blueprints])
    assert result.errors == []
    assert {b.name for b in result.blueprints} == {
        "frontend",
        "backend",
        "report-worker",
        "ledger",
        "hello",
    }


def test_repo_examples_say_what_the_issue_asks(repo_blueprints: Path) -> None:
    by_name = {b.name: b.effective for b in load_blueprints([repo_blueprints]).blueprints}
    frontend = by_name["frontend"]["spec"]
    assert frontend["scaling"]["scale_up_threshold_percent"] == 80
    assert (frontend["scaling"]["min_replicas"], frontend["scaling"]["max_replicas"]) == (2, 5)
    assert frontend["performance"]["latency_p95_ms"] == 200
    assert by_name["backend"]["spec"]["scaling"]["max_replicas"] == 3


def test_every_field_of_the_examples_is_commented(repo_blueprints: Path) -> None:
    for path in repo_blueprints.rglob("*.yaml"):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = text.strip()
            if not stripped or stripped.startswith(("#", "- ")):
                continue
            key, _, value = stripped.partition(":")
            if value.strip() and "#" not in value:
                pytest.fail(f"{path}:{number}: field {key!r} has no comment")


def test_defaults_are_filled(tmp_path: Path, minimal_blueprint_text: str) -> None:
    write(tmp_path, "shop.yaml", minimal_blueprint_text)
    (blueprint,) = load_blueprints([tmp_path]).blueprints
    spec = blueprint.effective["spec"]
    assert spec["scaling"]["metric"] == "cpu"
    assert spec["scaling"]["scale_up_threshold_percent"] == 80
    assert spec["scaling"]["scale_down_threshold_percent"] == 30
    assert spec["scaling"]["cooldown_seconds"] == 300
    assert spec["reliability"] == {
        "max_restart_count": 3,
        "rollback_on_failure": True,
        "stabilization_seconds": 60,
    }
    assert spec["performance"] == {
        "latency_p95_ms": None,
        "availability_percent": None,
        "error_rate_percent": None,
        "throughput_rps": None,
    }
    assert spec["deployment"] == {
        "strategy": "RollingUpdate",
        "max_surge": "25%",
        "max_unavailable": "25%",
    }
    assert blueprint.effective["governance"] == builtin_governance()


def test_builtin_governance_defaults() -> None:
    assert builtin_governance() == {
        "agent_authority": {"allowed": [], "requires_approval": [], "forbidden": []},
        "agents": {},
        "resource_band_percent": 10,
        "approval_workflow": {"approvers": [], "timeout_seconds": 3600},
        "audit": {"retention_days": 90, "format": "json"},
        "safety": {"circuit_breaker_threshold": 3, "dry_run": False},
    }


def test_agent_entries_merge_by_name_field_by_field(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    write(
        tmp_path,
        "governance.yaml",
        "apiVersion: opsgate/v1\nkind: Governance\ngovernance:\n  agents:\n"
        "    bot:\n      allowed: [scale]\n      namespaces: [shop]\n"
        "    other:\n      read_only: true\n",
    )
    write(
        tmp_path / "shop",
        "blueprint.yaml",
        minimal_blueprint_text + "governance:\n  agents:\n    bot:\n      namespaces: [sandbox]\n",
    )
    result = load_blueprints([tmp_path])
    assert result.errors == []
    agents = result.blueprints[0].effective["governance"]["agents"]
    assert agents["bot"]["allowed"] == ["scale"]
    assert agents["bot"]["namespaces"] == ["sandbox"]  # lists replace lists
    assert agents["other"]["read_only"] is True


def test_shared_governance_then_blueprint_override(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    write(tmp_path, "governance.yaml", GOVERNANCE)
    write(
        tmp_path / "shop",
        "blueprint.yaml",
        minimal_blueprint_text + "governance:\n  approval_workflow:\n    timeout_seconds: 60\n",
    )
    result = load_blueprints([tmp_path])
    assert result.errors == []
    governance = result.blueprints[0].effective["governance"]
    assert governance["resource_band_percent"] == 15
    assert governance["approval_workflow"] == {"approvers": ["alice"], "timeout_seconds": 60}
    assert governance["agent_authority"]["requires_approval"] == ["rollback"]
    assert governance["audit"]["retention_days"] == 90


def test_file_argument_finds_governance_in_parent(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    write(tmp_path, "governance.yaml", GOVERNANCE)
    path = write(tmp_path / "shop", "blueprint.yaml", minimal_blueprint_text)
    (blueprint,) = load_blueprints([path]).blueprints
    assert blueprint.effective["governance"]["resource_band_percent"] == 15


def test_approvers_error_points_at_governance_file(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    shared = GOVERNANCE.replace("  approval_workflow:\n    approvers: [alice]\n", "")
    write(tmp_path, "governance.yaml", shared)
    write(tmp_path, "shop.yaml", minimal_blueprint_text)
    messages = [p.format() for p in load_blueprints([tmp_path]).errors]
    assert messages == [
        f"{tmp_path / 'governance.yaml'}:3: governance.approval_workflow.approvers: must name at "
        "least one approver when agent_authority.requires_approval is not empty (got [])"
    ]


def test_list_in_blueprint_replaces_shared_list(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    write(tmp_path, "governance.yaml", GOVERNANCE)
    write(
        tmp_path,
        "shop.yaml",
        minimal_blueprint_text + "governance:\n  agent_authority:\n    requires_approval: []\n",
    )
    (blueprint,) = load_blueprints([tmp_path]).blueprints
    assert blueprint.effective["governance"]["agent_authority"]["requires_approval"] == []


def test_invalid_governance_file_is_reported_once(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    write(tmp_path, "governance.yaml", GOVERNANCE.replace("15", "fifteen"))
    write(tmp_path, "a.yaml", minimal_blueprint_text)
    write(tmp_path, "b.yaml", minimal_blueprint_text.replace("shop", "cart"))
    lines = [p.format() for p in load_blueprints([tmp_path]).errors]
    assert lines[
        0
    ] == f"{tmp_path / 'a.yaml'}: governance: not checked: the shared defaults in " + (
        f"{tmp_path / 'governance.yaml'} are invalid"
    )
    assert (
        f"{tmp_path / 'governance.yaml'}:4: governance.resource_band_percent: must be a number "
        '(got "fifteen")'
    ) in lines
    assert len(lines) == 3


def test_governance_unknown_operation(tmp_path: Path) -> None:
    write(tmp_path, "governance.yaml", GOVERNANCE.replace("[rollback]", "[rolback]"))
    lines = [p.format() for p in load_blueprints([tmp_path / "governance.yaml"]).errors]
    assert lines == [
        f"{tmp_path / 'governance.yaml'}:8: governance.agent_authority.requires_approval[0]: "
        "unknown operation type: did you mean 'rollback'? (got \"rolback\")"
    ]


def test_governance_kind_in_wrong_file(tmp_path: Path) -> None:
    write(tmp_path, "defaults.yaml", GOVERNANCE)
    lines = [p.format() for p in load_blueprints([tmp_path]).errors]
    assert lines == [
        f"{tmp_path / 'defaults.yaml'}:2: kind: governance defaults must be in a file named "
        'governance.yaml (got "Governance")'
    ]


def test_duplicate_names_across_files(tmp_path: Path, minimal_blueprint_text: str) -> None:
    write(tmp_path, "a.yaml", minimal_blueprint_text)
    write(tmp_path, "b.yaml", minimal_blueprint_text.replace("deployment: shop", "deployment: x"))
    result = load_blueprints([tmp_path])
    assert [p.format() for p in result.errors] == [
        f"{tmp_path / 'b.yaml'}:4: metadata.name: blueprint name is already used by "
        f'{tmp_path / "a.yaml"} (got "shop")'
    ]
    assert [b.file for b in result.blueprints] == [str(tmp_path / "a.yaml")]


def test_one_blueprint_per_deployment(tmp_path: Path, minimal_blueprint_text: str) -> None:
    write(tmp_path, "a.yaml", minimal_blueprint_text)
    write(tmp_path, "b.yaml", minimal_blueprint_text.replace("name: shop", "name: other"))
    assert [p.format() for p in load_blueprints([tmp_path]).errors] == [
        f"{tmp_path / 'b.yaml'}:7: target: shop/shop is already governed by "
        f'{tmp_path / "a.yaml"} (got "shop/shop")'
    ]


def test_allowing_a_forbidden_operation_is_a_warning(
    tmp_path: Path, minimal_blueprint_text: str, run_cli: RunCli
) -> None:
    path = write(
        tmp_path,
        "shop.yaml",
        minimal_blueprint_text + "governance:\n  agent_authority:\n    allowed: [delete_pod]\n",
    )
    result = load_blueprints([path])
    assert result.errors == []
    assert [p.format() for p in result.warnings] == [
        f"{path}:25: governance.agent_authority.allowed[0]: listed as allowed but the built-in "
        'tiers forbid it: forbid still wins (got "delete_pod") [warning]'
    ]
    cli_result = run_cli("validate", str(path))
    assert cli_result.exit_code == 0
    assert "[warning]" in cli_result.stdout
    assert "1 warning" in cli_result.stderr


def test_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(BlueprintError, match="no such file or directory"):
        load_blueprints([tmp_path / "missing"])


def test_same_file_twice_is_read_once(tmp_path: Path, minimal_blueprint_text: str) -> None:
    path = write(tmp_path, "shop.yaml", minimal_blueprint_text)
    result = load_blueprints([path, tmp_path])
    assert result.errors == []
    assert len(result.blueprints) == 1


def test_hidden_directories_are_skipped(tmp_path: Path, minimal_blueprint_text: str) -> None:
    write(tmp_path, "shop.yaml", minimal_blueprint_text)
    write(tmp_path / ".git", "x.yaml", "not: [valid")
    assert load_blueprints([tmp_path]).errors == []


def test_merge_replaces_lists_and_scalars() -> None:
    assert merge({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "e": 2}) == {
        "a": {"b": 1, "c": [2]},
        "d": 1,
        "e": 2,
    }


def test_anchors_within_limits_are_accepted(tmp_path: Path, minimal_blueprint_text: str) -> None:
    text = minimal_blueprint_text.replace(
        "    cpu:\n      request: 100m\n      limit: 500m\n      minimum: 50m\n",
        "    cpu: &cpu\n      request: 100m\n      limit: 500m\n      minimum: 50m\n",
    )
    write(tmp_path, "shop.yaml", text)
    assert load_blueprints([tmp_path]).errors == []


def _properties(schema: object, path: str = "") -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(schema, dict):
        for name, sub in schema.get("properties", {}).items():
            found.append((f"{path}.{name}", sub))
            found.extend(_properties(sub, f"{path}.{name}"))
        for name, sub in schema.get("$defs", {}).items():
            found.extend(_properties(sub, f"$defs.{name}"))
    return found


@pytest.mark.parametrize("name", ["blueprint.schema.json", "governance.schema.json"])
def test_every_schema_field_has_a_description(name: str) -> None:
    from engine.packaged import load_schema

    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    fields = _properties(schema)
    assert fields
    missing = [path for path, sub in fields if not sub.get("description")]
    assert missing == []


def test_whole_numbers_written_as_floats_become_integers(
    tmp_path: Path, minimal_blueprint_text: str
) -> None:
    text = minimal_blueprint_text.replace("min_replicas: 2", "min_replicas: 2.0")
    text += "    cooldown_seconds: 300.0\n    scale_up_threshold_percent: 80.0\n"
    text += "  deployment:\n    max_surge: 1.0\n"
    write(tmp_path, "shop.yaml", text)
    result = load_blueprints([tmp_path])
    assert result.problems == []
    spec = result.blueprints[0].effective["spec"]
    written = (
        spec["scaling"]["min_replicas"],
        spec["scaling"]["cooldown_seconds"],
        spec["deployment"]["max_surge"],
    )
    # integer fields hold ints (what the policies print and the cluster takes) ...
    assert [(v, type(v)) for v in written] == [(2, int), (300, int), (1, int)]
    # ... and a number field keeps what was written
    assert type(spec["scaling"]["scale_up_threshold_percent"]) is float
