"""``opsgate mcp``: the agent gate as a Model Context Protocol server (the official SDK).

Six intent-level tools (see ``engine.agents``), each with honest annotations.
What the model sends is validated here against JSON Schemas generated from
the operation catalog before anything else reads it: no field the catalog
does not declare (no namespace, server or kubeconfig), no wrong type, no
huge value. ``tools/list`` shows an agent only the tools the policies let it
use at all: request_operation only when main.authority says it may request
something.

One call runs at a time (the state, the audit log and the cluster are the
runner's, opened per call); up to ``queue`` more wait their turn, and a call
beyond that is answered at once with a clear "busy" error: nothing is
dropped silently, and every call that ran is in the audit log.

Over stdio the agent is the one named by ``--agent``. Over Streamable HTTP
each bearer token names its agent (``--tokens FILE``); on loopback without a
tokens file every caller is ``--agent``.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from jsonschema import Draft202012Validator
from mcp.server import Server
from mcp.server.context import ServerRequestContext

from engine import operations
from engine.agents import ACT_TOOLS, AgentError, AgentGate
from engine.errors import OpsgateError

log = logging.getLogger(__name__)

# the largest arguments of one call, as JSON: an operation is a few hundred bytes
MAX_ARGUMENT_BYTES = 64 * 1024
DEFAULT_QUEUE = 32
_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", "maxLength": 63}
_SCALAR = {"type": ["string", "number", "boolean", "null"], "maxLength": 4096}

# what a value of each parameter kind of the catalog may be (as the policies check it)
_KINDS: dict[str, dict[str, Any]] = {
    "count": {"type": "integer", "minimum": 0, "maximum": 10000},
    "revision": {"type": "integer", "minimum": 1},
    "resource": {"enum": ["cpu", "memory"]},
    "field": {"enum": ["request", "limit"]},
    "quantity": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?[A-Za-z]{0,2}$", "maxLength": 32},
    "name": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": "^[A-Za-z0-9._-]+$"},
    "changes": {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 32,
        "propertyNames": {"maxLength": 253},
        "additionalProperties": _SCALAR,
    },
    "probe": {"enum": ["liveness", "readiness", "startup"]},
}


def operation_schema(types_: list[str] | None = None) -> dict[str, Any]:
    """The JSON Schema of an operation of the catalog (of ``types_`` only, when given):
    one alternative per type, exactly its declared parameters, nothing else."""
    alternatives = []
    for name, entry in sorted(operations.catalog().items()):
        if types_ is not None and name not in types_:
            continue
        properties: dict[str, Any] = {"type": {"const": name}}
        required = ["type"]
        for parameter in entry.parameters:
            properties[parameter.name] = {
                **_KINDS.get(parameter.kind, {"not": {}}),
                "description": parameter.description,
            }
            if parameter.required:
                required.append(parameter.name)
        alternatives.append(
            {
                "type": "object",
                "description": entry.description,
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        )
    return {
        "type": "object",
        "description": "An operation of the catalog (docs/OPERATIONS.md): a type and its "
        "parameters, nothing else.",
        "required": ["type"],
        "oneOf": alternatives or [{"not": {}}],
    }


@dataclass(frozen=True)
class ToolSpec:
    """One tool: how it is shown, and which method of the gate answers it."""

    name: str
    title: str
    description: str
    properties: Mapping[str, Any]
    required: tuple[str, ...]
    read_only: bool
    destructive: bool
    idempotent: bool

    def input_schema(self, operation: dict[str, Any]) -> dict[str, Any]:
        """The tool's input schema, with ``operation`` as the schema of its operation."""
        properties = {k: (operation if v == "operation" else v) for k, v in self.properties.items()}
        return {
            "type": "object",
            "properties": properties,
            "required": list(self.required),
            "additionalProperties": False,
        }

    def tool(self, operation: dict[str, Any]) -> types.Tool:
        """The tool as tools/list shows it."""
        return types.Tool(
            name=self.name,
            title=self.title,
            description=self.description,
            input_schema=self.input_schema(operation),
            annotations=types.ToolAnnotations(
                title=self.title,
                read_only_hint=self.read_only,
                destructive_hint=self.destructive,
                idempotent_hint=self.idempotent,
                open_world_hint=False,
            ),
        )


