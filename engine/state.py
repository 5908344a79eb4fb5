"""Durable runner state in SQLite: breakers, cooldowns, approvals, the operation journal.

WAL mode and a busy timeout let ``opsgate run`` and ``opsgate approvals``
share the file from two processes. The schema carries a version; opening an
older file migrates it, opening a newer one is refused. Every failure to
read or write is a ``StateError``: the runner acts on nothing it could not
record.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import redact
from engine.errors import OpsgateError
from engine.files import create_private_file
from engine.history import Tick, UsageSample

log = logging.getLogger(__name__)

SCHEMA_VERSION = 8
BUSY_TIMEOUT_SECONDS = 5.0

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE services (
        service TEXT PRIMARY KEY,
        last_operation_at TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        breaker_open INTEGER NOT NULL DEFAULT 0,
        breaker_reason TEXT,
        breaker_changed_at TEXT,
        breaker_changed_by TEXT
    );
    CREATE TABLE approvals (
        id TEXT PRIMARY KEY,
        service TEXT NOT NULL,
        decision_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        reasons TEXT NOT NULL,
        rules TEXT NOT NULL,
        blueprint_refs TEXT NOT NULL,
        blueprint_name TEXT NOT NULL,
        blueprint_version TEXT NOT NULL,
        bundle_revision TEXT NOT NULL,
        approvers TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        answered_by TEXT,
        answered_at TEXT,
        justification TEXT
    );
    CREATE INDEX approvals_by_status ON approvals(status, service);
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        decision_id TEXT NOT NULL,
        service TEXT NOT NULL,
        operation TEXT NOT NULL,
        inverse TEXT,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX journal_by_status ON journal(status);
    """,
    # approvals bound to one operation and one requester, answered by a signed statement
    2: """
    ALTER TABLE approvals ADD COLUMN operation_digest TEXT NOT NULL DEFAULT '';
    ALTER TABLE approvals ADD COLUMN requester TEXT NOT NULL
        DEFAULT '{"kind": "runner", "name": "opsgate"}';
    ALTER TABLE approvals ADD COLUMN approver_keys TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE approvals ADD COLUMN token TEXT;
    ALTER TABLE services ADD COLUMN breaker_token TEXT;
    """,
    # what the runner wrote to its audit log, so a shorter or replaced log is noticed
    3: """
    CREATE TABLE audit_ledger (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        events INTEGER NOT NULL DEFAULT 0,
        checkpoint_count INTEGER,
        checkpoint_head TEXT,
        public_key TEXT,
        retention_days INTEGER
    );
    INSERT INTO audit_ledger (id) VALUES (1);
    """,
    # a request is one of a kind (a nonce its answer must sign) and knows the OS user behind it
    4: """
    ALTER TABLE approvals ADD COLUMN nonce TEXT NOT NULL DEFAULT '';
    ALTER TABLE approvals ADD COLUMN requester_uid INTEGER;
    """,
    # what the runner serves: opsgate execute on its state must decide by the same rules
    5: """
    CREATE TABLE runner (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        bundle_revision TEXT NOT NULL,
        opa TEXT NOT NULL
    );
    """,
    # what the policies decide scale-downs, latency scale-outs and right-sizing from
    6: """
    CREATE TABLE history_ticks (
        service TEXT NOT NULL,
        at TEXT NOT NULL,
        seconds REAL NOT NULL,
        replicas INTEGER,
        latency_p95_ms REAL
    );
    CREATE INDEX history_ticks_by_service ON history_ticks(service, seconds);
    CREATE TABLE usage_samples (
        service TEXT NOT NULL,
        seconds REAL NOT NULL,
        cpu_millicores INTEGER,
        memory_bytes INTEGER
    );
    CREATE INDEX usage_samples_by_service ON usage_samples(service, seconds);
    """,
    # runs of repeated audit events counted here, each tick, until the log gets their line
    7: """
    CREATE TABLE audit_runs (
        run TEXT PRIMARY KEY,
        change_key TEXT NOT NULL,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        service TEXT,
        of_hash TEXT NOT NULL,
        digest TEXT NOT NULL,
        repeats INTEGER NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        last_decision_id TEXT
    );
    """,
    # a request that replaced an open one when the decision moved (the id chain)
    8: """
    ALTER TABLE approvals ADD COLUMN supersedes TEXT;
    """,
}

