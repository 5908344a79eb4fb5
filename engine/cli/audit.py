"""``opsgate audit``: verify, show and prune the audit log; export the key that checks it.

Commands append to the runner's log through their workspace (``Workspace.audit``):
signed with the runner's key, counted in its state, closed with a signed checkpoint.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from engine import signing
from engine.audit import (
    DEFAULT_RETENTION_DAYS,
    KEY_FILE,
    AuditError,
    AuditLog,
    PruneRefused,
    fingerprint,
    load_key,
    mask,
    retention_days,
)
from engine.cli.application import application
from engine.cli.options import (
    AGO_FORMS,
    TIME_FORMS,
    Moment,
    audit_key_option,
    json_option,
    parse_time,
    passphrase_prompt,
    state_dir_option,
)
from engine.cli.terminal import emit_json, escape, line, note
from engine.state import AuditCounts, read_audit_counts, read_audit_runs
from engine.workspace import state_paths


def _log(state_dir: Path) -> AuditLog:
    return AuditLog(state_paths(state_dir)[1])


def _at_or_after(time: Any, since: datetime.datetime) -> bool:
    """Compare times, not strings (``12:00:00Z`` and ``12:00:00.000000Z`` are one instant)."""
    try:
        return isinstance(time, str) and parse_time(time) >= since
    except ValueError:
        return False  # a time that can't be read can't be said to be after


@click.group(
    epilog="""\b
Examples:
  opsgate audit verify
  opsgate audit export-key > opsgate-audit.pub     # keep it where the runner can't write
  opsgate audit verify --public-key opsgate-audit.pub --state-dir COPY --strict
  opsgate audit show --service frontend --since 2026-02-10T12:00:00Z"""
)
def audit() -> None:
    """The signed, hash-chained audit log of every decision, approval, execution and rollback."""


def _verifying_key(
    public_key_file: Path | None, state_dir: Path, counts: AuditCounts | None
) -> tuple[Ed25519PublicKey | None, str]:
    """The key to check signatures with, and how to name where it came from."""
    if public_key_file is not None:
        try:
            text = public_key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise AuditError(f"can't read --public-key {public_key_file}: {e}") from e
        try:
            key = signing.parse_public_key(text)
        except signing.SigningError as e:
            raise AuditError(f"--public-key {public_key_file}: {e}") from e
        return key, f"--public-key {public_key_file} ({fingerprint(key)})"
    recorded = counts.public_key if counts is not None else None
    key_file = state_dir / KEY_FILE
    if key_file.exists():
        key = load_key(key_file).public_key()
        if recorded is not None and fingerprint(recorded) != fingerprint(key):
            raise AuditError(
                f"{key_file} is {fingerprint(key)}, but the state recorded the log's key as "
                f"{fingerprint(recorded)}: the key file was replaced"
            )
        where = f"the key in {key_file}"
    elif recorded is not None:
        key = signing.parse_public_key(recorded)
        where = f"the key recorded in {state_paths(state_dir)[0]}"
    else:
        return None, "no key"
    return key, (
        f"{where} ({fingerprint(key)}); whoever can write {state_dir} can replace it: keep the "
        "line of opsgate audit export-key elsewhere and pass it with --public-key"
    )


@audit.command(
    epilog="""\b
Examples:
  opsgate audit verify --state-dir .opsgate
  opsgate audit verify --public-key opsgate-audit.pub --state-dir /mnt/copy --strict

