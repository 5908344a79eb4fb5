"""OPA access fails closed: every answer it can't vouch for is a PolicyError."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from engine import contracts
from engine.errors import PolicyError
from engine.opa import OpaGateway
from tests.opa.fake_opa import Reply, fake_opa

GOOD_VERDICT = {
    "id": "abc",
    "operation": {"type": "scale", "to": 3},
    "tier": "allow",
    "reasons": ["fine"],
    "rules": ["r"],
    "blueprint_refs": [],
    "suggestion": None,
    "service": "frontend",
    "blueprint": {"name": "frontend", "version": "1.0.0"},
    "bundle_revision": "rev",
    "dry_run": False,
}

# Each way an answer can be unusable, as the fake server sends it.
FAULTS: list[tuple[str, Reply]] = [
    ("http 500", Reply(status=500, body={"code": "internal_error"})),
    ("http 404", Reply(status=404, body={"code": "resource_not_found"})),
    ("http 401", Reply(status=401, body={"code": "unauthorized"})),
    ("not json", Reply(body=b"<html>proxy error</html>")),
    ("empty body", Reply(body=b"")),
    ("undefined", Reply(body={})),
    ("a list", Reply(body=[1, 2])),
    ("tier outside the contract", Reply(body={"result": {**GOOD_VERDICT, "tier": "maybe"}})),
    (
        "tier missing",
        Reply(body={"result": {k: v for k, v in GOOD_VERDICT.items() if k != "tier"}}),
    ),
    ("no reasons", Reply(body={"result": {**GOOD_VERDICT, "reasons": []}})),
    ("result null", Reply(body={"result": None})),
    ("result a string", Reply(body={"result": "allow"})),
]


def _ask(url: str, timeout: float = 2.0) -> dict[str, Any]:
    gateway = OpaGateway(url, timeout=timeout)
    try:
        return contracts.verdict(gateway.evaluate("opsgate.main", "enforce", {"service": "x"}))
    finally:
        gateway.close()


def test_good_answer_passes() -> None:
    with fake_opa() as opa:
        opa.reply = Reply(body={"result": GOOD_VERDICT})
        assert _ask(opa.url)["tier"] == "allow"


@pytest.mark.parametrize(("name", "reply"), FAULTS, ids=[n for n, _ in FAULTS])
def test_each_fault_is_a_policy_error(name: str, reply: Reply) -> None:
    with fake_opa() as opa:
        opa.reply = reply
        with pytest.raises(PolicyError):
            _ask(opa.url)


def test_a_thousand_injected_faults_never_yield_a_verdict() -> None:
    answered = 0
    refused = 0
    with fake_opa() as opa:
        gateway = OpaGateway(opa.url, timeout=2.0)
        for i in range(1200):
            opa.reply = FAULTS[i % len(FAULTS)][1]
            try:
                contracts.verdict(gateway.evaluate("opsgate.main", "enforce", {"i": i}))
                answered += 1
            except PolicyError:
                refused += 1
        gateway.close()
    assert (answered, refused) == (0, 1200)


def test_slow_answer_times_out() -> None:
    with fake_opa() as opa:
        opa.reply = Reply(body={"result": GOOD_VERDICT}, delay=0.6)
        with pytest.raises(PolicyError, match=r"did not answer .* within 0\.2s"):
            _ask(opa.url, timeout=0.2)


def test_unreachable_server() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(PolicyError, match="unreachable"):
        _ask(f"http://127.0.0.1:{port}")


def test_token_is_sent_as_bearer() -> None:
    with fake_opa() as opa:
        opa.reply = Reply(body={"result": GOOD_VERDICT})
        gateway = OpaGateway(opa.url, token="s3cret")
        gateway.evaluate("opsgate.main", "enforce", {})
        gateway.close()
        path, headers, payload = opa.requests[-1]
    assert path == "/v1/data/opsgate/main/enforce"
    assert headers["Authorization"] == "Bearer s3cret"
    assert payload == {"input": {}}


@pytest.mark.parametrize(
    "url", ["opa:8181", "ftp://opa:8181", "http://opa:8181/v1/data", "http://"]
)
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(PolicyError, match="OPA URL"):
        OpaGateway(url)


def test_served_revision() -> None:
    with fake_opa() as opa:
        opa.revision = "abc123"
        gateway = OpaGateway(opa.url)
        assert gateway.served_revision() == "abc123"
        gateway.close()
