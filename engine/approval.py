"""The approval workflow: approve-tier operations wait for a signed approval.

A request covers exactly one operation: the service, the operation's
canonical digest (every field), the blueprint name and version, the bundle
revision and the requester (``actor``). It expires after the blueprint's
``approval_workflow.timeout_seconds`` (an expired request is a rejection). A
request made under another blueprint version or bundle revision is void.

An approver answers with a statement signed by their key (an Ed25519 JWS,
see ``engine.signing``) whose claims bind every field above; it is checked
here before it is stored, and Rego checks it again, with the public key
alone, before anything runs. An approver named without a key may answer
for dry runs and simulations only: a real execution needs the signature.
Nobody approves their own request. Answering never executes anything.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Mapping
from typing import Any

from engine import moments, operations, redact, signing
from engine.audit import AuditLog
from engine.errors import OpsgateError
from engine.notify import Notifier
from engine.state import Approval, StateStore

log = logging.getLogger(__name__)

# Who proposed an operation: the runner itself, a person, or an AI agent.
Actor = dict[str, str]
RUNNER: Actor = {"kind": "runner", "name": "opsgate"}


# statuses in which a request can still be answered or used
_OPEN = ("pending", "granted")


class ApprovalError(OpsgateError):
    """An approval can't be given or refused (unknown id, not an approver, already answered)."""


