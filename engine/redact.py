"""Masking of secrets, by key and by value, before anything is stored or shown.

Operations come from people and AI agents, and a secret can sit under any
key (``{"dsn": "postgres://admin:hunter2@db/x"}``), so masking by key name
alone lets it through. Three kinds of rules apply here:

- **key**: a key that names a credential (password, token, secret, key,
  credential, cert, authorization) masks its whole value, at any depth;
- **value**: inside any string, the password of a URL's userinfo, PEM blocks,
  ``Bearer``/``Basic`` credentials, ``password=…``-style pairs, JWTs,
  well-known token formats and random-looking tokens are masked, the rest of
  the string is kept;
- **operation**: an operation whose type or target name says secret
  (``modify_secret``, a configmap named ``db-credentials``) keeps only its
  type and the shape of its parameters (keys, and each value's type and
  length), never a value.

Masking is idempotent: a masked value masked again is unchanged. Pure
functions, no I/O; the audit log, the journal and the CLI all mask with them.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any

MASK = "***"

# Keys whose values are masked whole, at any depth (the words the policies treat as sensitive).
SENSITIVE_KEY = re.compile(
    r"password|passwd|passphrase|pwd|(?<![a-z])pass(?![a-z])|token|secret|key|credential|cert"
    r"|authorization|(?<![a-z])auth(?![a-z])",
    re.IGNORECASE,
)
# An operation of such a type, or on an object so named, has every value masked.
_SECRET_TYPE = re.compile(r"secret", re.IGNORECASE)

# A string at least this long is looked at by the high-entropy rule.
MIN_TOKEN_LENGTH = 20
# Random strings change between upper case, lower case, digits and symbols about two
# times in three; words in camelCase or snake_case only at word boundaries.
MIN_CLASS_CHANGES = 0.4
# How far below the average entropy of a random string of the same length a token may be.
ENTROPY_MARGIN = 0.45

_MASKED = re.compile(r"\*\*\*(?:\([^()]*\))?")

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,64})-----(?:.*?-----END \1-----|.*\Z)", re.DOTALL)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_KNOWN_TOKEN = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|[rs]k_(?:live|test)_[A-Za-z0-9]{10,}"
    r"|A[KS]IA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})\b"
)
# scheme://user:PASSWORD@host — the password may hold '@' and ':', never '/', '?' or '#'.
# Every repetition here is bounded so a long hostile string costs linear time.
_URL_PASSWORD = re.compile(
    r"([a-z][a-z0-9+.-]{0,30}://[^\s:/?#@]{0,256}:)([^\s/?#]{0,1024})@", re.IGNORECASE
)
_AUTH_SCHEME = re.compile(r"\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?<![\w.-])([\w.-]{0,40}(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?|authorization)[\w.-]{0,40})"
    # '=' before any value; ':' only before a quoted one (JSON, YAML), so prose keeps its colons
    r"(\"?\s*(?:=|:(?=\s*[\"']))\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s;&,\"']+)",
    re.IGNORECASE,
)
_TOKEN_RUN = re.compile(rf"[A-Za-z0-9+/=_~.-]{{{MIN_TOKEN_LENGTH},}}")
_TOKEN_PIECE = re.compile(rf"[A-Za-z0-9+=_-]{{{MIN_TOKEN_LENGTH},}}")


def is_masked(text: str) -> bool:
    """True if ``text`` is a mask this module wrote (``***`` or a shape like ``***(int)``)."""
    return _MASKED.fullmatch(text) is not None


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text`` (0 for the empty string)."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def _random_entropy(length: int) -> float:
    """About the entropy a random string of ``length`` characters over 64 symbols has."""
    return math.log2(64 * (1 - (63 / 64) ** length))


def _character_class(character: str) -> int:
    if character.isupper():
        return 0
    if character.islower():
        return 1
    return 2 if character.isdigit() else 3


def looks_random(token: str) -> bool:
    """True if ``token`` looks like a generated secret (an API key, a random password).

    At least MIN_TOKEN_LENGTH characters with upper case, lower case and a
    digit, changing between them about as often as random text does, and
    with a Shannon entropy no more than ENTROPY_MARGIN bits per character
    under a random string's of that length. Hex strings (ids, digests,
    hashes) never qualify: they have one case only; words don't either.
    """
    size = len(token)
    if size < MIN_TOKEN_LENGTH:
        return False
    if not (
        any(c.isupper() for c in token)
        and any(c.islower() for c in token)
        and any(c.isdigit() for c in token)
    ):
        return False
    classes = [_character_class(c) for c in token]
    changes = sum(1 for a, b in itertools.pairwise(classes) if a != b)
    if changes < MIN_CLASS_CHANGES * (size - 1):
        return False
    return shannon_entropy(token) >= _random_entropy(size) - ENTROPY_MARGIN


def _looks_like_credential(word: str) -> bool:
    """After Bearer/Basic: a credential has a digit, a symbol or mixed case, a word does not."""
    return any(c.isdigit() or c in "._~+/=-" for c in word) or (
        any(c.isupper() for c in word[1:]) and any(c.islower() for c in word)
    )


def _mask_pem(match: re.Match[str]) -> str:
    label = match.group(1)
    return f"-----BEGIN {label}-----{MASK}-----END {label}-----"


def _mask_url_password(match: re.Match[str]) -> str:
    return f"{match.group(1)}{MASK if match.group(2) else ''}@"


def _mask_auth_scheme(match: re.Match[str]) -> str:
    scheme, space, credential = match.groups()
    return f"{scheme}{space}{MASK}" if _looks_like_credential(credential) else match.group()


def _mask_key_value(match: re.Match[str]) -> str:
    key, separator, value = match.groups()
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{key}{separator}{quote}{MASK}{quote}"


def _mask_token_run(match: re.Match[str]) -> str:
    run = match.group()
    if looks_random(run):
        return MASK
    # a URL or a path may carry a token between its slashes and dots
    return _TOKEN_PIECE.sub(lambda p: MASK if looks_random(p.group()) else p.group(), run)


def mask_text(text: str) -> str:
    """Return ``text`` with every credential-looking part replaced by ***; the rest is kept."""
    if is_masked(text):
        return text
    text = _PEM.sub(_mask_pem, text)
    text = _JWT.sub(MASK, text)
    text = _KNOWN_TOKEN.sub(MASK, text)
    text = _URL_PASSWORD.sub(_mask_url_password, text)
    text = _AUTH_SCHEME.sub(_mask_auth_scheme, text)
    text = _KEY_VALUE.sub(_mask_key_value, text)
    return _TOKEN_RUN.sub(_mask_token_run, text)


def is_secret_like(operation: Mapping[str, Any]) -> bool:
    """True if the operation's type, kind or target name says it is about a secret."""
    kind = operation.get("type")
    if isinstance(kind, str) and _SECRET_TYPE.search(kind):
        return True
    if str(operation.get("kind", "")).lower() == "secret":
        return True
    return any(
        isinstance(operation.get(field), str) and SENSITIVE_KEY.search(operation[field])
        for field in ("name", "target")
    )


