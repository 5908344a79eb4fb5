"""``opsgate mcp`` and ``opsgate gate``: the doors AI agents come through."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from engine import signing
from engine.agents import AgentGate
from engine.cli.application import application
from engine.cli.options import (
    audit_key_option,
    blueprints_option,
    cluster_options,
    opa_identity,
    opa_options,
    policies_option,
    state_dir_option,
)
from engine.cli.terminal import describe_masked, escape, note, printable
from engine.errors import OpsgateError, UsageError
from engine.files import check_private
from engine.kubectl_gate import Governed, PassThrough, Proposed, Refused, audit_command, plan
from engine.mcp_server import DEFAULT_QUEUE, CallQueue, agent_of_request, build_server
from engine.policy import OpaSettings

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _agent_name(value: str | None, option: str = "--agent") -> str | None:
    if value is not None and not signing.valid_name(value):
        raise click.BadParameter(
            f"'{printable(value)}': use 1 to 64 letters, digits and . _ @ - "
            "(starting with a letter or digit)",
            param_hint=option,
        )
    if value in signing.RESERVED_NAMES:
        # as opsgate execute --agent: the audit log's actor "opsgate" is the runner's
        raise click.BadParameter(f"{value!r} is the runner's own name", param_hint=option)
    return value


def _address(value: str) -> tuple[str, int]:
    """HOST:PORT, PORT alone (loopback), or [IPv6]:PORT."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(
            f"'{printable(value)}': give HOST:PORT (or PORT for 127.0.0.1)", param_hint="--http"
        )
    return host, int(port)


def read_tokens(path: Path) -> dict[str, str]:
    """A tokens file: one ``NAME TOKEN`` per line (# comments), private to this user."""
    check_private(path, "tokens file", forbidden=0o077)
    tokens: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, _, token = text.partition(" ")
        token = token.strip()
        if name in signing.RESERVED_NAMES:
            raise OpsgateError(f"{path}:{number}: {name!r} is the runner's own name")
        if not signing.valid_name(name) or len(token) < 32 or " " in token:
            raise OpsgateError(
                f"{path}:{number}: expected NAME TOKEN (an agent name, then a token of at "
                "least 32 characters)"
            )
        if token in tokens:
            raise OpsgateError(f"{path}:{number}: this token is already given to {tokens[token]}")
        tokens[token] = name
    if not tokens:
        raise OpsgateError(f"{path}: no NAME TOKEN line")
    return tokens


