"""``opsgate approvals``: list, show and answer approval requests from any shell."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from engine import signing
from engine.approval import ApprovalError, Approvals, answer_time, claims
from engine.audit import AuditError, AuditLog, utc_now
from engine.cli.application import Application, application
from engine.cli.options import (
    approver_signer,
    audit_key_option,
    checked_approval_id,
    checked_name,
    inbox_option,
    json_option,
    key_option,
    ssh_agent_option,
    state_dir_option,
)
from engine.cli.terminal import describe_masked, emit_json, escape, line, note
from engine.cluster.simulated import SimulatedCluster
from engine.inbox import Inbox, default_inbox
from engine.notify import TARGETS_FILE, Notifier, failures_by_request, load_targets
from engine.redact import holds_mask, mask
from engine.state import StateStore
from engine.workspace import Workspace


def _runner_state(workspace: Workspace) -> StateStore:
    """The runner's state database; a usage error when the runner never ran there."""
    if not workspace.paths.state.exists():
        raise click.UsageError(
            f"no runner state in {workspace.state_dir} (run opsgate run first, or pass --state-dir)"
        )
    return workspace.state


@click.group(
    epilog="""\b
Examples:
  opsgate approvals list
  opsgate approvals show 3f9c2a
  opsgate approvals approve 3f9c2a --key ~/.ssh/id_ed25519 --reason "traffic event, DB pool raised"
  opsgate approvals reject 3f9c2a --key ~/.ssh/id_ed25519 --reason "wait for the DB upgrade"
  opsgate approvals keygen ~/.ssh/opsgate_ed25519 --name sre-lead""",
)
def approvals() -> None:
    """Answer the approval requests of a running (or stopped) runner.

    An answer is a statement signed with the approver's ssh-ed25519 key,
    bound to exactly one request (service, operation, blueprint version,
    bundle revision, requester). Only approvers listed with that public key
    in the blueprint's governance may answer, and never for their own
    request. Answering executes nothing by itself: the runner asks OPA again,
    and Rego verifies the signature, before it acts.
    """


@approvals.command("list", epilog="Example:  opsgate approvals list --all --json")
@click.option(
    "--all", "show_all", is_flag=True, help="Include answered, expired and void requests."
)
@state_dir_option
@inbox_option
@json_option
@click.pass_context
def list_(
    ctx: click.Context, show_all: bool, state_dir: Path, inbox: Path | None, as_json: bool
) -> None:
    """List pending approval requests (oldest first).

    An approver who can't read the runner's private state sees the requests
    the runner published in the inbox (pending ones only).
    """
    failed: dict[str, list[str]] = {}
    box = _inbox_for(state_dir, inbox)
    if box is not None:
        requests = box.requests()
    else:
        with application(ctx).workspace(state_dir=state_dir) as workspace:
            requests = _runner_state(workspace).approvals(status=None if show_all else "pending")
        try:
            failed = failures_by_request(AuditLog(workspace.paths.audit).events())
        except AuditError as e:
            note(f"notification failures not shown: {escape(str(e))}")
    if as_json:
        emit_json(
            [
                mask(
                    {**r.to_json(), "notification_failures": failed.get(r.id, [])}, keep=("token",)
                )
                for r in requests
            ]
        )
        return
    for r in requests:
        line(
            f"{r.id}  {r.status:<8} {r.service:<14} {describe_masked(r.operation)}  "
            f"expires {r.expires_at}"
        )
        for failure in failed.get(r.id, []):
            line(f"    notify failed: {failure}")
    if not requests:
        note("no pending approval requests" if not show_all else "no approval requests")


@approvals.command(epilog="Example:  opsgate approvals show 3f9c2a")
@click.argument("approval_id", callback=checked_approval_id)
@state_dir_option
@inbox_option
@json_option
@click.pass_context
def show(
    ctx: click.Context, approval_id: str, state_dir: Path, inbox: Path | None, as_json: bool
) -> None:
    """Show one request: operation, reasons, rules, blueprint fields, approvers."""
    box = _inbox_for(state_dir, inbox)
    if box is not None:
        request = box.request(approval_id)
    else:
        with application(ctx).workspace(state_dir=state_dir) as workspace:
            request = _runner_state(workspace).approval(approval_id)
    if request is None:
        raise click.ClickException(f"no approval request {approval_id}")
    shown = mask(request.to_json(), keep=("token",))
    if as_json:
        emit_json(shown)
        return
    for key, value in shown.items():
        line(f"{key:>18}: {value}")


