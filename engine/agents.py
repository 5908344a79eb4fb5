"""What an AI agent may ask of opsgate, whichever door it comes through.

``AgentGate`` answers the six questions of the MCP server's tools (and the
kubectl gate's) for one named agent: list and describe the governed services,
check an operation (the verdict only), request one (carried through the gate
exactly as ``opsgate execute`` carries a person's: a fresh verdict from OPA,
approvals out of band, execution, verification, rollback, audit), read the
status of its approval requests, and read recent decisions from the audit log.

The agent is always the requester (``actor: {kind: agent, name}``): the
policies hold it to its ``governance.agents`` entry, and it can never approve
what it asked for (an approval is a person's signature, verified in Rego,
from an approver other than the requester). What an agent writes in free
text (``reason``) goes to the audit log and nowhere else: never to OPA.

The server opens the state directory, audit log and cluster for each call
and closes them after it (the runner's process may change them between
calls); the blueprints, bundle and OPA are opened once for the server's life.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from engine import moments, redact
from engine.approval import Actor
from engine.audit import AuditLog
from engine.errors import OpsgateError
from engine.execute import Context, enforce_request
from engine.proposal import propose, same_rules_as_the_runner, target_of
from engine.state import Approval
from engine.workspace import Workspace, state_paths

# the tools whose answers change nothing: every agent sees them
READ_TOOLS = (
    "list_services",
    "describe_service",
    "check_operation",
    "approval_status",
    "recent_decisions",
)
# the one that may change the cluster: shown only to an agent that may request something
ACT_TOOLS = ("request_operation",)
# what an agent may write in free text, kept (masked) in the audit log only
MAX_REASON_CHARS = 1000
MAX_RECENT = 100
# audit events recent_decisions shows
_DECISION_EVENTS = frozenset(
    {
        "decision",
        "blocked",
        "deferred",
        "dry_run",
        "execution_started",
        "execution_succeeded",
        "execution_failed",
        "verification_passed",
        "verification_failed",
        "verification_partial",
        "rollback_started",
        "rollback_succeeded",
        "rollback_failed",
        "breaker_opened",
        "approval_requested",
        "approval_granted",
        "approval_rejected",
        "approval_expired",
        "approval_refused",
        "agent_request",
    }
)


class AgentError(OpsgateError):
    """A tool call that can't be answered: one line, told to the agent."""


