"""After the demonstrations and every attack that carries a secret, no file opsgate keeps
holds it: not the audit log, not state.db (its journal, approvals), not the inbox."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.conftest import RunCli, file_request

SECRET = "hunter2"
CARRIERS = [
    # allowed: runs, and the configmap really gets the value
    (
        "frontend",
        {
            "type": "update_configmap",
            "name": "frontend-config",
            "changes": {"dsn": f"postgres://admin:{SECRET}@db/x"},
        },
    ),
    # forbidden: blocked, recorded by its shape only
    ("frontend", {"type": "modify_secret", "name": "db", "value": SECRET}),
    # approve tier: an approval request is filed, and published in the inbox
    (
        "backend",
        {
            "type": "update_strategy",
            "changes": {"max_unavailable": 1, "note": f"Bearer {SECRET}abcdEFGH1234"},
        },
    ),
    (
        "frontend",
        {
            "type": "update_configmap",
            "name": "frontend-config",
            "changes": {"password": SECRET, "api_token": f"{SECRET}-token"},
        },
    ),
]


def test_no_file_opsgate_keeps_holds_a_planted_secret(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path
) -> None:
    state = tmp_path / "state"
    demos = run_cli("demo", "all", "--state-dir", str(state / "demos"))
    assert demos.exit_code == 0, demos.stderr[-2000:]
    keyed = ("--blueprints", str(signed_blueprints))
    ran = run_cli("run", *keyed, "--state-dir", str(state), "--ticks", "3", "--pause", "0")
    assert ran.exit_code == 0, ran.stderr
    for service, operation in CARRIERS:
        for requester in (("--as", "alice"), ("--agent", "kagent")):
            result = run_cli(
                "execute",
                *keyed,
                "--state-dir",
                str(state),
                "--service",
                service,
                "--operation",
                json.dumps(operation),
                *requester,
            )
            assert result.exit_code in (0, 3, 4, 5), result.stderr
            assert SECRET not in result.stdout + result.stderr
        enforced = run_cli(
            "enforce", *keyed, "--service", service, "--operation", json.dumps(operation)
        )
        assert SECRET not in enforced.stdout + enforced.stderr
    ran = run_cli("run", *keyed, "--state-dir", str(state), "--ticks", "1", "--pause", "0")
    assert ran.exit_code == 0, ran.stderr
    listed = run_cli("approvals", "list", "--all", "--json", "--state-dir", str(state))
    assert listed.exit_code == 0 and listed.stdout.count('"id"') >= 1
    shown = run_cli("audit", "show", "--json", "--state-dir", str(state))
    assert SECRET not in listed.stdout + shown.stdout
    kept = [
        path
        for root in (state, tmp_path / "state.inbox")
        for path in root.rglob("*")
        if path.is_file() and path.name != "cluster.json"  # the cluster itself holds what it got
    ]
    assert {p.name for p in kept} >= {"state.db", "audit.jsonl"}
    assert any(p.parent.name == "requests" for p in kept)  # a request was published
    for path in kept:
        assert SECRET.encode() not in path.read_bytes(), path
    assert f"admin:{SECRET}@db" in (state / "cluster.json").read_text()  # it really ran


def test_a_secret_typed_into_a_justification_is_kept_masked(
    run_cli: RunCli, tmp_path: Path, signed_blueprints: Path, sre_lead_key: Path
) -> None:
    """Red team: `--reason "db password=hunter2"` reached state.db, the signed answer in the
    audit log (base64) and the webhook in clear."""
    state = tmp_path / "state"
    request_id = file_request(run_cli, signed_blueprints, state)
    answered = run_cli(
        "approvals",
        "approve",
        request_id,
        "--key",
        str(sre_lead_key),
        "--reason",
        f"db password={SECRET} rotated",
        "--state-dir",
        str(state),
    )
    assert answered.exit_code == 0, answered.stderr
    for path in state.rglob("*"):
        if path.is_file() and path.name != "cluster.json":
            data = path.read_bytes()
            assert SECRET.encode() not in data, path
    for line in (state / "audit.jsonl").read_text().splitlines():
        event = json.loads(line)
        if "signed_answer" in event:  # the signed answer's payload, decoded
            payload = event["signed_answer"].split(".")[1]
            decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            assert SECRET.encode() not in decoded
            assert b"password=***" in decoded
