"""One operation proposed by a person or an agent, carried through the gate on the runner's state.

``opsgate execute``, the MCP server's ``request_operation`` and ``opsgate gate``
all do the same thing: ask OPA afresh with the service's current state, then
let the executor run it (allow), or run it with a granted approval of exactly
this operation by someone other than its requester (approve), or file an
approval request (approve, none granted), or refuse it (forbid) or postpone it
(defer) — journaled, verified, rolled back and audited as the runner's own
operations are. Nothing here decides: the verdict is OPA's, the refusals of
Python's own are the executor's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.approval import Actor, Approvals, binding_problems
from engine.cluster import Target
from engine.errors import PolicyError, UsageError
from engine.execute import Context, Result
from engine.state import Approval
from engine.workspace import Workspace


@dataclass(frozen=True)
class Proposal:
    """What became of one proposed operation: the executor's result, the fresh verdict,
    and the approval request it used or filed."""

    result: Result
    verdict: dict[str, Any]
    approval: Approval | None
    filed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The result as the CLI and the agent tools show it (mask it before showing)."""
        result = self.result
        return {
            "outcome": result.outcome,
            "tier": result.tier,
            "operation": result.operation,
            "detail": result.detail,
            "verification": result.verification.to_json() if result.verification else None,
            "breaker_opened": result.breaker_opened,
            "reasons": self.verdict["reasons"],
            "rules": self.verdict["rules"],
            "suggestion": self.verdict["suggestion"],
            "approval_id": self.approval.id if self.approval else None,
            "approval_status": self.approval.status if self.approval else None,
        }


def same_rules_as_the_runner(workspace: Workspace, opa: str) -> None:
    """Refuse to act on the runner's state by other rules than the runner's.

    A proposal may come from the runner's user (through sudo, or a server it
    runs): blueprints, policies or an OPA of the caller's choosing would let
    them decide their own verdict.
    """
    recorded = workspace.state.runner()
    if recorded is None:
        return
    revision = workspace.session.revision
    runner_revision, runner_opa = recorded
    if (revision, opa) != (runner_revision, runner_opa):
        raise PolicyError(
            f"the runner on this state decides with bundle revision {runner_revision} "
            f"({runner_opa} OPA); these blueprints and policies give {revision} ({opa} OPA): "
            "execute on its state uses the runner's own --blueprints, --policies and OPA"
        )


def target_of(blueprint: dict[str, Any], service: str) -> Target:
    """The Deployment a blueprint governs."""
    return Target(service, blueprint["target"]["namespace"], blueprint["target"]["deployment"])


def _granted(
    workspace: Workspace, context: Context, operation: dict[str, Any], requester: Actor
) -> Approval | None:
    """The requester's granted, unspent approval of exactly this operation, if any."""
    for approval in workspace.state.approvals(status="granted", service=context.service):
        if approval.requester == requester and not binding_problems(
            approval,
            context.service,
            operation,
            context.blueprint,
            context.bundle_revision,
            requester,
        ):
            return approval
    return None


def propose(
    workspace: Workspace,
    service: str,
    operation: dict[str, Any],
    requester: Actor,
    *,
    opa: str,
    approval_id: str | None = None,
    find_granted: bool = False,
    dry_run: bool = False,
) -> Proposal:
    """Carry ``operation`` on ``service`` through the gate for ``requester``.

    ``approval_id`` names the approval to run an approve-tier operation with;
    ``find_granted`` looks for the requester's granted approval of exactly this
    operation instead (an agent asking again once a person said yes). With
    neither, an approve verdict files a request (or finds the open one).
    """
    blueprints = workspace.blueprints
    if service not in blueprints:
        raise UsageError(f"no blueprint named {service!r}")
    blueprint = blueprints[service]
    cluster = workspace.cluster  # the state dir is checked private (made if missing) first
    state = workspace.state
    executor = workspace.executor(dry_run=dry_run)  # the audit log, then OPA
    session = workspace.session
    same_rules_as_the_runner(workspace, opa)
    context = Context(target_of(blueprint, service), blueprint, session.revision)
    approval = state.approval(approval_id) if approval_id else None
    if approval_id and approval is None:
        raise UsageError(f"no approval request {approval_id} in {workspace.state_dir}")
    verdict = executor.fresh_verdict(context, operation, requester)
    if approval is None and find_granted and verdict["tier"] == "approve":
        approval = _granted(workspace, context, operation, requester)
    decision = {**verdict, "operation": operation}
    result = executor.execute(context, decision, approval, requester)
    filed = False
    if result.outcome == "awaiting_approval" and approval is None:
        approval, filed = Approvals(state, executor.audit).request(
            verdict, service, blueprint, session.revision, cluster.now(), requester
        )
        result = replace(
            result,
            detail=f"approval request {approval.id} "
            + ("filed" if filed else f"is {approval.status}")
            + f"; an approver answers with: opsgate approvals approve {approval.id} "
            "--key PATH --reason TEXT",
        )
    return Proposal(result, verdict, approval, filed)