class AgentGate:
    """The answers one agent gets, on the runner's state directory."""

    def __init__(
        self,
        source: Workspace,
        state_dir: Path,
        agent: str,
        *,
        opa: str,
        audit_key: Path | None = None,
    ) -> None:
        self.source = source
        self.state_dir = state_dir
        self.actor: Actor = {"kind": "agent", "name": agent}
        self.opa = opa
        self.audit_key = audit_key
        self._authority: dict[str, Any] | None = None

    # --- what the agent may see -------------------------------------------------------

    def authority(self) -> dict[str, Any]:
        """The policies' word on what this agent may ever request, per service (asked once:
        the server's bundle is compiled once, so the answer can't change while it serves)."""
        if self._authority is None:
            self._authority = self.source.session.authority(dict(self.actor))
        return self._authority

    @property
    def knows_authority(self) -> bool:
        """True once the authority was asked (tools() then asks nothing of OPA)."""
        return self._authority is not None

    def tools(self) -> tuple[str, ...]:
        """The tools this agent is shown: request_operation only if it may request anything."""
        return READ_TOOLS + (ACT_TOOLS if self.authority()["may_act"] else ())

    def ensure_opa(self) -> None:
        """Restart the managed OPA if it died since the last call (audited), as the runner
        does each tick; PolicyError while it can't be: the call is refused, nothing runs."""
        restarted = self.source.session.ensure_running()
        if restarted:
            with self._workspace(acting=True) as workspace:
                workspace.audit.record("opa_restarted", reason=restarted, actor="opsgate")

    # --- the tools --------------------------------------------------------------------

    def list_services(self) -> dict[str, Any]:
        """Every governed service, where it runs, and what this agent may request of it."""
        authority = self.authority()["services"]
        services = []
        for name, blueprint in sorted(self.source.blueprints.items()):
            services.append(
                {
                    "service": name,
                    "namespace": blueprint["target"]["namespace"],
                    "deployment": blueprint["target"]["deployment"],
                    "owner": blueprint["metadata"]["owner"],
                    "description": blueprint["metadata"].get("description", ""),
                    "may_request": authority.get(name, {}).get("may_request", []),
                }
            )
        return {"agent": self.actor["name"], "services": services}

    def describe_service(self, service: str) -> dict[str, Any]:
        """The blueprint's summary, the current observation, open approvals, breaker, cooldown."""
        blueprint = self._blueprint(service)
        spec = blueprint["spec"]
        with self._workspace() as workspace:
            observation = workspace.cluster.observe(target_of(blueprint, service))
            state = workspace.state.service_state(service)
            open_requests = [
                _approval_summary(a)
                for status in ("pending", "granted")
                for a in workspace.state.approvals(status=status, service=service)
            ]
            now = workspace.cluster.now()
        cooldown = spec["scaling"]["cooldown_seconds"]
        last = state.get("last_operation_at")
        until = moments.later(last, cooldown) if isinstance(last, str) else None
        return _masked(
            {
                "service": service,
                "blueprint": {
                    "version": blueprint["metadata"]["version"],
                    "owner": blueprint["metadata"]["owner"],
                    "target": blueprint["target"],
                    "scaling": spec["scaling"],
                    "performance": spec.get("performance", {}),
                    "resources": spec["resources"],
                },
                "may_request": self.authority()["services"].get(service, {}).get("may_request", []),
                "observation": {
                    k: observation.get(k) for k in ("replicas", "metrics", "resources", "pods")
                },
                "open_approvals": open_requests,
                "breaker_open": bool(state.get("breaker_open")),
                "cooldown_until": until if until is not None and until > now else None,
                "now": now,
            }
        )

    def check_operation(self, service: str, operation: dict[str, Any]) -> dict[str, Any]:
        """The verdict OPA gives this agent's operation now; nothing is run or written."""
        blueprint = self._blueprint(service)
        with self._workspace() as workspace:
            context = Context(target_of(blueprint, service), blueprint, workspace.session.revision)
            request, _ = enforce_request(
                workspace.cluster, workspace.state, context, operation, self.actor
            )
            verdict = workspace.session.enforce(request)
        return _masked(_verdict_summary(verdict))

    def request_operation(
        self, service: str, operation: dict[str, Any], reason: str | None = None
    ) -> dict[str, Any]:
        """Carry the operation through the gate for this agent (see ``engine.proposal``)."""
        self._blueprint(service)
        with self._workspace(acting=True) as workspace:
            same_rules_as_the_runner(workspace, self.opa)
            # what the agent says of its request is kept for people to read, never decided on
            workspace.audit.record(
                "agent_request",
                service=service,
                operation=redact.mask_operation(operation),
                requester=dict(self.actor),
                actor=self.actor["name"],
                reason=redact.mask(reason[:MAX_REASON_CHARS]) if reason else None,
            )
            proposal = propose(
                workspace, service, operation, self.actor, opa=self.opa, find_granted=True
            )
        shown = proposal.to_json()
        if proposal.result.outcome == "awaiting_approval" and proposal.approval is not None:
            shown["how_to_answer"] = _how_to_answer(proposal.approval)
        if proposal.result.outcome == "deferred":
            shown["retry_after"] = self._retry_after(service)
        return _masked({"service": service, **shown})

    def refused(self, command: str, reason: str) -> None:
        """Audit a command of this agent that was refused before any operation was asked
        (the kubectl gate could not map it, or one of its operations is forbidden)."""
        with self._workspace(acting=True) as workspace:
            workspace.audit.record(
                "agent_request",
                requester=dict(self.actor),
                actor=self.actor["name"],
                command=redact.mask_text(command[:MAX_REASON_CHARS]),
                refused=redact.mask_text(reason),
            )

    def first_pod(self, service: str) -> str:
        """The name of one pod of the service as observed now (for a whole-Deployment
        restart: opsgate's restart_pod restarts through a rollout)."""
        blueprint = self._blueprint(service)
        with self._workspace() as workspace:
            pods = workspace.cluster.observe(target_of(blueprint, service)).get("pods") or []
        names: list[str] = [
            p["name"] for p in pods if isinstance(p, dict) and isinstance(p.get("name"), str)
        ]
        if not names:
            raise AgentError(f"{service} has no pod to restart now")
        return sorted(names)[0]

    def approval_status(self, approval_id: str) -> dict[str, Any]:
        """One of this agent's approval requests: its status and who answered."""
        with self._workspace() as workspace:
            approval = workspace.state.approval(approval_id)
        if approval is None or approval.requester != self.actor:
            raise AgentError(f"no approval request {approval_id!r} of agent {self.actor['name']}")
        return _masked(
            {
                **_approval_summary(approval),
                "answered_by": approval.answered_by,
                "answered_at": approval.answered_at,
                "justification": approval.justification,
                "signed": approval.token is not None,
                "next": _next_step(approval),
            }
        )

    def recent_decisions(self, service: str | None = None, limit: int = 20) -> dict[str, Any]:
        """The last ``limit`` decisions, executions and approvals in the audit log."""
        if service is not None:
            self._blueprint(service)
        limit = max(1, min(limit, MAX_RECENT))
        path = state_paths(self.state_dir, create=True).audit
        kept: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)
        for event in AuditLog(path).events():
            if event.get("event") in _DECISION_EVENTS and (
                service is None or event.get("service") == service
            ):
                kept.append(_event_summary(event))
        return _masked({"events": list(kept)})

    # --- helpers ----------------------------------------------------------------------

    def _blueprint(self, service: str) -> dict[str, Any]:
        blueprints = self.source.blueprints
        if service not in blueprints:
            known = ", ".join(sorted(blueprints))
            raise AgentError(f"unknown service {service!r}: the governed services are {known}")
        return blueprints[service]

    @contextmanager
    def _workspace(self, *, acting: bool = False) -> Iterator[Workspace]:
        """The runner's state directory for one call, closed after it."""
        with self.source.on_state(
            self.state_dir,
            create=True,
            audit_key=self.audit_key if acting else None,
            record_retention=acting,
        ) as workspace:
            yield workspace

    def _retry_after(self, service: str) -> str | None:
        """When the service's cooldown ends (None when none holds it back)."""
        blueprint = self._blueprint(service)
        with self._workspace() as workspace:
            last = workspace.state.service_state(service).get("last_operation_at")
        if not isinstance(last, str):
            return None
        return moments.later(last, blueprint["spec"]["scaling"]["cooldown_seconds"])


