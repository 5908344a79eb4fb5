"""Keys and signatures: approvers' ssh-ed25519 keys, signed statements, operation digests.

An approver is identified by a key, not by what they type. Governance lists
``approval_workflow.approvers: [{name, public_key: "ssh-ed25519 AAAA…"}]``;
the compiler turns those keys into a JWKS in the OPA data document, and a
person's answer is an Ed25519 JWS (``alg: EdDSA``) over claims that name
exactly one operation. Rego verifies approvals at execution time; this
module signs them, reads their claims, and verifies statements Python acts
on by itself (breaker resets, and a first check before an answer is stored).

``operation_digest`` must equal what Rego computes with
``crypto.sha256(json.marshal(operation))``: OPA's ``json.marshal`` is Go's
``encoding/json`` (sorted keys, no spaces, ``<``, ``>``, ``&``, U+2028 and
U+2029 escaped), reproduced here and checked against a real OPA in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from engine import moments
from engine.errors import OpsgateError

ALGORITHM = "EdDSA"
ISSUER = "opsgate"
PURPOSES = ("approve", "reject", "breaker_reset")
# Names of people and agents: shown on terminals and compared in Rego.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def valid_name(name: object) -> bool:
    """A person's, agent's or approver's name: the whole string, no trailing newline."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


RESERVED_NAMES = frozenset({"opsgate"})
MAX_TOKEN_BYTES = 16 * 1024
MAX_KEY_BYTES = 64 * 1024


class SigningError(OpsgateError):
    """A key can't be read, or a signed statement can't be made or is not valid."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Read an OpenSSH public key line; only ``ssh-ed25519`` is accepted."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        raise SigningError(
            "must be an OpenSSH ssh-ed25519 public key ('ssh-ed25519 AAAA… comment')"
        )
    try:
        key = serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as e:
        raise SigningError(f"not a valid ssh-ed25519 public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise SigningError("must be an ssh-ed25519 public key")
    return key


def public_key_line(key: Ed25519PublicKey, comment: str = "") -> str:
    """The OpenSSH one-line form of ``key`` (``ssh-ed25519 AAAA… comment``)."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{line.decode('ascii')} {comment}".strip()


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def jwk(name: str, key: Ed25519PublicKey) -> dict[str, str]:
    """The JWK (RFC 8037, OKP/Ed25519) of one approver's key, with the name as ``kid``."""
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(raw_public(key)),
        "kid": name,
        "alg": ALGORITHM,
        "use": "sig",
    }


def approver_name(entry: str | dict[str, Any]) -> str:
    """The name of an ``approvers`` entry (a plain name or ``{name, public_key}``)."""
    return entry if isinstance(entry, str) else str(entry["name"])


def approver_jwks(approvers: list[Any]) -> dict[str, list[dict[str, str]]]:
    """The JWKS of the approvers that have a public key (plain names have none)."""
    keys = [
        jwk(entry["name"], parse_public_key(entry["public_key"]))
        for entry in approvers
        if isinstance(entry, dict) and entry.get("public_key")
    ]
    return {"keys": keys}


def generate_key() -> Ed25519PrivateKey:
    """A new Ed25519 private key."""
    return Ed25519PrivateKey.generate()