_SERVICE = {**_NAME, "description": "A governed service (list_services names them)."}
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "list_services",
        "List governed services",
        "Every service opsgate governs: namespace, deployment, owner, and the operation "
        "types you may request of it.",
        {},
        (),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "describe_service",
        "Describe a service",
        "One service: its blueprint's targets and limits, what the cluster shows now, "
        "open approval requests, whether its circuit breaker is open, when its cooldown ends.",
        {"service": _SERVICE},
        ("service",),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "check_operation",
        "Check an operation",
        "The verdict opsgate's policies give an operation now (allow, approve, forbid or "
        "defer), with reasons and a suggestion; nothing is run or filed.",
        {"service": _SERVICE, "operation": "operation"},
        ("service", "operation"),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "request_operation",
        "Request an operation",
        "Ask opsgate to carry out an operation. allow: it runs now, is verified, rolled back "
        "if verification fails, and the outcome is returned. approve: an approval request is "
        "filed for a person to answer out of band (its id is returned; see approval_status; "
        "ask again once it is granted). forbid: the reason and a suggestion. defer: when to "
        "retry. `reason` is kept in the audit log for people; it never changes the verdict.",
        {
            "service": _SERVICE,
            "operation": "operation",
            "reason": {
                "type": "string",
                "maxLength": 1000,
                "description": "Why you ask (for the people reading the audit log).",
            },
        },
        ("service", "operation"),
        read_only=False,
        destructive=True,
        idempotent=False,
    ),
    ToolSpec(
        "approval_status",
        "Approval status",
        "The status of one of your approval requests (pending, granted, rejected, expired, "
        "executed), who answered and why.",
        {
            "approval_id": {
                "type": "string",
                "pattern": "^[0-9a-f]{6,64}$",
                "description": "The id request_operation returned.",
            }
        },
        ("approval_id",),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        "recent_decisions",
        "Recent decisions",
        "The latest decisions, executions, verifications and approvals from opsgate's "
        "audit log, oldest first.",
        {
            "service": _SERVICE,
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        (),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
)
_BY_NAME = {spec.name: spec for spec in TOOLS}


class Busy(AgentError):
    """Too many calls are waiting: this one is answered at once, not queued."""


class CallQueue:
    """One call at a time; at most ``size`` waiting; beyond that, Busy at once.

    A call that may change something runs in a worker thread, so the server keeps
    reading and answers "busy" while it waits on the cluster. A read-only call (a few
    milliseconds: the state, an observation, one OPA query) runs on the event loop
    itself, in its turn: a thread hop and the GIL hand-offs around it cost as much as
    the call (scripts/bench_mcp.py).
    """

    def __init__(self, size: int = DEFAULT_QUEUE) -> None:
        self.size = size
        self.waiting = 0
        self.ran = 0
        self.refused = 0
        self._lock = anyio.Lock()

    async def run(self, work: Callable[[], Any], *, in_loop: bool = False) -> Any:
        """Run ``work`` when its turn comes (Busy if the queue is full)."""
        if self.waiting >= self.size:
            self.refused += 1
            raise Busy(
                f"busy: {self.waiting} calls are already waiting (at most {self.size}); "
                "nothing was done: try again shortly"
            )
        self.waiting += 1
        try:
            async with self._lock:
                self.ran += 1
                if in_loop:
                    return work()
                return await anyio.to_thread.run_sync(work)
        finally:
            self.waiting -= 1


GateFor = Callable[[ServerRequestContext[Any]], AgentGate]


def _result(value: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value, sort_keys=True))],
        structured_content=value,
        is_error=False,
    )


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=f"error: {message}")], is_error=True
    )


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    """The validator of one tool's arguments (every catalog type: the verdict says what
    is forbidden), built once."""
    return Draft202012Validator(_BY_NAME[name].input_schema(operation_schema()))


def _argument_problem(spec: ToolSpec, arguments: Any) -> str | None:
    """Why these arguments don't fit the tool's schema (None when they do)."""
    if not isinstance(arguments, dict):
        return "arguments must be an object"
    if len(json.dumps(arguments)) > MAX_ARGUMENT_BYTES:
        return f"arguments larger than {MAX_ARGUMENT_BYTES} bytes"
    errors = sorted(
        _validator(spec.name).iter_errors(arguments), key=lambda e: list(e.absolute_path)
    )
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(p) for p in error.absolute_path) or "arguments"
    if error.validator == "oneOf" and list(error.absolute_path) == ["operation"]:
        return _operation_problem(arguments["operation"])
    return f"{where}: {error.message[:200]} ({spec.name})"


def _operation_problem(operation: Any) -> str:
    """Why an operation fits no type of the catalog: its type is unknown, or the first way
    it breaks its own type's schema (a parameter missing, extra, or of the wrong kind)."""
    kind = operation.get("type") if isinstance(operation, dict) else None
    entry = operations.catalog().get(kind) if isinstance(kind, str) else None
    if entry is None:
        known = ", ".join(sorted(operations.catalog()))
        return f"operation: unknown type {str(kind)[:40]!r} (known: {known})"
    alternative = next(
        alt for alt in operation_schema()["oneOf"] if alt["properties"]["type"]["const"] == kind
    )
    found = sorted(
        Draft202012Validator(alternative).iter_errors(operation),
        key=lambda e: list(e.absolute_path),
    )
    names = ", ".join(p.name for p in entry.parameters) or "none"
    if not found:
        return f"operation: a {kind} takes exactly its parameters ({names})"
    where = "/".join(["operation", *(str(p) for p in found[0].absolute_path)])
    return f"{where}: {found[0].message[:200]} (a {kind} takes: {names})"