_APPROVAL_JSON = (
    "operation",
    "reasons",
    "rules",
    "blueprint_refs",
    "approvers",
    "requester",
    "approver_keys",
)

# verifying: applied, its verification scheduled for a later tick (detail: verify_at)
JOURNAL_OPEN = ("started", "applied", "verifying", "rolling_back")
JOURNAL_CLOSED = ("completed", "failed", "rolled_back", "rollback_failed")


class StateError(OpsgateError):
    """The state database can't be opened, read or written."""


@dataclass(frozen=True)
class AuditCounts:
    """What the state recorded of the audit log: the log may be longer, never shorter."""

    # events the log has had since it began (those a prune dropped included)
    events: int = 0
    # the last signed checkpoint written: events before it, and the chain hash it covers
    checkpoint_count: int | None = None
    checkpoint_head: str | None = None
    # the public key line of the key that signs the checkpoints
    public_key: str | None = None
    # the longest governance.audit.retention_days of the blueprints the runner ran with
    retention_days: int | None = None


@dataclass(frozen=True)
class Approval:
    """An approval request as stored."""

    id: str
    service: str
    decision_id: str
    operation: dict[str, Any]
    reasons: list[str]
    rules: list[str]
    blueprint_refs: list[str]
    blueprint_name: str
    blueprint_version: str
    bundle_revision: str
    approvers: list[str]
    requested_at: str
    expires_at: str
    status: str
    answered_by: str | None
    answered_at: str | None
    justification: str | None
    operation_digest: str = ""
    requester: dict[str, str] | None = None
    # the approvers with their public keys ({name, public_key}; plain names stay strings)
    approver_keys: list[Any] | None = None
    # the signed answer (a JWS), kept so the approval can be verified again later
    token: str | None = None
    # random, signed into the answer: an answer to another runner's same request won't do
    nonce: str = ""
    # the OS user behind the request (sudo's caller when run as the runner's user)
    requester_uid: int | None = None
    # the open request this one replaced when the decision moved materially
    supersedes: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the request as a JSON-ready mapping."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class JournalEntry:
    """One operation as the journal recorded it."""

    id: int
    decision_id: str
    service: str
    operation: dict[str, Any]
    inverse: dict[str, Any] | None
    status: str
    started_at: str
    updated_at: str
    detail: dict[str, Any] | None


