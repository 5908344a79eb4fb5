"""The compiler: deterministic data.json, a real OPA bundle, nothing half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from engine.compile import compile_blueprints
from engine.errors import CompileError
from engine.packaged import policies_dir
from engine.toolchain import find_tool
from tests.conftest import RunCli


def opa_eval(bundle: Path, query: str) -> str:
    completed = subprocess.run(
        [str(find_tool("opa")), "eval", "-f", "raw", "-b", str(bundle), query],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def test_compile_twice_is_byte_identical(tmp_path: Path, run_cli: RunCli) -> None:
    first = run_cli("compile", "blueprints", "-o", str(tmp_path / "a"), "--json")
    second = run_cli("compile", "blueprints", "-o", str(tmp_path / "b"), "--json")
    assert first.exit_code == second.exit_code == 0
    data_a = (tmp_path / "a" / "data.json").read_bytes()
    assert data_a == (tmp_path / "b" / "data.json").read_bytes()
    assert json.loads(first.stdout)["revision"] == json.loads(second.stdout)["revision"]


def test_bundle_answers_opa_eval(tmp_path: Path, repo_blueprints: Path) -> None:
    result = compile_blueprints(repo_blueprints, tmp_path)
    assert result.bundle_path is not None
    max_replicas = "data.opsgate.blueprints.frontend.spec.scaling.max_replicas"
    assert opa_eval(result.bundle_path, max_replicas) == "5"
    assert opa_eval(result.bundle_path, "data.opsgate.bundle.revision") == result.revision
    assert opa_eval(result.bundle_path, "data.opsgate.catalog.operations.delete_pod.floor") == (
        "forbid"
    )


def test_bundle_manifest_has_revision_and_roots(tmp_path: Path, repo_blueprints: Path) -> None:
    result = compile_blueprints(repo_blueprints, tmp_path)
    assert result.bundle_path is not None
    with tarfile.open(result.bundle_path) as archive:
        names = archive.getnames()
        member = archive.extractfile("/.manifest")
        assert member is not None
        manifest = json.load(member)
    assert manifest["revision"] == result.revision
    assert manifest["roots"] == ["opsgate"]
    assert "/data.json" in names
    assert not any(name.endswith("_test.rego") for name in names)


def test_data_document_shape(tmp_path: Path, repo_blueprints: Path) -> None:
    result = compile_blueprints(repo_blueprints, tmp_path, bundle=False)
    assert result.bundle_path is None
    data = json.loads(result.data_path.read_text(encoding="utf-8"))["opsgate"]
    frontend = data["blueprints"]["frontend"]
    assert frontend["spec"]["resources"]["cpu"] == {
        "request": "100m",
        "limit": "500m",
        "minimum": "50m",
        "millicores": {"request": 100, "limit": 500, "minimum": 50},
    }
    assert frontend["spec"]["resources"]["memory"]["bytes"] == {
        "request": 128 * 2**20,
        "limit": 256 * 2**20,
        "minimum": 64 * 2**20,
    }
    assert frontend["source"] == "frontend/blueprint.yaml"
    assert frontend["governance"]["approval_workflow"]["approvers"] == [
        "platform-oncall",
        "sre-lead",
    ]
    assert data["bundle"]["blueprint_versions"]["backend"] == "1.2.0"
    assert data["bundle"]["revision"] == result.revision
    assert list(data["blueprints"]) == sorted(data["blueprints"])


def test_revision_follows_blueprint_version(tmp_path: Path, blueprint_copy: Path) -> None:
    before = compile_blueprints(blueprint_copy, tmp_path / "a", bundle=False).revision
    path = blueprint_copy / "frontend" / "blueprint.yaml"
    path.write_text(path.read_text().replace('"1.0.0"', '"1.0.1"'), encoding="utf-8")
    after = compile_blueprints(blueprint_copy, tmp_path / "b", bundle=False).revision
    assert before != after


def test_revision_follows_policies(tmp_path: Path, repo_blueprints: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(policies_dir(), policies)
    before = compile_blueprints(repo_blueprints, tmp_path / "a", policies, bundle=False).revision
    main = policies / "opsgate" / "main" / "main.rego"
    main.write_text(main.read_text() + "\n# a comment changes the revision too\n")
    after = compile_blueprints(repo_blueprints, tmp_path / "b", policies, bundle=False).revision
    assert before != after


def test_invalid_blueprints_write_nothing(
    blueprint_copy: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    path = blueprint_copy / "backend" / "blueprint.yaml"
    path.write_text(path.read_text().replace("max_replicas: 3", "max_replicas: 1"))
    out = tmp_path / "out"
    result = run_cli("compile", str(blueprint_copy), "-o", str(out))
    assert result.exit_code == 1
    line = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if "min_replicas:" in text
    )
    assert (
        f"{path}:{line}: spec.scaling.min_replicas: must be <= max_replicas 1 (got 2)"
        in result.stderr
    )
    assert "opsgate: error: 1 problem in the blueprints" in result.stderr
    assert not out.exists()


def test_broken_policy_fails_cleanly_and_keeps_old_output(
    tmp_path: Path, repo_blueprints: Path, run_cli: RunCli
) -> None:
    out = tmp_path / "out"
    compile_blueprints(repo_blueprints, out)
    old = (out / "bundle.tar.gz").read_bytes()
    policies = tmp_path / "policies"
    shutil.copytree(policies_dir(), policies)
    (policies / "broken.rego").write_text("package broken\n\nallow if {\n")
    result = run_cli("compile", str(repo_blueprints), "-o", str(out), "--policies", str(policies))
    assert result.exit_code == 1
    assert "opsgate: error: opa build failed:" in result.stderr
    assert (out / "bundle.tar.gz").read_bytes() == old
    assert sorted(p.name for p in out.iterdir()) == ["bundle.tar.gz", "data.json"]


def test_directory_of_only_governance(tmp_path: Path) -> None:
    (tmp_path / "governance.yaml").write_text(
        "apiVersion: opsgate/v1\nkind: Governance\ngovernance: {}\n"
    )
    with pytest.raises(CompileError, match="no blueprints found"):
        compile_blueprints(tmp_path, tmp_path / "out")


def test_policy_dir_without_rego(tmp_path: Path, repo_blueprints: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompileError, match=r"no \.rego files"):
        compile_blueprints(repo_blueprints, tmp_path / "out", tmp_path / "empty")


def test_compile_file_instead_of_dir_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("compile", "blueprints/frontend/blueprint.yaml", "-o", str(tmp_path))
    assert result.exit_code == 2


def test_compile_needs_output(run_cli: RunCli) -> None:
    result = run_cli("compile", "blueprints")
    assert result.exit_code == 2
    assert "Missing option '-o'" in result.stderr


def test_compile_human_summary(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("compile", "blueprints", "-o", str(tmp_path))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "compiled 5 blueprint(s), revision" in result.stderr