def fingerprint(
    service: str,
    operation: dict[str, Any],
    version: str,
    revision: str,
    requester: Actor | None = None,
) -> str:
    """A stable id for "this operation on this service under these rules, for this requester"."""
    proposal = {k: v for k, v in operation.items() if k != "from"}
    material = json.dumps(
        [service, proposal, version, revision, requester or RUNNER], sort_keys=True
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def caller_uid(runner_uid: int | None = None) -> int:
    """The OS user behind this process: its uid, or, when it runs as the runner's user
    through sudo, the user sudo ran it for (``SUDO_UID``)."""
    uid = os.getuid()
    sudo = os.environ.get("SUDO_UID", "")
    if sudo.isdigit() and uid in (runner_uid if runner_uid is not None else uid, 0):
        return int(sudo)
    return uid


def answer_time(approval: Approval, wall_clock: str) -> str:
    """When an approver answers by the wall clock, kept within the request's life: a
    simulated runner's clock is not the wall's, and an answer must come before expiry."""
    latest = moments.format(moments.parse(approval.expires_at) - datetime.timedelta(seconds=1))
    return min(max(wall_clock, approval.requested_at), latest)


def claims(approval: Approval, purpose: str, now: str, reason: str | None) -> dict[str, Any]:
    """What an approver signs to answer ``approval``: every field the request is bound to.

    The justification is signed masked, so a secret typed into it goes nowhere.
    """
    issued = signing.epoch(now)
    return {
        "purpose": purpose,
        "jti": approval.id,
        "nonce": approval.nonce,
        "sub": approval.service,
        "operation_digest": approval.operation_digest,
        "blueprint": {"name": approval.blueprint_name, "version": approval.blueprint_version},
        "bundle_revision": approval.bundle_revision,
        "requester": approval.requester or RUNNER,
        "iat": issued,
        "exp": max(issued, signing.epoch(approval.expires_at)),
        "reason": redact.mask_text(reason or ""),
    }


def binding_problems(
    approval: Approval,
    service: str,
    operation: dict[str, Any],
    blueprint: dict[str, Any],
    revision: str,
    requester: Actor,
) -> list[str]:
    """Why ``approval`` does not cover this operation (empty when it does).

    Rego checks the signed claims; this checks the stored request the same
    way, so a mismatch is refused with a plain reason even before OPA is asked.
    """
    problems = []
    if approval.status != "granted":
        problems.append(f"approval request {approval.id} is {approval.status}, not granted")
    if approval.service != service:
        problems.append(f"approval {approval.id} is for service {approval.service}, not {service}")
    if approval.operation_digest != signing.operation_digest(operation, approval.nonce):
        problems.append(
            f"approval {approval.id} covers another operation "
            f"({_describe_digest(approval)}): every field must match"
        )
    version = blueprint["metadata"]["version"]
    if (approval.blueprint_name, approval.blueprint_version) != (
        blueprint["metadata"]["name"],
        version,
    ):
        problems.append(
            f"approval {approval.id} was given under blueprint "
            f"{approval.blueprint_name}@{approval.blueprint_version}, not "
            f"{blueprint['metadata']['name']}@{version}"
        )
    if approval.bundle_revision != revision:
        problems.append(
            f"approval {approval.id} was given under bundle revision {approval.bundle_revision}, "
            f"not {revision}"
        )
    if (approval.requester or RUNNER) != requester:
        problems.append(
            f"approval {approval.id} was requested by {_actor(approval.requester or RUNNER)}, "
            f"not {_actor(requester)}"
        )
    return problems


def _describe_digest(approval: Approval) -> str:
    return f"{approval.operation.get('type', '?')}, digest {approval.operation_digest[:12]}"


def _actor(actor: Actor) -> str:
    return f"{actor.get('kind')} {actor.get('name')}"


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
        decision: Mapping[str, Any],
        service: str,
        blueprint: dict[str, Any],
        revision: str,
        now: str,
        requester: Actor | None = None,
        plan: Mapping[str, Any] | None = None,
    ) -> tuple[Approval, bool]:
        """The request for this decision: the existing one, or a new one. True if new.

        The runner's own requests are one at a time per kind of change; a
        person's or an agent's request is for exactly the operation given.
        ``plan`` is the policies' word on the runner's request (the decision's
        ``request``): keep the open one, or supersede it (closed, audited, and a
        new one that names it is filed and notified).
        """
        requester = requester or RUNNER
        supersedes = None
        if requester == RUNNER and plan is not None and isinstance(plan.get("id"), str):
            named = self.state.approval(plan["id"])
            if named is not None and named.status == "pending" and named.service == service:
                if plan.get("action") == "keep":
                    return named, False
                if plan.get("action") == "supersede":
                    reason = str(plan.get("reason") or "the decision moved materially")
                    self._close(named, "approval_superseded", "superseded", reason)
                    supersedes = named.id
        version = blueprint["metadata"]["version"]
        request_id = fingerprint(service, decision["operation"], version, revision, requester)
        existing = self.state.approval(request_id)
        nonce = secrets.token_hex(8)
        # the policies said the runner may ask again (a day after a refusal, or moved)
        renewed = (
            requester == RUNNER and plan is not None and plan.get("action") in ("new", "supersede")
        )
        if (
            existing is not None
            and (requester != RUNNER or renewed)
            and existing.status not in _OPEN
        ):
            # a person or an agent asking again after an answer or an expiry gets a new
            # request (the runner only when the policies say so: it would page people
            # every tick)
            request_id = hashlib.sha256(f"{request_id}:{nonce}".encode()).hexdigest()[:16]
            existing = None
        if existing is None and requester == RUNNER:
            existing = self._open_of_same_kind(service, decision["operation"])
        if existing is not None:
            return existing, False
        timeout = blueprint["governance"]["approval_workflow"]["timeout_seconds"]
        approvers = list(blueprint["governance"]["approval_workflow"]["approvers"])
        approval = Approval(
            id=request_id,
            service=service,
            decision_id=decision["id"],
            # stored and shown masked; the digest binds the real values
            operation=redact.mask_operation(decision["operation"]),
            reasons=decision["reasons"],
            rules=decision["rules"],
            blueprint_refs=decision["blueprint_refs"],
            blueprint_name=blueprint["metadata"]["name"],
            blueprint_version=version,
            bundle_revision=revision,
            approvers=[signing.approver_name(entry) for entry in approvers],
            requested_at=now,
            expires_at=moments.format(moments.parse(now) + datetime.timedelta(seconds=timeout)),
            status="pending",
            answered_by=None,
            answered_at=None,
            justification=None,
            operation_digest=signing.operation_digest(decision["operation"], nonce),
            requester=requester,
            nonce=nonce,
            requester_uid=caller_uid(self.state.owner_uid()),
            approver_keys=approvers,
            supersedes=supersedes,
        )
        self._record(
            "approval_requested",
            approval,
            actor=requester["name"],
            requester=requester,
            operation_digest=approval.operation_digest,
            blueprint_refs=approval.blueprint_refs,
            approvers=approval.approvers,
            expires_at=approval.expires_at,
            **({"supersedes": supersedes} if supersedes else {}),
        )
        self.state.add_approval(approval)
        return approval, True

    def bearing_on_new(self, now: str) -> dict[str, list[dict[str, Any]]]:
        """Per service, the runner's own requests that bear on asking again (the
        observation's ``state.requests``): pending ones, and those rejected or expired
        in the last day, with when they were asked or answered. One read for a tick."""
        since = moments.parse(now) - datetime.timedelta(days=1)
        found: dict[str, list[dict[str, Any]]] = {}
        # the database reads only what a day may bear on, by date (a day earlier still, for
        # a time written with an offset), not every refusal ever; the moment is checked below
        day = (since - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
        for status in ("pending", "rejected", "expired"):
            bound = None if status == "pending" else day
            for approval in self.state.approvals(status=status, since_day=bound):
                if (approval.requester or RUNNER) != RUNNER or redact.holds_mask(
                    approval.operation
                ):
                    # a masked operation can't be compared with a new one: the same-kind
                    # rule below keeps one request at a time for it
                    continue
                at = {
                    "pending": approval.requested_at,
                    "rejected": approval.answered_at or approval.requested_at,
                    "expired": approval.expires_at,
                }[status]
                try:
                    if status != "pending" and moments.parse(at) < since:
                        continue
                except ValueError:
                    continue
                found.setdefault(approval.service, []).append(
                    {"id": approval.id, "status": status, "operation": approval.operation, "at": at}
                )
        return found

    def _open_of_same_kind(self, service: str, operation: dict[str, Any]) -> Approval | None:
        """The runner's own pending or granted request for the same kind of change (one at a
        time per kind; someone else's request never holds the runner's back)."""
        kind = operations.same_kind(operation)
        for status in ("granted", "pending"):
            for approval in self.state.approvals(status=status, service=service):
                mine = (approval.requester or RUNNER) == RUNNER
                if mine and operations.same_kind(approval.operation) == kind:
                    return approval
        return None

    def answer(
        self, approval_id: str, *, grant: bool, by: str, reason: str | None, now: str
    ) -> Approval:
        """Answer a pending request by name only (no key): valid for dry runs, never executed.

        An approver whose governance entry has a public key must sign instead.
        """
        approval = self._pending(approval_id, now)
        if by not in approval.approvers:
            raise ApprovalError(
                f"{by} may not answer {approval.id}: approvers for {approval.service} are "
                f"{', '.join(approval.approvers) or '(none)'}"
            )
        if any(
            isinstance(entry, dict) and entry.get("name") == by
            for entry in approval.approver_keys or []
        ):
            raise ApprovalError(
                f"{by} has a public key in governance.approval_workflow.approvers: sign the "
                f"answer with it (opsgate approvals approve {approval.id} --key PATH)"
            )
        self._four_eyes(approval, by)
        if grant and not (reason or "").strip():
            raise ApprovalError("a justification (--reason) is required to approve")
        reason = redact.mask_text(reason) if reason else reason  # stored and sent masked
        status = "granted" if grant else "rejected"
        self._record(f"approval_{status}", approval, actor=by, justification=reason, signed=False)
        return self.state.answer_approval(approval.id, status, by, now, reason)

    def answer_signed(self, token: str, *, now: str, answerer_uid: int | None = None) -> Approval:
        """Answer a pending request with a signed statement, checked before it is stored.

        ``answerer_uid`` is the OS user the answer came from (the caller, or the owner of
        the file dropped in the inbox): never the one who requested it, unless both are
        the runner's own user (a single-user setup, where the OS can't tell people apart).
        """
        try:
            stated = signing.unverified_claims(token)
        except signing.SigningError as e:
            raise ApprovalError(str(e)) from e
        purpose = stated.get("purpose")
        if purpose not in ("approve", "reject"):
            raise ApprovalError(f"a signed answer must approve or reject, not {purpose!r}")
        approval = self._pending(str(stated.get("jti")), now)
        try:
            verified = signing.verify_statement(
                token, approval.approver_keys or [], purpose=purpose, now=now
            )
        except signing.SigningError as e:
            raise ApprovalError(f"answer to {approval.id} refused: {e}") from e
        expected = claims(approval, purpose, now, None)
        fields = ("jti", "nonce", "sub", "operation_digest", "blueprint", "bundle_revision")
        for field in (*fields, "requester"):
            if verified.get(field) != expected[field]:
                raise ApprovalError(
                    f"answer to {approval.id} refused: it was signed for another {field}"
                )
        if verified["exp"] > expected["exp"]:
            raise ApprovalError(
                f"answer to {approval.id} refused: valid beyond the request's expiry "
                f"{approval.expires_at}"
            )
        by = str(verified["approver"])
        self._four_eyes(approval, by)
        self._other_os_user(
            approval, caller_uid(self.state.owner_uid()) if answerer_uid is None else answerer_uid
        )
        reason = redact.mask_text(str(verified.get("reason") or ""))
        grant = purpose == "approve"
        if grant and not reason.strip():
            raise ApprovalError("a justification (--reason) is required to approve")
        status = "granted" if grant else "rejected"
        self._record(
            f"approval_{status}",
            approval,
            actor=by,
            justification=reason,
            signed=True,
            signed_answer=token,
        )
        return self.state.answer_approval(approval.id, status, by, now, reason, token)

    def _pending(self, approval_id: str, now: str) -> Approval:
        """The pending, unexpired request ``approval_id``, or ApprovalError."""
        approval = self.state.approval(approval_id)
        if approval is None:
            raise ApprovalError(f"no approval request {approval_id}")
        if approval.status != "pending":
            raise ApprovalError(f"approval request {approval.id} is already {approval.status}")
        if moments.parse(approval.expires_at) <= moments.parse(now):
            self.expire(now)
            raise ApprovalError(f"approval request {approval.id} expired at {approval.expires_at}")
        return approval

    def _other_os_user(self, approval: Approval, answerer_uid: int) -> None:
        """Four eyes by the OS too: the answer may not come from the requester's own account."""
        if (
            approval.requester_uid is not None
            and answerer_uid == approval.requester_uid
            and answerer_uid != self.state.owner_uid()
        ):
            raise ApprovalError(
                f"the answer to {approval.id} comes from the account that requested it "
                f"(uid {answerer_uid}): someone else must answer"
            )

    @staticmethod
    def _four_eyes(approval: Approval, by: str) -> None:
        requester = approval.requester or RUNNER
        if by == requester.get("name"):
            raise ApprovalError(
                f"{by} requested {approval.id} and can't approve it: someone else must answer"
            )

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
            if moments.parse(approval.expires_at) <= moments.parse(now)
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