class StateStore:
    """The SQLite state file of one runner (``STATE_DIR/state.db``)."""

    def __init__(self, path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # 0600 before SQLite sees it: its -wal and -shm files take the same mode
            create_private_file(path)
            for companion in ("-wal", "-shm"):
                extra = path.with_name(path.name + companion)
                if extra.exists():
                    create_private_file(extra)
            self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as e:
            self.close()
            raise StateError(f"can't open state database {path}: {e}") from e
        except OSError as e:
            self.close()
            raise StateError(f"can't open state database {path}: {e.strerror or e}") from e
        except StateError:
            self.close()
            raise

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection."""
        if self._db is None:
            raise StateError(f"state database {self.path} is closed")
        return self._db

    def close(self) -> None:
        """Close the database connection (safe to call twice)."""
        if self._db is not None:
            self.db.close()
            self._db = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StateError(f"state database {self.path} is busy or locked: {e}") from e
        try:
            yield self.db
        except sqlite3.Error as e:
            self.db.execute("ROLLBACK")
            raise StateError(f"can't write state database {self.path}: {e}") from e
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as e:
                raise StateError(f"can't commit to state database {self.path}: {e}") from e

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self.db.execute(sql, parameters).fetchall()
        except sqlite3.Error as e:
            raise StateError(f"can't read state database {self.path}: {e}") from e

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state database {self.path} has schema version {version}; this opsgate "
                f"knows up to {SCHEMA_VERSION}: upgrade opsgate"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._write() as db:
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")
            log.info("state database %s migrated to schema version %d", self.path, target)

    def record_runner(self, bundle_revision: str, opa: str) -> None:
        """Remember the bundle revision and the OPA the runner decides with."""
        with self._write() as db:
            db.execute(
                "INSERT INTO runner (id, bundle_revision, opa) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET bundle_revision = excluded.bundle_revision, "
                "opa = excluded.opa",
                (bundle_revision, opa),
            )

    def runner(self) -> tuple[str, str] | None:
        """(bundle revision, OPA) the runner last started with, or None if it never ran."""
        rows = self._read("SELECT bundle_revision, opa FROM runner WHERE id = 1")
        return (rows[0]["bundle_revision"], rows[0]["opa"]) if rows else None

    def owner_uid(self) -> int:
        """The OS user who owns the state (the runner's user)."""
        try:
            return self.path.stat().st_uid
        except OSError as e:
            raise StateError(f"can't read state database {self.path}: {e.strerror or e}") from e

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self._read("PRAGMA user_version")[0][0])

    # --- what the audit log should hold ------------------------------------------

    def audit_counts(self) -> AuditCounts:
        """What the state recorded of the audit log (see AuditLedger)."""
        return _audit_counts(self._read(f"SELECT {_LEDGER_COLUMNS} FROM audit_ledger WHERE id = 1"))

    def record_audit_retention(self, days: int) -> None:
        """Remember the retention of the blueprints the runner runs with (audit prune's floor)."""
        with self._write() as db:
            db.execute("UPDATE audit_ledger SET retention_days = ? WHERE id = 1", (days,))

    def audit_ledger(self, *, durable: bool = True) -> AuditLedger:
        """A ledger for the audit log, on a connection of its own (see AuditLedger)."""
        return AuditLedger(self.path, durable=durable)

    # --- what the policies remember between ticks (engine.history) ---------------

    def history_ticks(self) -> dict[str, list[Tick]]:
        """Every service's recorded ticks, oldest first."""
        ticks: dict[str, list[Tick]] = {}
        for row in self._read("SELECT * FROM history_ticks ORDER BY service, seconds, rowid"):
            ticks.setdefault(row["service"], []).append(
                Tick(row["at"], row["seconds"], row["replicas"], row["latency_p95_ms"])
            )
        return ticks

    def usage_samples(self) -> dict[str, list[UsageSample]]:
        """Every service's per-pod usage samples, oldest first."""
        samples: dict[str, list[UsageSample]] = {}
        for row in self._read("SELECT * FROM usage_samples ORDER BY service, seconds, rowid"):
            samples.setdefault(row["service"], []).append(
                UsageSample(row["seconds"], row["cpu_millicores"], row["memory_bytes"])
            )
        return samples

    def record_history(
        self,
        ticks: Mapping[str, Tick],
        samples: Mapping[str, UsageSample],
        keep_ticks_from: Mapping[str, float],
        keep_usage_from: float,
    ) -> None:
        """Add one tick's entries and drop what fell out of the windows, in one transaction."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO history_ticks (service, at, seconds, replicas, latency_p95_ms) "
                "VALUES (?, ?, ?, ?, ?)",
                [(s, t.at, t.seconds, t.replicas, t.latency_p95_ms) for s, t in ticks.items()],
            )
            db.executemany(
                "INSERT INTO usage_samples (service, seconds, cpu_millicores, memory_bytes) "
                "VALUES (?, ?, ?, ?)",
                [(s, u.seconds, u.cpu, u.memory) for s, u in samples.items()],
            )
            db.executemany(
                "DELETE FROM history_ticks WHERE service = ? AND seconds < ?",
                list(keep_ticks_from.items()),
            )
            db.execute("DELETE FROM usage_samples WHERE seconds < ?", (keep_usage_from,))

    # --- per-service safety state: cooldown and breaker ------------------------

    def service_state(self, service: str) -> dict[str, Any]:
        """The ``state`` object of the observation contract for one service."""
        rows = self._read("SELECT * FROM services WHERE service = ?", (service,))
        if not rows:
            return {"last_operation_at": None, "consecutive_failures": 0, "breaker_open": False}
        row = rows[0]
        return {
            "last_operation_at": row["last_operation_at"],
            "consecutive_failures": row["consecutive_failures"],
            "breaker_open": bool(row["breaker_open"]),
        }

    def service_states(self) -> dict[str, dict[str, Any]]:
        """The ``state`` object of every service with a record, in one query."""
        return {
            row["service"]: {
                "last_operation_at": row["last_operation_at"],
                "consecutive_failures": row["consecutive_failures"],
                "breaker_open": bool(row["breaker_open"]),
            }
            for row in self._read("SELECT * FROM services")
        }

    def _ensure_service(self, db: sqlite3.Connection, service: str) -> None:
        db.execute("INSERT OR IGNORE INTO services (service) VALUES (?)", (service,))

    def record_operation(self, service: str, at: str) -> None:
        """Start the service's cooldown: an operation was executed at ``at``."""
        with self._write() as db:
            self._ensure_service(db, service)
            db.execute("UPDATE services SET last_operation_at = ? WHERE service = ?", (at, service))

    def record_success(self, service: str) -> None:
        """A verified operation: the failure count starts again from zero."""
        with self._write() as db:
            self._ensure_service(db, service)
            db.execute("UPDATE services SET consecutive_failures = 0 WHERE service = ?", (service,))

    def record_failure(self, service: str) -> int:
        """Count a failed operation; return the service's consecutive failures.

        Whether that opens the breaker is the policies' decision
        (``data.opsgate.main.breaker``), recorded with ``open_breaker``.
        """
        with self._write() as db:
            self._ensure_service(db, service)
            db.execute(
                "UPDATE services SET consecutive_failures = consecutive_failures + 1 "
                "WHERE service = ?",
                (service,),
            )
            row = db.execute(
                "SELECT consecutive_failures FROM services WHERE service = ?", (service,)
            ).fetchone()
            return int(row["consecutive_failures"])

    def open_breaker(self, service: str, at: str, reason: str) -> bool:
        """Open the breaker now (a rollback failed, or the policies decided it opens).
        True if it was closed before."""
        with self._write() as db:
            self._ensure_service(db, service)
            before = db.execute(
                "SELECT breaker_open FROM services WHERE service = ?", (service,)
            ).fetchone()["breaker_open"]
            db.execute(
                "UPDATE services SET breaker_open = 1, breaker_reason = ?, breaker_changed_at = ?, "
                "breaker_changed_by = 'opsgate', breaker_token = NULL WHERE service = ?",
                (reason, at, service),
            )
            return not before

    def reset_breaker(self, service: str, by: str, at: str, token: str | None = None) -> bool:
        """Close the breaker and clear the failure count (a person decided, ``token`` their
        signed word); True if it was open or had failures counted."""
        with self._write() as db:
            rows = db.execute(
                "SELECT breaker_open, consecutive_failures FROM services WHERE service = ?",
                (service,),
            ).fetchall()
            if not rows or not (rows[0]["breaker_open"] or rows[0]["consecutive_failures"]):
                return False
            db.execute(
                "UPDATE services SET breaker_open = 0, consecutive_failures = 0, "
                "breaker_reason = NULL, breaker_changed_at = ?, breaker_changed_by = ?, "
                "breaker_token = ? WHERE service = ?",
                (at, by, token, service),
            )
            return True

    def breakers(self) -> list[dict[str, Any]]:
        """Every service with its breaker and failure count."""
        return [dict(row) for row in self._read("SELECT * FROM services ORDER BY service")]

    # --- approvals ---------------------------------------------------------------

    def add_approval(self, approval: Approval) -> None:
        """Store a new pending approval request."""
        row = approval.to_json()
        for key in _APPROVAL_JSON:
            row[key] = json.dumps(row[key], sort_keys=True)
        with self._write() as db:
            db.execute(
                f"INSERT INTO approvals ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                tuple(row.values()),
            )

    @staticmethod
    def _approval(row: sqlite3.Row) -> Approval:
        data = dict(row)
        for key in _APPROVAL_JSON:
            data[key] = json.loads(data[key])
        return Approval(**data)

    def approval(self, approval_id: str) -> Approval | None:
        """One approval request by id (a unique prefix of at least 6 characters works too)."""
        rows = self._read("SELECT * FROM approvals WHERE id = ?", (approval_id,))
        if not rows and len(approval_id) >= 6:
            rows = self._read(
                "SELECT * FROM approvals WHERE id LIKE ? || '%' ESCAPE '\\'",
                (approval_id.replace("%", "\\%").replace("_", "\\_"),),
            )
            if len(rows) > 1:
                raise StateError(f"approval id prefix {approval_id!r} is ambiguous")
        return self._approval(rows[0]) if rows else None

    def approvals(
        self, status: str | None = None, service: str | None = None, *, since_day: str | None = None
    ) -> list[Approval]:
        """Approval requests, oldest first, optionally by status and service; with
        ``since_day`` (YYYY-MM-DD) only those requested, answered or expiring on that day
        or later (a coarse bound by the date alone: the caller filters the exact moment)."""
        sql = (
            "SELECT * FROM approvals WHERE (? IS NULL OR status = ?) AND (? IS NULL OR service = ?)"
            " AND (? IS NULL OR substr(requested_at, 1, 10) >= ?"
            " OR substr(COALESCE(answered_at, ''), 1, 10) >= ?"
            " OR substr(expires_at, 1, 10) >= ?)"
        )
        rows = self._read(
            sql + " ORDER BY requested_at, id",
            (status, status, service, service, since_day, since_day, since_day, since_day),
        )
        return [self._approval(row) for row in rows]

    def pending_for(self, service: str, decision_id: str) -> Approval | None:
        """The open request for this decision, if one exists."""
        rows = self._read(
            "SELECT * FROM approvals WHERE service = ? AND decision_id = ? "
            "ORDER BY requested_at DESC LIMIT 1",
            (service, decision_id),
        )
        return self._approval(rows[0]) if rows else None

    def answer_approval(
        self,
        approval_id: str,
        status: str,
        by: str,
        at: str,
        justification: str | None,
        token: str | None = None,
    ) -> Approval:
        """Move a pending request to ``status``; only pending requests can be answered."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE approvals SET status = ?, answered_by = ?, answered_at = ?, "
                "justification = ?, token = ? WHERE id = ? AND status = 'pending'",
                (status, by, at, justification, token, approval_id),
            ).rowcount
        current = self.approval(approval_id)
        if current is None:
            raise StateError(f"no approval request {approval_id}")
        if not changed:
            raise StateError(f"approval request {approval_id} is already {current.status}")
        return current

    def mark_approval(self, approval_id: str, status: str) -> None:
        """Set a request's status without an answer (executed, void, expired)."""
        with self._write() as db:
            db.execute("UPDATE approvals SET status = ? WHERE id = ?", (status, approval_id))

    def spend_approval(self, approval_id: str) -> None:
        """Use a granted approval up: exactly once, or StateError."""
        with self._write() as db:
            changed = db.execute(
                "UPDATE approvals SET status = 'executed' WHERE id = ? AND status = 'granted'",
                (approval_id,),
            ).rowcount
        if not changed:
            raise StateError(f"approval request {approval_id} is not granted (or already used)")

    def spent_approvals(self, service: str) -> list[str]:
        """Ids of the approvals already used for ``service`` (Rego refuses them again)."""
        rows = self._read(
            "SELECT id FROM approvals WHERE service = ? AND status = 'executed' ORDER BY id",
            (service,),
        )
        return [row["id"] for row in rows]

    # --- the operation journal ------------------------------------------------------

    def journal_begin(
        self,
        decision_id: str,
        service: str,
        operation: dict[str, Any],
        inverse: dict[str, Any] | None,
        at: str,
    ) -> int:
        """Record that an operation is about to be applied; return the entry id.

        The operation and its inverse are stored masked (engine.redact): the
        journal must not keep a secret, so recovery acts on what is left and
        refuses to write back a masked value.
        """
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO journal (decision_id, service, operation, inverse, status, "
                "started_at, updated_at) VALUES (?, ?, ?, ?, 'started', ?, ?)",
                (
                    decision_id,
                    service,
                    json.dumps(redact.mask_operation(operation), sort_keys=True),
                    (
                        json.dumps(redact.mask_operation(inverse), sort_keys=True)
                        if inverse is not None
                        else None
                    ),
                    at,
                    at,
                ),
            )
            entry_id = cursor.lastrowid
        assert entry_id is not None
        return entry_id

    def journal_mark(
        self, entry_id: int, status: str, at: str, detail: dict[str, Any] | None = None
    ) -> None:
        """Move a journal entry to ``status`` (see JOURNAL_OPEN and JOURNAL_CLOSED).

        ``detail`` (an inverse, an error, a verification) is stored masked.
        """
        if status not in JOURNAL_OPEN + JOURNAL_CLOSED:
            raise StateError(f"unknown journal status {status!r}")
        stored = json.dumps(redact.mask(detail), sort_keys=True) if detail else None
        with self._write() as db:
            db.execute(
                "UPDATE journal SET status = ?, updated_at = ?, detail = ? WHERE id = ?",
                (status, at, stored, entry_id),
            )

    def journal(self, *, unfinished: bool = False, status: str | None = None) -> list[JournalEntry]:
        """Journal entries, oldest first; ``unfinished`` keeps the ones never closed,
        ``status`` the ones in that status (``verifying``: the scheduled verifications)."""
        sql, parameters = "SELECT * FROM journal", ()  # type: tuple[str, tuple[Any, ...]]
        if unfinished:
            sql += f" WHERE status IN ({', '.join(repr(s) for s in JOURNAL_OPEN)})"
        elif status is not None:
            sql, parameters = sql + " WHERE status = ?", (status,)
        entries = []
        for row in self._read(sql + " ORDER BY id", parameters):
            data = dict(row)
            data["operation"] = json.loads(data["operation"])
            data["inverse"] = json.loads(data["inverse"]) if data["inverse"] else None
            data["detail"] = json.loads(data["detail"]) if data["detail"] else None
            entries.append(JournalEntry(**data))
        return entries


_LEDGER_COLUMNS = "events, checkpoint_count, checkpoint_head, public_key, retention_days"


def _audit_counts(rows: list[sqlite3.Row] | list[tuple[Any, ...]]) -> AuditCounts:
    if not rows:
        # the row is made with the table: without it, the state was tampered with
        raise StateError("the state database has no audit ledger row")
    events, count, head, public_key, retention = tuple(rows[0])
    return AuditCounts(int(events), count, head, public_key, retention)


class AuditLedger:
    """The audit log's counts in the state database, updated as the log is appended to.

    The log appends from notifier threads too, so the ledger has a connection
    of its own that any thread may use, one at a time. The log is written
    first and the ledger after: a crash between the two leaves the log longer
    than the ledger, which is fine; the ledger never goes down. It also holds
    the runs of repeats the log counts instead of writing (``runs``,
    ``repeated``): a run leaves it in the same transaction that counts its
    line (``appended(written=…)``).
    """

    def __init__(
        self, path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS, durable: bool = True
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self._db = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            # not durable: written for the OS to keep (a killed process loses nothing), not
            # synced to the disk, for a simulation's state that is thrown away with its log
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        except sqlite3.Error as e:
            self.close()
            raise StateError(f"can't open state database {path}: {e}") from e

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise StateError(f"state database {self.path} is closed")
        return self._db

    def counts(self) -> AuditCounts:
        """What the state recorded of the audit log."""
        with self._lock:
            try:
                rows = (
                    self._connection()
                    .execute(f"SELECT {_LEDGER_COLUMNS} FROM audit_ledger WHERE id = 1")
                    .fetchall()
                )
            except sqlite3.Error as e:
                raise StateError(f"can't read state database {self.path}: {e}") from e
        return _audit_counts(rows)

    def appended(
        self,
        events: int,
        checkpoint: tuple[int, str] | None = None,
        public_key: str | None = None,
        written: Collection[str] = (),
    ) -> None:
        """The log now has ``events`` events; ``checkpoint`` (count, head) was just signed;
        the runs ``written`` now have their line in the log (counted here no more)."""
        statements: list[tuple[str, tuple[Any, ...]]] = [
            ("UPDATE audit_ledger SET events = MAX(events, ?) WHERE id = 1", (events,))
        ]
        statements.extend(("DELETE FROM audit_runs WHERE run = ?", (run,)) for run in written)
        if checkpoint is not None:
            count, head = checkpoint
            statements.append(
                (
                    "UPDATE audit_ledger SET checkpoint_count = ?, checkpoint_head = ? "
                    "WHERE id = 1 AND (checkpoint_count IS NULL OR checkpoint_count <= ?)",
                    (count, head, count),
                )
            )
        if public_key is not None:
            statements.append(
                (
                    "UPDATE audit_ledger SET public_key = ? WHERE id = 1 AND public_key IS NULL",
                    (public_key,),
                )
            )
        self._transaction(statements)

    def runs(self, ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """The runs of repeated events counted here and not yet written to the log (those of
        ``ids`` only, when given)."""
        sql, parameters = f"SELECT {_RUN_COLUMNS} FROM audit_runs", tuple(ids or ())
        if ids is not None:
            sql += f" WHERE run IN ({', '.join('?' * len(parameters))})"
        with self._lock:
            try:
                rows = self._connection().execute(sql, parameters).fetchall()
            except sqlite3.Error as e:
                raise StateError(f"can't read state database {self.path}: {e}") from e
        return [_run(row) for row in rows]

    def repeated(self, run: Mapping[str, Any]) -> bool:
        """Count one more repeat: ``run`` as it stands with it (see engine.audit.Run).

        A run of one repeat is new, and is added. A longer one is updated only
        if the state still holds it one repeat shorter: False when it does not
        (another command wrote its line meanwhile), and nothing is changed.
        """
        if run["count"] == 1:
            values = tuple(run[name] for name in _RUN_FIELDS)
            placeholders = ", ".join("?" * len(values))
            return (
                self._transaction(
                    [(f"INSERT INTO audit_runs ({_RUN_COLUMNS}) VALUES ({placeholders})", values)]
                )
                == 1
            )
        return (
            self._transaction(
                [
                    (
                        "UPDATE audit_runs SET repeats = ?, last_at = ?, last_decision_id = ? "
                        "WHERE run = ? AND repeats = ?",
                        (
                            run["count"],
                            run["last"],
                            run["last_decision_id"],
                            run["run"],
                            run["count"] - 1,
                        ),
                    )
                ]
            )
            == 1
        )

    def _transaction(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        """Run ``statements`` in one transaction; return how many rows the last one changed."""
        with self._lock:
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StateError(f"state database {self.path} is busy or locked: {e}") from e
            try:
                changed = 0
                for sql, parameters in statements:
                    changed = db.execute(sql, parameters).rowcount
                db.execute("COMMIT")
            except sqlite3.Error as e:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StateError(f"can't write state database {self.path}: {e}") from e
        return changed

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# a run of repeats (engine.audit.Run) as the state keeps it: field → column
_RUN_FIELDS = (
    "run",
    "key",
    "owner",
    "kind",
    "service",
    "of",
    "digest",
    "count",
    "first",
    "last",
    "last_decision_id",
)
_RUN_COLUMNS = (
    "run, change_key, owner, kind, service, of_hash, digest, repeats, first_at, last_at, "
    "last_decision_id"
)


def _run(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_RUN_FIELDS, tuple(row), strict=True))


def read_audit_runs(path: Path) -> list[dict[str, Any]]:
    """The runs of repeats a state database counts, opened read-only (none before schema 7)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < 7:
                return []
            rows = db.execute(f"SELECT {_RUN_COLUMNS} FROM audit_runs").fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise StateError(f"can't read state database {path}: {e}") from e
    return [_run(row) for row in rows]


def read_audit_counts(path: Path) -> AuditCounts | None:
    """The audit counts of a state database, opened read-only (None: from before schema 3)."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < 3:
                return None
            rows = db.execute(f"SELECT {_LEDGER_COLUMNS} FROM audit_ledger WHERE id = 1").fetchall()
        finally:
            db.close()
    except sqlite3.Error as e:
        raise StateError(f"can't read state database {path}: {e}") from e
    return _audit_counts(rows)
