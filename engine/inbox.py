"""The approvals inbox: how approvers answer without touching the runner's private state.

The state directory is private to the runner's user (0700): approvers can
neither read nor write it. They get a directory of their own, the inbox:

- ``requests/`` is written by the runner: one JSON file per pending request
  (0644, operation values masked), so an approver can read what they are
  asked and sign exactly that;
- ``answers/`` is sticky and writable by the approvers' group (01730): an
  approver drops a signed answer (a JWS) there; nobody can list it, or
  replace or remove somebody else's file.

At every tick the runner reads ``answers/`` and hands each statement to the
approval workflow, which checks the signature against the approver's key and
the claims against the request before anything is stored. A forged,
tampered, expired or misdirected answer is refused, audited and removed:
who owns the file proves nothing, the signature does.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import strictjson
from engine.errors import OpsgateError
from engine.state import Approval

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 16 * 1024
MAX_ANSWERS_PER_TICK = 100
# a dot-file in answers/ is an answer being written; one left this long was abandoned
ABANDONED_SECONDS = 600
REQUESTS_MODE = 0o755
ANSWERS_MODE = 0o1730  # sticky; the group (the approvers) may add files, not list them
_SAFE_ID = set("0123456789abcdef")


MAX_REQUEST_BYTES = 1024 * 1024


def _well_formed(approval: Approval) -> bool:
    """The fields an approver is shown and signs have the types they should."""
    strings = (
        approval.id,
        approval.service,
        approval.blueprint_name,
        approval.blueprint_version,
        approval.bundle_revision,
        approval.requested_at,
        approval.expires_at,
        approval.operation_digest,
        approval.status,
    )
    return (
        all(isinstance(v, str) for v in strings)
        and isinstance(approval.operation, dict)
        and isinstance(approval.requester, dict)
        and all(isinstance(v, str) for v in (approval.requester or {}).values())
        and isinstance(approval.reasons, list)
        and isinstance(approval.approvers, list)
        and isinstance(approval.approver_keys, list)
    )


def _write_public(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` (0644) through a temporary file in the same directory,
    its mode set on the open file, then renamed: nothing is followed or chmod-ed by name."""
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class InboxError(OpsgateError):
    """The inbox can't be prepared, read or written."""


def default_inbox(state_dir: Path) -> Path:
    """The inbox beside a state directory: ``STATE_DIR.inbox``."""
    return state_dir.with_name(state_dir.name + ".inbox")


@dataclass(frozen=True)
class DroppedAnswer:
    """One file found in ``answers/``: its statement, or why it can't be one."""

    path: Path
    token: str | None
    problem: str = ""
    # the OS user who dropped it (the file's owner): never the one who requested
    uid: int | None = None


