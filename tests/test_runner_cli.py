"""The runner's commands: run, approvals, breaker, audit, execute, verify."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.cluster import Target
from engine.cluster.simulated import SimulatedCluster
from engine.cluster.trace import LoadTrace
from engine.errors import OpsgateError
from tests.conftest import REPO, RunCli, file_request

TRACE = REPO / "blueprints" / "examples" / "traces" / "demo-ramp.csv"


def _state(tmp_path: Path) -> str:
    return str(tmp_path / "state")


def _run(run_cli: RunCli, tmp_path: Path, *extra: str) -> str:
    result = run_cli("run", "--state-dir", _state(tmp_path), "--pause", "0", *extra)
    assert result.exit_code == 0, result.stderr
    return result.stderr


def test_run_once_on_a_fresh_checkout(run_cli: RunCli, tmp_path: Path) -> None:
    out = _run(run_cli, tmp_path, "--once")
    assert "nothing to do" in out
    state = tmp_path / "state"
    assert {p.name for p in state.iterdir()} >= {
        "audit-key",
        "audit.jsonl",
        "cluster.json",
        "state.db",
    }


def test_run_with_trace_then_approve_from_another_shell(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    keyed = ("--blueprints", str(signed_blueprints))
    _run(run_cli, tmp_path, *keyed, "--load", str(TRACE), "--ticks", "4")
    listed = run_cli("approvals", "list", "--state-dir", _state(tmp_path), "--json")
    assert listed.exit_code == 0
    requests = json.loads(listed.stdout)
    scale = next(
        r for r in requests if r["service"] == "backend" and r["operation"]["type"] == "scale"
    )
    shown = run_cli("approvals", "show", scale["id"][:8], "--state-dir", _state(tmp_path), "--json")
    assert json.loads(shown.stdout)["reasons"][0].startswith("cpu ")
    answer = ("--reason", "x", "--state-dir", _state(tmp_path))
    refused = run_cli("approvals", "approve", scale["id"], "--by", "mallory", *answer)
    assert refused.exit_code == 1
    assert "mallory may not answer" in refused.stderr
    typed = run_cli("approvals", "approve", scale["id"], "--by", "sre-lead", *answer)
    assert typed.exit_code == 1
    assert "sre-lead has a public key" in typed.stderr
    granted = run_cli(
        "approvals",
        "approve",
        scale["id"],
        "--key",
        str(sre_lead_key),
        "--reason",
        "launch",
        "--state-dir",
        _state(tmp_path),
    )
    assert granted.exit_code == 0, granted.stderr
    assert "approved by sre-lead (signed)" in granted.stderr
    again = run_cli(
        "approvals",
        "reject",
        scale["id"],
        "--key",
        str(sre_lead_key),
        "--state-dir",
        _state(tmp_path),
    )
    assert again.exit_code == 1
    assert "already granted" in again.stderr
    _run(run_cli, tmp_path, *keyed, "--load", str(TRACE), "--ticks", "1")
    cluster = SimulatedCluster.load(tmp_path / "state" / "cluster.json")
    assert cluster.service("backend")["replicas"] == 4
    verified = run_cli("audit", "verify", "--state-dir", _state(tmp_path))
    assert verified.exit_code == 0
    assert "chain intact" in verified.stderr
    shown = run_cli(
        "audit", "show", "--state-dir", _state(tmp_path), "--service", "backend", "--json"
    )
    kinds = [e["event"] for e in json.loads(shown.stdout)]
    assert "approval_granted" in kinds and "execution_succeeded" in kinds


def _execute(run_cli: RunCli, tmp_path: Path, blueprints: Path, *args: str, env: Any = None) -> Any:
    return run_cli(
        "execute", "--blueprints", str(blueprints), "--state-dir", _state(tmp_path), *args, env=env
    )


def test_attack_an_approval_spent_on_another_operation(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    """Round one: an approval for a CPU change executed a scale to 50. Now refused."""
    cpu = '{"type": "adjust_resources", "resource": "cpu", "to": "150m"}'
    filed = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "frontend",
        "--operation",
        cpu,
        "--as",
        "alice",
    )
    assert filed.exit_code == 3, filed.stderr
    request_id = json.loads(filed.stdout)["approval_id"]
    assert request_id and "approvals approve" in filed.stderr
    granted = run_cli(
        "approvals",
        "approve",
        request_id,
        "--key",
        str(sre_lead_key),
        "--reason",
        "cpu bump",
        "--state-dir",
        _state(tmp_path),
    )
    assert granted.exit_code == 0, granted.stderr
    for service, operation in (
        ("frontend", '{"type": "scale", "to": 50}'),
        ("frontend", '{"type": "adjust_resources", "resource": "cpu", "to": "151m"}'),
        (
            "backend",
            '{"type": "update_health_checks", "probe": "readiness", '
            '"changes": {"failureThreshold": 100}}',
        ),
        ("backend", cpu),
    ):
        spent = _execute(
            run_cli,
            tmp_path,
            signed_blueprints,
            "--service",
            service,
            "--operation",
            operation,
            "--as",
            "alice",
            "--approval",
            request_id,
        )
        assert spent.exit_code in (3, 4), (operation, spent.stdout)
        assert json.loads(spent.stdout)["outcome"] in ("awaiting_approval", "blocked")
    other_requester = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "frontend",
        "--operation",
        cpu,
        "--as",
        "bob",
        "--approval",
        request_id,
    )
    assert other_requester.exit_code == 3
    assert (
        "requested by person alice, not person bob" in json.loads(other_requester.stdout)["detail"]
    )
    cluster = SimulatedCluster.load(tmp_path / "state" / "cluster.json")
    assert cluster.service("frontend")["replicas"] == 2
    assert cluster.service("backend")["replicas"] == 2
    # the exact operation runs, once
    done = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "frontend",
        "--operation",
        cpu,
        "--as",
        "alice",
        "--approval",
        request_id,
    )
    assert done.exit_code == 0, done.stdout
    assert json.loads(done.stdout)["outcome"] in ("succeeded", "partial")
    replay = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "frontend",
        "--operation",
        cpu,
        "--as",
        "alice",
        "--approval",
        request_id,
    )
    assert replay.exit_code in (3, 5)
    assert json.loads(replay.stdout)["outcome"] != "succeeded"


def test_attack_self_approval(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    """Whoever proposed an operation can't approve it, key or not."""
    request_id = file_request(run_cli, signed_blueprints, _state(tmp_path), "--as", "sre-lead")
    own = run_cli(
        "approvals",
        "approve",
        request_id,
        "--key",
        str(sre_lead_key),
        "--reason",
        "mine",
        "--state-dir",
        _state(tmp_path),
    )
    assert own.exit_code == 1
    assert "sre-lead requested" in own.stderr and "someone else must answer" in own.stderr


