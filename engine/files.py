"""Files: written whole or not at all, and private to the runner's user."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from engine.errors import OpsgateError


def write_atomically(target: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``target``, fsync it, then rename it over."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=target.parent, prefix=f".{target.name}.", delete=False
    ) as handle:
        partial = Path(handle.name)
        try:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    try:
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


class PrivacyError(OpsgateError):
    """A directory or key that must be private to this user is not."""


# group or others may write: anyone in them could rewrite state, approvals or the audit log
WRITABLE_BY_OTHERS = 0o022
# group or others may read or write: for private keys
OPEN_TO_OTHERS = 0o077


def check_private(path: Path, what: str, *, forbidden: int = WRITABLE_BY_OTHERS) -> None:
    """Refuse ``path`` unless this user owns it and group and others have none of ``forbidden``."""
    try:
        info = path.stat()
    except OSError as e:
        raise PrivacyError(f"{path}: can't check the {what}: {e.strerror or e}") from e
    if info.st_uid != os.geteuid():
        raise PrivacyError(
            f"{path}: the {what} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}): refusing to use it"
        )
    mode = info.st_mode & 0o777
    if mode & forbidden:
        fix = "chmod 700" if path.is_dir() else "chmod 600"
        raise PrivacyError(
            f"{path}: the {what} has mode {mode:04o}, open to group or others: "
            f"refusing to use it (run: {fix} {path})"
        )


def private_directory(path: Path, what: str, *, create: bool) -> Path:
    """``path`` as a directory only this user can change: made 0700 when missing, else checked."""
    if not path.exists() and not path.is_symlink():
        if not create:
            raise PrivacyError(f"{path}: no {what} here (is the directory right?)")
        try:
            path.mkdir(mode=0o700, parents=True)
            os.chmod(path, 0o700)  # whatever the umask
        except OSError as e:
            raise PrivacyError(f"{path}: can't create the {what}: {e.strerror or e}") from e
    elif path.is_symlink() or not path.is_dir():
        raise PrivacyError(f"{path}: the {what} is not a directory (a symlink is refused)")
    check_private(path, what)
    return path


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists as a file only its owner can read or write (0600)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        if os.fstat(fd).st_mode & OPEN_TO_OTHERS:
            os.fchmod(fd, 0o600)  # a file left 0644 by an older opsgate
    finally:
        os.close(fd)