class Inbox:
    """One inbox directory (see the module's description)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests_dir = path / "requests"
        self.answers_dir = path / "answers"

    # --- the runner's side -----------------------------------------------------

    def prepare(self) -> None:
        """Create the inbox if missing (requests/ 0755, answers/ 01730), then check it is ours.

        An inbox someone else made first (or a symlink standing in for one) is
        refused: the runner deletes what it finds in answers/ and writes into
        requests/, so both must be real directories this user owns, in a
        parent that is not open to everyone (or is sticky).
        """
        try:
            if not self.path.exists() and not self.path.is_symlink():
                self.path.mkdir(mode=0o755)
                os.chmod(self.path, 0o755)
            for directory, mode in (
                (self.requests_dir, REQUESTS_MODE),
                (self.answers_dir, ANSWERS_MODE),
            ):
                if not directory.exists() and not directory.is_symlink():
                    directory.mkdir()
                    os.chmod(directory, mode)
        except OSError as e:
            raise InboxError(f"{self.path}: can't prepare the inbox: {e.strerror or e}") from e
        for directory in (self.path, self.requests_dir, self.answers_dir):
            self._check_owned(directory, os.geteuid())

    @staticmethod
    def _check_owned(directory: Path, owner: int) -> None:
        """Refuse ``directory`` unless it is a real directory of ``owner`` nobody else may write
        (the answers/ drop box excepted: sticky, so nobody removes another's file)."""
        try:
            info = os.lstat(directory)
        except OSError as e:
            raise InboxError(f"{directory}: can't check the inbox: {e.strerror or e}") from e
        if not stat.S_ISDIR(info.st_mode):
            raise InboxError(f"{directory}: part of the inbox is not a directory (a symlink?)")
        if info.st_uid != owner:
            raise InboxError(
                f"{directory}: part of the inbox is owned by uid {info.st_uid}, not by the "
                f"runner (uid {owner}): refusing it (someone else may have made it first)"
            )
        writable_by_others = stat.S_IMODE(info.st_mode) & 0o022
        if writable_by_others and directory.name != "answers":
            raise InboxError(
                f"{directory}: part of the inbox is writable by group or others: "
                f"refusing it (run: chmod go-w {directory})"
            )
        if directory.name == "answers" and writable_by_others and not info.st_mode & stat.S_ISVTX:
            raise InboxError(f"{directory}: the answers drop box must be sticky (chmod +t)")

    def publish(self, pending: list[Approval]) -> None:
        """Make ``requests/`` hold exactly the pending requests (only regular files touched)."""
        wanted = {approval.id: approval for approval in pending}
        try:
            for existing in self.requests_dir.iterdir():
                stale = existing.suffix == ".json" and existing.stem not in wanted
                if stale and stat.S_ISREG(os.lstat(existing).st_mode):
                    existing.unlink(missing_ok=True)
            for approval_id, approval in wanted.items():
                target = self.requests_dir / f"{approval_id}.json"
                if target.exists() or target.is_symlink():
                    continue
                _write_public(target, json.dumps(approval.to_json(), sort_keys=True) + "\n")
        except OSError as e:
            raise InboxError(f"{self.path}: can't publish requests: {e.strerror or e}") from e

    def answers(self) -> Iterator[DroppedAnswer]:
        """Every file dropped in ``answers/``, read safely (no links, no specials, bounded)."""
        try:
            names = sorted(os.listdir(self.answers_dir))
        except FileNotFoundError:
            return
        except OSError as e:
            raise InboxError(f"{self.answers_dir}: can't read answers: {e.strerror or e}") from e
        taken = 0
        for name in names:
            if name.startswith("."):
                self._sweep(self.answers_dir / name)  # an answer still being written (see drop)
                continue
            if taken == MAX_ANSWERS_PER_TICK:
                break  # the rest waits for the next tick: a flood can't stall the runner
            taken += 1
            yield self._read_answer(self.answers_dir / name)

    @staticmethod
    def _sweep(path: Path) -> None:
        """Remove a dot-file nobody finished writing within ABANDONED_SECONDS (files only)."""
        try:
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > ABANDONED_SECONDS:
                path.unlink()
        except OSError:
            pass

    @staticmethod
    def _read_answer(path: Path) -> DroppedAnswer:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            return DroppedAnswer(path, None, f"can't open it: {e.strerror or e}")
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return DroppedAnswer(path, None, "not a regular file")
            data = os.read(fd, MAX_ANSWER_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_ANSWER_BYTES:
            return DroppedAnswer(path, None, f"over {MAX_ANSWER_BYTES} bytes")
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError:
            return DroppedAnswer(path, None, "not an ASCII JWS")
        return DroppedAnswer(path, text, uid=info.st_uid)

    @staticmethod
    def discard(answer: DroppedAnswer) -> None:
        """Remove a processed answer (the runner owns answers/, so it may); never follow it."""
        try:
            info = os.lstat(answer.path)
            if stat.S_ISDIR(info.st_mode):
                # never walked: an approver's tree could be arbitrarily deep; an empty one
                # goes, anything else is quarantined out of the way under a dot-name
                try:
                    os.rmdir(answer.path)
                except OSError:
                    os.rename(answer.path, answer.path.with_name(f".refused-{info.st_ino}"))
            else:
                answer.path.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("can't remove %r: %s", answer.path, e)

    # --- the approver's side ---------------------------------------------------------

    def check_published_by(self, owner: int) -> None:
        """Before trusting a published request: the inbox and requests/ belong to ``owner``
        (the owner of the runner's state) and nobody else may write to them."""
        for directory in (self.path, self.requests_dir):
            self._check_owned(directory, owner)

    def request(self, approval_id: str) -> Approval | None:
        """A published request by id (or a unique prefix of at least 6 characters)."""
        if not approval_id or not set(approval_id) <= _SAFE_ID:
            return None
        matches = sorted(self.requests_dir.glob(f"{approval_id}*.json"))
        if len(matches) != 1 or (len(approval_id) < 6 and matches[0].stem != approval_id):
            return None
        return self._load(matches[0])

    def requests(self) -> list[Approval]:
        """Every published (pending) request, oldest first."""
        try:
            found = [self._load(path) for path in sorted(self.requests_dir.glob("*.json"))]
        except OSError as e:
            raise InboxError(f"{self.requests_dir}: can't read requests: {e.strerror or e}") from e
        return sorted(found, key=lambda a: (a.requested_at, a.id))

    @staticmethod
    def _load(path: Path) -> Approval:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) or stat.S_IMODE(info.st_mode) & 0o022:
                    raise InboxError(f"{path}: not a published approval request (file mode)")
                data: Any = strictjson.loads(handle.read(MAX_REQUEST_BYTES).decode("utf-8"))
            approval = Approval(**data)
        except (OSError, ValueError, TypeError) as e:
            raise InboxError(f"{path}: not a published approval request: {e}") from e
        if not _well_formed(approval):
            raise InboxError(f"{path}: not a published approval request (field types)")
        return approval

    def drop(self, approval_id: str, approver: str, purpose: str, token: str) -> Path:
        """Leave a signed answer in ``answers/`` (written under a dot-name, then renamed)."""
        name = f"{approval_id}.{approver}.{purpose}.jws"
        final = self.answers_dir / name
        partial = self.answers_dir / f".{name}.{os.getpid()}"
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(token + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, final)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise InboxError(f"{self.answers_dir}: can't drop the answer: {e.strerror or e}") from e
        return final
