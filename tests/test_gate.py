"""opsgate gate -- kubectl …: reads pass through unchanged, changes are gated, the rest forbidden.

A stand-in ``kubectl`` on PATH records every command it is asked to run: a
forbidden command must never reach it, and a mutation is carried out by
opsgate through the gate (on the simulated cluster in the state directory),
never by kubectl.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cluster.simulated import SimulatedCluster
from tests.conftest import RunCli

SHOP = ("-n", "shop")


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubectl on PATH that records its arguments, one command per line (JSON)."""
    record = tmp_path / "kubectl-record"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    return record


def _ran(record: Path) -> list[list[str]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def _gate(
    run_cli: RunCli, tmp_path: Path, *kubectl: str, agent: str = "ops-assistant", stdin: str = ""
) -> object:
    from click.testing import CliRunner

    from engine.cli import cli

    return CliRunner().invoke(
        cli,
        ["gate", "--agent", agent, "--state-dir", str(tmp_path / "s"), "--", "kubectl", *kubectl],
        input=stdin,
        prog_name="opsgate",
    )


def _replicas(tmp_path: Path, service: str) -> int:
    path = tmp_path / "s" / "cluster.json"
    return int(SimulatedCluster.load(path).service(service)["replicas"]) if path.exists() else 2


@pytest.mark.parametrize(
    "args",
    [
        ("get", "pods", *SHOP),
        ("describe", "deployment", "frontend", *SHOP),
        ("logs", "frontend-abc", *SHOP),
        ("top", "pods", *SHOP),
        ("version",),
    ],
)
def test_read_only_commands_pass_through_unchanged(
    run_cli: RunCli, tmp_path: Path, stand_in: Path, args: tuple[str, ...]
) -> None:
    result = _gate(run_cli, tmp_path, *args)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert _ran(stand_in) == [list(args)]


@pytest.mark.parametrize(
    "args",
    [
        ("get", "secret", "db", "-o", "yaml", *SHOP),
        ("get", "secrets", *SHOP),
        ("describe", "secret", "db", *SHOP),
        ("--server=https://10.0.0.1", "get", "pods"),
        ("get", "pods", "--server", "https://10.0.0.1"),
        ("--as=system:admin", "get", "pods"),
        ("get", "pods", "--kubeconfig", "/root/.kube/config"),
        ("get", "pods", "--context", "prod"),
        ("get", "pods", "--token", "abc"),
        ("edit", "deployment", "frontend", *SHOP),
        ("exec", "frontend-abc", "--", "sh", *SHOP),
        ("delete", "pvc", "data", *SHOP),
        ("scale", "deployment/frontend", "--replicas=3", "--as=admin", *SHOP),
    ],
)
def test_forbidden_commands_never_reach_kubectl(
    run_cli: RunCli, tmp_path: Path, stand_in: Path, args: tuple[str, ...]
) -> None:
    result = _gate(run_cli, tmp_path, *args)
    assert result.exit_code == 4, result.output  # type: ignore[attr-defined]
    assert _ran(stand_in) == []
    assert _replicas(tmp_path, "frontend") == 2


def test_an_allowed_scale_is_carried_out_by_opsgate_not_kubectl(
    run_cli: RunCli, tmp_path: Path, stand_in: Path
) -> None:
    result = _gate(run_cli, tmp_path, "scale", "deployment/frontend", "--replicas=3", *SHOP)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "succeeded" in result.output  # type: ignore[attr-defined]
    assert _replicas(tmp_path, "frontend") == 3
    assert _ran(stand_in) == []
    audit = [json.loads(line) for line in (tmp_path / "s" / "audit.jsonl").read_text().splitlines()]
    asked = [e for e in audit if e["event"] == "agent_request"]
    assert asked[0]["reason"].startswith("kubectl scale")


def test_beyond_max_files_an_approval_and_exits_3(
    run_cli: RunCli, tmp_path: Path, stand_in: Path
) -> None:
    result = _gate(run_cli, tmp_path, "scale", "deployment/backend", "--replicas=5", *SHOP)
    assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
    assert "opsgate approvals approve" in result.output  # type: ignore[attr-defined]
    assert _replicas(tmp_path, "backend") == 2


def test_an_unknown_agent_is_forbidden_to_change_anything(
    run_cli: RunCli, tmp_path: Path, stand_in: Path
) -> None:
    result = _gate(
        run_cli, tmp_path, "scale", "deployment/frontend", "--replicas=3", *SHOP, agent="stranger"
    )
    assert result.exit_code == 4
    assert "not named in governance.agents" in result.output  # type: ignore[attr-defined]
    assert _replicas(tmp_path, "frontend") == 2


SECRET = """apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
stringData: {password: hunter2}
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata: {name: frontend-config, namespace: shop}
data: {LOG_LEVEL: debug}
"""


def test_a_heredoc_secret_is_forbidden(run_cli: RunCli, tmp_path: Path, stand_in: Path) -> None:
    result = _gate(run_cli, tmp_path, "apply", "-f", "-", stdin=SECRET)
    assert result.exit_code == 4
    assert _ran(stand_in) == []
    assert "hunter2" not in result.output  # type: ignore[attr-defined]
    assert "hunter2" not in (tmp_path / "s" / "audit.jsonl").read_text()


def test_a_multi_document_apply_with_a_forbidden_object_is_forbidden_whole(
    run_cli: RunCli, tmp_path: Path, stand_in: Path
) -> None:
    manifest = tmp_path / "both.yaml"
    manifest.write_text(CONFIGMAP + "---\n" + SECRET)
    result = _gate(run_cli, tmp_path, "apply", "-f", str(manifest))
    assert result.exit_code == 4
    assert _ran(stand_in) == []
    audit = (tmp_path / "s" / "audit.jsonl").read_text()
    assert "execution_started" not in audit
    alone = tmp_path / "one.yaml"
    alone.write_text(CONFIGMAP)
    # the configmap alone needs a person (update_configmap requires approval for ops-assistant)
    assert _gate(run_cli, tmp_path, "apply", "-f", str(alone)).exit_code == 3


def test_the_gate_wants_kubectl_after_the_double_dash(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("gate", "--agent", "ops-assistant", "--", "helm", "install")
    assert result.exit_code == 2
    assert "give the kubectl command after --" in result.stderr


def test_the_shim_on_path_is_skipped_when_looking_for_the_real_kubectl(
    tmp_path: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.cli.agents import real_kubectl

    shim_dir = tmp_path / "shim"
    shim_dir.mkdir()
    shim = shim_dir / "kubectl"
    shim.write_text('#!/bin/sh\nexec opsgate gate --agent a -- kubectl "$@"\n')
    shim.chmod(0o755)
    import os

    monkeypatch.setenv("PATH", f"{shim_dir}:{os.environ['PATH']}")
    assert real_kubectl(None) == str(stand_in.parent / "bin" / "kubectl")


def _probe_patch(container: str) -> str:
    return json.dumps(
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"name": container, "readinessProbe": {"periodSeconds": 5}}]
                    }
                }
            }
        }
    )


