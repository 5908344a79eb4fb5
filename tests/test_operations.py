"""The operation catalog is the one declaration of each operation type.

These tests walk it: every type is complete (description, parameters with a
kind and an example, checks, an undo, a backend method for each cluster),
its example fits its type in the real policies, and no other module keeps
its own knowledge of a type.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from engine import operations, verify
from engine.blueprint import load_blueprints
from engine.cluster import ClusterError, Target
from engine.cluster.kubernetes import KubernetesCluster
from engine.cluster.simulated import SimulatedCluster
from engine.packaged import policies_dir
from engine.toolchain import find_tool
from tests.conftest import REPO, RunCli


def _cluster() -> tuple[SimulatedCluster, Target]:
    blueprints = [b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints]
    frontend = next(b for b in blueprints if b["metadata"]["name"] == "frontend")
    target = Target("frontend", frontend["target"]["namespace"], frontend["target"]["deployment"])
    return SimulatedCluster.from_blueprints(blueprints, seed=1), target


BACKENDS: tuple[type, ...] = (SimulatedCluster, KubernetesCluster)
CONCERNS = {p.name for p in (policies_dir() / "opsgate" / "govern").iterdir() if p.is_dir()}


def _rego_kinds() -> set[str]:
    """The parameter kinds govern/parameters knows how to check."""
    text = (policies_dir() / "opsgate" / "govern" / "parameters" / "parameters.rego").read_text()
    return set(re.findall(r'^_valid\("([a-z_]+)"', text, re.MULTILINE))


def catalog_problems(
    catalog: dict[str, operations.OperationType], backends: tuple[type, ...]
) -> list[str]:
    """Every way the catalog is incomplete, one line each, naming the type."""
    kinds = _rego_kinds()
    problems = []
    for entry in catalog.values():
        where = entry.name
        if not entry.description:
            problems.append(f"{where}: no description")
        if entry.floor not in ("allow", "approve", "forbid"):
            problems.append(f"{where}: floor {entry.floor!r}")
        if entry.concern not in CONCERNS:
            problems.append(f"{where}: concern {entry.concern!r} has no govern package")
        if not entry.summary:
            problems.append(f"{where}: no summary (how it reads to people)")
        for parameter in entry.parameters:
            if parameter.kind not in kinds:
                problems.append(f"{where}.{parameter.name}: kind {parameter.kind!r} unchecked")
            if parameter.example is None or not parameter.description:
                problems.append(f"{where}.{parameter.name}: no example or description")
        if entry.undo not in operations.UNDO_MEANINGS:
            problems.append(f"{where}: undo {entry.undo!r}")
        if not entry.executable:
            continue
        if not entry.checks:
            problems.append(f"{where}: no verification checks")
        problems += [
            f"{where}: unknown check {c!r}" for c in entry.checks if c not in verify._CHECKS
        ]
        if entry.undo == "never_executed":
            problems.append(f"{where}: executable, but its undo says never executed")
        for backend in backends:
            if entry.name in operations.missing_backend_methods(backend):
                problems.append(f"{where}: {backend.__name__} has no {entry.apply_method}")
    return problems


def test_every_operation_type_is_complete() -> None:
    assert catalog_problems(operations.catalog(), BACKENDS) == []


def test_a_type_added_only_to_the_catalog_is_reported_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scale = operations.catalog()["scale"]
    added = operations.OperationType(
        **{**scale.__dict__, "name": "resize_volume", "description": "Grow a volume claim."}
    )
    monkeypatch.setitem(operations.catalog(), "resize_volume", added)
    problems = catalog_problems(operations.catalog(), BACKENDS)
    assert problems == [
        "resize_volume: SimulatedCluster has no apply_resize_volume",
        "resize_volume: KubernetesCluster has no apply_resize_volume",
    ]
    # and a backend refuses it by name instead of guessing
    cluster, target = _cluster()
    with pytest.raises(ClusterError, match="does not carry out 'resize_volume'"):
        cluster.apply(target, {"type": "resize_volume", "to": 3})


def test_every_example_fits_its_type_in_the_policies(tmp_path: Path) -> None:
    examples = {name: entry.example() for name, entry in operations.catalog().items()}
    (tmp_path / "input.json").write_text(json.dumps(examples))
    query = (
        "[name | some name, example in input; "
        "not data.opsgate.govern.parameters.fits(example, data.opsgate.catalog.operations)]"
    )
    completed = subprocess.run(
        [str(find_tool("opa")), "eval", "-f", "raw", "-d", str(policies_dir()),
         "-i", str(tmp_path / "input.json"), query],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(completed.stdout) == []


def test_undo_matches_what_the_backend_returns() -> None:
    """A type whose catalog undo is "none" comes back without an inverse; every other one
    comes back with an inverse of its own type."""
    cluster, target = _cluster()
    cluster.apply(target, {"type": "restart_pod", "pod": "x"})  # a revision to roll back to
    for entry in operations.catalog().values():
        if not entry.executable:
            continue
        example = entry.example()
        if "to_revision" in example:
            example["to_revision"] = 1
        applied = cluster.apply(target, example)
        if entry.undo == "none":
            assert applied.inverse is None, entry.name
        else:
            assert applied.inverse is not None, entry.name
            assert applied.inverse["type"] == entry.name


@pytest.mark.parametrize(
    ("operation", "words"),
    [
        ({"type": "scale", "from": 2, "to": 3}, "scale 2 → 3"),
        ({"type": "scale", "to": 3}, "scale to 3"),
        ({"type": "adjust_resources", "resource": "cpu", "to": "90m"}, "cpu request to 90m"),
        (
            {"type": "adjust_resources", "resource": "memory", "field": "limit", "from": "1Gi",
             "to": "2Gi"},
            "memory limit 1Gi → 2Gi",
        ),
        ({"type": "restart_pod", "pod": "web-1"}, "restart pod web-1"),
        ({"type": "rollback"}, "roll back to the previous revision"),
        ({"type": "rollback", "to_revision": 4}, "roll back to revision 4"),
        (
            {"type": "update_configmap", "name": "cfg", "changes": {"A": 1, "B": "x"}},
            "update_configmap cfg (A=1, B=x)",
        ),
        ({"type": "update_strategy", "changes": {"max_surge": 2}}, "update_strategy (max_surge=2)"),
        ({"type": "delete_service", "name": "web"}, "delete_service web"),
        ({"type": "teleport", "name": "web"}, "teleport web"),
        ({"type": "teleport"}, "teleport"),
        ("not an operation", "not an operation"),
    ],
)  # fmt: skip
def test_describe_reads_the_catalog_summary(operation: Any, words: str) -> None:
    assert operations.describe(operation) == words


def test_inverse_and_reached_come_from_the_observed_path() -> None:
    before = {"replicas": {"desired": 2}, "resources": {"cpu": {"request": "100m"}}}
    assert operations.inverse_from({"type": "scale", "to": 3}, before) == {
        "type": "scale",
        "to": 2,
    }
    assert operations.inverse_from({"type": "adjust_resources", "resource": "cpu", "to": "90m"},
                                   before) == {
        "type": "adjust_resources", "resource": "cpu", "field": "request", "to": "100m"
    }  # fmt: skip
    # a limit is not observed: its inverse is known only once applied
    limit = {"type": "adjust_resources", "resource": "cpu", "field": "limit", "to": "1"}
    assert operations.inverse_from(limit, before) is None
    assert operations.reached(limit, before) is True  # can't be told
    assert operations.inverse_from({"type": "restart_pod", "pod": "p"}, before) is None
    assert operations.reached({"type": "scale", "to": 2}, before) is True
    assert operations.reached({"type": "scale", "to": 3}, before) is False
    assert operations.reached({"type": "scale", "to": 3}, {}) is False


def test_same_kind_names_what_a_change_is_about() -> None:
    assert operations.same_kind({"type": "scale", "to": 3}) == operations.same_kind(
        {"type": "scale", "to": 5}
    )
    cpu = operations.same_kind({"type": "adjust_resources", "resource": "cpu", "to": "90m"})
    assert cpu == operations.same_kind(
        {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "1"}
    )
    assert cpu != operations.same_kind(
        {"type": "adjust_resources", "resource": "memory", "to": "1Gi"}
    )


@pytest.mark.parametrize(
    ("guess", "meant"),
    [
        ("update_probe", "update_health_checks"),
        ("update_readiness", "update_health_checks"),
        ("scale_up", "scale"),
        ("restart", "restart_pod"),
        ("revert", "rollback"),
        ("update_config", "update_configmap"),
        ("scael", "scale"),
        ("adjust_resource", "adjust_resources"),
    ],
)
def test_closest_matches_meaning_then_spelling(guess: str, meant: str) -> None:
    assert operations.closest(guess) == meant


def test_a_floor_that_is_not_a_tier_is_never_executable(monkeypatch: pytest.MonkeyPatch) -> None:
    scale = operations.catalog()["scale"]
    misspelled = operations.OperationType(**{**scale.__dict__, "floor": "allowed"})
    assert misspelled.executable is False
    assert operations.OperationType(**{**scale.__dict__, "floor": "approve"}).executable is True


def test_closest_gives_nothing_for_nonsense() -> None:
    assert operations.closest("qqqqqqqq") is None


# Modules that may name an operation type as a literal: the catalog's module, the
# two backends (how to apply), and the demonstration scripts.
_MAY_NAME_TYPES = {
    "engine/operations.py",
    "engine/cluster/kubernetes.py",
    "engine/cluster/simulated.py",
    "engine/demos.py",
    "engine/demo_scene.py",
    # translates kubectl commands into catalog operations; test_kubectl_gate checks that
    # every operation it proposes is one the catalog knows, with the catalog's parameters
    "engine/kubectl_gate.py",
}


def test_no_other_engine_module_names_an_operation_type() -> None:
    names = set(operations.catalog())
    found = []
    for path in sorted((REPO / "engine").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative in _MAY_NAME_TYPES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{relative}:{node.lineno}: {node.value}")
    assert found == []


def test_routing_floor_and_library_rules_name_no_operation_type() -> None:
    names = set(operations.catalog())
    opsgate = policies_dir() / "opsgate"
    files = [
        opsgate / "govern" / "classify" / "classify.rego",
        opsgate / "govern" / "protected" / "protected.rego",
        opsgate / "govern" / "parameters" / "parameters.rego",
        *sorted((opsgate / "lib").rglob("*.rego")),
    ]
    found = [
        f"{path.relative_to(opsgate)}: {name}"
        for path in files
        for name in sorted(names)
        if f'"{name}"' in path.read_text(encoding="utf-8")
    ]
    assert found == []


def test_a_misshapen_operation_is_told_the_expected_shape(run_cli: RunCli) -> None:
    result = run_cli(
        "enforce", "--service", "frontend", "--operation", '{"type": "scale", "replicas": 3}'
    )
    assert result.exit_code == 4
    verdict = json.loads(result.stdout)
    assert verdict["reasons"] == [
        'scale does not fit its type: missing parameter "to"; unexpected parameter "replicas"'
    ]
    assert verdict["suggestion"]["text"] == (
        'give it as {"type": "scale", "to": 3} (every parameter: docs/OPERATIONS.md)'
    )
