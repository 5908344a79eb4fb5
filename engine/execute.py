"""The execution engine: carry out one decided operation, safely, or not at all.

An operation runs only when a fresh verdict from OPA (asked again, with the
current state, the requester and the signed approval) is ``allow``, or
``approve`` with an approval that covers exactly this operation and that
Rego verified; a forbid never runs, whatever the caller passes. Python only
ever refuses more: it refuses on its own a type whose catalog floor is
forbid (or that it does not know), a scale to 0, and anything while the
service's breaker is open, whatever an answer says. Each step is written to the
audit log (fsync'd) before it happens and to the journal in SQLite, so a
crash at any point can be finished on the next start without applying an
operation twice. After ``stabilization_seconds`` the verification engine
checks the result; a failure rolls back (when the blueprint says so), counts
toward the circuit breaker, and a failed rollback halts the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine import moments, operations, redact
from engine.approval import RUNNER, Actor, binding_problems
from engine.audit import AuditLog
from engine.cluster import Applied, Cluster, ClusterError, ConflictError, Target
from engine.contracts import BreakerAnswer
from engine.errors import PolicyError
from engine.state import Approval, JournalEntry, StateStore
from engine.verify import Verification, judge, verify, verify_early, verify_rollback

log = logging.getLogger(__name__)

ExecutionOutcome = Literal[
    "blocked",
    "awaiting_approval",
    "deferred",
    "planned",
    "failed",
    "succeeded",
    "partial",
    "verifying",
    "rolled_back",
    "rollback_failed",
]

Recheck = Callable[[dict[str, Any]], dict[str, Any]]
# asks the policies whether a service's breaker is open (data.opsgate.main.breaker)
BreakerCheck = Callable[[dict[str, Any]], BreakerAnswer]

# the rule id the executor's own refusals carry (not a Rego rule: Python refusing more)
_OWN_RULE = "opsgate.execute.refusal"

_VERIFICATION_EVENTS = {
    "pass": "verification_passed",
    "fail": "verification_failed",
    "partial": "verification_partial",
}


@dataclass
class Context:
    """What the executor needs to know about the service it acts on."""

    target: Target
    blueprint: dict[str, Any]
    bundle_revision: str

    @property
    def service(self) -> str:
        """The service (blueprint) name."""
        return self.target.service

    def audit_fields(self) -> dict[str, Any]:
        """Fields every audit event about this service carries."""
        return {
            "service": self.service,
            "blueprint": {
                "name": self.blueprint["metadata"]["name"],
                "version": self.blueprint["metadata"]["version"],
            },
            "bundle_revision": self.bundle_revision,
        }


@dataclass(frozen=True)
class Result:
    """What became of one operation (built once, when it is known)."""

    outcome: ExecutionOutcome
    decision_id: str
    operation: dict[str, Any]
    tier: str
    detail: str = ""
    verification: Verification | None = None
    breaker_opened: bool = False
    # the fresh verdict when it asks for an approval the decision did not (see the runner)
    verdict: Mapping[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _operation_only(operation: dict[str, Any]) -> dict[str, Any]:
    """The operation as proposed (without the informational ``from``)."""
    return {k: v for k, v in operation.items() if k != "from"}


def _moved_since_decided(operation: Mapping[str, Any], now: dict[str, Any] | None) -> str:
    """Why ``operation`` no longer fits the cluster ("" when it does): its ``from`` (what
    the decision saw) is not what the observation before acting shows (``now``, the
    inverse read from it). Only types whose result is observed can tell."""
    if "from" not in operation or now is None or now.get("to") == operation["from"]:
        return ""
    return (
        f"{operations.describe(operation)}: the cluster shows {now.get('to')} now, not the "
        f"{operation['from']} this was decided on: re-read and re-decided next tick"
    )


def enforce_request(
    cluster: Cluster, state: StateStore, ctx: Context, operation: dict[str, Any], requester: Actor
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``enforce`` input for ``operation`` as the cluster and the state are now, and the
    observation it rests on. Reads only: a check and an execution ask the same question."""
    observation = cluster.observe(ctx.target)
    request: dict[str, Any] = {
        "service": ctx.service,
        "operation": _operation_only(operation),
        "state": state.service_state(ctx.service),
        "now": cluster.now(),
        # judged on what the cluster has now, not on the blueprint's starting values
        "replicas": observation.get("replicas"),
        "resources": observation.get("resources"),
        "actor": requester,
    }
    return request, observation


