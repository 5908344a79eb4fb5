"""A stand-in OPA HTTP server for fault injection: it answers what a test tells it to."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.loopback import serve


@dataclass
class Reply:
    """One canned answer: status, body (bytes or JSON-able), and a delay."""

    status: int = 200
    body: Any = None
    delay: float = 0.0


@dataclass
class FakeOpa:
    """The fake server's behaviour and what it saw."""

    url: str = ""
    reply: Reply = field(default_factory=Reply)
    revision: str = "rev"
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)


@contextmanager
def fake_opa() -> Iterator[FakeOpa]:
    """Run a FakeOpa on a free loopback port for the duration of the block."""
    state = FakeOpa()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            body = reply.body
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"null")
            state.requests.append((self.path, dict(self.headers), payload))
            if self.path == "/v1/data/opsgate/bundle/revision":
                self._send(Reply(body={"result": state.revision}))
            else:
                self._send(state.reply)

        def do_GET(self) -> None:
            self._send(Reply(body={}))

    with serve(Handler) as url:
        state.url = url
        yield state
