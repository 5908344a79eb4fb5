"""Approval notifications: tell people a request waits for them, and how it ended.

``governance.approval_workflow.notifications`` lists targets. A webhook gets
an HTTP POST of the request as JSON with a Slack-compatible ``text`` line,
signed with HMAC-SHA256 (``X-Opsgate-Signature: sha256=<hex>`` over the exact
body) when the target names a secret; a command gets the same JSON on stdin.

Sending never stands in the way of an approval: ``notify`` only queues, and
one worker thread per target sends, so a slow receiver delays nothing but
its own later messages. Each delivery is bounded (``TRIES`` tries of the
target's ``timeout_seconds``, ``BACKOFF_SECONDS`` between them); a client
error (4xx) or a command that can't start is not retried. A delivery that
fails is logged and recorded through ``record`` (the audit log's
``notification_failed``), which ``opsgate approvals list`` shows. ``close``
waits, at most ``CLOSE_SECONDS``, for what is still being sent and records
every message it could not deliver; an exit that never called it still does
so (atexit), so nothing is dropped silently with the daemon workers.

Secrets: a target names the environment variable or the file that holds
its signing secret. Only that name is configured, compiled and recorded; the
value is read when a message is signed and goes nowhere else. Remote answers
are never read beyond their status code.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import json
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from engine import __version__
from engine.blueprint import is_loopback
from engine.contracts import describe
from engine.files import write_atomically

log = logging.getLogger(__name__)

# Audit event kind of an approval step → the event name a notification carries.
EVENTS = {
    "approval_requested": "requested",
    "approval_granted": "granted",
    "approval_rejected": "rejected",
    "approval_expired": "expired",
}
TRIES = 3
BACKOFF_SECONDS = (0.5, 1.0)
DEFAULT_TIMEOUT_SECONDS = 5.0
CLOSE_SECONDS = 30.0
SIGNATURE_HEADER = "X-Opsgate-Signature"
# The runner writes its targets here (in the state directory) so that
# ``opsgate approvals`` in another shell notifies the same receivers.
TARGETS_FILE = "notifications.json"

# Called as record("notification_failed", **fields): AuditLog.record fits.
Record = Callable[..., object]


class _NotSent(Exception):
    """A message that can't be sent at all (no secret): no point in trying again."""


@dataclass(frozen=True)
class Failure:
    """A notification that did not reach one target, in words safe to show and keep."""

    service: str
    approval_id: str
    event: str
    target: str
    tries: int
    error: str

    def summary(self) -> str:
        """One line: ``requested → webhook https://host: HTTP 500 after 3 tries``."""
        return _summary(self.event, self.target, self.error, self.tries)

    def audit_fields(self) -> dict[str, Any]:
        """The fields of its ``notification_failed`` audit event."""
        return {
            "service": self.service,
            "approval_id": self.approval_id,
            "notification": {
                "event": self.event,
                "target": self.target,
                "tries": self.tries,
                "error": self.error,
            },
            "actor": "opsgate",
        }


def _summary(event: str, target: str, error: str, tries: int) -> str:
    text = f"{event} → {target}: {error}"
    if tries:
        text += f" after {tries} {'try' if tries == 1 else 'tries'}"
    return _clean(text)