def shape(value: Any) -> Any:
    """The shape of ``value`` without its content: ``***(str, 7 chars)``, ``***(int)``, keys."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if is_masked(value) else f"{MASK}(str, {len(value)} chars)"
    if isinstance(value, bool | int | float):
        return f"{MASK}({type(value).__name__})"
    if isinstance(value, Mapping):
        return {_mask_key(k): shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [shape(v) for v in value]
    return MASK


def _mask_key(key: Any) -> Any:
    return mask_text(key) if isinstance(key, str) else key


def mask_operation(operation: Any) -> Any:
    """Return ``operation`` safe to store or show.

    A secret-like operation (see ``is_secret_like``) keeps its type and the
    shape of every parameter; any other is masked by key and by value.
    """
    if isinstance(operation, Mapping) and is_secret_like(operation):
        return {
            _mask_key(k): (mask_text(v) if k == "type" and isinstance(v, str) else shape(v))
            for k, v in operation.items()
        }
    return mask(operation)


def mask(value: Any, *, keep: Collection[str] = ()) -> Any:
    """Return a copy of ``value`` with secrets masked by key and by value, at any depth.

    Any mapping with a string ``type`` is taken for an operation (see
    ``mask_operation``). Keys listed in ``keep`` are left as they are at the
    top level only: they name fields the caller wrote itself (the audit
    log's ids and hashes), never fields that came from outside.
    """
    if isinstance(value, Mapping):
        if isinstance(value.get("type"), str) and is_secret_like(value):
            return mask_operation(value)
        masked: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and SENSITIVE_KEY.search(key):
                masked[_mask_key(key)] = MASK
            elif key in keep:
                masked[key] = item
            else:
                masked[_mask_key(key)] = mask(item)
        return masked
    if isinstance(value, list | tuple):
        return [mask(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value


def holds_mask(value: Any) -> bool:
    """True if a mask stands anywhere in ``value``: the real value is not there to act on."""
    if isinstance(value, str):
        return MASK in value
    if isinstance(value, Mapping):
        return any(holds_mask(k) or holds_mask(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_mask(item) for item in value)
    return False
