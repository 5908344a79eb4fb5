"""The audit log: append-only JSON Lines, fsync'd, hash-chained, signed, masked, prunable.

Every event is written and fsync'd *before* the action it records, so a
failure to write stops the action (``AuditError``). Each line carries the
SHA-256 of the previous line's hash and its own canonical content, so
``verify`` finds an edited, deleted, inserted or reordered line.

A chain anyone can recompute proves nothing by itself, so the runner signs
it: every ``checkpoint_every`` events, and when a command that appended
stops, the log gets a ``checkpoint`` event, signed with the runner's Ed25519
key, that names how many events came before it since the log began
(``count``) and the chain hash they end at (``head``). Rewriting, removing or
inserting an event changes every later hash, so the next checkpoint's
signature no longer matches; the state database records how many events
were written and the last checkpoint, so a log cut short, emptied or deleted
is found too. Pruning keeps the kept events byte for byte after a signed
checkpoint that stands for the dropped ones (their count and head).

The log grows with change, not with time. During a runner tick (``tick``)
a decision, deferral or block identical to the last one written in full for
the same service, kind of change and tier — all of it but its time and
decision id — is a repeat: it is counted in the state (one row per run of
repeats, updated in place, durable before the tick acts on it) and nothing
is appended. The run gets one ``repeated`` line, chained and checkpointed
like any event, when it ends: when the event changes (before the new full
copy), when a tick passes without it, when another event cites its last
decision id, at least every ``RUN_SECONDS``, when the log is closed, or, for
a run a killed runner left in the state, at the next runner's first tick.
The line refers to the full event by its chain hash (``of``) and by what it
says (``digest``), so ``verify`` finds a repeat that points at a missing or
different event.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import fcntl
import hashlib
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from engine import moments, operations, redact, signing, strictjson
from engine.errors import OpsgateError
from engine.files import write_atomically

log = logging.getLogger(__name__)

GENESIS = "0" * 64
MASK = redact.MASK
# Fields the log writes itself: ids, hashes, rule ids and blueprint fields are never masked.
_OWN_FIELDS = frozenset(
    {
        "time",
        "event",
        "prev",
        "hash",
        "decision_id",
        "signed_answer",  # a JWS: public by design, re-verified later with the public key
        "operation_digest",
        "approval_id",
        "journal_entry",
        "bundle_revision",
        "rules",
        "blueprint_refs",
        "blueprint",
        # a repeat's own references (see Run.line) and their expansion (see _expanded)
        "of",
        "digest",
        "run",
        "last_decision_id",
        "repeat",
    }
)

# A signed checkpoint every this many events (and one whenever a command that appended stops).
CHECKPOINT_EVERY = 100
# The runner's signing key, made on first use in the state directory unless given by path.
KEY_FILE = "audit-key"
# What a checkpoint's signature covers: this, then its canonical fields (see _signed_bytes).
_SIGNED_PREFIX = b"opsgate audit checkpoint v1\n"
# A canonical line holds this only if it is a checkpoint (or nests an object that looks like one).
_CHECKPOINT_MARK = b'"event":"checkpoint"'
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Events the runner writes every tick while nothing changes: during a tick, one identical to
# the last written in full for its service, kind of change and tier is counted as a repeat.
REPEATABLE = frozenset({"decision", "deferred", "blocked"})
# What a repeat may differ in from the event it repeats: they change every tick.
_PER_TICK = frozenset({"time", "decision_id"})
# A run of repeats gets its line at least this often, so the next checkpoint signs it.
RUN_SECONDS = 3600
# A repeat refers to a full copy at most this old; then the event is written in full again,
# so a prune, which keeps every full copy a kept repeat refers to, is held back no longer.
FULL_COPY_SECONDS = 86400
# A checkpoint at the end of a tick when the last one is this old and events came since:
# a log that grows with change may take hours to reach CHECKPOINT_EVERY events.
CHECKPOINT_SECONDS = 3600


EVENT_KINDS = frozenset(
    {
        "decision",
        "approval_requested",
        "approval_granted",
        "approval_rejected",
        "approval_expired",
        "approval_void",
        "approval_superseded",
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
        "breaker_reset",
        "blocked",
        "deferred",
        "dry_run",
        "error",
        "journal_recovered",
        "pruned",
        "approval_refused",
        "approval_answer_refused",
        "opa_restarted",
        "notification_failed",
        "checkpoint",
        "repeated",
        # an AI agent's request through opsgate mcp or opsgate gate, with what it said of it
        "agent_request",
    }
)


class AuditError(OpsgateError):
    """The audit log can't be written or read; nothing may be executed."""


class AuditTampered(OpsgateError):
    """``verify`` found a line that breaks the hash chain."""


class PruneRefused(AuditError):
    """A prune would drop events the governance still keeps; it needs confirming."""

    exit_code = 2

    def __init__(self, message: str, young: int) -> None:
        super().__init__(message)
        self.young = young


# governance.audit.retention_days when no blueprint says
DEFAULT_RETENTION_DAYS = 90


def retention_days(blueprints: Iterable[Mapping[str, Any]]) -> int:
    """The longest ``governance.audit.retention_days`` of effective blueprints (default 90)."""
    return max(
        (b["governance"]["audit"]["retention_days"] for b in blueprints),
        default=DEFAULT_RETENTION_DAYS,
    )


def mask(value: Any) -> Any:
    """Return ``value`` with secrets masked by key and by value (see engine.redact)."""
    return redact.mask(value, keep=_OWN_FIELDS)


def _parsed(line: str | bytes) -> Any:
    """One line of the log, read strictly (depth, size, NaN); ValueError when it isn't JSON."""
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    try:
        return strictjson.loads(text)
    except strictjson.JsonError as e:
        raise ValueError(str(e)) from e