def _clean(text: str, limit: int = 300) -> str:
    """Text fit for a terminal: control characters replaced, length capped."""
    shown = "".join("?" if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


@dataclass(frozen=True)
class _Target:
    """One configured receiver."""

    kind: str
    url: str = ""
    argv: tuple[str, ...] = ()
    secret_env: str | None = None
    secret_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def parse(cls, config: Mapping[str, Any]) -> _Target:
        timeout = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        if not 0 < timeout <= 60:
            raise ValueError(f"timeout_seconds {timeout:g} is outside (0, 60]")
        if config.get("type") == "webhook":
            url = str(config["url"])
            if urlsplit(url).scheme not in ("http", "https"):
                raise ValueError("a webhook url must be http or https")
            return cls(
                "webhook",
                url=url,
                secret_env=config.get("secret_env"),
                secret_file=config.get("secret_file"),
                timeout=timeout,
            )
        if config.get("type") == "command":
            argv = config["argv"]
            if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
                raise ValueError("argv must be a non-empty list of strings")
            return cls("command", argv=tuple(argv), timeout=timeout)
        raise ValueError(f"unknown target type {config.get('type')!r}")

    @property
    def label(self) -> str:
        """How failures name the target: no path, query or arguments (they may hold secrets)."""
        if self.kind == "command":
            return _clean(f"command {Path(self.argv[0]).name}")
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return _clean(f"webhook {parts.scheme}://{host}{port}")


@dataclass(eq=False)
class _Job:
    """One message on its way to one target."""

    target: _Target
    service: str
    approval_id: str
    event: str
    body: bytes
    delivery: str = field(default_factory=lambda: uuid.uuid4().hex)
    tries: int = 0
    abandoned: bool = False

    def failure(self, error: str, tries: int | None = None) -> Failure:
        return Failure(
            self.service,
            self.approval_id,
            self.event,
            self.target.label,
            self.tries if tries is None else tries,
            error,
        )


def signature(secret: bytes, body: bytes) -> str:
    """The value of the signature header: ``sha256=`` and the HMAC-SHA256 of the body in hex."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _names(approvers: Any) -> list[str]:
    """Approver names, whether they are listed as names or as {name, ...} entries."""
    names = []
    for approver in approvers or []:
        name = approver.get("name") if isinstance(approver, Mapping) else approver
        names.append(str(name))
    return names


def _slack(text: str) -> str:
    """One line, with the three characters Slack reads as markup escaped."""
    spaced = "".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in text)
    line = " ".join(spaced.split())
    line = line if len(line) <= 3000 else line[:2997] + "..."
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(
    event: str,
    request: Mapping[str, Any],
    *,
    actor: str | None = None,
    justification: str | None = None,
) -> dict[str, Any]:
    """The JSON a target receives for one approval step: the request's fields and a text line."""
    answered = event in ("granted", "rejected")
    fields: dict[str, Any] = {
        "event": event,
        "id": request.get("id"),
        "service": request.get("service"),
        "operation": request.get("operation"),
        "reasons": list(request.get("reasons") or []),
        "rules": list(request.get("rules") or []),
        "approvers": _names(request.get("approvers")),
        "blueprint": {
            "name": request.get("blueprint_name"),
            "version": request.get("blueprint_version"),
        },
        "requested_at": request.get("requested_at"),
        "expires_at": request.get("expires_at"),
        "answered_by": (request.get("answered_by") or actor) if answered else None,
        "justification": (request.get("justification") or justification) if answered else None,
    }
    fields["text"] = _text(fields)
    return fields


def _text(fields: Mapping[str, Any]) -> str:
    """The human line: what, on which service, who and why, and how to answer."""
    what = f"{describe(fields['operation'])} on {fields['service']}"
    ident = fields["id"]
    event = fields["event"]
    if event == "requested":
        why = "; ".join(str(r) for r in fields["reasons"]) or "no reason given"
        text = (
            f"opsgate: approval needed for {what}: {why}. "
            f"Approvers: {', '.join(fields['approvers']) or '(none)'}. "
            f"Answer before {fields['expires_at']} with: opsgate approvals approve {ident} "
            f"--key PATH --reason TEXT, or: opsgate approvals reject {ident} --key PATH"
        )
    elif event == "granted":
        text = (
            f"opsgate: {what} approved by {fields['answered_by']}: {fields['justification']}. "
            f"The runner executes it after asking OPA again (request {ident})."
        )
    elif event == "rejected":
        why = f": {fields['justification']}" if fields["justification"] else ""
        text = f"opsgate: {what} rejected by {fields['answered_by']}{why} (request {ident})."
    else:
        text = (
            f"opsgate: {what} expired unanswered at {fields['expires_at']}: "
            f"rejected (request {ident})."
        )
    return _slack(text)


def _secret(target: _Target) -> bytes | None:
    """The signing secret's value, read now; raises _NotSent when it can't be had."""
    if target.secret_env:
        value = os.environ.get(target.secret_env, "")
        if not value:
            raise _NotSent(f"secret_env {target.secret_env} is not set")
        return value.encode("utf-8")
    if target.secret_file:
        try:
            data = Path(target.secret_file).read_bytes().rstrip(b"\r\n")
        except OSError as e:
            raise _NotSent(f"can't read secret_file {target.secret_file}: {e.strerror}") from e
        if not data:
            raise _NotSent(f"secret_file {target.secret_file} is empty")
        return data
    return None


def _post(job: _Job, secret: bytes | None) -> tuple[str | None, bool]:
    """One POST: (None, _) when delivered, else (error, worth retrying)."""
    target = job.target
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"opsgate/{__version__}",
        "X-Opsgate-Event": job.event,
        "X-Opsgate-Delivery": job.delivery,
    }
    if secret is not None:
        headers[SIGNATURE_HEADER] = signature(secret, job.body)
    try:
        with requests.Session() as session:
            # a loopback receiver is never reached through a proxy from the environment
            session.trust_env = not is_loopback(urlsplit(target.url).hostname or "")
            response = session.post(
                target.url,
                data=job.body,
                headers=headers,
                timeout=(target.timeout, target.timeout),
                allow_redirects=False,  # the signed body goes where it was configured, or nowhere
                stream=True,  # the answer's body is never read
            )
            response.close()
    except requests.Timeout:
        return f"no answer within {target.timeout:g} s", True
    except requests.exceptions.SSLError:
        return "TLS handshake or certificate failed", False
    except requests.ConnectionError:
        return "can't connect", True
    except requests.RequestException as e:
        # the exception's text names the URL, whose path may be a secret: name its kind only
        return f"request failed ({type(e).__name__})", False
    status = response.status_code
    if 200 <= status < 300:
        return None, False
    if 300 <= status < 400:
        return f"HTTP {status} (redirects are not followed)", False
    return f"HTTP {status}", status >= 500 or status in (408, 429)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the command and everything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.stdin is not None:
        with contextlib.suppress(OSError):
            process.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def _run(job: _Job) -> tuple[str | None, bool]:
    """One run of the command with the JSON on stdin; its output is discarded."""
    target = job.target
    try:
        process = subprocess.Popen(
            list(target.argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except OSError as e:
        return f"can't run: {e.strerror or type(e).__name__}", False
    try:
        process.communicate(job.body, timeout=target.timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        return f"killed after {target.timeout:g} s", True
    except BaseException:
        _kill_group(process)
        raise
    if process.returncode < 0:
        return f"killed by signal {-process.returncode}", True
    if process.returncode != 0:
        return f"exit status {process.returncode}", True
    return None, False


class Notifier:
    """Sends approval notifications to each service's targets, off the caller's thread."""

    def __init__(
        self,
        targets: Mapping[str, Sequence[Mapping[str, Any]]],
        *,
        record: Record | None = None,
        tries: int = TRIES,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.targets = {service: [dict(c) for c in configs] for service, configs in targets.items()}
        self._by_service: dict[str, list[_Target]] = {}
        for service, configs in self.targets.items():
            for config in configs:
                try:
                    self._by_service.setdefault(service, []).append(_Target.parse(config))
                except (KeyError, TypeError, ValueError) as e:
                    log.warning("a notification target of %s is ignored: %s", service, e)
        self.tries = max(1, tries)
        self.backoff = tuple(backoff)
        self._record = record
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queues: dict[_Target, deque[_Job]] = {}
        self._working: set[_Target] = set()
        self._pending: list[_Job] = []
        self._failures: list[Failure] = []
        self._stop = threading.Event()
        self._closed = False

    @property
    def failures(self) -> list[Failure]:
        """Every failure so far."""
        with self._lock:
            return list(self._failures)

    def notify(
        self,
        kind: str,
        request: Mapping[str, Any],
        *,
        actor: str | None = None,
        justification: str | None = None,
    ) -> None:
        """Queue the message of one approval step (an audit event kind) for its service's targets.

        Returns at once and never raises: a notification can't hold up or undo an approval.
        """
        try:
            self._queue(kind, request, actor, justification)
        except Exception as e:  # whatever it is, it is not the caller's problem
            log.warning("notification of %s not sent: %s", kind, type(e).__name__)

    def _queue(
        self, kind: str, request: Mapping[str, Any], actor: str | None, justification: str | None
    ) -> None:
        event = EVENTS.get(kind)
        service = str(request.get("service", ""))
        targets = self._by_service.get(service)
        if event is None or not targets:
            return
        approval_id = str(request.get("id") or "")
        jobs = []
        try:
            fields = message(event, request, actor=actor, justification=justification)
            body = json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError):
            body = b""
        with self._lock:
            for target in targets:
                job = _Job(target, service, approval_id, event, body)
                if not body:
                    self._fail(job.failure("not sent: can't encode the request"))
                elif self._closed:
                    self._fail(job.failure("not sent: notifications already stopped"))
                else:
                    jobs.append(job)
            for job in jobs:
                self._pending.append(job)
                self._queues.setdefault(job.target, deque()).append(job)
                _OPEN.add(self)
                if job.target not in self._working:
                    self._working.add(job.target)
                    threading.Thread(
                        target=self._work, args=(job.target,), name="opsgate-notify", daemon=True
                    ).start()

    def _work(self, target: _Target) -> None:
        """Send the target's queued messages in order; end when its queue is empty."""
        while True:
            with self._lock:
                queue = self._queues.get(target)
                if not queue:
                    self._working.discard(target)
                    return
                job = queue.popleft()
                if job.abandoned:
                    continue
            try:
                failure = self._deliver(job)
            except Exception as e:  # a worker never dies with messages still queued
                failure = job.failure(f"not sent: {type(e).__name__}")
            with self._lock:
                if job.abandoned:  # close() has recorded it already
                    continue
                self._pending.remove(job)
                if failure is not None:
                    self._fail(failure)
                self._changed.notify_all()

    def _deliver(self, job: _Job) -> Failure | None:
        """Try up to ``tries`` times with backoff; the failure, or None once delivered."""
        secret = None
        if job.target.kind == "webhook":
            try:
                secret = _secret(job.target)
            except _NotSent as e:
                return job.failure(str(e), tries=0)
        error = "not delivered: opsgate stopped"
        for attempt in range(1, self.tries + 1):
            if self._stop.is_set():
                break
            job.tries = attempt
            failed, retry = _post(job, secret) if job.target.kind == "webhook" else _run(job)
            if failed is None:
                return None
            error = failed
            if not retry or attempt == self.tries:
                break
            pause = self.backoff[min(attempt, len(self.backoff)) - 1] if self.backoff else 0.0
            if self._stop.wait(pause):
                break
        return job.failure(error)

    def _fail(self, failure: Failure) -> None:
        """Keep, log and record one failure (the lock is held)."""
        self._failures.append(failure)
        log.warning("notification failed: %s", failure.summary())
        if self._record is None:
            return
        try:
            self._record("notification_failed", **failure.audit_fields())
        except Exception as e:  # an unwritable audit log is the runner's to report, not ours
            log.warning("can't record a failed notification: %s", _clean(str(e)))

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message is sent or has failed; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def close(self, timeout: float | None = None) -> list[Failure]:
        """Stop: wait at most ``timeout`` (CLOSE_SECONDS) for what is being sent; return failures.

        Whatever is still undelivered then is recorded as a failure, never dropped.
        """
        _OPEN.discard(self)
        limit = CLOSE_SECONDS if timeout is None else timeout
        deadline = time.monotonic() + limit
        interrupted: KeyboardInterrupt | None = None
        with self._lock:
            self._closed = True
            try:
                while self._pending and (left := deadline - time.monotonic()) > 0:
                    self._changed.wait(left)
            except KeyboardInterrupt as e:
                interrupted = e
            why = "interrupted" if interrupted else f"waited {limit:g} s"
            for job in self._pending:
                job.abandoned = True
                self._fail(job.failure(f"not delivered: opsgate stopped ({why})"))
            self._pending.clear()
            for queue in self._queues.values():
                queue.clear()
            self._stop.set()
            failures = list(self._failures)
        if interrupted is not None:
            raise interrupted
        return failures


# Notifiers with messages queued; an exit that did not close them still does (bounded),
# so a message is delivered or recorded as failed, never lost with a daemon thread.
_OPEN: weakref.WeakSet[Notifier] = weakref.WeakSet()


@atexit.register
def _close_open_notifiers() -> None:
    for notifier in list(_OPEN):
        notifier.close()


def notification_targets(
    blueprints: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """Each service's ``governance.approval_workflow.notifications`` (services with any)."""
    found = {}
    for name, blueprint in blueprints.items():
        workflow = blueprint.get("governance", {}).get("approval_workflow", {})
        configs = workflow.get("notifications") or []
        if configs:
            found[name] = [dict(c) for c in configs]
    return found


def save_targets(path: Path, targets: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
    """Write the targets for ``opsgate approvals`` (names of secrets only; a 0600 file)."""
    document = {"services": {s: [dict(c) for c in configs] for s, configs in targets.items()}}
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def load_targets(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The targets the runner wrote; none when there is no file or it is damaged (logged)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as e:
        log.warning("notifications off: can't read %s: %s", path, type(e).__name__)
        return {}
    services = document.get("services") if isinstance(document, dict) else None
    if not isinstance(services, dict) or not all(
        isinstance(v, list) and all(isinstance(c, dict) for c in v) for v in services.values()
    ):
        log.warning("notifications off: %s is not a targets file", path)
        return {}
    return {str(k): list(v) for k, v in services.items()}


def failures_by_request(events: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Approval id → one line per failed notification, from the audit log's events."""
    found: dict[str, list[str]] = {}
    for event in events:
        if event.get("event") != "notification_failed":
            continue
        notification = event.get("notification")
        if not isinstance(notification, Mapping):
            continue
        tries = notification.get("tries")
        line = _summary(
            str(notification.get("event")),
            str(notification.get("target")),
            str(notification.get("error")),
            tries if isinstance(tries, int) else 0,
        )
        lines = found.setdefault(str(event.get("approval_id")), [])
        if line not in lines:
            lines.append(line)
    return found
