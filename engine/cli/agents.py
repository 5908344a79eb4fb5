"""``opsgate mcp`` and ``opsgate gate``: the doors AI agents come through."""

from __future__ import annotations

import logging
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
from engine.cli.terminal import escape, note, printable
from engine.errors import UsageError
from engine.files import check_private
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
        if not signing.valid_name(name) or len(token) < 32 or " " in token:
            raise UsageError(
                f"{path}:{number}: expected NAME TOKEN (an agent name, then a token of at "
                "least 32 characters)"
            )
        if token in tokens:
            raise UsageError(f"{path}:{number}: this token is already given to {tokens[token]}")
        tokens[token] = name
    if not tokens:
        raise UsageError(f"{path}: no NAME TOKEN line")
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
    help="Serve Streamable HTTP at HOST:PORT (/mcp) instead of stdio. Loopback unless "
    "given; any other address needs --tokens.",
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