Exit 1, with one line saying where, for an edited, deleted, inserted or
reordered line, a checkpoint whose signature does not match (a recomputed
chain), a log shorter than the state recorded (cut short, emptied, deleted),
a repeat that refers to a missing or different event, or a --state-dir that
holds no runner state."""
)
@click.option(
    "--public-key",
    "public_key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The runner's public key as printed by `opsgate audit export-key`, kept where the "
    "runner can't write. Default: the key in the state dir (which its writers can replace).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Also fail when events follow the last checkpoint, were signed as found but not "
    "counted, or are repeats the state counts but the log does not hold yet: for the log of "
    "a runner that has stopped.",
)
@state_dir_option
def verify(public_key_file: Path | None, strict: bool, state_dir: Path) -> None:
    """Check the chain, every checkpoint's signature, and that no event is missing."""
    state_path, audit_path, _ = state_paths(state_dir)
    if not state_dir.is_dir():
        raise AuditError(f"no state directory {state_dir} (pass the runner's --state-dir)")
    if not state_path.exists() and not audit_path.exists():
        raise AuditError(
            f"no runner state in {state_dir}: no state.db and no audit.jsonl "
            "(pass the runner's --state-dir)"
        )
    if not state_path.exists():
        raise AuditError(
            f"{state_path} is missing: without the runner's state a log cut short can't be told "
            "from a whole one (copy state.db with the log)"
        )
    counts = read_audit_counts(state_path)
    key, source = _verifying_key(public_key_file, state_dir, counts)
    log = AuditLog(audit_path)
    report = log.verify(public_key=key, counts=counts, runs=read_audit_runs(state_path))
    if report.first_break is not None:
        raise AuditError(f"{log.path}:{report.first_break}: {report.reason}")
    if report.problem:
        raise AuditError(f"{log.path}: {report.problem}")
    if report.checkpoints and key is None:
        raise AuditError(
            f"{log.path}: its checkpoints are signed, but there is no key to check them with: "
            "pass --public-key FILE"
        )
    if report.checkpoints and counts is None:
        raise AuditError(
            f"{log.path} has signed checkpoints, but {state_path} records nothing of the log: "
            "the state was replaced"
        )
    if public_key_file is not None and not report.checkpoints:
        # the kept key says the runner signs: a log without a single signature proves
        # nothing, not even that it was ever longer (an emptied log and a fresh state.db)
        raise AuditError(
            f"{log.path}: {report.events} events and no checkpoint signed by the key in "
            f"{public_key_file}: nothing vouches for this log"
        )
    repeats = f" (and {report.repeats} repeats in them)" if report.repeats else ""
    note(
        f"{escape(str(log.path))}: {report.events} events{repeats}, {report.checkpoints} signed "
        f"checkpoints, chain intact; signatures checked against {escape(source)}"
    )
    if report.uncounted:
        lines = ", ".join(str(n) for n in report.uncounted_at)
        message = (
            f"{report.uncounted} events were not counted by the command that wrote them "
            f"(appended by hand, or by a writer killed before it counted them); the checkpoints "
            f"at lines {lines} signed them as found"
        )
        if strict:
            raise AuditError(f"{log.path}: {message}; --strict wants none")
        note(f"[yellow]warning:[/] {message}")
    if report.uncovered:
        message = (
            f"{report.uncovered} events after the last checkpoint (the runner may be running, "
            "or it stopped uncleanly)"
        )
        if strict:
            raise AuditError(f"{log.path}: {message}; --strict wants none")
        note(f"[yellow]warning:[/] {message}: nothing signs them yet")
    if report.open_runs:
        message = (
            f"{report.open_repeats} repeats in {report.open_runs} runs are counted in "
            f"{state_path.name} and not yet written to the log (the runner is running, or it "
            "was killed: its next tick writes them)"
        )
        if strict:
            raise AuditError(f"{log.path}: {message}; --strict wants none")
        note(f"[yellow]warning:[/] {message}: nothing signs them yet")


@audit.command(
    "export-key",
    epilog="""\b
Example:
  opsgate audit export-key --state-dir .opsgate > opsgate-audit.pub

Give the line to the security team to keep where the runner can't write;
they check a copy of the state dir with
  opsgate audit verify --public-key opsgate-audit.pub --state-dir COPY""",
)
@audit_key_option
@state_dir_option
def export_key(audit_key: Path | None, state_dir: Path) -> None:
    """Print the public key that checks the log's signatures (one ssh-ed25519 line)."""
    if audit_key is not None:
        key = load_key(audit_key, passphrase_prompt(audit_key)).public_key()
    elif (state_dir / KEY_FILE).exists():
        key = load_key(state_dir / KEY_FILE).public_key()
    else:
        state_path = state_paths(state_dir)[0]
        counts = read_audit_counts(state_path) if state_path.exists() else None
        if counts is None or counts.public_key is None:
            raise AuditError(
                f"no audit key in {state_dir} yet: opsgate run makes one on its first run "
                "(or pass --audit-key FILE)"
            )
        key = signing.parse_public_key(counts.public_key)
    line(signing.public_key_line(key, "opsgate-audit"))
    note(
        f"{fingerprint(key)}: keep this line where the runner can't write; check the log with "
        "opsgate audit verify --public-key FILE"
    )