def test_audit_verify_finds_tampering(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--load", str(TRACE), "--ticks", "2")
    log = tmp_path / "state" / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:1] + lines[2:]))
    result = run_cli("audit", "verify", "--state-dir", _state(tmp_path))
    assert result.exit_code == 1
    assert "audit.jsonl:2: does not follow the line before it" in result.stderr


def test_audit_prune_keeps_recent_events(run_cli: RunCli, tmp_path: Path) -> None:
    _run(run_cli, tmp_path, "--once")
    result = run_cli("audit", "prune", "--state-dir", _state(tmp_path))
    assert result.exit_code == 0
    assert "pruned 0 events older than 400 days" in result.stderr  # ledger keeps 400 days


def test_execute_exit_codes(run_cli: RunCli, tmp_path: Path) -> None:
    base = ["execute", "--state-dir", _state(tmp_path), "--service", "frontend", "--operation"]
    blocked = run_cli(*base, '{"type": "delete_pod", "name": "frontend-r1-1"}')
    assert blocked.exit_code == 4
    assert json.loads(blocked.stdout)["suggestion"]["operation"]["type"] == "restart_pod"
    needs = run_cli(*base, '{"type": "scale", "to": 7}')
    assert needs.exit_code == 3
    done = run_cli(*base, '{"type": "scale", "to": 3}')
    assert done.exit_code == 0
    assert json.loads(done.stdout)["outcome"] == "succeeded"
    deferred = run_cli(*base, '{"type": "scale", "to": 4}')
    assert deferred.exit_code == 5
    unknown = run_cli(
        "execute", "--state-dir", _state(tmp_path), "--service", "nope", "--operation", "{}"
    )
    assert unknown.exit_code == 2