def build_server(gate_for: GateFor, queue: CallQueue | None = None) -> Server[Any]:
    """The MCP server: tools/list and tools/call over the gate of the calling agent."""
    queue = queue or CallQueue()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        gate = gate_for(ctx)
        names = await anyio.to_thread.run_sync(gate.tools)
        # every type of the catalog, as the server accepts: a type this agent may not
        # request gets its verdict (forbid, with why and a suggestion), not a schema error
        return types.ListToolsResult(tools=[_BY_NAME[n].tool(operation_schema()) for n in names])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            gate = gate_for(ctx)
            spec = _BY_NAME.get(params.name)
            allowed = (
                gate.tools() if gate.knows_authority else await anyio.to_thread.run_sync(gate.tools)
            )
            if spec is None or spec.name not in allowed:
                return _error(f"unknown tool {params.name[:64]!r}: tools/list says which exist")
            arguments = params.arguments or {}
            problem = _argument_problem(spec, arguments)
            if problem is not None:
                return _error(problem)
            answer = await queue.run(
                partial(_dispatch, gate, spec.name, arguments), in_loop=spec.read_only
            )
            return _result(answer)
        except OpsgateError as e:
            # OPA down, state unreadable, busy: the agent is told; nothing ran
            return _error(str(e))
        except Exception:
            # a bug of ours: its text stays in the server's log, the agent gets a plain line
            log.exception("opsgate mcp: %s failed", params.name[:64])
            return _error(
                "internal error (in the server's log); whatever ran is in the audit log: "
                "see recent_decisions"
            )

    return Server(
        "opsgate",
        instructions="opsgate gates operations on the services it governs: check_operation "
        "asks, request_operation acts (allowed ones run and are verified; others need a "
        "person's signed approval, given out of band, or are forbidden).",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _dispatch(gate: AgentGate, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """Call the gate's answer to one tool (arguments already validated)."""
    gate.ensure_opa()
    if name == "list_services":
        return gate.list_services()
    if name == "describe_service":
        return gate.describe_service(arguments["service"])
    if name == "check_operation":
        return gate.check_operation(arguments["service"], arguments["operation"])
    if name in ACT_TOOLS:
        return gate.request_operation(
            arguments["service"], arguments["operation"], arguments.get("reason")
        )
    if name == "approval_status":
        return gate.approval_status(arguments["approval_id"])
    if name == "recent_decisions":
        return gate.recent_decisions(arguments.get("service"), int(arguments.get("limit", 20)))
    raise AgentError(f"unknown tool {name!r}")


def same_token(given: str, expected: str) -> bool:
    """Compare tokens in constant time."""
    return hmac.compare_digest(given.encode(), expected.encode())


Serve = Callable[[], Awaitable[None]]


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one agent over this process's stdin and stdout (logs go to stderr)."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


# the scope key the bearer check leaves the caller's agent name under
AGENT_SCOPE_KEY = "opsgate.agent"


class BearerAgents:
    """ASGI middleware: each HTTP request names its agent by bearer token.

    ``tokens`` maps each token to its agent's name; with none (loopback only), every
    caller is ``default``. A request without a known token gets 401 and reaches nothing.
    """

    def __init__(self, app: Any, tokens: Mapping[str, str] | None, default: str | None) -> None:
        self.app = app
        self.tokens = dict(tokens or {})
        self.default = default

    def agent_of(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """The agent the request's Authorization header names (None: nobody known)."""
        if not self.tokens:
            return self.default
        given = ""
        for key, value in headers:
            if key.lower() == b"authorization":
                given = value.decode("latin-1")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = None
        for known, agent in self.tokens.items():
            if same_token(token.strip(), known):
                found = agent  # no early exit: every token is compared
        return found

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            agent = self.agent_of(scope.get("headers", []))
            if agent is None:
                client = scope.get("client") or ("?", 0)
                log.warning(
                    "opsgate mcp: refused a request from %s without a known token", client[0]
                )
                body = b'{"error": "a bearer token of a known agent is required"}'
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
            scope[AGENT_SCOPE_KEY] = agent
        await self.app(scope, receive, send)


def agent_of_request(ctx: ServerRequestContext[Any]) -> str | None:
    """The agent name the bearer check put on this call's HTTP request (None over stdio)."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        agent = scope.get(AGENT_SCOPE_KEY)
        return agent if isinstance(agent, str) else None
    return None


async def serve_http(
    server: Server[Any],
    host: str,
    port: int,
    tokens: Mapping[str, str] | None,
    default: str | None,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve Streamable HTTP at http://host:port/mcp until cancelled."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings

    loopback = host in ("127.0.0.1", "localhost", "::1")
    security = (
        None  # the SDK's own DNS-rebinding protection for loopback
        if loopback
        else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    )
    app = server.streamable_http_app(host=host, transport_security=security)
    config = uvicorn.Config(
        BearerAgents(app, tokens, default),
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
    )
    web = uvicorn.Server(config)
    if ready is not None:
        original = web.startup

        async def startup(sockets: Any = None) -> None:
            await original(sockets)
            for s in web.servers:
                for sock in s.sockets:
                    address = sock.getsockname()
                    ready(f"http://{host}:{address[1]}/mcp")

        web.startup = startup  # type: ignore[method-assign]
    await web.serve()
