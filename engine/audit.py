"""The audit log: append-only JSON Lines, fsync'd, hash-chained, masked, prunable.

Every event is written and fsync'd *before* the action it records, so a
failure to write stops the action (``AuditError``). Each line carries the
SHA-256 of the previous line's hash and its own canonical content, so
``verify`` finds an edited, deleted, inserted or reordered line. Pruning
rewrites the file from its first kept event and records where the kept chain
starts, so a pruned log still verifies.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import redact
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
    }
)

EVENT_KINDS = frozenset(
    {
        "decision",
        "approval_requested",
        "approval_granted",
        "approval_rejected",
        "approval_expired",
        "approval_void",
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
    }
)


class AuditError(OpsgateError):
    """The audit log can't be written or read; nothing may be executed."""


class AuditTampered(OpsgateError):
    """``verify`` found a line that breaks the hash chain."""


def mask(value: Any) -> Any:
    """Return ``value`` with secrets masked by key and by value (see engine.redact)."""
    return redact.mask(value, keep=_OWN_FIELDS)


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chain(previous: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((previous + _canonical(body)).encode()).hexdigest()


def utc_now() -> str:
    """The current time as RFC 3339 UTC with microseconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class VerifyReport:
    """What ``verify`` found: how many events, and the first break if any."""

    events: int
    first_break: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when every line chains to the one before it."""
        return self.first_break is None


class AuditLog:
    """One audit log file. Safe for several processes: appends hold a file lock."""

    def __init__(self, path: Path, *, clock: Any = utc_now) -> None:
        self.path = path
        self._clock = clock

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Append one event, fsync it, and return it; raise AuditError if it can't be written."""
        if kind not in EVENT_KINDS:
            raise AuditError(f"unknown audit event kind {kind!r}")
        body: dict[str, Any] = {"time": fields.pop("time", None) or self._clock(), "event": kind}
        body.update(mask(fields))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "a+b") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    previous = self._last_hash(handle)
                    body["prev"] = previous
                    body["hash"] = _chain(previous, {k: v for k, v in body.items() if k != "hash"})
                    handle.seek(0, os.SEEK_END)
                    handle.write((_canonical(body) + "\n").encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        except OSError as e:
            raise AuditError(f"can't write audit log {self.path}: {e.strerror or e}") from e
        except (TypeError, ValueError) as e:
            raise AuditError(f"audit event {kind} is not JSON-serialisable: {e}") from e
        return body

    @staticmethod
    def _last_hash(handle: Any) -> str:
        """The hash of the last line; read as bytes, since a byte offset may split a character."""
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return GENESIS
        step = 4096
        while True:
            offset = max(0, size - step)
            handle.seek(offset)
            tail: bytes = handle.read()
            lines = tail.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or offset == 0:
                break
            step *= 2
        try:
            last = json.loads(lines[-1].decode("utf-8"))
            return str(last["hash"])
        except (ValueError, KeyError, TypeError) as e:
            raise AuditError(f"audit log {handle.name} ends with a damaged line") from e

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield every event in order; a missing file has none."""
        if not self.path.exists():
            return
        try:
            with self.path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    try:
                        event = json.loads(line)
                    except ValueError as e:
                        raise AuditError(f"{self.path}:{number}: not a JSON line") from e
                    if not isinstance(event, dict):
                        raise AuditError(f"{self.path}:{number}: not a JSON object")
                    yield event
        except OSError as e:
            raise AuditError(f"can't read audit log {self.path}: {e.strerror or e}") from e

    def verify(self) -> VerifyReport:
        """Check the hash chain from the first line to the last."""
        previous: str | None = None
        count = 0
        if not self.path.exists():
            return VerifyReport(0)
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                count = number
                try:
                    event = json.loads(line)
                    stated = event["hash"]
                    prev = event["prev"]
                except (ValueError, KeyError, TypeError):
                    return VerifyReport(number, number, "not an audit event")
                if previous is None and event.get("event") == "pruned":
                    # a pruned log starts with a marker standing in for the dropped
                    # events: its hash is the one the first kept event chains to
                    previous = stated
                    continue
                if previous is None and prev != GENESIS:
                    return VerifyReport(number, number, "first event does not start the chain")
                if previous is not None and prev != previous:
                    return VerifyReport(number, number, "does not follow the line before it")
                body = {k: v for k, v in event.items() if k != "hash"}
                if _chain(prev, body) != stated:
                    return VerifyReport(number, number, "content does not match its hash")
                previous = stated
        return VerifyReport(count)

    def prune(self, keep_after: datetime.datetime) -> int:
        """Drop events older than ``keep_after``; return how many were dropped.

        The kept events are kept unchanged after a ``pruned`` marker that
        states the hash the first kept event chains to, so the chain verifies.
        """
        report = self.verify()
        if not report.ok:
            raise AuditError(
                f"{self.path}:{report.first_break}: refusing to prune a log that fails verification"
            )
        events = list(self.events())
        cutoff = keep_after.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kept_from = next(
            (i for i, e in enumerate(events) if str(e.get("time", "")) >= cutoff), len(events)
        )
        if kept_from == 0:
            return 0
        dropped = events[:kept_from]
        # The marker takes the place of the dropped events: it carries the hash
        # the first kept event chains to, and the kept events stay byte for byte.
        marker: dict[str, Any] = {
            "time": self._clock(),
            "event": "pruned",
            "dropped": len(dropped),
            "before": cutoff,
            "prev": dropped[0]["prev"],
            "hash": dropped[-1]["hash"],
        }
        rewritten = [marker, *events[kept_from:]]
        try:
            write_atomically(self.path, "".join(_canonical(e) + "\n" for e in rewritten))
        except OSError as e:
            raise AuditError(f"can't prune audit log {self.path}: {e.strerror or e}") from e
        return len(dropped)