class Executor:
    """Executes decided operations on one cluster, with one state store and audit log."""

    def __init__(
        self,
        cluster: Cluster,
        state: StateStore,
        audit: AuditLog,
        recheck: Recheck,
        *,
        breaker: BreakerCheck | None = None,
        dry_run: bool = False,
        schedule_verification: bool = False,
    ) -> None:
        self.cluster = cluster
        self.state = state
        self.audit = audit
        self.recheck = recheck
        self.breaker = breaker
        self.dry_run = dry_run
        # verify at a later tick instead of waiting here (a real cluster's real time)
        self.schedule_verification = schedule_verification

    def _event(self, ctx: Context, kind: str, decision: Mapping[str, Any], **fields: Any) -> None:
        self.audit.record(
            kind,
            **ctx.audit_fields(),
            decision_id=decision["id"],
            operation=decision["operation"],
            tier=decision["tier"],
            rules=decision.get("rules", []),
            reasons=decision.get("reasons", []),
            actor=fields.pop("actor", "opsgate"),
            **fields,
        )

    def _step(
        self,
        ctx: Context,
        kind: str,
        decision: Mapping[str, Any],
        entry: int,
        mark: str,
        journal: dict[str, Any] | None,
        **fields: Any,
    ) -> None:
        """One step of an operation: its audit event (fsync'd, first) and its journal mark."""
        self._event(ctx, kind, decision, **fields)
        self.state.journal_mark(entry, mark, self.cluster.now(), journal)

    def fresh_verdict(
        self, ctx: Context, operation: dict[str, Any], requester: Actor | None = None
    ) -> dict[str, Any]:
        """Ask OPA again about ``operation`` with the service's current state and replicas."""
        return self._recheck(ctx, operation, requester or RUNNER, None)[0]

    def _recheck(
        self,
        ctx: Context,
        operation: dict[str, Any],
        requester: Actor,
        approval: Approval | None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The fresh verdict, and the observation it rests on (the state before acting)."""
        request, observation = enforce_request(self.cluster, self.state, ctx, operation, requester)
        if approval is not None and approval.token is not None:
            # only an approval's check reads what was spent: no query for every operation
            request["approval"] = approval.token
            request["state"]["spent_approvals"] = self.state.spent_approvals(ctx.service)
        return self.recheck(request), observation

    def execute(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        approval: Approval | None = None,
        requester: Actor | None = None,
    ) -> Result:
        """Carry out ``decision`` if, and only if, a fresh verdict still lets it run.

        Every tier is handled here, for the decision and for the fresh verdict:
        forbid is blocked, defer waits, approve needs an approval that covers
        exactly this operation, allow runs. (Filing an approval request is the
        approval workflow's part; the runner asks it for approve decisions.)
        """
        requester = requester or RUNNER
        operation = decision["operation"]
        if decision["tier"] == "forbid":
            self._event(
                ctx, "blocked", decision, suggestion=decision.get("suggestion"), **_by(requester)
            )
            return Result("blocked", decision["id"], operation, "forbid", "forbidden by policy")
        if decision["tier"] == "defer":
            self._event(ctx, "deferred", decision, **_by(requester))
            return Result("deferred", decision["id"], operation, "defer", "cooldown")
        verifying = self._being_verified(ctx.service)
        if verifying is not None:
            # one change at a time: the next waits until the last one is judged
            why = f"a change of {ctx.service} is being verified until {verifying}"
            self._event(ctx, "deferred", decision, reason=why, **_by(requester))
            return Result("deferred", decision["id"], operation, decision["tier"], why)
        verdict, before = self._recheck(ctx, operation, requester, approval)
        tier = verdict["tier"]
        if tier == "forbid":
            self._event(
                ctx,
                "blocked",
                {**decision, **_verdict_fields(verdict)},
                recheck=True,
                **_by(requester),
            )
            return Result("blocked", decision["id"], operation, tier, "forbidden on re-check")
        if tier == "defer":
            self._event(ctx, "deferred", {**decision, **_verdict_fields(verdict)}, **_by(requester))
            return Result("deferred", decision["id"], operation, tier, "cooldown")
        refusal = self._own_refusal(ctx, operation)
        if refusal:
            # OPA let it through, yet it is never run: say so loudly in the audit log
            refused = {**decision, "tier": "forbid", "reasons": [refusal], "rules": [_OWN_RULE]}
            self._event(ctx, "blocked", refused, opa_tier=tier, **_by(requester))
            return Result("blocked", decision["id"], operation, "forbid", refusal)
        if tier == "approve":
            if approval is None:
                return Result(
                    "awaiting_approval",
                    decision["id"],
                    operation,
                    tier,
                    "needs approval",
                    verdict=verdict,
                )
            problems = self._approval_problems(ctx, operation, approval, requester, verdict)
            if problems:
                self._event(
                    ctx,
                    "approval_refused",
                    {**decision, **_verdict_fields(verdict)},
                    approval_id=approval.id,
                    problems=problems,
                    requester=requester,
                )
                return Result(
                    "awaiting_approval", decision["id"], operation, tier, "; ".join(problems)
                )
        if tier not in ("allow", "approve"):
            raise ValueError(f"unexpected tier {tier!r}")  # contracts.verdict already refuses these
        return self._run(
            ctx,
            decision,
            tier,
            approval if tier == "approve" else None,
            before,
            dry_run=self._dry_run(verdict),
            requester=requester,
        )

    def _own_refusal(self, ctx: Context, operation: dict[str, Any]) -> str:
        """Why Python refuses ``operation`` by itself, whatever OPA says ("" when it doesn't)."""
        entry = operations.lookup(operation)
        if entry is None:
            return f"unknown operation type {operation.get('type')!r}: refused by the executor"
        if not entry.executable:
            return f"{entry.name} is forbidden by the operation catalog: never executed"
        if any(p.kind == "count" and operation.get(p.name) == 0 for p in entry.parameters):
            return f"a {entry.name} to 0 replicas is never executed"
        if self.state.service_state(ctx.service)["breaker_open"]:
            return f"the circuit breaker of {ctx.service} is open: nothing is executed"
        return ""

    def _approval_problems(
        self,
        ctx: Context,
        operation: dict[str, Any],
        approval: Approval,
        requester: Actor,
        verdict: dict[str, Any],
    ) -> list[str]:
        """Why ``approval`` does not let ``operation`` run now (empty when it does)."""
        problems = binding_problems(
            approval,
            ctx.service,
            _operation_only(operation),
            ctx.blueprint,
            ctx.bundle_revision,
            requester,
        )
        if problems or self._dry_run(verdict):
            return problems  # a dry run changes nothing: a name-only approval is enough
        if approval.token is None:
            return [
                f"approval {approval.id} was given by name only ({approval.answered_by}, no "
                "signature): a real execution needs an approval signed with an approver's key "
                f"(opsgate approvals approve {approval.id} --key PATH)"
            ]
        check = verdict.get("approval")
        if not isinstance(check, dict) or check.get("valid") is not True:
            found = check.get("problems") if isinstance(check, dict) else None
            return [
                f"the signed approval {approval.id} does not verify: {p}" for p in found or []
            ] or [f"OPA did not confirm the signed approval {approval.id}"]
        return []

    def _dry_run(self, verdict: dict[str, Any]) -> bool:
        """A dry run when the runner was started as one, or when the fresh verdict says so
        (the policies read the blueprint's governance.safety.dry_run)."""
        return self.dry_run or verdict.get("dry_run") is not False

    def _run(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        tier: str,
        approval: Approval | None,
        before: dict[str, Any],
        *,
        dry_run: bool,
        requester: Actor = RUNNER,
    ) -> Result:
        operation = _operation_only(decision["operation"])
        actor = approval.answered_by if approval and tier == "approve" else "opsgate"
        if dry_run:
            self._event(ctx, "dry_run", decision, actor=actor)
            return Result("planned", decision["id"], decision["operation"], tier, "dry run")
        inverse = operations.inverse_from(operation, before)
        moved = _moved_since_decided(decision["operation"], inverse) if approval is None else ""
        if moved:
            # another client changed it after the tick observed it: the fresh verdict governs
            # the same change, but the change itself was worked out from what is gone now
            self._event(ctx, "execution_failed", decision, actor=actor, error=moved, conflict=True)
            return Result("failed", decision["id"], decision["operation"], tier, moved)
        if approval is not None:
            # single use: spent before anything is applied, so a crash can't reuse it
            self.state.spend_approval(approval.id)
        # journal first: if the state store is locked or broken, nothing is recorded as started
        entry = self.state.journal_begin(
            decision["id"], ctx.service, operation, inverse, self.cluster.now()
        )
        self._event(
            ctx,
            "execution_started",
            decision,
            actor=actor,
            approval_id=approval and approval.id,
            journal_entry=entry,
            requester=requester,
        )
        try:
            applied = self.cluster.apply(ctx.target, operation)
        except ConflictError as e:
            # the object changed under us: nothing was written; re-read and re-decide next tick
            self._step(
                ctx,
                "execution_failed",
                decision,
                entry,
                "failed",
                {"error": str(e)},
                error=str(e),
                status=e.status,
                conflict=True,
            )
            return Result("failed", decision["id"], decision["operation"], decision["tier"], str(e))
        except ClusterError as e:
            return self._apply_failed(ctx, decision, entry, inverse, e)
        self.state.record_operation(ctx.service, self.cluster.now())
        if self.schedule_verification:
            return self._schedule_verification(ctx, decision, entry, applied, before, actor)
        self._step(
            ctx,
            "execution_succeeded",
            decision,
            entry,
            "applied",
            {"inverse": applied.inverse},
            actor=actor,
            revision=applied.revision,
        )
        return self._verify(ctx, decision, entry, applied, before)

    def _schedule_verification(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        entry: int,
        applied: Applied,
        before: dict[str, Any],
        actor: str | None,
    ) -> Result:
        """Journal the change as verifying until the stabilization time has passed; a later
        tick verifies it (``verify_scheduled``) while the loop goes on with other services."""
        wait = ctx.blueprint["spec"]["reliability"]["stabilization_seconds"]
        due = moments.later(self.cluster.now(), wait)
        self._step(
            ctx,
            "execution_succeeded",
            decision,
            entry,
            "verifying",
            {
                "inverse": applied.inverse,
                "verify_at": due,
                "before": before,
                "decision": {k: decision.get(k) for k in ("tier", "rules", "reasons")},
            },
            actor=actor,
            revision=applied.revision,
            verify_at=due,
        )
        return Result(
            "verifying",
            decision["id"],
            decision["operation"],
            decision["tier"],
            f"verification due at {due}",
        )

    def _being_verified(self, service: str) -> str | None:
        """When the change of ``service`` being verified is due (None: there is none)."""
        for entry in self.state.journal(status="verifying"):
            if entry.service == service:
                return str((entry.detail or {}).get("verify_at", "an unknown time"))
        return None

    def verify_scheduled(self, entry: JournalEntry, ctx: Context, now: str) -> Result | None:
        """Verify a change journaled as verifying: at its due time every check counts;
        before it only a definite failure (a pod OOMKilled or crashing) ends it early,
        rolled back at once. None while it stays scheduled."""
        detail = entry.detail or {}
        decided = detail.get("decision") or {}
        decision = {
            "id": entry.decision_id,
            "operation": entry.operation,
            "tier": decided.get("tier") or "allow",
            "rules": decided.get("rules") or [],
            "reasons": decided.get("reasons") or [],
        }
        due = detail.get("verify_at")
        try:
            final = not isinstance(due, str) or moments.reached(now, due)
        except ValueError:
            final = True  # a due time that can't be read is no reason to wait: judge it now
        try:
            after = self.cluster.observe(ctx.target)
        except ClusterError as e:
            if not final:
                return None
            after = {"error": str(e)}
        applied = Applied(
            entry.operation, self._journal_inverse(ctx, entry, detail.get("inverse"))[0]
        )
        verification = verify(entry.operation, after, detail.get("before") or {}, ctx.blueprint)
        if not final:
            early = verify_early(verification)
            if early is None:
                return None
            verification = early
        return self._conclude(ctx, decision, entry.id, applied, verification)

    def _apply_failed(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        entry: int,
        inverse: dict[str, Any] | None,
        error: ClusterError,
    ) -> Result:
        outcome: ExecutionOutcome = "failed"
        fields = {"error": str(error), "status": error.status}
        if inverse is not None:
            # the API may have half-applied it: put back what we saw before
            self._event(ctx, "execution_failed", decision, **fields)
            outcome = self._roll_back(ctx, decision, entry, Applied(decision["operation"], inverse))
        else:
            self._step(
                ctx, "execution_failed", decision, entry, "failed", {"error": str(error)}, **fields
            )
        opened = self._count_failure(ctx, decision, f"execution failed: {error}")
        return Result(
            outcome,
            decision["id"],
            decision["operation"],
            decision["tier"],
            str(error),
            breaker_opened=opened,
        )

    def _verify(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        entry: int,
        applied: Applied,
        before: dict[str, Any],
    ) -> Result:
        """Verify after stabilization and carry out the verification's judgement."""
        reliability = ctx.blueprint["spec"]["reliability"]
        self.cluster.wait(reliability["stabilization_seconds"])
        try:
            after = self.cluster.observe(ctx.target)
        except ClusterError as e:
            after = {"error": str(e)}
        verification = verify(applied.operation, after, before, ctx.blueprint)
        return self._conclude(ctx, decision, entry, applied, verification)

    def _conclude(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        entry: int,
        applied: Applied,
        verification: Verification,
    ) -> Result:
        """Carry out what the verification judges: complete, roll back or fail; count it."""
        judgement = judge(
            verification,
            undoable=applied.inverse is not None,
            rollback_on_failure=ctx.blueprint["spec"]["reliability"]["rollback_on_failure"],
        )
        event = _VERIFICATION_EVENTS[verification.outcome]
        outcome: ExecutionOutcome = judgement.outcome
        if judgement.counts_as_success:
            self.state.record_success(ctx.service)
        if judgement.next == "roll_back":
            self._event(ctx, event, decision, verification=verification.to_json())
            outcome = self._roll_back(ctx, decision, entry, applied, reason=judgement.detail)
        else:
            status = "completed" if judgement.next == "complete" else "failed"
            self._step(
                ctx,
                event,
                decision,
                entry,
                status,
                verification.to_json(),
                verification=verification.to_json(),
            )
        opened = False
        if judgement.counts_as_failure:
            # a failed rollback has halted the service already
            opened = outcome == "rollback_failed" or self._count_failure(
                ctx, decision, judgement.detail
            )
        return Result(
            outcome,
            decision["id"],
            decision["operation"],
            decision["tier"],
            judgement.detail,
            verification=verification,
            breaker_opened=opened,
        )

    def _roll_back(
        self,
        ctx: Context,
        decision: Mapping[str, Any],
        entry: int,
        applied: Applied,
        reason: str = "execution failed",
    ) -> ExecutionOutcome:
        """Undo once and verify; a failed rollback opens the breaker. Never loops."""
        # the inverse goes with it: a rollback resumed after a crash needs it, and for most
        # kinds it is known only once the change was made (journal_begin has none)
        self._step(
            ctx,
            "rollback_started",
            decision,
            entry,
            "rolling_back",
            {"reason": reason, "inverse": applied.inverse},
            reason=reason,
            inverse=applied.inverse,
        )
        try:
            self.cluster.undo(ctx.target, applied)
            self.cluster.wait(ctx.blueprint["spec"]["reliability"]["stabilization_seconds"])
            check = verify_rollback(applied.inverse or {}, self.cluster.observe(ctx.target))
        except ClusterError as e:
            check = Verification("fail")
            error = str(e)
        else:
            error = ", ".join(c.name for c in check.failed)
        if check.outcome == "pass":
            self._step(
                ctx,
                "rollback_succeeded",
                decision,
                entry,
                "rolled_back",
                check.to_json(),
                reason=reason,
                verification=check.to_json(),
            )
            return "rolled_back"
        self._step(
            ctx,
            "rollback_failed",
            decision,
            entry,
            "rollback_failed",
            {"error": error},
            reason=reason,
            error=error,
        )
        at = self.cluster.now()
        if self.state.open_breaker(ctx.service, at, f"rollback failed: {error}"):
            self._event(
                ctx, "breaker_opened", decision, reason=f"rollback failed ({error}): service halted"
            )
        return "rollback_failed"

    def _count_failure(self, ctx: Context, decision: Mapping[str, Any], reason: str) -> bool:
        """Count a failure, ask the policies whether the breaker opens now, and record it.

        Without an answer (no breaker question, OPA failing) nothing is recorded:
        the policies still read the failure count in every later verdict.
        """
        self.state.record_failure(ctx.service)
        if self.breaker is None:
            return False
        request = {"service": ctx.service, "state": self.state.service_state(ctx.service)}
        try:
            answer = self.breaker(request)
        except PolicyError as e:
            self._event(ctx, "error", decision, error=f"breaker question failed: {e}")
            return False
        if not answer["open"]:
            return False
        why = f"{answer['reason']}; last: {reason}"
        opened = self.state.open_breaker(ctx.service, self.cluster.now(), why)
        if opened:
            self._event(ctx, "breaker_opened", decision, reason=why)
        return opened

    def _journal_inverse(
        self, ctx: Context, entry: JournalEntry, inverse: Any
    ) -> tuple[dict[str, Any] | None, str]:
        """The inverse a journal entry keeps, if it may be applied, and why not otherwise."""
        if redact.holds_mask(inverse):
            # The journal keeps no secret, so this inverse lacks the values to put back:
            # applying it would write *** into the cluster. Not undoable; a person restores it.
            log.warning("journal entry %d: the values to put back are masked", entry.id)
            return None, "; the journal masks the values to put back: restore them by hand"
        if not isinstance(inverse, dict):
            return None, ""
        refusal = self._own_refusal(ctx, inverse)
        if refusal:
            # a journal entry is data, not a decision: what Python never runs, it never
            # runs from the journal either (an edited state.db must not scale to 0)
            log.warning("journal entry %d: not putting back %s: %s", entry.id, inverse, refusal)
            return None, f"; not put back: {refusal}"
        return inverse, ""

    def recover(self, entry: JournalEntry, ctx: Context) -> str:
        """Finish a journal entry a crash left open; return its final status.

        Nothing is applied a second time: an entry that may not have been
        applied is verified, then completed or rolled back from what the
        cluster shows.
        """
        decision = {
            "id": entry.decision_id,
            "operation": entry.operation,
            "tier": "allow",
            "rules": [],
            "reasons": [f"recovering journal entry {entry.id} ({entry.status})"],
        }
        self._event(ctx, "journal_recovered", decision, journal_status=entry.status)
        inverse, why_not = self._journal_inverse(
            ctx, entry, (entry.detail or {}).get("inverse", entry.inverse)
        )
        reason = "resumed after a crash" + why_not
        applied = Applied(entry.operation, inverse)
        if entry.status == "rolling_back":
            outcome = self._roll_back(ctx, decision, entry.id, applied, reason=reason)
            return "rolled_back" if outcome == "rolled_back" else "rollback_failed"
        observation = self.cluster.observe(ctx.target)
        if entry.status == "started" and not operations.reached(entry.operation, observation):
            self.state.journal_mark(
                entry.id, "failed", self.cluster.now(), {"error": "not applied before the crash"}
            )
            return "failed"
        result = self._verify(ctx, decision, entry.id, applied, observation)
        return {"succeeded": "completed", "partial": "completed"}.get(
            result.outcome, result.outcome
        )


def _by(requester: Actor) -> dict[str, Any]:
    """Who proposed it, for an audit event: a person or an agent (the runner goes unsaid,
    so the runner's own repeated events stay as they were)."""
    return {} if requester == RUNNER else {"requester": requester}


def _verdict_fields(verdict: dict[str, Any]) -> dict[str, Any]:
    return {k: verdict[k] for k in ("tier", "rules", "reasons") if k in verdict}
