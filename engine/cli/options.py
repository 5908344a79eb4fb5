"""Options shared by several commands, defined once (each with an OPSGATE_* env var)."""

from __future__ import annotations

import datetime
import functools
import getpass
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine import signing
from engine.cli.terminal import printable
from engine.files import OPEN_TO_OTHERS, check_private
from engine.opa import DEFAULT_QUERY_TIMEOUT
from engine.opa_docker import IMAGE as DOCKER_IMAGE
from engine.policy import OpaSettings, RemoteOpa

F = TypeVar("F", bound=Callable[..., Any])


class FiniteFloatRange(click.FloatRange):
    """A number option in a range that also refuses nan and inf (click's FloatRange takes nan)."""

    name = "finite float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Convert as FloatRange does, then refuse what is not a finite number."""
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


_DURATION = re.compile(r"([0-9]{1,9})([smhdw])", re.ASCII)
_DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
TIME_FORMS = "2026-02-10T12:00:00Z, 2026-02-10T14:00:00+02:00 or 2026-02-10 (midnight UTC)"
AGO_FORMS = "30m, 1h, 2d or 1w (that long before now)"
NO_ZONE = "has no time zone: add Z or an offset such as +02:00"


def parse_time(text: str) -> datetime.datetime:
    """Read an ISO 8601 time with ``Z`` or an offset, or a date (its midnight UTC), as UTC.

    The one reader of times a person types: a time without a zone is
    refused (whose 12:00?), and ``ValueError`` says why.
    """
    if not text.isascii():
        raise ValueError("not an ISO 8601 time")
    try:
        return datetime.datetime.combine(
            datetime.date.fromisoformat(text), datetime.time(), datetime.UTC
        )
    except ValueError:
        pass
    moment = datetime.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(NO_ZONE)
    return moment.astimezone(datetime.UTC)


def rfc3339(moment: datetime.datetime) -> str:
    """Write an aware time as RFC 3339 in UTC (what the policies and the audit log read)."""
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


class Moment(click.ParamType[datetime.datetime]):
    """An option that takes a time: ISO 8601, or with ``ago`` a duration before now.

    Converts to an aware UTC ``datetime``; anything else is a usage error that
    shows the accepted forms.
    """

    name = "time"

    def __init__(self, *, ago: bool = False) -> None:
        self.ago = ago

    def get_metavar(self, param: click.Parameter, ctx: click.Context) -> str:
        """Show TIME|AGO or TIME in usage lines."""
        return "TIME|AGO" if self.ago else "TIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime.datetime:
        """Parse ``value``; say the accepted forms when it is none of them."""
        if isinstance(value, datetime.datetime):
            return value
        text = str(value).strip()
        duration = _DURATION.fullmatch(text) if self.ago else None
        try:
            if duration is not None:
                amount, unit = int(duration[1]), _DURATION_UNITS[duration[2]]
                now = datetime.datetime.now(datetime.UTC)
                return now - datetime.timedelta(**{unit: amount})
            return parse_time(text)
        except (ValueError, OverflowError) as e:
            if str(e) == NO_ZONE:
                self.fail(f"{value!r} {NO_ZONE}", param, ctx)
            forms = f"a time such as {TIME_FORMS}"
            if self.ago:
                forms += f", or a duration such as {AGO_FORMS}"
            self.fail(f"{value!r} is not a time: give {forms}", param, ctx)


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