@click.command(
    epilog="""\b
Examples:
  opsgate mcp --agent ops-assistant --state-dir /var/lib/opsgate
      (stdio: an MCP client starts this command; see docs/AI_AGENTS.md)
  opsgate mcp --http 127.0.0.1:8765 --tokens /etc/opsgate/agent-tokens
      (Streamable HTTP at http://127.0.0.1:8765/mcp; each token names its agent)

Tools: list_services, describe_service, check_operation (read-only),
request_operation (shown only to an agent governance.agents lets act),
approval_status, recent_decisions. Every answer is decided by the same
Rego, approvals, execution, verification and audit as the runner's.""",
)
@blueprints_option
@click.option(
    "--agent",
    envvar="OPSGATE_AGENT",
    show_envvar=True,
    default=None,
    help="The agent this server answers (stdio), or every caller on loopback HTTP without "
    "--tokens. Its authority is governance.agents.NAME.",
)
@click.option(
    "--http",
    "http_address",
    default=None,
    help="Serve Streamable HTTP at HOST:PORT (/mcp) instead of stdio (port 0: a free one, "
    "printed on stderr). Loopback unless given; any other address needs --tokens.",
)
@click.option(
    "--tokens",
    "tokens_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="HTTP: a private file of 'NAME TOKEN' lines; each bearer token names its agent.",
)
@click.option(
    "--queue",
    type=click.IntRange(min=1, max=10000),
    default=DEFAULT_QUEUE,
    show_default=True,
    help="Calls that may wait while one runs; beyond that a call is answered 'busy' at once.",
)
@cluster_options
@state_dir_option
@audit_key_option
@policies_option
@opa_options
@click.pass_context
def mcp(
    ctx: click.Context,
    blueprints: Path,
    agent: str | None,
    http_address: str | None,
    tokens_file: Path | None,
    queue: int,
    cluster_kind: Any,
    prometheus_url: str | None,
    kubeconfig: Path | None,
    state_dir: Path,
    audit_key: Path | None,
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """Serve the agent tools over the Model Context Protocol (stdio by default).

    Operations an agent requests go through the same Rego, approvals,
    execution, verification, rollback and audit as the runner's own; the
    agent is their requester and can never approve them.
    """
    agent = _agent_name(agent)
    host, port = _address(http_address) if http_address else ("", 0)
    tokens = read_tokens(tokens_file) if tokens_file else None
    if http_address is None:
        if agent is None:
            raise click.UsageError("stdio serves one agent: give --agent NAME")
        if tokens is not None:
            raise click.UsageError("--tokens is for --http")
    elif host not in _LOOPBACK and tokens is None:
        raise click.UsageError(
            f"--http {printable(http_address)} is not loopback: give --tokens FILE "
            "(every caller must present a bearer token)"
        )
    elif tokens is None and agent is None:
        raise click.UsageError("give --agent NAME (every loopback caller) or --tokens FILE")
    # the MCP channel is stdout: every log line goes to stderr
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    workspace = application(ctx).workspace(
        blueprints,
        policies=policies,
        opa=opa,
        cluster=cluster_kind,
        kubeconfig=kubeconfig,
        prometheus_url=prometheus_url,
    )
    with workspace:
        _ = workspace.session  # OPA started (and checked) before the first call, not during it
        gates: dict[str, AgentGate] = {}

        def gate(name: str) -> AgentGate:
            if name not in gates:
                gates[name] = AgentGate(
                    workspace, state_dir, name, opa=opa_identity(opa), audit_key=audit_key
                )
            return gates[name]

        def gate_for(request_ctx: Any) -> AgentGate:
            name = agent_of_request(request_ctx) or agent
            if name is None:  # BearerAgents let nobody through without a name
                raise UsageError("no agent named for this call")
            return gate(name)

        server = build_server(gate_for, CallQueue(queue))
        if http_address is None:
            anyio.run(_serve_stdio, server)
        else:
            from engine.mcp_server import serve_http

            def ready(url: str) -> None:
                note(f"opsgate mcp: serving {escape(url)}")

            anyio.run(lambda: serve_http(server, host, port, tokens, agent, ready=ready))


async def _serve_stdio(server: Any) -> None:
    from engine.mcp_server import serve_stdio

    await serve_stdio(server)


# what a manifest read through `kubectl apply -f` may weigh (a kubectl shim reads stdin too)
MAX_MANIFEST_BYTES = 1024 * 1024
# exit codes as opsgate enforce: 0 allow (done), 3 approve, 4 forbid, 5 defer, 1 error
_GATE_EXIT = {
    "succeeded": 0,
    "planned": 0,
    "verifying": 0,
    "awaiting_approval": 3,
    "blocked": 4,
    "deferred": 5,
}


def _read_manifest(path: str) -> str:
    """A file named by -f (or - for stdin), bounded."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
    else:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise OSError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


def real_kubectl(given: Path | None) -> str:
    """The kubectl read-only commands pass through to: --kubectl, else the first kubectl on
    PATH that is not a shim of this gate (which would call us again)."""
    if given is not None:
        return str(given)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "kubectl"
        if not candidate.is_file() or not os.access(candidate, os.X_OK):
            continue
        head = b""
        with contextlib.suppress(OSError), candidate.open("rb") as handle:
            head = handle.read(4096)
        if b"opsgate gate" in head:
            continue  # our own shim
        return str(candidate)
    raise OpsgateError("no kubectl on PATH besides this gate's shim: give --kubectl PATH")


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    epilog="""\b
Examples:
  opsgate gate --agent kubectl-ai -- kubectl get pods -n shop
      (read-only: runs the real kubectl unchanged)
  opsgate gate --agent kubectl-ai -- kubectl scale deployment/frontend --replicas=3 -n shop
      (a mutation: the scale operation goes through the gate; allowed ones run and are verified)
  As a shim on the agent's PATH, a file named kubectl:
      #!/bin/sh
      exec opsgate gate --agent kubectl-ai --state-dir /var/lib/opsgate -- kubectl "$@"

Read-only verbs pass through; mutations are parsed into catalog operations and
carried through the same Rego, approvals, execution, verification and audit as
request_operation; anything else, and any flag that retargets the call
(--server, --kubeconfig, --context, --as, --token…), is forbidden.
Exit codes as opsgate enforce: 0 allowed (done), 3 needs approval, 4 forbidden,
5 deferred, 1 error, 2 usage; a passed-through command exits as kubectl does.""",
)
@blueprints_option
@click.option(
    "--agent",
    envvar="OPSGATE_AGENT",
    show_envvar=True,
    required=True,
    help="The agent running kubectl: its authority is governance.agents.NAME.",
)
@click.option(
    "--kubectl",
    "kubectl_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OPSGATE_KUBECTL",
    show_envvar=True,
    default=None,
    help="The real kubectl for read-only commands (default: the first on PATH that is not "
    "this gate's shim).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@cluster_options
@state_dir_option
@audit_key_option
@policies_option
@opa_options
@click.pass_context
def gate(
    ctx: click.Context,
    blueprints: Path,
    agent: str,
    kubectl_path: Path | None,
    command: tuple[str, ...],
    cluster_kind: Any,
    prometheus_url: str | None,
    kubeconfig: Path | None,
    state_dir: Path,
    audit_key: Path | None,
    policies: Path | None,
    opa: OpaSettings,
) -> None:
    """A kubectl front door for agents that shell out: reads pass, changes are gated."""
    name = _agent_name(agent)
    assert name is not None
    if not command or Path(command[0]).name != "kubectl":
        raise click.UsageError("give the kubectl command after --: opsgate gate -- kubectl ARGS…")
    args = list(command[1:])
    workspace = application(ctx).workspace(
        blueprints,
        policies=policies,
        opa=opa,
        cluster=cluster_kind,
        kubeconfig=kubeconfig,
        prometheus_url=prometheus_url,
    )
    with workspace:
        governed = [
            Governed(
                service,
                b["target"]["namespace"],
                b["target"]["deployment"],
                tuple(b["target"].get("configmaps") or ()),
            )
            for service, b in sorted(workspace.blueprints.items())
        ]
        planned = plan(args, governed, _read_manifest)
        if isinstance(planned, PassThrough):
            real = real_kubectl(kubectl_path)
            workspace.close()  # nothing of ours stays open behind the real kubectl
            # no kuberc: its aliases and default flags would change what the command reads
            env = {**os.environ, "KUBERC": "off"}
            ctx.exit(subprocess.run([real, *planned.args], check=False, env=env).returncode)
        agent_gate = AgentGate(
            workspace, state_dir, name, opa=opa_identity(opa), audit_key=audit_key
        )
        if isinstance(planned, Proposed):
            planned = _first_containers_only(planned, workspace.blueprints)
        if isinstance(planned, Refused):
            agent_gate.refused(planned.command or audit_command(args), planned.reason)
            note(f"[red]forbid[/]: {escape(planned.reason)}")
            ctx.exit(4)
        ctx.exit(_carry_out(agent_gate, planned))


def _first_containers_only(
    planned: Proposed, blueprints: dict[str, dict[str, Any]]
) -> Proposed | Refused:
    """opsgate changes a Deployment's first container; the gate can confirm that a named
    container is it only when it bears the Deployment's name (the convention opsgate's
    Deployments follow). Any other name refuses the whole command."""
    for proposal in planned.proposals:
        deployment = blueprints[proposal.service]["target"]["deployment"]
        if proposal.container is not None and proposal.container != deployment:
            return Refused(
                f"container {printable(proposal.container)[:64]!r}: opsgate changes the first "
                f"container of deployment {deployment}, which the gate confirms only by its "
                f"name ({deployment}); use request_operation for the first container",
                planned.command,
            )
    return planned


def _carry_out(agent_gate: AgentGate, planned: Proposed) -> int:
    """Check every operation of the command first (one forbidden: none runs), then request
    them in order, stopping at the first that does not run. Returns the exit code."""
    operations_ = []
    for proposal in planned.proposals:
        operation = dict(proposal.operation)
        if proposal.pod_from_observation:
            operation["pod"] = agent_gate.first_pod(proposal.service)
        operations_.append((proposal.service, operation))
    verdicts = [agent_gate.check_operation(s, o) for s, o in operations_]
    forbidden = [v for v in verdicts if v["tier"] == "forbid"]
    if forbidden:
        for verdict in forbidden:
            note(f"[red]forbid[/]: {escape('; '.join(verdict['reasons']))}")
            if verdict.get("suggestion"):
                note(f"suggestion: {escape(verdict['suggestion']['text'])}")
        agent_gate.refused(planned.command, "; ".join(forbidden[0]["reasons"]))
        return 4
    for service, operation in operations_:
        answer = agent_gate.request_operation(service, operation, reason=planned.command)
        outcome = answer["outcome"]
        click.echo(f"opsgate: {service}: {describe_masked(answer['operation'])}: {outcome}")
        if answer.get("detail"):
            note(escape(answer["detail"]))
        if answer.get("retry_after"):
            note(f"retry after {escape(str(answer['retry_after']))} (the service's cooldown)")
        code = _GATE_EXIT.get(outcome, 1)
        if code != 0:
            return code
    return 0