def _masked(value: dict[str, Any]) -> dict[str, Any]:
    """What the agent is shown: secrets masked by key and by value (see engine.redact)."""
    return cast(dict[str, Any], redact.mask(value))


def _keyed(approval: Approval) -> bool:
    """Whether any approver of the request has a public key (only they can sign)."""
    return any(isinstance(a, dict) and a.get("public_key") for a in approval.approver_keys or [])


def _how_to_answer(approval: Approval) -> str:
    """What a person does about a request, and what the agent does next."""
    told = (
        f"a person named in governance.approval_workflow.approvers runs: opsgate approvals "
        f"approve {approval.id} --key PATH --reason TEXT (or reject); ask again with "
        "request_operation once approval_status says granted and signed"
    )
    if not _keyed(approval):
        told += (
            "; but no approver of this service has a public_key, so no answer can make it "
            "run: an administrator adds {name, public_key} (opsgate approvals keygen) to "
            "governance.approval_workflow.approvers"
        )
    return told


def _next_step(approval: Approval) -> str:
    """What the agent can do about one of its requests now."""
    if approval.status == "granted" and approval.token is None:
        return (
            f"nothing yet: {approval.answered_by} granted it by name only, without a signature, "
            "which can't make a real execution run; an approver must answer with a key "
            f"(opsgate approvals approve {approval.id} --key PATH)"
        )
    return {
        "granted": "ask again with request_operation: it runs once, with this approval",
        "pending": "wait: a person answers out of band",
    }.get(approval.status, "nothing: this request is closed")


def _verdict_summary(verdict: dict[str, Any]) -> dict[str, Any]:
    return {
        k: verdict.get(k)
        for k in (
            "service",
            "tier",
            "operation",
            "reasons",
            "rules",
            "blueprint_refs",
            "suggestion",
            "bundle_revision",
        )
    }


def _approval_summary(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "service": approval.service,
        "status": approval.status,
        "operation": approval.operation,
        "requester": approval.requester,
        "requested_at": approval.requested_at,
        "expires_at": approval.expires_at,
        "reasons": approval.reasons,
    }


def _event_summary(event: dict[str, Any]) -> dict[str, Any]:
    keys: tuple[str, ...] = (
        "time",
        "event",
        "service",
        "tier",
        "operation",
        "reasons",
        "reason",
        "error",
    )
    if event.get("event") == "agent_request":
        # an agent's own words (its reason) are for people: shown to no agent, lest one
        # agent's text become another's instructions
        keys = tuple(k for k in keys if k != "reason")
    out = {k: event[k] for k in keys if k in event}
    for key in ("requester", "approval_id", "id", "outcome"):
        if key in event:
            out[key] = event[key]
    return out