def opa_options(function: F) -> F:
    """Add the --opa-* options (where OPA is, how to trust it, its image), passed on as ``opa``."""
    options = [
        click.option(
            "--opa-url",
            envvar="OPSGATE_OPA_URL",
            show_envvar=True,
            default=None,
            help="Use this OPA server instead of starting one (it must serve the compiled bundle; "
            "https and a bearer token required).",
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
            "--opa-insecure",
            is_flag=True,
            envvar="OPSGATE_OPA_INSECURE",
            show_envvar=True,
            help="Allow a plain-http --opa-url (a network you trust); a token is still required.",
        ),
        click.option(
            "--opa-timeout",
            type=FiniteFloatRange(min=0.05, max=120),
            envvar="OPSGATE_OPA_TIMEOUT",
            show_envvar=True,
            default=DEFAULT_QUERY_TIMEOUT,
            show_default=True,
            help="Seconds to wait for each OPA answer; no answer means nothing is executed.",
        ),
        click.option(
            "--opa-image",
            envvar="OPSGATE_OPA_IMAGE",
            show_envvar=True,
            default=DOCKER_IMAGE,
            show_default=True,
            help="Image to start OPA from when there is no opa binary, on the local Docker "
            "daemon of $DOCKER_HOST (its entrypoint must be opa).",
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
                kwargs.pop("opa_insecure"),
            ),
            timeout=kwargs.pop("opa_timeout"),
            image=kwargs.pop("opa_image"),
        )
        return function(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


def opa_identity(opa: OpaSettings) -> str:
    """Which OPA decides: the runner's own (managed) or the URL of a shared one."""
    return "managed" if opa.remote is None else opa.remote.url


def _remote_opa(
    url: str | None,
    token_file: Path | None,
    ca: Path | None,
    token_env: str | None,
    insecure: bool = False,
) -> RemoteOpa | None:
    """Build the RemoteOpa settings from the shared options (None: start a local OPA)."""
    if url is None:
        if token_file is not None or ca is not None or insecure:
            raise click.UsageError("--opa-token-file, --opa-ca and --opa-insecure need --opa-url")
        return None
    token = token_env
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise click.UsageError(f"can't read --opa-token-file {token_file}: {e}") from e
    remote = RemoteOpa(url=url, token=token or None, ca=str(ca) if ca else True, insecure=insecure)
    problem = remote.problem()
    if problem:
        raise click.UsageError(problem)
    return remote


state_dir_option = click.option(
    "--state-dir",
    # not readable=True: an approver can't read the runner's private state, and needn't
    type=click.Path(file_okay=False, readable=False, path_type=Path),
    envvar="OPSGATE_STATE_DIR",
    show_envvar=True,
    default=".opsgate",
    show_default=True,
    help="Directory of the runner's state.db, audit.jsonl and (simulation) cluster.json.",
)


inbox_option = click.option(
    "--inbox",
    type=click.Path(file_okay=False, readable=False, path_type=Path),
    envvar="OPSGATE_INBOX",
    show_envvar=True,
    default=None,
    help="Where the runner publishes requests and approvers drop signed answers "
    "(default: STATE_DIR.inbox).",
)


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


ssh_agent_option = click.option(
    "--ssh-agent",
    "use_agent",
    is_flag=True,
    envvar="OPSGATE_SSH_AGENT",
    show_envvar=True,
    help="Sign with your ssh-ed25519 key held by ssh-agent ($SSH_AUTH_SOCK) instead of --key.",
)


def approver_signer(
    key: Path | None, use_agent: bool, approvers: list[Any]
) -> signing.StatementSigner:
    """The approver who signs: from --key (checked private) or from ssh-agent."""
    if key is not None and use_agent:
        raise click.UsageError("give --key PATH or --ssh-agent, not both")
    if use_agent:
        return signing.agent_signer_for(approvers)
    if key is None:
        raise click.UsageError("a signed statement needs --key PATH or --ssh-agent")
    return signing.signer_for(load_key(key), approvers)


def passphrase_prompt(key: Path) -> Callable[[], str]:
    """Ask the passphrase of an encrypted key on the terminal, without echo."""

    def ask() -> str:
        return str(click.prompt(f"passphrase for {key}", hide_input=True, err=True))

    return ask


def load_key(key: Path) -> Ed25519PrivateKey:
    """An approver's private key: private to this user (like ssh), passphrase asked if needed."""
    check_private(key, "private key", forbidden=OPEN_TO_OTHERS)
    return signing.load_private_key(key, passphrase_prompt(key))


def check_name(value: str) -> str:
    """Return ``value`` if it is a valid person name; raise click.BadParameter otherwise."""
    if not signing.valid_name(value):
        shown = f"'{printable(value)}'"
        raise click.BadParameter(
            f"{shown} is not a valid name: use 1 to 64 letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    return value


def checked_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for --by: a usage error (exit 2) unless the name is valid."""
    return None if value is None else check_name(value)


def requester_options(function: F) -> F:
    """Add --as and --agent, passed on as ``requester`` ({kind, name}): who proposes it."""
    options = [
        click.option(
            "--as",
            "as_person",
            envvar="OPSGATE_AS",
            show_envvar=True,
            default=None,
            help="Who proposes the operation (a person; default: your login name). "
            "The requester can never approve it.",
        ),
        click.option(
            "--agent",
            envvar="OPSGATE_AGENT",
            show_envvar=True,
            default=None,
            help="The AI agent proposing the operation (instead of --as).",
        ),
    ]

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["requester"] = requester_from(kwargs.pop("as_person"), kwargs.pop("agent"))
        return function(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)


def requester_from(person: str | None, agent: str | None) -> dict[str, str]:
    """Who proposes the operation: --agent, --as, or the login name."""
    if person is not None and agent is not None:
        raise click.UsageError("give --as or --agent, not both")
    kind, name = ("agent", agent) if agent is not None else ("person", person or getpass.getuser())
    option = "--agent" if agent is not None else "--as"
    if not signing.valid_name(name):
        raise click.UsageError(
            f"{option} '{printable(name)}': use letters, digits, '.', '_', '@' or '-'"
        )
    if name in signing.RESERVED_NAMES:
        raise click.UsageError(f"{option} {name!r} is the runner's own name")
    return {"kind": kind, "name": name}


def checked_approval_id(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Click callback for an approval id: the whole id, or a prefix of at least 6 characters."""
    if value is not None and len(value) < 6:
        raise click.BadParameter(
            f"'{printable(value)}' is too short: give the whole id or at least its first "
            "6 characters"
        )
    return value


def cluster_options(function: F) -> F:
    """Add --cluster, --prometheus-url and --kubeconfig: which cluster a command acts on."""
    options = [
        click.option(
            "--cluster",
            "cluster_kind",
            type=click.Choice(["sim", "kube"]),
            envvar="OPSGATE_CLUSTER",
            show_envvar=True,
            default="sim",
            show_default=True,
            help="Simulated cluster, or Kubernetes through the current kubeconfig.",
        ),
        click.option(
            "--prometheus-url",
            envvar="OPSGATE_PROMETHEUS_URL",
            show_envvar=True,
            default=None,
            help="Kubernetes only: Prometheus HTTP API for latency, error rate and throughput.",
        ),
        click.option(
            "--kubeconfig",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            envvar="OPSGATE_KUBECONFIG",
            show_envvar=True,
            default=None,
            help="Kubernetes only: the kubeconfig to use (default: $KUBECONFIG or ~/.kube/config, "
            "else the in-cluster service account).",
        ),
    ]
    decorated: Any = function
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, decorated)