def test_attack_an_agent_changes_another_services_configmap(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """Review of issue 9: update_configmap took any name in the namespace. An agent acting
    for the frontend can't rewrite the backend's ConfigMap (same namespace, shop)."""
    base = ["execute", "--state-dir", _state(tmp_path), "--agent", "kagent"]
    foreign = run_cli(
        *base,
        "--service",
        "frontend",
        "--operation",
        '{"type": "update_configmap", "name": "backend-config", "changes": {"DB_HOST": "evil"}}',
    )
    assert foreign.exit_code == 4
    verdict = json.loads(foreign.stdout)
    assert verdict["outcome"] == "blocked"
    assert "not one of the ConfigMaps frontend owns" in verdict["reasons"][0]
    owned = run_cli(
        *base,
        "--service",
        "frontend",
        "--operation",
        '{"type": "update_configmap", "name": "frontend-config", '
        '"changes": {"LOG_LEVEL": "debug"}}',
    )
    assert owned.exit_code == 0
    cluster = json.loads((tmp_path / "state" / "cluster.json").read_text())
    backend = cluster["services"]["backend"]["configmaps"].get("backend-config", {})
    assert "DB_HOST" not in backend or backend["DB_HOST"] != "evil"
    frontend = cluster["services"]["frontend"]["configmaps"]["frontend-config"]
    assert frontend["LOG_LEVEL"] == "debug"


def test_breaker_list_and_reset(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    _run(run_cli, tmp_path, "--once")
    signed = (
        "--key",
        str(sre_lead_key),
        "--reason",
        "fixed",
        "--blueprints",
        str(signed_blueprints),
        "--state-dir",
        _state(tmp_path),
    )
    not_open = run_cli("breaker", "reset", "frontend", *signed)
    assert not_open.exit_code == 1
    assert "not open" in not_open.stderr
    from engine.state import StateStore

    store = StateStore(tmp_path / "state" / "state.db")
    store.open_breaker("frontend", "t", "rollback failed")
    store.close()
    listed = run_cli("breaker", "list", "--state-dir", _state(tmp_path), "--json")
    assert json.loads(listed.stdout)[0]["breaker_open"] == 1
    # round one: `--by nobody-in-particular` closed a breaker; a name is no longer enough
    by_name = run_cli(
        "breaker",
        "reset",
        "frontend",
        "--by",
        "nobody-in-particular",
        "--reason",
        "x",
        "--state-dir",
        _state(tmp_path),
    )
    assert by_name.exit_code == 2
    assert "must be signed" in by_name.stderr
    assert (
        json.loads(run_cli("breaker", "list", "--state-dir", _state(tmp_path), "--json").stdout)[0][
            "breaker_open"
        ]
        == 1
    )
    reset = run_cli("breaker", "reset", "frontend", *signed)
    assert reset.exit_code == 0, reset.stderr
    events = run_cli("audit", "show", "--state-dir", _state(tmp_path), "--json")
    reset_event = next(e for e in json.loads(events.stdout) if e["event"] == "breaker_reset")
    assert reset_event["actor"] == "sre-lead"
    assert reset_event["signed_answer"].count(".") == 2
    # the runner checks the reset against its own blueprints: an approver's signature holds
    out = _run(run_cli, tmp_path, "--blueprints", str(signed_blueprints), "--once")
    assert "breaker open again" not in out
    listed = run_cli("breaker", "list", "--state-dir", _state(tmp_path), "--json")
    assert not next(r for r in json.loads(listed.stdout) if r["service"] == "frontend")[
        "breaker_open"
    ]


def test_verify_command(run_cli: RunCli, tmp_path: Path) -> None:
    before = {"replicas": {"desired": 2, "ready": 2}, "metrics": {"cpu_percent": 85}, "pods": []}
    after = {
        "replicas": {"desired": 3, "ready": 3},
        "metrics": {"cpu_percent": 57, "latency_p95_ms": 120},
        "pods": [
            {"name": f"p{i}", "phase": "Running", "ready": True, "restart_count": 0}
            for i in range(3)
        ],
    }
    for name, value in (("before", before), ("after", after)):
        (tmp_path / f"{name}.json").write_text(json.dumps(value))
    args = [
        "verify",
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 3}',
        "--before",
        str(tmp_path / "before.json"),
        "--after",
        str(tmp_path / "after.json"),
    ]
    passed = run_cli(*args)
    assert passed.exit_code == 0
    assert json.loads(passed.stdout)["outcome"] == "pass"
    after["metrics"]["latency_p95_ms"] = 300
    (tmp_path / "after.json").write_text(json.dumps(after))
    failed = run_cli(*args)
    assert failed.exit_code == 6


def test_run_kube_without_configuration(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    result = run_cli("run", "--cluster", "kube", "--once", "--state-dir", _state(tmp_path))
    assert result.exit_code == 1
    assert "no Kubernetes configuration" in result.stderr


def test_run_kube_refuses_a_load_trace(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--cluster", "kube", "--once", "--state-dir", _state(tmp_path), "--load", str(TRACE)
    )
    assert result.exit_code == 2
    assert "simulated cluster only" in result.stderr


def test_approvals_without_state(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("approvals", "list", "--state-dir", str(tmp_path / "none"))
    assert result.exit_code == 2
    assert "no runner state" in result.stderr
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seconds,service\n0,frontend\n", "trace header lacks rps"),
        ("seconds,service,rps\nsoon,frontend,5\n", ":2: seconds must be a number (got 'soon')"),
        ("seconds,service,rps\n0,frontend,-5\n", ":2: rps must not be negative"),
        ("seconds,service,rps,fault,value\n0,frontend,,meteor,1\n", ":2: unknown fault 'meteor'"),
        ("seconds,service,rps\n0,,5\n", ":2: service is missing"),
        ("seconds,service,rps\n0,frontend,\n", ":2: a row sets rps, a fault, or both"),
        ("seconds,service,rps\n", "the trace has no rows"),
    ],
)
def test_bad_traces(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(OpsgateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LoadTrace.read(path)


def test_trace_for_unknown_service_is_usage_error(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("seconds,service,rps\n0,payments,5\n")
    result = run_cli("run", "--once", "--state-dir", _state(tmp_path), "--load", str(path))
    assert result.exit_code == 2
    assert "no blueprint for payments" in result.stderr


def test_attack_self_approval_under_another_name(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    """Red team: sre-lead requested as "alice" (names are what the caller types), then approved
    with their own key. The OS account behind a request is recorded (sudo's caller when run
    as the runner's user), and an answer from that same account is refused."""
    request = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "frontend",
        "--operation",
        '{"type": "rollback"}',
        "--as",
        "alice",
    )
    request_id = json.loads(request.stdout)["approval_id"]
    filed = json.loads(
        run_cli("approvals", "show", request_id, "--json", "--state-dir", _state(tmp_path)).stdout
    )
    assert filed["requester_uid"] == os.getuid()  # no sudo: the caller itself
    other = _execute(
        run_cli,
        tmp_path,
        signed_blueprints,
        "--service",
        "backend",
        "--operation",
        '{"type": "rollback"}',
        "--as",
        "alice",
        env={"SUDO_UID": "4242"},
    )
    other_id = json.loads(other.stdout)["approval_id"]
    approve = (
        "approvals",
        "approve",
        other_id,
        "--key",
        str(sre_lead_key),
        "--reason",
        "x",
        "--state-dir",
        _state(tmp_path),
    )
    same_account = run_cli(*approve, env={"SUDO_UID": "4242"})
    assert same_account.exit_code == 1
    assert "comes from the account that requested it (uid 4242)" in same_account.stderr
    another_account = run_cli(*approve, env={"SUDO_UID": "4243"})
    assert another_account.exit_code == 0, another_account.stderr


def test_attack_breaker_reset_signed_against_keys_the_caller_chose(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path
) -> None:
    """Red team: `breaker reset --blueprints EVIL` with mallory's public key listed as
    sre-lead's closed the breaker. The runner checks every reset against its own blueprints
    and opens the breaker again when the signature is not an approver's of this service."""
    from engine import signing
    from engine.blueprint import keyed_blueprints
    from engine.state import StateStore
    from tests.conftest import MALLORY, REPO

    _run(run_cli, tmp_path, "--blueprints", str(signed_blueprints), "--once")
    store = StateStore(tmp_path / "state" / "state.db")
    store.open_breaker("frontend", "2026-02-10T12:00:00Z", "rollback failed")
    store.close()
    evil = keyed_blueprints(
        REPO / "blueprints",
        tmp_path / "evil",
        {"sre-lead": signing.public_key_line(MALLORY.key.public_key())},
    )
    mallory_key = tmp_path / "mallory"
    signing.write_private_key(mallory_key, MALLORY.key)
    reset = run_cli(
        "breaker",
        "reset",
        "frontend",
        "--key",
        str(mallory_key),
        "--reason",
        "x",
        "--blueprints",
        str(evil),
        "--state-dir",
        _state(tmp_path),
    )
    assert reset.exit_code == 0, reset.stderr  # the caller's own blueprints say yes...
    out = _run(run_cli, tmp_path, "--blueprints", str(signed_blueprints), "--once")
    assert "breaker open again" in out  # ...the runner's don't
    listed = run_cli("breaker", "list", "--state-dir", _state(tmp_path), "--json")
    assert next(r for r in json.loads(listed.stdout) if r["service"] == "frontend")["breaker_open"]


def test_attack_execute_by_rules_of_the_callers_choosing(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path
) -> None:
    """Red team: run through sudo as the runner's user, `opsgate execute --blueprints MINE`
    (max_replicas raised, cooldown 0) scaled backend to 8 with no approval. On the runner's
    state, execute must decide by the runner's own bundle revision and OPA."""
    import shutil

    _run(run_cli, tmp_path, "--blueprints", str(signed_blueprints), "--once")
    mine = tmp_path / "mine"
    shutil.copytree(signed_blueprints, mine)
    backend = mine / "backend" / "blueprint.yaml"
    backend.write_text(backend.read_text().replace("max_replicas: 3", "max_replicas: 10"))
    scale = (
        "--service",
        "backend",
        "--operation",
        '{"type": "scale", "to": 8}',
        "--agent",
        "kagent",
    )
    refused = _execute(run_cli, tmp_path, mine, *scale)
    assert refused.exit_code == 1
    assert "execute on its state uses the runner's own --blueprints" in refused.stderr
    cluster = SimulatedCluster.load(tmp_path / "state" / "cluster.json")
    assert cluster.service("backend")["replicas"] == 2
    same_rules = _execute(run_cli, tmp_path, signed_blueprints, *scale)
    assert same_rules.exit_code == 3  # the runner's rules: above max_replicas, needs approval


def test_keygen_prints_an_entry_to_paste_into_governance(run_cli: RunCli, tmp_path: Path) -> None:
    import yaml

    from engine import signing

    made = run_cli("approvals", "keygen", str(tmp_path / "k"), "--name", "sre-lead")
    assert made.exit_code == 0, made.stderr
    [entry] = yaml.safe_load(made.stdout)
    assert entry["name"] == "sre-lead"
    signing.parse_public_key(entry["public_key"])
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    again = run_cli("approvals", "keygen", str(tmp_path / "k"), "--name", "sre-lead")
    assert again.exit_code == 2 and "not overwriting a key" in again.stderr


def test_execute_scale_to_whole_number_written_as_float_applies_that_many(
    run_cli: RunCli, tmp_path: Path
) -> None:
    result = run_cli(
        "execute",
        "--state-dir",
        _state(tmp_path),
        "--service",
        "frontend",
        "--operation",
        '{"type": "scale", "to": 4.0}',
    )
    assert result.exit_code == 0, result.stderr
    assert "%!" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["outcome"] == "succeeded"
    cluster = SimulatedCluster.load(tmp_path / "state" / "cluster.json")
    desired = cluster.observe(Target("frontend", "shop", "frontend"))["replicas"]["desired"]
    assert (desired, type(desired)) == (4, int)


def test_a_run_of_set_ticks_sees_its_scheduled_verifications_through(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real cluster verification is scheduled for a later tick; `run --once` waits for
    the ones it scheduled and judges them before it stops (here on the simulator, told to
    schedule as a real cluster does)."""
    from engine.cluster.simulated import SimulatedCluster

    monkeypatch.setattr(SimulatedCluster, "waits_in_real_time", True)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    from engine.blueprint import load_blueprints

    effective = [b.effective for b in load_blueprints([REPO / "blueprints"]).blueprints]
    cluster = SimulatedCluster.from_blueprints(effective)
    cluster.set_load("frontend", rps=309)
    cluster.save(state / "cluster.json")
    ran = run_cli("run", "--once", "--state-dir", str(state))
    assert ran.exit_code == 0, ran.stderr
    assert "verifying: scale 2 → 3" in ran.stderr
    assert "waiting" in ran.stderr
    events = [
        json.loads(line)["event"] for line in (state / "audit.jsonl").read_text().splitlines()
    ]
    assert events.index("verification_passed") > events.index("execution_succeeded")