def test_a_named_container_must_be_the_deployments_first(
    run_cli: RunCli, tmp_path: Path, stand_in: Path
) -> None:
    patch = ("patch", "deployment", "frontend", "-n", "shop", "-p")
    sidecar = _gate(run_cli, tmp_path, *patch, _probe_patch("sidecar"), agent="kagent")
    assert sidecar.exit_code == 4
    assert "which the gate confirms only by its name" in sidecar.output  # type: ignore[attr-defined]
    first = _gate(run_cli, tmp_path, *patch, _probe_patch("frontend"), agent="kagent")
    assert first.exit_code == 3, first.output  # type: ignore[attr-defined]  # probes: approval
    assert _ran(stand_in) == []


def test_a_pass_through_runs_without_the_agents_kuberc(
    run_cli: RunCli, tmp_path: Path, stand_in: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = stand_in.parent / "bin"
    (bin_dir / "kubectl").write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        f"open({str(stand_in)!r}, 'a').write(json.dumps([os.environ.get('KUBERC')]) + '\\n')\n"
    )
    monkeypatch.setenv("KUBERC", str(tmp_path / "evil-kuberc"))
    assert _gate(run_cli, tmp_path, "get", "pods", *SHOP).exit_code == 0
    assert _ran(stand_in) == [["off"]]


@pytest.mark.parametrize(
    "args",
    [
        ("create", "secret", "generic", "db", "-n", "nowhere", "--from-literal=pw=hunter2"),
        ("create", "secret", "generic", "db", *SHOP, "--from-literal=pw=hunter2", "--dry-run"),
        ("create", "configmap", "frontend-config", *SHOP, "--from-literal=passphrase=hunter2"),
    ],
)
def test_a_refused_or_forbidden_command_keeps_its_secret_out_of_the_audit_log(
    run_cli: RunCli, tmp_path: Path, stand_in: Path, args: tuple[str, ...]
) -> None:
    # attack: get a command with a secret value refused by the parser (unknown namespace,
    # a refused flag) or forbidden by Rego (a credential-looking configmap key): the
    # agent_request event kept the command line as typed
    result = _gate(run_cli, tmp_path, *args)
    assert result.exit_code == 4  # type: ignore[attr-defined]
    assert _ran(stand_in) == []
    audit = (tmp_path / "s" / "audit.jsonl").read_text()
    assert "agent_request" in audit
    assert "hunter2" not in audit
    assert "hunter2" not in result.output  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args",
    [
        ("delete", "pvc", "data", "-n", "shop"),
        ("delete", "secret", "db", "-n", "shop"),
        ("delete", "networkpolicy", "default-deny", "-n", "shop"),
    ],
)
def test_a_change_forbidden_everywhere_gets_the_catalogs_reason_in_a_shared_namespace(
    run_cli: RunCli, tmp_path: Path, stand_in: Path, args: tuple[str, ...]
) -> None:
    """shop holds two services; the gate needn't ask which: the catalog forbids it for both."""
    result = _gate(run_cli, tmp_path, *args)
    assert result.exit_code == 4
    assert "several services live in shop" not in result.output  # type: ignore[attr-defined]
    assert "forbid" in result.output  # type: ignore[attr-defined]
    assert _ran(stand_in) == []
