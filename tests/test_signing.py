"""Keys, signed statements and the operation digest that binds an approval."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from engine import signing
from engine.toolchain import find_tool
from tests.conftest import MALLORY, SRE_LEAD

APPROVERS: list[Any] = [
    {"name": "sre-lead", "public_key": signing.public_key_line(SRE_LEAD.key.public_key())},
    "platform-oncall",
]
NOW = "2026-02-10T12:00:00Z"

TRICKY = [
    {"type": "scale", "to": 3},
    {"type": "scale", "to": 3, "from": 2},
    {"type": "update_configmap", "name": "app", "changes": {"a<b": "x&y>z", "é": "ü\u2028\u2029"}},
    {
        "type": "update_configmap",
        "name": "app",
        "changes": {"tab": "a\tb\nc\u0001\u007f", "q": '"'},
    },
    {"type": "update_strategy", "changes": {"max_unavailable": 1, "ratio": 0.5, "big": 10**18}},
    {"type": "update_health_checks", "probe": "readiness", "changes": {"nested": [1, {"z": None}]}},
    {"type": "adjust_resources", "resource": "cpu", "field": "request", "to": "90m"},
]


def test_operation_digest_is_what_rego_computes() -> None:
    """Python and OPA must agree on every byte, or no approval would ever verify."""
    query = (
        'x := [crypto.sha256(concat("", ["s4lt", json.marshal(object.remove(op, ["from"]))]))'
        " | some op in input]"
    )
    completed = subprocess.run(
        [str(find_tool("opa")), "eval", "--stdin-input", "--format", "json", query],
        input=json.dumps(TRICKY),
        capture_output=True,
        text=True,
        check=True,
    )
    from_opa = json.loads(completed.stdout)["result"][0]["bindings"]["x"]
    assert from_opa == [signing.operation_digest(op, "s4lt") for op in TRICKY]


def test_digest_ignores_from_but_not_any_other_field() -> None:
    base = signing.operation_digest({"type": "scale", "to": 3})
    assert signing.operation_digest({"type": "scale", "to": 3, "from": 9}) == base
    assert signing.operation_digest({"type": "scale", "to": 4}) != base
    assert signing.operation_digest({"type": "scale", "to": 3, "extra": 1}) != base


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user",
        "ssh-ed25519 not-base64!",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==",
    ],
)
def test_only_real_ssh_ed25519_public_keys_are_accepted(text: str) -> None:
    with pytest.raises(signing.SigningError):
        signing.parse_public_key(text)


def test_jwk_of_a_key_is_okp_ed25519_named_by_the_approver() -> None:
    jwks = signing.approver_jwks(APPROVERS)
    assert [k["kid"] for k in jwks["keys"]] == ["sre-lead"]  # plain names have no key
    assert {k: jwks["keys"][0][k] for k in ("kty", "crv", "alg")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_the_public_key() -> str:
    """The classic confusion attack: HMAC keyed with the (public) verification key."""
    header = _b64(json.dumps({"alg": "HS256", "kid": "sre-lead"}).encode())
    body = _b64(json.dumps({**_claims(), "iss": "opsgate", "approver": "sre-lead"}).encode())
    secret = APPROVERS[0]["public_key"].encode()
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def _claims(**changes: Any) -> dict[str, Any]:
    issued = signing.epoch(NOW)
    return {"purpose": "approve", "iat": issued, "exp": issued + 600, **changes}


def test_a_signed_statement_verifies_and_names_its_signer() -> None:
    token = SRE_LEAD.statement(_claims())
    assert signing.verify_statement(token, APPROVERS, purpose="approve", now=NOW)["approver"] == (
        "sre-lead"
    )


@pytest.mark.parametrize(
    ("forge", "message"),
    [
        (lambda: MALLORY.statement(_claims()), "not an approver with a public key"),
        (
            lambda: signing.sign(
                {**_claims(), "iss": "opsgate", "approver": "sre-lead"}, MALLORY.key, "sre-lead"
            ),
            "does not verify",
        ),
        (lambda: SRE_LEAD.statement(_claims(purpose="reject")), "not 'approve'"),
        (lambda: SRE_LEAD.statement(_claims(exp=signing.epoch(NOW))), "expired"),
        (lambda: _hs256_with_the_public_key(), "does not verify"),
        (
            lambda: (
                ".".join(
                    base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                    for part in (
                        {"alg": "none"},
                        {**_claims(), "iss": "opsgate", "approver": "sre-lead"},
                    )
                )
                + "."
            ),
            "does not verify",
        ),
        (lambda: "garbage", "not a signed statement"),
    ],
)
def test_forged_statements_are_refused(forge: Any, message: str) -> None:
    with pytest.raises(signing.SigningError, match=message):
        signing.verify_statement(forge(), APPROVERS, purpose="approve", now=NOW)


def test_encrypted_key_asks_for_its_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "id_ed25519"
    path.write_bytes(
        SRE_LEAD.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    asked: list[int] = []

    def passphrase() -> str:
        asked.append(1)
        return "correct horse"

    key = signing.load_private_key(path, passphrase)
    assert asked == [1]
    assert signing.signer_for(key, APPROVERS).name == "sre-lead"
    with pytest.raises(signing.SigningError, match="can't load"):
        signing.load_private_key(path, lambda: "wrong")


def test_a_key_not_listed_can_not_sign_for_anyone() -> None:
    with pytest.raises(signing.SigningError, match="not the public_key of any approver"):
        signing.signer_for(MALLORY.key, APPROVERS)


def test_private_keys_are_written_0600_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k"
    signing.write_private_key(path, signing.generate_key())
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        signing.write_private_key(path, signing.generate_key())


def test_a_fifo_given_as_a_key_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "key"
    os.mkfifo(fifo)
    with pytest.raises(signing.SigningError, match="not a regular file"):
        signing.load_private_key(fifo)