def demo_key(name: str) -> Ed25519PrivateKey:
    """A key derived from a public phrase: for demonstrations only, never for real approvers."""
    seed = hashlib.sha256(f"opsgate demonstration key of {name}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """``key`` in the OpenSSH private key format, unencrypted (keep the file 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write ``key`` to a new file that only its owner can read (0600, refused if it exists)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_key_bytes(key))
        handle.flush()
        os.fsync(handle.fileno())


def load_private_key(path: Path, passphrase: Callable[[], str] | None = None) -> Ed25519PrivateKey:
    """Read an Ed25519 private key (OpenSSH or PKCS#8 PEM); ask ``passphrase`` if encrypted."""
    try:
        # a FIFO or a device given as --key must not hang or flood us
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SigningError(f"{path}: can't read key: not a regular file")
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as e:
        raise SigningError(f"{path}: can't read key: {e.strerror or e}") from e
    if len(data) > MAX_KEY_BYTES:
        raise SigningError(f"{path}: can't read key: over {MAX_KEY_BYTES} bytes")
    loaders: list[Callable[[bytes, bytes | None], Any]] = [
        lambda d, p: serialization.load_ssh_private_key(d, p),
        lambda d, p: serialization.load_pem_private_key(d, p),
    ]
    password: bytes | None = None
    problems: list[str] = []
    for _attempt in range(2):
        problems = []
        for loader in loaders:
            try:
                key = loader(data, password)
            except (TypeError, ValueError, UnsupportedAlgorithm) as e:
                problems.append(str(e))
                continue
            if not isinstance(key, Ed25519PrivateKey):
                raise SigningError(f"{path}: not an Ed25519 key (opsgate keys are Ed25519 only)")
            return key
        encrypted = any("password" in p.lower() or "encrypted" in p.lower() for p in problems)
        if password is None and encrypted and passphrase is not None:
            password = passphrase().encode("utf-8")
            continue
        break
    raise SigningError(f"{path}: can't load the private key: {problems[0]}")


def canonical_operation(operation: dict[str, Any]) -> str:
    """An operation as OPA's ``json.marshal`` writes it, without the informational ``from``."""
    proposal = {k: v for k, v in operation.items() if k != "from"}
    text = json.dumps(
        proposal, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    # Go's encoding/json escapes these even in compact output
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def operation_digest(operation: dict[str, Any], salt: str = "") -> str:
    """SHA-256 (hex) of ``salt`` and the canonical operation: what an approval is bound to.

    The salt is the request's random nonce, so a published digest can't be used to guess
    a masked value offline.
    """
    return hashlib.sha256((salt + canonical_operation(operation)).encode("utf-8")).hexdigest()


def epoch(moment: str) -> int:
    """Seconds since the epoch of an RFC 3339 time."""
    return int(moments.parse(moment).timestamp())


def sign(claims: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
    """An EdDSA JWS (compact JWT) over ``claims``, with ``kid`` naming the signer."""
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of a JWS without checking its signature (to find what it is about)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise SigningError("a signed statement must be a compact JWS of at most 16 KiB")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise SigningError(f"not a signed statement (JWS): {e}") from e
    if not isinstance(claims, dict):
        raise SigningError("a signed statement must carry a JSON object")
    return claims


@dataclass(frozen=True)
class Signer:
    """A private key and the approver name its public key has in governance."""

    name: str
    key: Ed25519PrivateKey

    def statement(self, claims: dict[str, Any]) -> str:
        """Sign ``claims`` (with ``approver``, ``iss`` and ``kid`` set to this signer)."""
        return sign({**claims, "iss": ISSUER, "approver": self.name}, self.key, self.name)


# The ssh-agent protocol (draft-miller-ssh-agent): just enough to list keys and sign.
_AGENTC_REQUEST_IDENTITIES = 11
_AGENT_IDENTITIES_ANSWER = 12
_AGENTC_SIGN_REQUEST = 13
_AGENT_SIGN_RESPONSE = 14
_AGENT_TIMEOUT_SECONDS = 30.0


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_ssh_string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise SigningError("ssh-agent sent a truncated answer")
    (length,) = struct.unpack_from(">I", data, offset)
    end = offset + 4 + length
    if end > len(data):
        raise SigningError("ssh-agent sent a truncated answer")
    return data[offset + 4 : end], end


def _agent_call(socket_path: str, request: bytes) -> bytes:
    """Send one request to ssh-agent and return the answer's payload."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent:
            agent.settimeout(_AGENT_TIMEOUT_SECONDS)
            agent.connect(socket_path)
            agent.sendall(struct.pack(">I", len(request)) + request)
            header = _receive(agent, 4)
            (length,) = struct.unpack(">I", header)
            if length > 256 * 1024:
                raise SigningError("ssh-agent sent an oversized answer")
            return _receive(agent, length)
    except OSError as e:
        raise SigningError(f"can't talk to ssh-agent at {socket_path}: {e.strerror or e}") from e


def _receive(agent: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = agent.recv(size - len(data))
        if not chunk:
            raise SigningError("ssh-agent closed the connection")
        data += chunk
    return data


def agent_ed25519_keys(socket_path: str) -> list[tuple[bytes, bytes]]:
    """The ssh-ed25519 keys ssh-agent holds: (key blob, raw 32-byte public key)."""
    answer = _agent_call(socket_path, bytes([_AGENTC_REQUEST_IDENTITIES]))
    if not answer or answer[0] != _AGENT_IDENTITIES_ANSWER:
        raise SigningError("ssh-agent refused to list its keys")
    (count,) = struct.unpack_from(">I", answer, 1)
    offset, keys = 5, []
    for _ in range(min(count, 1024)):
        blob, offset = _read_ssh_string(answer, offset)
        _comment, offset = _read_ssh_string(answer, offset)
        kind, rest = _read_ssh_string(blob, 0)
        if kind == b"ssh-ed25519":
            raw, _ = _read_ssh_string(blob, rest)
            if len(raw) == 32:
                keys.append((blob, raw))
    return keys


@dataclass(frozen=True)
class AgentSigner:
    """An approver whose private key stays in ssh-agent: the agent signs the JWS."""

    name: str
    socket_path: str
    blob: bytes

    def statement(self, claims: dict[str, Any]) -> str:
        """Sign ``claims`` like ``Signer.statement``, the signature made by ssh-agent."""
        header = {"alg": ALGORITHM, "kid": self.name, "typ": "JWT"}
        body = {**claims, "iss": ISSUER, "approver": self.name}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
            for part in (header, body)
        )
        request = (
            bytes([_AGENTC_SIGN_REQUEST])
            + _ssh_string(self.blob)
            + _ssh_string(signing_input.encode("ascii"))
            + struct.pack(">I", 0)
        )
        answer = _agent_call(self.socket_path, request)
        if not answer or answer[0] != _AGENT_SIGN_RESPONSE:
            raise SigningError("ssh-agent refused to sign (is the key still loaded? confirmed?)")
        signature, _ = _read_ssh_string(answer, 1)
        kind, offset = _read_ssh_string(signature, 0)
        raw, _ = _read_ssh_string(signature, offset)
        if kind != b"ssh-ed25519" or len(raw) != 64:
            raise SigningError("ssh-agent answered with a signature that is not Ed25519")
        return f"{signing_input}.{_b64url(raw)}"


# whoever signs an approver's statement: a key file, or ssh-agent holding the key
StatementSigner = Signer | AgentSigner


def agent_signer_for(approvers: list[Any], socket_path: str | None = None) -> AgentSigner:
    """The approver of ``approvers`` whose key ssh-agent holds (``$SSH_AUTH_SOCK``)."""
    path = socket_path or os.environ.get("SSH_AUTH_SOCK")
    if not path:
        raise SigningError("no ssh-agent: SSH_AUTH_SOCK is not set (or use --key PATH)")
    held = {raw: blob for blob, raw in agent_ed25519_keys(path)}
    for entry in approvers:
        if not isinstance(entry, dict) or not entry.get("public_key"):
            continue
        raw = raw_public(parse_public_key(entry["public_key"]))
        if raw in held:
            return AgentSigner(str(entry["name"]), path, held[raw])
    names = ", ".join(approver_name(e) for e in approvers) or "(none)"
    raise SigningError(
        f"ssh-agent holds no ssh-ed25519 key of an approver here (approvers: {names})"
    )


def signer_for(key: Ed25519PrivateKey, approvers: list[Any]) -> Signer:
    """The approver of ``approvers`` whose public key is ``key``'s; SigningError if none."""
    mine = raw_public(key.public_key())
    for entry in approvers:
        if not isinstance(entry, dict) or not entry.get("public_key"):
            continue
        if raw_public(parse_public_key(entry["public_key"])) == mine:
            return Signer(str(entry["name"]), key)
    names = ", ".join(approver_name(e) for e in approvers) or "(none)"
    raise SigningError(
        f"this key is not the public_key of any approver here (approvers: {names}); "
        "add its public key to governance.approval_workflow.approvers"
    )


def verify_statement(token: str, approvers: list[Any], *, purpose: str, now: str) -> dict[str, Any]:
    """Check a signed statement against the approvers' keys; return its claims.

    The signature must be EdDSA by the key of the approver the claims name,
    ``purpose`` must match, and ``now`` must lie before its expiry. Any
    other algorithm (``none``, HS256 with the public key as secret) fails.
    """
    claims = unverified_claims(token)
    name = claims.get("approver")
    entry = next(
        (
            e
            for e in approvers
            if isinstance(e, dict) and e.get("name") == name and e.get("public_key")
        ),
        None,
    )
    if entry is None:
        raise SigningError(f"{name!r} is not an approver with a public key here")
    public = parse_public_key(entry["public_key"])
    try:
        verified = jwt.decode(
            token,
            public,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "iss"], "verify_exp": False},
        )
    except jwt.PyJWTError as e:
        raise SigningError(f"signature of {name} does not verify: {e}") from e
    if verified.get("purpose") != purpose:
        raise SigningError(f"signed for {verified.get('purpose')!r}, not {purpose!r}")
    if not isinstance(verified.get("exp"), int) or verified["exp"] <= epoch(now):
        raise SigningError("the signed statement has expired")
    return dict(verified)
