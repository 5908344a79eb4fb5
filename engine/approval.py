"""The approval workflow: approve-tier operations wait for a named approver.

A request carries what the decision said (operation, reasons, rules,
blueprint references) and expires after the blueprint's
``approval_workflow.timeout_seconds`` (an expired request is a rejection).
Only approvers the blueprint names may answer. A request made under another
blueprint version or bundle revision is void. Answering never executes
anything: the runner executes a granted operation only after asking OPA
again, and a forbid then still wins.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from typing import Any

from engine.audit import AuditLog
from engine.errors import OpsgateError
from engine.notify import Notifier
from engine.state import Approval, StateStore

log = logging.getLogger(__name__)


class ApprovalError(OpsgateError):
    """An approval can't be given or refused (unknown id, not an approver, already answered)."""


def _parse(moment: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fingerprint(service: str, operation: dict[str, Any], version: str, revision: str) -> str:
    """A stable id for "this operation on this service under these rules"."""
    proposal = {k: v for k, v in operation.items() if k != "from"}
    material = json.dumps([service, proposal, version, revision], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _kind(operation: dict[str, Any]) -> tuple[Any, ...]:
    """What a change is about, whatever its amount: type, and resource and field if any."""
    return (
        operation.get("type"),
        operation.get("resource"),
        operation.get("field"),
        operation.get("name"),
    )


class Approvals:
    """Approval requests kept in the state store, every change audited."""

    def __init__(
        self, state: StateStore, audit: AuditLog, *, notifier: Notifier | None = None
    ) -> None:
        self.state = state
        self.audit = audit
        self.notifier = notifier

    def request(
        self,
        decision: dict[str, Any],
        service: str,
        blueprint: dict[str, Any],
        revision: str,
        now: str,
    ) -> tuple[Approval, bool]:
        """The request for this decision: the existing one, or a new one. True if new."""
        version = blueprint["metadata"]["version"]
        request_id = fingerprint(service, decision["operation"], version, revision)
        existing = self.state.approval(request_id) or self._open_of_same_kind(
            service, decision["operation"]
        )
        if existing is not None:
            return existing, False
        timeout = blueprint["governance"]["approval_workflow"]["timeout_seconds"]
        approval = Approval(
            id=request_id,
            service=service,
            decision_id=decision["id"],
            operation=decision["operation"],
            reasons=decision["reasons"],
            rules=decision["rules"],
            blueprint_refs=decision["blueprint_refs"],
            blueprint_name=blueprint["metadata"]["name"],
            blueprint_version=version,
            bundle_revision=revision,
            approvers=list(blueprint["governance"]["approval_workflow"]["approvers"]),
            requested_at=now,
            expires_at=_format(_parse(now) + datetime.timedelta(seconds=timeout)),
            status="pending",
            answered_by=None,
            answered_at=None,
            justification=None,
        )
        self._record(
            "approval_requested",
            approval,
            actor="opsgate",
            blueprint_refs=approval.blueprint_refs,
            approvers=approval.approvers,
            expires_at=approval.expires_at,
        )
        self.state.add_approval(approval)
        return approval, True

    def _open_of_same_kind(self, service: str, operation: dict[str, Any]) -> Approval | None:
        """A pending or granted request for the same kind of change (one at a time per kind)."""
        kind = _kind(operation)
        for status in ("granted", "pending"):
            for approval in self.state.approvals(status=status, service=service):
                if _kind(approval.operation) == kind:
                    return approval
        return None

    def answer(
        self, approval_id: str, *, grant: bool, by: str, reason: str | None, now: str
    ) -> Approval:
        """Grant or refuse a pending request, as ``by``, who must be a named approver."""
        approval = self.state.approval(approval_id)
        if approval is None:
            raise ApprovalError(f"no approval request {approval_id}")
        if approval.status != "pending":
            raise ApprovalError(f"approval request {approval.id} is already {approval.status}")
        if by not in approval.approvers:
            raise ApprovalError(
                f"{by} may not answer {approval.id}: approvers for {approval.service} are "
                f"{', '.join(approval.approvers) or '(none)'}"
            )
        if grant and not (reason or "").strip():
            raise ApprovalError("a justification (--reason) is required to approve")
        if _parse(approval.expires_at) <= _parse(now):
            self.expire(now)
            raise ApprovalError(f"approval request {approval.id} expired at {approval.expires_at}")
        status = "granted" if grant else "rejected"
        self._record(f"approval_{status}", approval, actor=by, justification=reason)
        return self.state.answer_approval(approval.id, status, by, now, reason)

    def _record(self, event: str, approval: Approval, *, actor: str, **extra: Any) -> None:
        """Audit one step of a request, with the fields every approval event carries."""
        fields: dict[str, Any] = {
            "service": approval.service,
            "blueprint": {"name": approval.blueprint_name, "version": approval.blueprint_version},
            "bundle_revision": approval.bundle_revision,
            "decision_id": approval.decision_id,
            "approval_id": approval.id,
            "operation": approval.operation,
            "tier": "approve",
            "rules": approval.rules,
            "reasons": approval.reasons,
        }
        self.audit.record(event, **{**fields, **extra}, actor=actor)
        if self.notifier is not None:  # after the record; it queues, never blocks or raises
            self.notifier.notify(
                event, approval.to_json(), actor=actor, justification=extra.get("justification")
            )

    def _close(self, approval: Approval, event: str, status: str, reason: str) -> None:
        """End a pending request without an answer (audited first)."""
        self._record(event, approval, actor="opsgate", reasons=[reason])
        self.state.mark_approval(approval.id, status)

    def expire(self, now: str) -> list[Approval]:
        """Reject every pending request whose time is up (audited); return them."""
        expired = [
            approval
            for approval in self.state.approvals(status="pending")
            if _parse(approval.expires_at) <= _parse(now)
        ]
        for approval in expired:
            reason = f"no answer before {approval.expires_at}: rejected"
            self._close(approval, "approval_expired", "expired", reason)
        return expired

    def void_stale(self, versions: dict[str, str], revision: str) -> list[Approval]:
        """Void pending requests made under another blueprint version or bundle revision."""
        voided = [
            approval
            for approval in self.state.approvals(status="pending")
            if versions.get(approval.service) != approval.blueprint_version
            or approval.bundle_revision != revision
        ]
        for approval in voided:
            reason = "the blueprint or the policies changed since the request"
            self._close(approval, "approval_void", "void", reason)
        return voided
