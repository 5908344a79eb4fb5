"""Options shared by several commands, defined once (each with an OPSGATE_* env var)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from engine.opa import DEFAULT_QUERY_TIMEOUT
from engine.policy import RemoteOpa

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="OPSGATE_JSON",
    show_envvar=True,
    help="Print machine-readable JSON on stdout instead of text.",
)

policies_option = click.option(
    "--policies",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="OPSGATE_POLICIES",
    show_envvar=True,
    default=None,
    help="Policy library to use instead of the embedded one.",
)

blueprints_option = click.option(
    "--blueprints",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    envvar="OPSGATE_BLUEPRINTS",
    show_envvar=True,
    default="blueprints",
    show_default=True,
    help="Directory of blueprints (with its governance.yaml).",
)


@dataclass(frozen=True)
class OpaSettings:
    """Where OPA is (None: start one) and how long to wait for each answer."""

    remote: RemoteOpa | None
    timeout: float


def opa_options(function: F) -> F:
    """Add --opa-url, --opa-token-file, --opa-ca and --opa-timeout, passed on as ``opa``."""
    options = [
        click.option(
            "--opa-url",
            envvar="OPSGATE_OPA_URL",
            show_envvar=True,
            default=None,
            help="Use this OPA server instead of starting one (it must serve the compiled bundle).",
        ),
        click.option(
            "--opa-token-file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            envvar="OPSGATE_OPA_TOKEN_FILE",
            show_envvar=True,
            default=None,
            help="File holding the bearer token for --opa-url (or set OPSGATE_OPA_TOKEN).",
        ),
        click.option(
            "--opa-ca",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            envvar="OPSGATE_OPA_CA",
            show_envvar=True,
            default=None,
            help="CA bundle to verify an https --opa-url (default: the system store).",
        ),
        click.option(
            "--opa-timeout",
            type=click.FloatRange(min=0.05, max=120),
            envvar="OPSGATE_OPA_TIMEOUT",
            show_envvar=True,
            default=DEFAULT_QUERY_TIMEOUT,
            show_default=True,
            help="Seconds to wait for each OPA answer; no answer means nothing is executed.",
        ),
    ]

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["opa"] = OpaSettings(
            remote=_remote_opa(
                kwargs.pop("opa_url"),
                kwargs.pop("opa_token_file"),
                kwargs.pop("opa_ca"),
                os.environ.get("OPSGATE_OPA_TOKEN"),
            ),
            timeout=kwargs.pop("opa_timeout"),
        )
        return function(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


def _remote_opa(
    url: str | None, token_file: Path | None, ca: Path | None, token_env: str | None
) -> RemoteOpa | None:
    """Build the RemoteOpa settings from the shared options (None: start a local OPA)."""
    if url is None:
        if token_file is not None or ca is not None:
            raise click.UsageError("--opa-token-file and --opa-ca need --opa-url")
        return None
    token = token_env
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise click.UsageError(f"can't read --opa-token-file {token_file}: {e}") from e
    return RemoteOpa(url=url, token=token or None, ca=str(ca) if ca else True)


state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OPSGATE_STATE_DIR",
    show_envvar=True,
    default=".opsgate",
    show_default=True,
    help="Directory of the runner's state.db, audit.jsonl and (simulation) cluster.json.",
)


def state_paths(state_dir: Path) -> tuple[Path, Path, Path]:
    """(state database, audit log, simulated cluster file) inside ``state_dir``."""
    return state_dir / "state.db", state_dir / "audit.jsonl", state_dir / "cluster.json"


audit_key_option = click.option(
    "--audit-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OPSGATE_AUDIT_KEY",
    show_envvar=True,
    default=None,
    help="The runner's Ed25519 private key (OpenSSH, 0600) that signs the audit log's "
    "checkpoints. Default: STATE_DIR/audit-key, made on first use.",
)


key_option = click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OPSGATE_APPROVER_KEY",
    show_envvar=True,
    default=None,
    help="Your ssh-ed25519 private key (OpenSSH format); its public key must be yours in "
    "governance.approval_workflow.approvers. A passphrase is asked on the terminal.",
)


def passphrase_prompt(key: Path) -> Callable[[], str]:
    """Ask the passphrase of an encrypted key on the terminal, without echo."""

    def ask() -> str:
        return str(click.prompt(f"passphrase for {key}", hide_input=True, err=True))

    return ask