def _now(workspace: Workspace) -> str:
    """The runner's clock: the simulated cluster's virtual time when there is one."""
    # read, never saved: the runner saves the cluster; an answer must not turn its clock back
    cluster_path = workspace.paths.cluster
    if cluster_path.exists():
        return SimulatedCluster.load(cluster_path).now()
    return utc_now()[:19] + "Z"


def _inbox_for(state_dir: Path, inbox: Path | None) -> Inbox | None:
    """The inbox when this user can't use the state dir (an approver); None when it can."""
    try:
        if state_dir.stat().st_uid == os.geteuid():
            return None
    except OSError:
        pass
    box = Inbox(inbox or default_inbox(state_dir))
    if not box.requests_dir.is_dir():
        raise click.UsageError(
            f"no runner state in {state_dir} and no inbox at {box.path} "
            "(run opsgate run first, or pass --state-dir or --inbox)"
        )
    # what is published is trusted only if the runner (the owner of its state) wrote it
    try:
        runner = os.lstat(state_dir)
    except OSError as e:
        raise click.UsageError(
            f"{state_dir}: can't tell who runs the runner ({e.strerror}): pass its --state-dir"
        ) from e
    if not stat.S_ISDIR(runner.st_mode):
        raise click.UsageError(f"{state_dir}: the state directory is not a directory (a symlink?)")
    box.check_published_by(runner.st_uid)
    return box


def _answer(
    app: Application,
    approval_id: str,
    key: Path | None,
    use_agent: bool,
    by: str | None,
    reason: str | None,
    state_dir: Path,
    inbox: Path | None,
    grant: bool,
    audit_key: Path | None,
) -> None:
    if (key is None and not use_agent) == (by is None):
        raise click.UsageError(
            "give --key PATH or --ssh-agent (a signed answer), or --by NAME (name only)"
        )
    purpose = "approve" if grant else "reject"
    verb = "approved" if grant else "rejected"
    box = _inbox_for(state_dir, inbox)
    if box is not None:
        _drop_answer(approval_id, key, use_agent, reason, box, purpose)
        return
    with app.workspace(state_dir=state_dir, audit_key=audit_key) as workspace:
        state = _runner_state(workspace)
        audit = workspace.audit
        notifier = Notifier(load_targets(state_dir / TARGETS_FILE), record=audit.record)
        workflow = Approvals(state, audit, notifier=notifier)
        now = _now(workspace)
        try:
            if by is None:
                request = state.approval(approval_id)
                if request is None:
                    raise ApprovalError(f"no approval request {approval_id}")
                signer = approver_signer(key, use_agent, request.approver_keys or [])
                token = signer.statement(claims(request, purpose, now, reason))
                answered = workflow.answer_signed(token, now=now)
            else:
                assert by is not None
                answered = workflow.answer(approval_id, grant=grant, by=by, reason=reason, now=now)
        finally:
            notifier.close()  # bounded wait; failures are logged and audited
    # closed: a signed checkpoint over the answer and its failures
    verb = "approved" if grant else "rejected"
    how = "signed" if answered.token else "by name only: good for dry runs, not for an execution"
    note(
        f"{escape(answered.id)} {verb} by {escape(answered.answered_by or '?')} ({how}): "
        f"{escape(describe_masked(answered.operation))} on {escape(answered.service)}"
    )