def _last_events(handle: IO[bytes], size: int, count: int) -> list[dict[str, Any]]:
    """The last ``count`` lines of the first ``size`` bytes, read from the end (those that are
    events: a damaged line is for verify to report)."""
    block, data, start = 1 << 16, b"", size
    while start > 0 and data.count(b"\n") <= count:
        step = min(block, start)
        start -= step
        handle.seek(start)
        data = handle.read(step) + data
    events = []
    for raw in data.splitlines()[-count:]:
        try:
            event = _parsed(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _canonical(event: Mapping[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chain(previous: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((previous + _canonical(body)).encode()).hexdigest()


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return datetime.datetime.now(datetime.UTC).strftime(_TIME_FORMAT)


# --- repeats ----------------------------------------------------------------------------


def content_digest(event: Mapping[str, Any]) -> str:
    """SHA-256 of what an event says: all of it but its time, decision id and chain fields."""
    said = {k: v for k, v in event.items() if k not in _PER_TICK and k not in ("prev", "hash")}
    return hashlib.sha256(_canonical(said).encode("utf-8")).hexdigest()


def change_key(event: Mapping[str, Any]) -> str | None:
    """What a repeatable event is about: its kind, service, kind of change and tier.

    The kind of change is the operation's type and what it changes, not by
    how much (``operations.same_kind``): a scale to 3 and a scale to 4 are one
    kind, their decisions one line of repeats. None for an event that is never
    a repeat.
    """
    operation = event.get("operation")
    if event.get("event") not in REPEATABLE or not isinstance(operation, Mapping):
        return None
    return _canonical(
        {
            "event": event.get("event"),
            "service": event.get("service"),
            "change": list(operations.same_kind(operation)),
            "tier": event.get("tier"),
        }
    )


def _seconds_between(earlier: Any, later: Any) -> float | None:
    """Seconds from one event time to another (None when either can't be read)."""
    if not isinstance(earlier, str) or not isinstance(later, str):
        return None
    try:
        return (moments.parse(later) - moments.parse(earlier)).total_seconds()
    except ValueError:
        return None


def _within(earlier: Any, later: Any, seconds: float) -> bool:
    """True when ``later`` is less than ``seconds`` after ``earlier`` (and not before it)."""
    between = _seconds_between(earlier, later)
    return between is not None and 0 <= between < seconds


@dataclass(frozen=True)
class Run:
    """Repeats of one event written in full, counted in the state until their line is written."""

    run: str  # the run's id, in its line too (a killed writer's line is known by it)
    key: str  # the kind of change (see change_key)
    owner: str  # the log object counting it: a run of another one was left by a stopped writer
    kind: str  # the kind of event repeated
    service: str | None
    of: str  # the chain hash of the full copy
    digest: str  # what the full copy says (see content_digest)
    count: int  # repeats, the full copy not included
    first: str  # the time of the first repeat
    last: str  # the time of the last repeat
    last_decision_id: str | None  # the id of the last repeat, which later events may cite

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        """A run as the state keeps it (see Ledger.runs)."""
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def row(self) -> dict[str, Any]:
        """The run as the state keeps it (see Ledger.repeated)."""
        return asdict(self)

    def line(self, time: str, *, recovered: bool = False) -> dict[str, Any]:
        """The ``repeated`` event that writes the run to the log."""
        body: dict[str, Any] = {
            "time": time,
            "event": "repeated",
            "kind": self.kind,
            "service": self.service,
            "of": self.of,
            "digest": self.digest,
            "run": self.run,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "last_decision_id": self.last_decision_id,
        }
        if recovered:
            # a writer stopped without writing it: its count is what the state kept
            body["recovered"] = True
        return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class _Full:
    """The last event of one kind of change this log wrote in full."""

    hash: str
    digest: str
    time: str


def _expanded(full: Mapping[str, Any], repeat: Mapping[str, Any], **marks: bool) -> dict[str, Any]:
    """A repeat shown as the event it repeats: at its last time, with its last decision id,
    and a ``repeat`` field (count, first and last time, the full copy's hash, the run)."""
    event = {k: v for k, v in full.items() if k not in _PER_TICK and k not in ("prev", "hash")}
    event["time"] = repeat.get("last")
    if repeat.get("last_decision_id") is not None:
        event["decision_id"] = repeat["last_decision_id"]
    event["repeat"] = {
        **{k: repeat[k] for k in ("count", "first", "last", "of", "run") if k in repeat},
        **({"recovered": True} if repeat.get("recovered") else {}),
        **{k: True for k, v in marks.items() if v},
    }
    if "hash" in repeat:  # the line it was read from
        event["prev"], event["hash"] = repeat.get("prev"), repeat["hash"]
    return event


# --- the runner's key -------------------------------------------------------------------


def fingerprint(key: Ed25519PublicKey | str) -> str:
    """The OpenSSH fingerprint (``SHA256:…``) of a key or of a public key line."""
    line = signing.public_key_line(key) if isinstance(key, Ed25519PublicKey) else key
    try:
        blob = base64.b64decode(line.split()[1], validate=True)
    except (IndexError, ValueError, binascii.Error):
        return "an unreadable key"
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def load_key(path: Path, passphrase: Callable[[], str] | None = None) -> Ed25519PrivateKey:
    """Read the audit key, refusing a file that others may read or write (as ssh does)."""
    try:
        info = path.stat()
    except OSError as e:
        raise AuditError(f"{path}: can't read the audit key: {e.strerror or e}") from e
    if not stat.S_ISREG(info.st_mode):
        raise AuditError(f"{path}: the audit key must be a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise AuditError(
            f"{path}: the audit key is readable or writable by group or others "
            f"(mode {mode:04o}): chmod 600 {path}"
        )
    return signing.load_private_key(path, passphrase)


def _create_key(path: Path) -> None:
    """Make a new key at ``path`` whole or not at all; a key already there is kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        signing.write_private_key(partial, signing.generate_key())  # O_EXCL, 0600
        # a link is made whole or not at all, and not over a key another process made first
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def runner_key(
    given: Path | None,
    default: Path,
    *,
    known: str | None,
    passphrase: Callable[[], str] | None = None,
) -> Ed25519PrivateKey:
    """The key that signs the log: ``given``, else ``default``, made there on first use.

    No key is made when the state already knows the key the log is signed
    with (``known``, its public key line): it is kept elsewhere, and must be
    given.
    """
    if given is not None:
        return load_key(given, passphrase)
    if not (default.exists() or default.is_symlink()):
        if known is not None:
            raise AuditError(
                f"this audit log is signed with the key {fingerprint(known)}, which is not in "
                f"{default.parent}: give it with --audit-key FILE or OPSGATE_AUDIT_KEY"
            )
        try:
            _create_key(default)
        except OSError as e:
            raise AuditError(f"{default}: can't make the audit key: {e.strerror or e}") from e
        log.info("made the audit key %s", default)
    return load_key(default)


# --- what the log and the state know ----------------------------------------------------


class Counts(Protocol):
    """What the state recorded of the log (engine.state.AuditCounts)."""

    @property
    def events(self) -> int:
        """Events the log has had since it began."""

    @property
    def checkpoint_count(self) -> int | None:
        """Events before the last checkpoint written."""

    @property
    def checkpoint_head(self) -> str | None:
        """The chain hash the last checkpoint covers."""

    @property
    def public_key(self) -> str | None:
        """The public key line of the key that signs the log."""


class Ledger(Protocol):
    """Where the runner records what it wrote (engine.state.AuditLedger)."""

    def counts(self) -> Counts:
        """What was recorded."""

    def appended(
        self,
        events: int,
        checkpoint: tuple[int, str] | None = None,
        public_key: str | None = None,
        written: Collection[str] = (),
    ) -> None:
        """The log now has ``events`` events; ``checkpoint`` (count, head) was just signed;
        the runs ``written`` now have their line in the log."""

    def runs(self, ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """The runs of repeats counted and not yet written (Run.row of each; those of ``ids``
        only, when given)."""

    def repeated(self, run: Mapping[str, Any]) -> bool:
        """Count one repeat: ``run`` (a Run.row) as it stands with it; False when the state
        no longer holds the run one repeat shorter (its line was written meanwhile)."""

    def close(self) -> None:
        """Let go of the state database."""


@dataclass
class _Tail:
    """Where the log file stands, kept between appends and read on from where it was."""

    identity: tuple[int, int]
    size: int = 0
    lines: int = 0
    # events the first line stands for, when it is a prune checkpoint (or an old marker)
    base: int = 0
    anchored: bool = False
    last_hash: str = GENESIS
    # line index and time of the last checkpoint, and (count → head) of every checkpoint
    last_checkpoint: int | None = None
    last_checkpoint_time: str | None = None
    checkpoints: dict[int, str] = field(default_factory=dict)

    @property
    def events(self) -> int:
        """Events the log has had since it began (those a prune dropped included)."""
        return self.base + self.lines - (1 if self.anchored else 0)

    @property
    def uncovered(self) -> int:
        """Events after the last checkpoint."""
        if self.last_checkpoint is None:
            return self.lines - (1 if self.anchored else 0)
        return self.lines - 1 - self.last_checkpoint

    def saw(self, index: int, event: dict[str, Any]) -> None:
        """Take note of the line at ``index`` if it is a checkpoint or a prune marker."""
        kind = event.get("event")
        if kind == "checkpoint":
            count, head = event.get("count"), event.get("head")
            if isinstance(count, int) and isinstance(head, str):
                self.checkpoints[count] = head
                if index == 0 and "dropped" in event:
                    self.base, self.anchored = count, True
            self.last_checkpoint = index
            self.last_checkpoint_time = str(event.get("time"))
        elif index == 0 and kind == "pruned":
            self.base, self.anchored = int(event.get("dropped") or 0), True


def _signed_bytes(checkpoint: dict[str, Any]) -> bytes:
    """What a checkpoint's signature covers: every field but the signature and the chain's."""
    fields = {k: v for k, v in checkpoint.items() if k not in ("signature", "prev", "hash")}
    return _SIGNED_PREFIX + _canonical(fields).encode("utf-8")


def _signature_problem(event: dict[str, Any], public_key: Ed25519PublicKey) -> str | None:
    """Why ``event``'s signature does not verify with ``public_key`` (None: it does)."""
    try:
        signature = base64.b64decode(event["signature"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        return "checkpoint has no readable signature"
    try:
        public_key.verify(signature, _signed_bytes(event))
    except InvalidSignature:
        problem = f"checkpoint signature does not verify with the key {fingerprint(public_key)}"
        named = event.get("key")
        if isinstance(named, str) and fingerprint(named) != fingerprint(public_key):
            problem += f" (it names the key {fingerprint(named)})"
        return problem
    return None


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found: how many events, and the first break or problem if any."""

    events: int
    first_break: int | None = None
    reason: str = ""
    checkpoints: int = 0
    # events after the last checkpoint: none after a clean stop
    uncovered: int = 0
    # events a checkpoint signed as found, not counted by the writer (line numbers of those)
    uncounted: int = 0
    uncounted_at: tuple[int, ...] = ()
    # a problem of the whole log rather than of one line (shorter than the state says)
    problem: str = ""
    signed: bool = False
    # repeats the log's ``repeated`` lines stand for; runs of repeats the state counts whose
    # line is not in the log yet, and their repeats
    repeats: int = 0
    open_runs: int = 0
    open_repeats: int = 0

    @property
    def ok(self) -> bool:
        """True when every line chains to the one before it and nothing is missing."""
        return self.first_break is None and not self.problem


class AuditLog:
    """One audit log file. Safe for several processes and threads: appends hold a file lock.

    With a ``signer`` it signs a checkpoint every ``checkpoint_every`` events
    and at ``close``; with a ``ledger`` it records in the state how many events
    it holds, and refuses to append to a log shorter than that. With a
    ``ledger`` too, repeats within a ``tick`` are counted there instead of
    written (without one, every event is written in full: nothing would
    keep the count through a crash).
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Any = utc_now,
        signer: Ed25519PrivateKey | None = None,
        ledger: Ledger | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        self.path = path
        self._clock = clock
        self._signer = signer
        self._key_line = signing.public_key_line(signer.public_key()) if signer else None
        self._ledger = ledger
        self._every = max(1, checkpoint_every)
        self._tail: _Tail | None = None
        # repeats, in memory: by kind of change, the last full copy this object wrote and the
        # run of repeats it counts; by decision id, the run whose last repeat it is
        self._owner = secrets.token_hex(8)
        self._full: dict[str, _Full] = {}
        self._runs: dict[str, Run] = {}
        self._last_ids: dict[str, str] = {}
        # the kinds of change recorded in the tick under way (None: not in a tick)
        self._seen: set[str] | None = None
        self._took_over = False
        # when this object first appended (a checkpoint is due an hour after, if none came)
        self._first_written: str | None = None

    @property
    def public_key(self) -> Ed25519PublicKey | None:
        """The public key of the signer, if the log is signed."""
        return self._signer.public_key() if self._signer is not None else None

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event, fsync it, and return it; raise AuditError if it can't be written.

        Within a ``tick``, an event identical to the last full copy of its kind
        of change is counted as a repeat in the state instead (see ``tick``).
        """
        if kind not in EVENT_KINDS:
            raise AuditError(f"unknown audit event kind {kind!r}")
        if kind in ("checkpoint", "repeated"):
            raise AuditError(f"{kind} events are written by the log itself")
        body: dict[str, Any] = {"time": fields.pop("time", None) or self._clock(), "event": kind}
        body.update(mask(fields))
        try:
            _canonical(body).encode("utf-8")  # a lone surrogate can't be written: refuse here
        except (TypeError, ValueError) as e:
            raise AuditError(f"audit event {kind} is not JSON-serialisable: {e}") from e
        with self._locked() as (handle, tail):
            self._settle(handle, tail)
            key = change_key(body) if self._seen is not None else None
            written: list[str] = []
            digest = ""
            if key is not None:
                assert self._seen is not None
                self._seen.add(key)
                digest = content_digest(body)
                full = self._full.get(key)
                if (
                    full is not None
                    and full.digest == digest
                    and _within(full.time, body["time"], FULL_COPY_SECONDS)
                ):
                    run = self._runs.get(key)
                    if run is not None and not _within(run.last, body["time"], RUN_SECONDS):
                        # the clock went back: a run's times only go forward, a new one starts
                        written += self._write_runs(handle, tail, [key])
                        self._count(tail, None, written)
                    self._repeat(key, full, body)
                    return body
                # the run of the last full copy ends before the next full copy
                written += self._write_runs(handle, tail, [key])
            cited = body.get("decision_id")
            citing = self._last_ids.get(cited) if isinstance(cited, str) else None
            if citing is not None and citing != key:
                # an event that cites a repeat's decision id finds it as the last of a line
                written += self._write_runs(handle, tail, [citing])
            self._append(handle, tail, body)
            if key is not None:
                self._full[key] = _Full(body["hash"], digest, body["time"])
            checkpoint = None
            if self._signer is not None and tail.uncovered >= self._every:
                checkpoint = self._append_checkpoint(handle, tail)
            self._count(tail, checkpoint, written)
        return body

    @contextmanager
    def tick(self) -> Iterator[None]:
        """One tick of the runner: its repeats are counted, and its runs that ended written.

        Inside, a decision, deferral or block identical to the last one this
        log wrote in full for its service, kind of change and tier (all of it
        but time and decision id; the full copy at most ``FULL_COPY_SECONDS``
        old) is counted as one more repeat in the state — durable before the
        tick acts on it — and nothing is appended. At the end, the run of each
        kind of change the tick did not record, and each run older than
        ``RUN_SECONDS``, is written as one ``repeated`` line; a checkpoint is
        signed if the last is ``CHECKPOINT_SECONDS`` old. The first tick of
        this object first writes the runs a stopped writer left in the state.
        A tick that raises writes nothing more: its runs stay counted.
        Without a ledger it changes nothing.
        """
        if self._ledger is None:
            yield
            return
        if not self._took_over:
            self._take_over()
        self._seen = set()
        try:
            yield
        except BaseException:
            self._seen = None
            raise
        seen, self._seen = self._seen, None
        self._end_tick(seen)

    def checkpoint(self) -> dict[str, Any] | None:
        """Sign a checkpoint now if events came after the last one (None: it had nothing to do)."""
        if self._signer is None or not self.path.exists():
            return None
        with self._locked() as (handle, tail):
            checkpoint = self._settle(handle, tail)
            if checkpoint is None and tail.uncovered > 0:
                checkpoint = self._append_checkpoint(handle, tail)
                self._count(tail, checkpoint)
        return checkpoint

    def close(self) -> None:
        """Write the runs this log counts, sign a last checkpoint over what came after the
        previous one, and let go of the ledger."""
        try:
            if self._runs:
                with self._locked() as (handle, tail):
                    self._settle(handle, tail)
                    self._count(tail, None, self._write_runs(handle, tail, sorted(self._runs)))
            self.checkpoint()
        finally:
            if self._ledger is not None:
                self._ledger.close()
                self._ledger = None

    def check(self) -> None:
        """Look at the whole log before appending: AuditError if it is not what the state says."""
        self._tail = None
        with self._locked():
            pass

    # --- repeats ------------------------------------------------------------------------

    def _repeat(self, key: str, full: _Full, body: dict[str, Any]) -> None:
        """Count ``body`` as one more repeat of ``full`` in the state (nothing is appended)."""
        assert self._ledger is not None
        now, decision_id = str(body["time"]), body.get("decision_id")
        decision_id = decision_id if isinstance(decision_id, str) else None
        run = self._runs.get(key)
        try:
            if run is not None and run.of == full.hash:
                longer = replace(run, count=run.count + 1, last=now, last_decision_id=decision_id)
                if self._ledger.repeated(longer.row()):
                    self._keep_run(key, longer)
                    return
            # the first repeat, or the run's line was written meanwhile: a new run
            started = Run(
                secrets.token_hex(8),
                key,
                self._owner,
                str(body["event"]),
                body.get("service"),
                full.hash,
                full.digest,
                1,
                now,
                now,
                decision_id,
            )
            self._ledger.repeated(started.row())
        except OpsgateError as e:
            raise AuditError(
                f"audit log {self.path}: a repeated {body['event']} could not be counted in the "
                f"state: {e}"
            ) from e
        self._keep_run(key, started)

    def _keep_run(self, key: str, run: Run | None) -> None:
        """Remember ``run`` as the run of ``key`` (None: it has none any more)."""
        before = self._runs.pop(key, None)
        if before is not None and before.last_decision_id is not None:
            self._last_ids.pop(before.last_decision_id, None)
        if run is not None:
            self._runs[key] = run
            if run.last_decision_id is not None:
                self._last_ids[run.last_decision_id] = key

    def _write_runs(
        self, handle: IO[bytes], tail: _Tail, keys: Iterable[str], *, left: bool = False
    ) -> list[str]:
        """Append the line of each run of ``keys`` as the state counts it; return their ids.

        With ``left``, ``keys`` are ignored and the runs written are those that
        other log objects (stopped writers) left in the state. A run the state no
        longer holds was written meanwhile by another command: it is dropped.
        """
        if self._ledger is None:
            return []
        if left:
            wanted = None
        else:
            wanted = {self._runs[k].run for k in keys if k in self._runs}
            for key in keys:
                self._keep_run(key, None)
            if not wanted:
                return []
        try:
            rows = [Run.from_row(row) for row in self._ledger.runs(wanted)]
        except OpsgateError as e:
            raise AuditError(f"audit log {self.path}: can't read the runs of repeats: {e}") from e
        if wanted is None:
            chosen = [r for r in rows if r.owner != self._owner]
        else:
            chosen = [r for r in rows if r.run in wanted]
        for run in sorted(chosen, key=lambda r: (r.first, r.run)):
            self._append(handle, tail, run.line(self._clock(), recovered=left))
        return [run.run for run in chosen]

    def _take_over(self) -> None:
        """Write the runs a stopped writer left counted in the state (each a ``recovered`` line)."""
        with self._locked() as (handle, tail):
            self._settle(handle, tail)
            written = self._write_runs(handle, tail, (), left=True)
            if written:
                log.info(
                    "audit log %s: wrote %d runs of repeats left in the state",
                    self.path,
                    len(written),
                )
                self._count(tail, None, written)
        self._took_over = True

    def _end_tick(self, seen: set[str]) -> None:
        """Write the runs that ended with the tick; sign a checkpoint if one is due by time."""
        with self._locked() as (handle, tail):
            self._settle(handle, tail)
            now = self._clock()
            ended = sorted(
                key
                for key, run in self._runs.items()
                if key not in seen or not _within(run.first, now, RUN_SECONDS)
            )
            written = self._write_runs(handle, tail, ended)
            checkpoint = None
            if self._signer is not None and tail.uncovered > 0:
                since = _seconds_between(tail.last_checkpoint_time or self._first_written, now)
                if since is not None and since >= CHECKPOINT_SECONDS:
                    checkpoint = self._append_checkpoint(handle, tail)
            if written or checkpoint is not None:
                self._count(tail, checkpoint, written)

    # --- appending ---------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[tuple[IO[bytes], _Tail]]:
        """The log file, locked for appending, and where it stands (checked on a first look)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._open_current()
        except OSError as e:
            raise AuditError(f"can't write audit log {self.path}: {e.strerror or e}") from e
        try:
            tail, whole = self._scan(handle)
            if whole:
                self._check_ledger(tail)
                # read anew (a first look, or the file was replaced by a prune): what this
                # object wrote in full may be gone, so nothing repeats it until written again
                self._full.clear()
            yield handle, tail
            self._tail = tail
        except OSError as e:
            self._tail = None
            raise AuditError(f"can't write audit log {self.path}: {e.strerror or e}") from e
        except BaseException:
            self._tail = None
            raise
        finally:
            with contextlib.suppress(OSError):  # a failed write was reported above
                handle.close()  # and with it the lock

    def _open_current(self) -> IO[bytes]:
        """Open and lock the file at ``path``; a prune may replace it while we wait for the lock."""
        for _attempt in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            handle = os.fdopen(fd, "a+b")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                opened = os.fstat(handle.fileno())
                try:
                    current = os.stat(self.path)
                except FileNotFoundError:
                    current = None
                if current is not None and (current.st_dev, current.st_ino) == (
                    opened.st_dev,
                    opened.st_ino,
                ):
                    return handle
            except BaseException:
                handle.close()
                raise
            handle.close()
        raise AuditError(f"audit log {self.path} keeps being replaced")

    def _scan(self, handle: IO[bytes]) -> tuple[_Tail, bool]:
        """Where the log stands, and whether it was read from the start (a first look).

        Read on from where this process last looked, unless the file was
        replaced or shortened since.
        """
        info = os.fstat(handle.fileno())
        identity = (info.st_dev, info.st_ino)
        known = self._tail
        whole = known is None or known.identity != identity or info.st_size < known.size
        if whole or known is None:
            tail = _Tail(identity)
        else:
            tail = replace(known, checkpoints=dict(known.checkpoints))
        if info.st_size == tail.size:
            return tail, whole
        handle.seek(tail.size)
        remaining = info.st_size - tail.size
        last = b""
        while remaining > 0:
            raw = handle.readline(remaining)
            if not raw:
                break
            remaining -= len(raw)
            index, last = tail.lines, raw
            tail.lines += 1
            tail.size += len(raw)
            if index == 0 or _CHECKPOINT_MARK in raw:
                try:
                    event = _parsed(raw)
                except ValueError:
                    continue  # a damaged line inside the log is for verify to report
                if isinstance(event, dict):
                    tail.saw(index, event)
        damaged = f"audit log {self.path} ends with a damaged line"
        if not last.endswith(b"\n"):  # cut off while written: the next line would join it
            raise AuditError(damaged)
        try:
            tail.last_hash = str(_parsed(last)["hash"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError(damaged) from e
        return tail, whole

    def _check_ledger(self, tail: _Tail) -> None:
        """Refuse a log shorter than the state recorded, or one signed with another key."""
        if self._ledger is None:
            return
        counts = self._ledger.counts()
        if counts.events > tail.events:
            raise AuditError(
                f"audit log {self.path} has {tail.events} events, the state recorded "
                f"{counts.events}: events were removed or the log was replaced; nothing more is "
                "written to it (see opsgate audit verify)"
            )
        count, head = counts.checkpoint_count, counts.checkpoint_head
        if count is not None and count >= tail.base and tail.checkpoints.get(count) != head:
            raise AuditError(
                f"audit log {self.path} does not hold the checkpoint the state recorded (count "
                f"{count}): it was rewritten or replaced; nothing more is written to it (see "
                "opsgate audit verify)"
            )
        if self._key_line is None:
            return
        if counts.public_key is None:
            self._ledger.appended(tail.events, public_key=self._key_line)
        elif fingerprint(counts.public_key) != fingerprint(self._key_line):
            raise AuditError(
                f"the audit key {fingerprint(self._key_line)} is not the key this log is signed "
                f"with ({fingerprint(counts.public_key)}, recorded in the state): give the "
                "runner's key with --audit-key FILE or OPSGATE_AUDIT_KEY"
            )

    def _append(self, handle: IO[bytes], tail: _Tail, body: dict[str, Any]) -> None:
        """Chain ``body`` to the last line, write it and fsync it."""
        body["prev"] = tail.last_hash
        body["hash"] = _chain(tail.last_hash, {k: v for k, v in body.items() if k != "hash"})
        line = (_canonical(body) + "\n").encode("utf-8")
        handle.seek(0, os.SEEK_END)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
        tail.lines += 1
        tail.size += len(line)
        tail.last_hash = body["hash"]
        if self._first_written is None:
            self._first_written = str(body.get("time"))

    def _signed_checkpoint(self, fields: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint event of ``fields`` with the key and its signature."""
        assert self._signer is not None and self._key_line is not None
        body: dict[str, Any] = {
            "time": self._clock(),
            "event": "checkpoint",
            **fields,
            "key": self._key_line,
        }
        body["signature"] = base64.b64encode(self._signer.sign(_signed_bytes(body))).decode()
        return body

    def _append_checkpoint(
        self, handle: IO[bytes], tail: _Tail, *, uncounted: int = 0
    ) -> dict[str, Any]:
        """Sign and append a checkpoint over everything before it."""
        fields: dict[str, Any] = {"count": tail.events, "head": tail.last_hash}
        if uncounted:
            fields["uncounted"] = uncounted
        body = self._signed_checkpoint(fields)
        self._append(handle, tail, body)
        tail.saw(tail.lines - 1, body)
        return body

    def _settle(self, handle: IO[bytes], tail: _Tail) -> dict[str, Any] | None:
        """Settle what a writer killed between writing and counting left; return the
        checkpoint signed over its lines (None: there were none, or the log is unsigned).

        Every writer counts its events in the state while it holds the lock,
        so the log and the state agree whenever the lock is free. Lines beyond
        the count were appended by hand, or by a writer killed between writing
        and counting: the next checkpoint must not sign them as if the runner
        had written them, so this one says how many there are. A ``repeated``
        line among them is written: its run leaves the state now, or it would
        be written twice.
        """
        if self._ledger is None:
            return None
        uncounted = tail.events - self._ledger.counts().events
        if uncounted <= 0:
            return None
        written = [
            str(event["run"])
            for event in _last_events(handle, tail.size, uncounted)
            if event.get("event") == "repeated" and isinstance(event.get("run"), str)
        ]
        if self._signer is None:
            self._count(tail, None, written)
            return None
        log.warning("audit log %s: %d events no opsgate command counted", self.path, uncounted)
        checkpoint = self._append_checkpoint(handle, tail, uncounted=uncounted)
        self._count(tail, checkpoint, written)
        return checkpoint

    def _count(
        self, tail: _Tail, checkpoint: dict[str, Any] | None, written: Collection[str] = ()
    ) -> None:
        """Tell the state how many events the log has now (after they are safely written),
        and which runs of repeats have their line in it now (in the same transaction)."""
        if self._ledger is None:
            return
        signed = (checkpoint["count"], checkpoint["head"]) if checkpoint else None
        try:
            self._ledger.appended(tail.events, signed, written=written)
        except OpsgateError as e:
            raise AuditError(
                f"audit log {self.path}: the event is written but the state could not count it: {e}"
            ) from e

    # --- reading ------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield every event in order, as written (a run of repeats is one ``repeated`` line);
        a missing file has none."""
        if not self.path.exists():
            return
        try:
            with self.path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    yield self._event_of(line, number)
        except OSError as e:
            raise AuditError(f"can't read audit log {self.path}: {e.strerror or e}") from e

    def _event_of(self, line: str | bytes, number: int) -> dict[str, Any]:
        try:
            event = _parsed(line)
        except ValueError as e:
            raise AuditError(f"{self.path}:{number}: not a JSON line") from e
        if not isinstance(event, dict):
            raise AuditError(f"{self.path}:{number}: not a JSON object")
        return event

    def expanded(self, runs: Iterable[Mapping[str, Any]] = ()) -> Iterator[dict[str, Any]]:
        """Yield every event in order, each ``repeated`` line as the event it repeats.

        An expanded repeat is the full copy it refers to, at the run's last
        time and with its last decision id, plus a ``repeat`` field: ``count``
        (the repeats it stands for), ``first``, ``last``, ``of`` (the full
        copy's hash), ``run``, and ``recovered`` when a stopped writer left it
        in the state. After the log come the ``runs`` the state still counts
        (Run.row of each, see Ledger.runs) whose line is not in the log yet,
        with ``repeat.open``. A repeat whose full copy is not in the log is
        yielded as written (``audit verify`` says what is wrong).
        """
        if not self.path.exists():
            return
        try:
            with self.path.open("rb") as handle, self.path.open("rb") as lookup:
                # where each full copy a repeat may refer to starts: read back when one does
                where: dict[str, int] = {}
                written: set[str] = set()
                offset = 0
                for number, raw in enumerate(handle, 1):
                    event = self._event_of(raw, number)
                    kind = event.get("event")
                    if kind in REPEATABLE and isinstance(event.get("hash"), str):
                        where[event["hash"]] = offset
                    offset += len(raw)
                    if kind != "repeated":
                        yield event
                        continue
                    written.add(str(event.get("run")))
                    full = self._read_at(lookup, where.get(str(event.get("of"))))
                    yield event if full is None else _expanded(full, event)
                for row in runs:
                    if str(row.get("run")) in written:
                        continue  # written by a writer killed before the state knew
                    full = self._read_at(lookup, where.get(str(row.get("of"))))
                    if full is not None:
                        yield _expanded(full, row, open=True)
        except OSError as e:
            raise AuditError(f"can't read audit log {self.path}: {e.strerror or e}") from e

    def runs(self) -> list[dict[str, Any]]:
        """The runs of repeats the state counts and the log does not hold yet (for
        ``expanded``); none without a ledger."""
        if self._ledger is None:
            return []
        try:
            return self._ledger.runs()
        except OpsgateError as e:
            raise AuditError(f"audit log {self.path}: can't read the runs of repeats: {e}") from e

    def _read_at(self, handle: IO[bytes], offset: int | None) -> dict[str, Any] | None:
        """The event on the line at ``offset`` (None: no offset)."""
        if offset is None:
            return None
        handle.seek(offset)
        return self._event_of(handle.readline(), 0)

    def verify(
        self,
        *,
        public_key: Ed25519PublicKey | None = None,
        counts: Counts | None = None,
        runs: Iterable[Mapping[str, Any]] | None = None,
    ) -> VerifyReport:
        """Check the hash chain from the first line to the last.

        With ``public_key``, every checkpoint's signature too (an unsigned
        start of a pruned log is then refused); with ``counts`` (what the
        state recorded), that the log is not shorter and still holds the last
        checkpoint written; with ``runs`` (the runs of repeats the state
        counts, Run.row of each), that each refers to a full copy in the log.
        Every ``repeated`` line must refer to an earlier full copy that says
        what it says (its ``digest``), and no run may be written twice.
        """
        if self.path.is_dir():
            return VerifyReport(0, problem="is a directory, not a file")
        if not self.path.exists():
            if counts is not None and counts.events > 0:
                return VerifyReport(
                    0, problem=f"is missing, but the state recorded {counts.events} events"
                )
            return VerifyReport(0)
        return self._verify(public_key, counts, runs=runs)

    def _verify(
        self,
        public_key: Ed25519PublicKey | None,
        counts: Counts | None,
        *,
        old_marker_ok: bool = False,
        runs: Iterable[Mapping[str, Any]] | None = None,
    ) -> VerifyReport:
        try:
            with self.path.open("rb") as handle:
                return self._verify_lines(handle, public_key, counts, old_marker_ok, runs)
        except OSError as e:
            return VerifyReport(0, problem=f"can't read it: {e.strerror or e}")

    def _verify_lines(
        self,
        handle: IO[bytes],
        public_key: Ed25519PublicKey | None,
        counts: Counts | None,
        old_marker_ok: bool,
        runs: Iterable[Mapping[str, Any]] | None,
    ) -> VerifyReport:
        previous: str | None = None
        tail = _Tail((0, 0))
        checkpoints = 0
        uncounted: list[tuple[int, int]] = []
        repeats = _Repeats()
        for number, raw in enumerate(handle, 1):
            tail.lines = number
            try:
                event = _parsed(raw)
                stated = event["hash"]
                prev = event["prev"]
            except (ValueError, KeyError, TypeError):
                return VerifyReport(number, number, "not an audit event")
            kind = event.get("event")
            if number == 1 and kind == "checkpoint" and "dropped" in event:
                # a pruned log starts with a signed checkpoint standing for the dropped events
                problem = _anchor_problem(event, public_key)
                if problem:
                    return VerifyReport(number, number, problem)
                tail.saw(0, event)
                checkpoints += 1
                previous = stated
                continue
            if number == 1 and kind == "pruned":
                if public_key is not None and not old_marker_ok:
                    return VerifyReport(
                        number,
                        number,
                        "starts with an unsigned prune marker (from before signed checkpoints): "
                        "the events it stands for can't be proven",
                    )
                tail.saw(0, event)  # the hash the first kept event chains to
                previous = stated
                continue
            if previous is None and prev != GENESIS:
                return VerifyReport(number, number, "first event does not start the chain")
            if previous is not None and prev != previous:
                return VerifyReport(number, number, "does not follow the line before it")
            body = {k: v for k, v in event.items() if k != "hash"}
            if _chain(prev, body) != stated:
                return VerifyReport(number, number, "content does not match its hash")
            if kind == "checkpoint":
                position = tail.events - 1
                problem = _checkpoint_problem(event, position, prev, public_key)
                if problem:
                    return VerifyReport(number, number, problem)
                tail.saw(number - 1, event)
                checkpoints += 1
                if event.get("uncounted"):
                    uncounted.append((number, int(event["uncounted"])))
            problem = repeats.saw(event)
            if problem:
                return VerifyReport(number, number, problem)
            previous = stated
        open_runs, open_repeats, problem = repeats.still_counted(runs or ())
        report = VerifyReport(
            tail.events,
            checkpoints=checkpoints,
            uncovered=tail.uncovered,
            uncounted=sum(n for _, n in uncounted),
            uncounted_at=tuple(line for line, _ in uncounted),
            signed=public_key is not None,
            repeats=repeats.repeats,
            open_runs=open_runs,
            open_repeats=open_repeats,
        )
        problem = _shorter_than_recorded(tail, counts) or problem
        return replace(report, problem=problem) if problem else report

    # --- pruning ------------------------------------------------------------------------

    def prune(
        self, keep_after: datetime.datetime, *, protect_after: datetime.datetime | None = None
    ) -> int:
        """Drop events older than ``keep_after``; return how many were dropped.

        The kept events stay byte for byte after a checkpoint, signed with the
        runner's key, that stands for everything dropped so far: how many
        events (``count``, ``dropped`` by this prune) and the hash they end at
        (``head``), which the first kept event chains to. The full copy a kept
        repeat refers to is kept, and so is everything after it. Refused
        (PruneRefused) when it would drop an event younger than
        ``protect_after``, and for a log that fails verification.
        """
        if self._signer is None:
            raise AuditError(
                f"pruning {self.path} needs the audit key: the kept log starts with a "
                "checkpoint signed with it"
            )
        cutoff = keep_after.strftime(_TIME_FORMAT)
        with self._locked():
            # an unsigned marker of an older prune is replaced by a signed checkpoint below
            runs = self._ledger.runs() if self._ledger else []
            report = self._verify(
                self._signer.public_key(),
                self._ledger.counts() if self._ledger else None,
                old_marker_ok=True,
                runs=runs,
            )
            if not report.ok:
                where = f":{report.first_break}" if report.first_break else ""
                raise AuditError(
                    f"{self.path}{where}: refusing to prune a log that fails verification: "
                    f"{report.reason or report.problem}"
                )
            try:
                lines = self.path.read_bytes().decode("utf-8").splitlines(keepends=True)
            except (OSError, UnicodeDecodeError) as e:
                raise AuditError(f"can't read audit log {self.path}: {e}") from e
            events = [_parsed(line) for line in lines]
            first = events[0] if events else {}
            old_marker = first.get("event") == "pruned"
            anchored = old_marker or (first.get("event") == "checkpoint" and "dropped" in first)
            start = 1 if anchored else 0
            base = (int(first["dropped"]) if old_marker else int(first["count"])) if anchored else 0
            kept_from = next(
                (i for i in range(start, len(events)) if str(events[i].get("time", "")) >= cutoff),
                len(events),
            )
            # a full copy stays while a kept repeat, or a run the state counts, refers to it
            referred = {
                str(e.get("of")) for e in events[kept_from:] if e.get("event") == "repeated"
            }
            referred.update(str(run.get("of")) for run in runs)
            kept_from = next(
                (i for i in range(start, kept_from) if events[i].get("hash") in referred),
                kept_from,
            )
            if kept_from == start and not old_marker:
                return 0
            dropped = events[start:kept_from]
            if protect_after is not None:
                floor = protect_after.strftime(_TIME_FORMAT)
                young = sum(1 for e in dropped if str(e.get("time", "")) >= floor)
                if young:
                    raise PruneRefused(
                        f"pruning {self.path} before {cutoff} would drop {young} events younger "
                        f"than {floor}",
                        young,
                    )
            anchor = self._signed_checkpoint(
                {
                    "count": base + len(dropped),
                    "head": events[kept_from - 1]["hash"],
                    "dropped": len(dropped),
                    "before": cutoff,
                }
            )
            # it stands for the chain from its start to head, which the kept events follow
            anchor["prev"], anchor["hash"] = GENESIS, anchor["head"]
            try:
                write_atomically(self.path, _canonical(anchor) + "\n" + "".join(lines[kept_from:]))
            except OSError as e:
                raise AuditError(f"can't prune audit log {self.path}: {e.strerror or e}") from e
        self._tail = None
        return len(dropped)


class _Repeats:
    """What ``verify`` keeps to check repeats: what each full copy says, and the runs written."""

    def __init__(self) -> None:
        # chain hash of each full copy a repeat may refer to → (kind, service, digest)
        self.full: dict[str, tuple[Any, Any, str]] = {}
        self.runs: set[str] = set()
        self.repeats = 0

    def saw(self, event: dict[str, Any]) -> str | None:
        """Take note of a full copy; why a ``repeated`` line is wrong (None: it is right)."""
        kind = event.get("event")
        if kind in REPEATABLE:
            self.full[event["hash"]] = (kind, event.get("service"), content_digest(event))
            return None
        if kind != "repeated":
            return None
        count, run = event.get("count"), event.get("run")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return f"repeat count {count!r} is not a number of repeats"
        if not isinstance(run, str) or run in self.runs:
            return f"repeat run {run!r} is written twice, or has no id"
        self.runs.add(run)
        self.repeats += count
        first, last = event.get("first"), event.get("last")
        between = _seconds_between(first, last)
        if between is None or between < 0:
            return f"repeat times {first!r} to {last!r} are not a span of time"
        problem = self._reference_problem(event)
        return f"repeat: {problem}" if problem else None

    def _reference_problem(self, run: Mapping[str, Any]) -> str | None:
        """Why the full copy a run refers to does not stand for it (None: it does)."""
        full = self.full.get(str(run.get("of")))
        if full is None:
            return "its full copy is not before it in the log (a missing or a later event)"
        if full != (run.get("kind"), run.get("service"), run.get("digest")):
            return "it does not say what its full copy says (it points at a different event)"
        return None

    def still_counted(self, runs: Iterable[Mapping[str, Any]]) -> tuple[int, int, str | None]:
        """(runs, repeats) the state counts that the log has no line of yet, and why one of
        them is wrong (None: each refers to a full copy in the log)."""
        count = repeats = 0
        for run in runs:
            if str(run.get("run")) in self.runs:
                continue  # its line was written by a writer killed before the state knew
            problem = self._reference_problem(run)
            if problem:
                return count, repeats, f"a run of repeats the state counts: {problem}"
            count += 1
            repeats += int(run.get("count") or 0)
        return count, repeats, None


def _anchor_problem(event: dict[str, Any], public_key: Ed25519PublicKey | None) -> str | None:
    """Why a prune checkpoint (the first line of a pruned log) is not valid (None: it is)."""
    count, head = event.get("count"), event.get("head")
    if not isinstance(count, int) or count < 0 or not isinstance(head, str):
        return "prune checkpoint has no count or head"
    if event.get("prev") != GENESIS or event.get("hash") != head:
        return "prune checkpoint does not stand for the start of the chain"
    return _signature_problem(event, public_key) if public_key is not None else None


def _checkpoint_problem(
    event: dict[str, Any], position: int, prev: str, public_key: Ed25519PublicKey | None
) -> str | None:
    """Why a checkpoint at ``position`` is not valid (None: it is)."""
    if "dropped" in event:
        return "a prune checkpoint anywhere but on the first line"
    if event.get("count") != position:
        return f"checkpoint count {event.get('count')!r} where {position} events come before it"
    if event.get("head") != prev:
        return "checkpoint does not cover the line before it"
    uncounted = event.get("uncounted", 0)
    if not isinstance(uncounted, int) or not 0 <= uncounted <= position:
        return f"checkpoint uncounted {uncounted!r} is not a number of the events before it"
    return _signature_problem(event, public_key) if public_key is not None else None


def _shorter_than_recorded(tail: _Tail, counts: Counts | None) -> str | None:
    """Why the log is not what the state recorded (None: it holds all of it)."""
    if counts is None:
        return None
    if tail.lines == 0 and counts.events > 0:
        return f"is empty, but the state recorded {counts.events} events"
    if tail.events < counts.events:
        return (
            f"has {tail.events} events, the state recorded {counts.events}: events were "
            "removed from its end, or the log was replaced"
        )
    count, head = counts.checkpoint_count, counts.checkpoint_head
    if count is not None and count >= tail.base and tail.checkpoints.get(count) != head:
        return (
            f"does not hold the checkpoint the state recorded (count {count}): the log was cut "
            "short or rewritten"
        )
    return None