@audit.command(
    epilog="""\b
Examples:
  opsgate audit show --service backend --json
  opsgate audit show --since 2h
  opsgate audit show --since 2026-02-10T12:00:00Z
  opsgate audit show --as-written --json

A decision (or deferral, or block) the same as the last one written in full
is counted, not written again; a run of them is written as one `repeated`
line. Shown, such a line is the event it repeats, at its last time and with
its last decision id, with a field `repeat`: count (the decisions it stands
for), first and last time, of (the hash of the full copy), run. Runs the
state counts but the log does not hold yet (the runner is running, or was
killed) come last, with `repeat.open`."""
)
@click.option("--service", default=None, help="Only events of this service.")
@click.option(
    "--since",
    type=Moment(ago=True),
    default=None,
    help=f"Only events at or after this time: {TIME_FORMS}; or {AGO_FORMS}. A run of "
    "repeats is shown when its last repeat is.",
)
@click.option(
    "--as-written",
    is_flag=True,
    help="Print the lines as written: a run of repeats as its `repeated` line, not as the "
    "event it repeats.",
)
@state_dir_option
@json_option
def show(
    service: str | None,
    since: datetime.datetime | None,
    as_written: bool,
    state_dir: Path,
    as_json: bool,
) -> None:
    """Print audit events, oldest first, each run of repeats as the event it repeats."""
    log = _log(state_dir)
    if as_written:
        source = log.events()
    else:
        state_path = state_paths(state_dir)[0]
        source = log.expanded(read_audit_runs(state_path) if state_path.exists() else [])
    # masked again: a log written before values were masked may still hold secrets
    events = [
        mask(e)
        for e in source
        if (service is None or e.get("service") == service)
        and (since is None or _at_or_after(e.get("time"), since))
    ]
    if as_json:
        emit_json(events)
        return
    for e in events:
        operation = e.get("operation")
        what = f" {operation}" if operation else ""
        reason = (e.get("reasons") or [e.get("reason") or e.get("error") or ""])[0]
        repeat = e.get("repeat")
        if isinstance(repeat, dict):
            reason += f"  (repeated {repeat.get('count')} times from {repeat.get('first')}"
            reason += ", not yet written)" if repeat.get("open") else ")"
        elif e.get("event") == "repeated":
            reason = (
                f"{e.get('count')} repeats of the {e.get('kind')} {str(e.get('of'))[:16]} from "
                f"{e.get('first')} to {e.get('last')}"
            )
        line(
            f"{e.get('time')}  {e.get('event'):<20} {e.get('service', '-'):<12} "
            f"{e.get('tier', ''):<7}{what}  {reason}"
        )


@audit.command(
    epilog="""\b
Example:  opsgate audit prune --blueprints blueprints

Events younger than the runner's own retention (the longest retention_days
of the blueprints it last ran with, or 90 days) are dropped only with
--confirm. The kept log starts with a checkpoint, signed with the runner's
key, that says how many events were dropped and the hash they ended at."""
)
@click.option(
    "--blueprints",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default="blueprints",
    show_default=True,
    help="Blueprints whose governance.audit.retention_days applies (the longest wins).",
)
@click.option(
    "--confirm",
    is_flag=True,
    help="Drop events even when they are younger than the runner's own retention.",
)
@audit_key_option
@state_dir_option
@click.pass_context
def prune(
    ctx: click.Context, blueprints: Path, confirm: bool, audit_key: Path | None, state_dir: Path
) -> None:
    """Drop events older than the retention period; the kept log still verifies."""
    workspace = application(ctx).workspace(blueprints, state_dir=state_dir, audit_key=audit_key)
    with workspace:
        # only what these blueprints ask: the runner's own retention is the floor below
        days = retention_days(b.effective for b in workspace.blueprint_set.blueprints)
        if not workspace.paths.state.exists():
            raise click.UsageError(
                f"no runner state in {state_dir} (run opsgate run first, or pass --state-dir)"
            )
        floor = workspace.state.audit_counts().retention_days or DEFAULT_RETENTION_DAYS
        log = workspace.audit
        now = datetime.datetime.now(datetime.UTC)
        protect = None if confirm or days >= floor else now - datetime.timedelta(days=floor)
        try:
            dropped = log.prune(now - datetime.timedelta(days=days), protect_after=protect)
        except PruneRefused as e:
            raise click.UsageError(
                f"retention_days {days} from {blueprints} would drop {e.young} events younger "
                f"than the runner's own retention of {floor} days (from the blueprints it ran "
                "with): pass --confirm to drop them (the kept log's signed checkpoint says what "
                "was dropped)"
            ) from e
    note(f"pruned {dropped} events older than {days} days")