def _drop_answer(
    approval_id: str,
    key: Path | None,
    use_agent: bool,
    reason: str | None,
    box: Inbox,
    purpose: str,
) -> None:
    """Sign a published request and leave the answer in the inbox for the runner to verify."""
    if key is None and not use_agent:
        raise click.UsageError(
            "without access to the runner's state an answer must be signed: give --key PATH"
        )
    request = box.request(approval_id)
    if request is None:
        raise ApprovalError(f"no pending approval request {approval_id} published in {box.path}")
    if not holds_mask(request.operation) and (
        signing.operation_digest(request.operation, request.nonce) != request.operation_digest
    ):
        raise ApprovalError(
            f"published request {request.id}: its operation does not match the digest it "
            "asks you to sign: refusing to sign it"
        )
    signer = approver_signer(key, use_agent, request.approver_keys or [])
    now = answer_time(request, utc_now()[:19] + "Z")
    token = signer.statement(claims(request, purpose, now, reason))
    dropped = box.drop(request.id, signer.name, purpose, token)
    note(
        f"{escape(request.id)}: signed answer ({purpose}) by {escape(signer.name)} left in "
        f"{escape(str(dropped.parent))}; the runner verifies it at its next tick"
    )


_by_option = click.option(
    "--by",
    default=None,
    callback=checked_name,
    help="Answer by name only, for an approver listed without a key (dry runs, simulations).",
)


@approvals.command(
    epilog='Example:  opsgate approvals approve 3f9c2a --key ~/.ssh/id_ed25519 --reason "planned"'
)
@click.argument("approval_id", callback=checked_approval_id)
@key_option
@ssh_agent_option
@_by_option
@click.option("--reason", required=True, help="Justification, signed and kept in the audit log.")
@state_dir_option
@inbox_option
@audit_key_option
@click.pass_context
def approve(
    ctx: click.Context,
    approval_id: str,
    key: Path | None,
    use_agent: bool,
    by: str | None,
    reason: str,
    state_dir: Path,
    inbox: Path | None,
    audit_key: Path | None,
) -> None:
    """Grant a pending request with your signature."""
    _answer(
        application(ctx), approval_id, key, use_agent, by, reason, state_dir, inbox, True, audit_key
    )


@approvals.command(
    epilog='Example:  opsgate approvals reject 3f9c2a --key ~/.ssh/id_ed25519 --reason "not now"'
)
@click.argument("approval_id", callback=checked_approval_id)
@key_option
@ssh_agent_option
@_by_option
@click.option("--reason", default=None, help="Why, signed and kept in the audit log.")
@state_dir_option
@inbox_option
@audit_key_option
@click.pass_context
def reject(
    ctx: click.Context,
    approval_id: str,
    key: Path | None,
    use_agent: bool,
    by: str | None,
    reason: str | None,
    state_dir: Path,
    inbox: Path | None,
    audit_key: Path | None,
) -> None:
    """Refuse a pending request with your signature."""
    _answer(
        application(ctx),
        approval_id,
        key,
        use_agent,
        by,
        reason,
        state_dir,
        inbox,
        False,
        audit_key,
    )


@approvals.command(
    epilog="""\b
Example:
  opsgate approvals keygen ~/.ssh/opsgate_ed25519 --name sre-lead
  (ssh-keygen -t ed25519 makes a key that works the same way)""",
)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Your approver name in governance.")
def keygen(path: Path, name: str) -> None:
    """Make an ssh-ed25519 key pair (PATH 0600, PATH.pub) and print the governance entry."""
    if not signing.valid_name(name):
        raise click.UsageError(f"--name {name!r}: use letters, digits, '.', '_', '@' or '-'")
    public_path = path.with_name(path.name + ".pub")
    for existing in (path, public_path):
        if existing.exists():
            raise click.UsageError(f"{existing} exists: not overwriting a key")
    key = signing.generate_key()
    try:
        signing.write_private_key(path, key)
        public_path.write_text(signing.public_key_line(key.public_key(), name) + "\n")
    except OSError as e:
        raise click.ClickException(f"{path}: can't write the key: {e.strerror or e}") from e
    public = signing.public_key_line(key.public_key(), name)
    line(f"- name: {name}")
    line(f"  public_key: {public}")
    note(f"private key in {escape(str(path))} (0600); add the entry above to the approvers")
