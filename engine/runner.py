"""The run loop: observe → decide → approve → execute → verify → audit, one tick at a time.

Each tick observes every service, asks OPA once (``decide_all``) with the
state from SQLite, records every decision (one the same as the last written
in full as a repeat, see ``AuditLog.tick``), turns approve-tier decisions into
approval requests, and hands allowed (or approved) operations to the
execution engine, which asks OPA again before it acts. When OPA, the audit
log or the state store fails, the tick executes nothing and says why; the
next tick tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine import moments, redact, signing
from engine.approval import ApprovalError, Approvals
from engine.audit import AuditLog
from engine.cluster import Cluster, ClusterError, Target
from engine.contracts import Decision
from engine.errors import PolicyError
from engine.execute import Context, Executor, Result
from engine.history import History, tick_window
from engine.inbox import Inbox
from engine.notify import Notifier, notification_targets
from engine.policy import PolicySession
from engine.state import Approval, JournalEntry, StateError, StateStore

log = logging.getLogger(__name__)

# Asked on a terminal for each new approval request (at the runner's time): a signed
# answer (JWS), or None to leave it for `opsgate approvals`.
Prompt = Callable[[Approval, str], "str | None"]


@dataclass
class TickReport:
    """What one tick saw and did."""

    time: str
    decisions: list[dict[str, Any]] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    requested: list[Approval] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Runner:
    """One runner over one set of blueprints, one cluster, one state directory."""

    def __init__(
        self,
        *,
        blueprints: dict[str, dict[str, Any]],
        session: PolicySession,
        cluster: Cluster,
        state: StateStore,
        audit: AuditLog,
        dry_run: bool = False,
        prompt: Prompt | None = None,
        notify: bool = False,
        inbox: Inbox | None = None,
        schedule_verification: bool | None = None,
    ) -> None:
        self.blueprints = blueprints
        self.session = session
        self.cluster = cluster
        self.state = state
        self.audit = audit
        self.prompt = prompt
        self.inbox = inbox
        # breaker resets already checked against this runner's blueprints (they don't change)
        self._checked_resets: set[str] = set()
        # only a real run notifies people: simulations and demos replay, they don't page anyone
        targets = notification_targets(blueprints) if notify else {}
        self.notifier = Notifier(targets, record=audit.record)
        self.approvals = Approvals(state, audit, notifier=self.notifier)
        # on a real cluster real time passes: verification is a later tick's step, so one
        # service's stabilization never stalls the others (the simulator's clock is virtual)
        if schedule_verification is None:
            schedule_verification = cluster.waits_in_real_time
        self.executor = Executor(
            cluster,
            state,
            audit,
            session.enforce,
            breaker=session.breaker,
            dry_run=dry_run,
            schedule_verification=schedule_verification,
        )
        self.targets = {
            name: Target(name, bp["target"]["namespace"], bp["target"]["deployment"])
            for name, bp in blueprints.items()
        }
        # what the policies remember between ticks (read from the state on the first tick)
        self.history = History(state)
        self._windows = {name: tick_window(bp) for name, bp in blueprints.items()}

    def close(self, timeout: float | None = None) -> None:
        """Wait (bounded) for notifications still being sent; record those that could not be."""
        self.notifier.close(timeout)

    def context(self, service: str) -> Context:
        """The execution context of one service."""
        return Context(self.targets[service], self.blueprints[service], self.session.revision)

    def recover(self) -> list[tuple[int, str]]:
        """Finish every journal entry a crash left open; return (entry id, final status)."""
        finished = []
        for entry in self.state.journal(unfinished=True):
            if entry.status == "verifying" and entry.service in self.blueprints:
                continue  # not interrupted: scheduled, a tick verifies it when it is due
            if entry.service not in self.blueprints:
                self.state.journal_mark(
                    entry.id,
                    "failed",
                    self.cluster.now(),
                    {"error": "service no longer has a blueprint"},
                )
                finished.append((entry.id, "failed"))
                continue
            finished.append((entry.id, self.executor.recover(entry, self.context(entry.service))))
        return finished

    def tick(self) -> TickReport:
        """Run one tick; errors are reported, and nothing is executed after one that matters."""
        now = self.cluster.now()
        report = TickReport(time=now)
        # a decision the same as the last one written in full is counted, not written again
        with self.audit.tick():
            if self.inbox is not None:
                self._read_inbox(now, report)
            try:
                self._tick(now, report)
            finally:
                if self.inbox is not None:
                    self.inbox.publish(self.state.approvals(status="pending"))
        return report

    def _read_inbox(self, now: str, report: TickReport) -> None:
        """Take the answers approvers dropped: each counts only once its signature verifies."""
        assert self.inbox is not None
        for answer in self.inbox.answers():
            try:
                if answer.token is None:
                    raise ApprovalError(answer.problem)
                approval = self.approvals.answer_signed(
                    answer.token, now=now, answerer_uid=answer.uid
                )
                report.notes.append(
                    f"approval {approval.id} {approval.status} by {approval.answered_by} "
                    "(signed answer from the inbox)"
                )
            except (ApprovalError, StateError, signing.SigningError, ValueError, TypeError) as e:
                # whatever an approver drops, it is refused, recorded and removed: it never
                # stops the runner (a name that is not UTF-8 is shown with escapes)
                name = answer.path.name.encode("utf-8", "surrogateescape").decode(
                    "ascii", "backslashreplace"
                )
                reason = str(e).encode("utf-8", "backslashreplace").decode("utf-8")
                report.errors.append(f"inbox: {name}: refused: {reason}")
                self.audit.record(
                    "approval_answer_refused",
                    answer_file=name,
                    reason=reason,
                    actor="opsgate",
                )
            finally:
                self.inbox.discard(answer)

    def _tick(self, now: str, report: TickReport) -> TickReport:
        try:
            restarted = self.session.ensure_running()
        except PolicyError as e:
            report.errors.append(f"OPA: {e}: nothing executed this tick")
            self.audit.record("error", error=f"OPA down: {e}", actor="opsgate")
            return report
        if restarted:
            report.notes.append(restarted)
            self.audit.record("opa_restarted", reason=restarted, actor="opsgate")
        self._check_breaker_resets(now, report)
        self._verify_scheduled(now, report)
        versions = {name: bp["metadata"]["version"] for name, bp in self.blueprints.items()}
        self.approvals.void_stale(versions, self.session.revision)
        self.approvals.expire(now)
        observations = []
        states = self.state.service_states()
        asked = self.approvals.bearing_on_new(now)
        fresh = {"last_operation_at": None, "consecutive_failures": 0, "breaker_open": False}
        for name in sorted(self.blueprints):
            try:
                observation = self.cluster.observe(self.targets[name])
            except ClusterError as e:
                report.errors.append(f"{name}: can't observe: {e}")
                self.audit.record(
                    "error", service=name, error=f"observe failed: {e}", actor="opsgate"
                )
                continue
            observation["state"] = states.get(name, fresh)
            observation["now"] = now
            report.observations[name] = observation
            # the policies also get the service's history; the report keeps what was observed
            remembered = {
                "history": self.history.for_policy(name),
                "requests": asked.get(name, []),
            }
            observations.append({**observation, "state": {**observation["state"], **remembered}})
        if not observations:
            return report
        try:
            documents = self.session.decide_all(observations)
        except PolicyError as e:
            report.errors.append(f"OPA: {e}: nothing executed this tick")
            self.audit.record("error", error=f"decide_all failed: {e}", actor="opsgate")
            return report
        self.history.record(
            now,
            {
                document["service"]: (
                    (document.get("recommendation") or {}).get("replicas"),
                    report.observations[document["service"]],
                )
                for document in documents
                if document["service"] in report.observations
            },
            self._windows,
        )
        for document in documents:
            service = document["service"]
            report.notes.extend(f"{service}: {note}" for note in document["notes"])
            for decision in document["decisions"]:
                self._handle(service, decision, report)
        return report

    def next_verification(self) -> tuple[str, float] | None:
        """When the earliest scheduled verification is due, and how many seconds from the
        cluster's now (None: none is scheduled; a due time that can't be read is due now)."""
        now = moments.parse(self.cluster.now())
        waits = []
        for entry in self._scheduled():
            due = str((entry.detail or {}).get("verify_at"))
            try:
                waits.append((max(0.0, (moments.parse(due) - now).total_seconds()), due))
            except ValueError:
                waits.append((0.0, due))
        if not waits:
            return None
        wait, due = min(waits)
        return due, wait

    def _scheduled(self) -> list[JournalEntry]:
        """The journal entries whose verification is scheduled, of this runner's services."""
        return [e for e in self.state.journal(status="verifying") if e.service in self.blueprints]

    def verify_due(self) -> TickReport:
        """A tick that only verifies what is due (finishing a run's own changes)."""
        now = self.cluster.now()
        report = TickReport(time=now)
        self._verify_scheduled(now, report)
        return report

    def _verify_scheduled(self, now: str, report: TickReport) -> None:
        """Verify the changes whose verification is due (or that already failed for good)."""
        for entry in self._scheduled():
            ctx = self.context(entry.service)
            try:
                result = self.executor.verify_scheduled(entry, ctx, now)
            except (PolicyError, ClusterError) as e:
                report.errors.append(f"{entry.service}: verification of entry {entry.id}: {e}")
                self.audit.record(
                    "error", **ctx.audit_fields(), error=f"verification: {e}", actor="opsgate"
                )
                continue
            if result is not None:
                report.results.append(result)

    def _check_breaker_resets(self, now: str, report: TickReport) -> None:
        """A closed breaker stays closed only if an approver of *this* runner's blueprint
        signed its reset: ``breaker reset`` is checked against the keys its caller gave."""
        for row in self.state.breakers():
            token, service = row.get("breaker_token"), row["service"]
            if row["breaker_open"] or not token or service not in self.blueprints:
                continue
            if token in self._checked_resets:
                continue
            approvers = self.blueprints[service]["governance"]["approval_workflow"]["approvers"]
            try:
                claims = signing.verify_statement(
                    token, approvers, purpose="breaker_reset", now=row["breaker_changed_at"]
                )
                if claims.get("sub") != service:
                    raise signing.SigningError(f"signed for {claims.get('sub')!r}")
            except signing.SigningError as e:
                reason = f"the breaker reset was not signed by an approver of {service}: {e}"
                self.state.open_breaker(service, now, reason)
                report.errors.append(f"{service}: {reason}: breaker open again")
                self.audit.record("breaker_opened", service=service, reason=reason, actor="opsgate")
            else:
                self._checked_resets.add(token)

    def _handle(self, service: str, decision: Decision, report: TickReport) -> None:
        ctx = self.context(service)
        report.decisions.append({"service": service, **decision})
        self.audit.record(
            "decision",
            **ctx.audit_fields(),
            decision_id=decision["id"],
            operation=decision["operation"],
            tier=decision["tier"],
            rules=decision["rules"],
            reasons=decision["reasons"],
            blueprint_refs=decision["blueprint_refs"],
            suggestion=decision["suggestion"],
            **({"request": decision["request"]} if "request" in decision else {}),
            actor="opsgate",
        )
        approval = None
        if decision["tier"] == "approve":
            plan = decision.get("request")
            if isinstance(plan, dict) and plan.get("action") == "withhold":
                report.notes.append(f"{service}: {plan.get('reason')}")
                return
            approval, new = self.approvals.request(
                decision,
                service,
                ctx.blueprint,
                self.session.revision,
                self.cluster.now(),
                plan=plan if isinstance(plan, dict) else None,
            )
            if new:
                report.requested.append(approval)
                approval = self._ask_at_terminal(approval)
            if approval.status != "granted":
                return
            # run exactly what the approver saw, not this tick's variant of it; a request
            # stored with masked values runs only as the tick's own operation, and the
            # executor refuses that unless its digest is the approved one
            if not redact.holds_mask(approval.operation):
                decision = {**decision, "operation": approval.operation}
        try:
            result = self.executor.execute(ctx, decision, approval)
        except PolicyError as e:
            report.errors.append(f"{service}: OPA re-check failed: {e}: not executed")
            self.audit.record(
                "error", **ctx.audit_fields(), error=f"re-check failed: {e}", actor="opsgate"
            )
            return
        except ClusterError as e:
            report.errors.append(f"{service}: cluster error: {e}")
            self.audit.record("error", **ctx.audit_fields(), error=f"cluster: {e}", actor="opsgate")
            return
        report.results.append(result)
        if result.outcome == "awaiting_approval" and result.verdict is not None:
            # the re-check asks for approval where the decision did not (the cluster moved
            # since): the request is filed, audited and shown, never left unsaid
            fresh = {**decision, **result.verdict, "operation": decision["operation"]}
            requested, new = self.approvals.request(
                fresh, service, ctx.blueprint, self.session.revision, self.cluster.now()
            )
            if new:
                report.requested.append(requested)

    def _ask_at_terminal(self, approval: Approval) -> Approval:
        if self.prompt is None:
            return approval
        now = self.cluster.now()
        token = self.prompt(approval, now)
        if token is None:
            return approval
        return self.approvals.answer_signed(token, now=now)
