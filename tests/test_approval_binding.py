"""An approval request stores the operation masked, and binds the real one by its digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import signing
from engine.approval import Approvals, binding_problems
from engine.audit import AuditLog
from engine.blueprint import load_blueprints
from engine.state import StateStore

SECRET_DSN = "postgres://admin:hunter2@db/x"


def test_a_request_keeps_no_secret_and_binds_the_real_values(
    tmp_path: Path, signed_blueprints: Path
) -> None:
    blueprint = next(
        b.effective for b in load_blueprints([signed_blueprints]).blueprints if b.name == "backend"
    )
    operation = {"type": "update_configmap", "name": "db", "changes": {"dsn": SECRET_DSN}}
    decision = {
        "id": "d1",
        "operation": operation,
        "reasons": ["r"],
        "rules": ["x"],
        "blueprint_refs": [],
    }
    agent = {"kind": "agent", "name": "kagent"}
    state = StateStore(tmp_path / "state.db")
    approval, new = Approvals(state, AuditLog(tmp_path / "audit.jsonl")).request(
        decision, "backend", blueprint, "rev", "2026-02-10T12:00:00Z", agent
    )
    assert new
    assert "hunter2" not in str(approval.operation)
    assert approval.operation_digest == signing.operation_digest(operation, approval.nonce)
    assert approval.operation_digest != signing.operation_digest(operation)  # salted
    state.close()
    for path in tmp_path.iterdir():
        assert b"hunter2" not in path.read_bytes(), path
    granted = approval.__class__(**{**approval.to_json(), "status": "granted"})
    assert binding_problems(granted, "backend", operation, blueprint, "rev", agent) == []
    changed = {**operation, "changes": {"dsn": "postgres://admin:other@db/x"}}
    assert binding_problems(granted, "backend", changed, blueprint, "rev", agent)


def test_an_answer_from_another_runners_log_is_not_replayed(
    tmp_path: Path, signed_blueprints: Path
) -> None:
    """Red team: request ids are the same in every state dir with the same blueprints, so a
    signed answer copied from one runner's audit log granted the same request in another."""
    from engine.approval import ApprovalError, claims
    from tests.conftest import SRE_LEAD

    blueprint = next(
        b.effective for b in load_blueprints([signed_blueprints]).blueprints if b.name == "backend"
    )
    decision = {
        "id": "d",
        "operation": {"type": "rollback"},
        "reasons": ["r"],
        "rules": ["x"],
        "blueprint_refs": [],
    }
    now = "2026-02-10T12:00:00Z"
    requests = []
    for name in ("a", "b"):
        state = StateStore(tmp_path / name / "state.db")
        workflow = Approvals(state, AuditLog(tmp_path / name / "audit.jsonl"))
        request, _ = workflow.request(decision, "backend", blueprint, "rev", now)
        requests.append((workflow, request))
    (first, request_a), (second, request_b) = requests
    assert request_a.id == request_b.id and request_a.nonce != request_b.nonce
    token = SRE_LEAD.statement(claims(request_a, "approve", now, "ok"))
    first.answer_signed(token, now=now)
    with pytest.raises(ApprovalError, match="signed for another nonce"):
        second.answer_signed(token, now=now)
    short = SRE_LEAD.statement({**claims(request_b, "approve", now, "ok"), "jti": request_b.id[:8]})
    with pytest.raises(ApprovalError, match="signed for another jti"):
        second.answer_signed(short, now=now)
    for workflow, _ in requests:
        workflow.state.close()


def test_asking_again_after_an_answer_files_a_new_request_and_nobody_blocks_the_runner(
    tmp_path: Path, signed_blueprints: Path
) -> None:
    """Red team: once alice's request was executed or rejected she could never file the same
    operation again; and her pending request of a kind swallowed the runner's own."""
    blueprint = next(
        b.effective for b in load_blueprints([signed_blueprints]).blueprints if b.name == "backend"
    )
    now = "2026-02-10T12:00:00Z"
    alice = {"kind": "person", "name": "alice"}
    state = StateStore(tmp_path / "state.db")
    workflow = Approvals(state, AuditLog(tmp_path / "audit.jsonl"))

    def decision(to: int) -> dict[str, object]:
        return {
            "id": f"d{to}",
            "operation": {"type": "scale", "to": to},
            "reasons": ["r"],
            "rules": ["x"],
            "blueprint_refs": [],
        }

    first, new = workflow.request(decision(9), "backend", blueprint, "rev", now, alice)
    assert new
    state.mark_approval(first.id, "rejected")
    again, new = workflow.request(decision(9), "backend", blueprint, "rev", now, alice)
    assert new and again.id != first.id and again.status == "pending"
    runners, new = workflow.request(decision(4), "backend", blueprint, "rev", now)
    assert new and runners.requester == {"kind": "runner", "name": "opsgate"}
    state.close()
