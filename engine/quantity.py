"""Kubernetes resource quantities: parse ``100m``, ``128Mi``, ``1.5``, ``2G``.

Quantities are kept as written in the compiled data and also normalised to
integers (millicores for CPU, bytes for memory) so policies compare numbers,
never strings.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("0.000000001"),
    "u": Decimal("0.000001"),
    "m": Decimal("0.001"),
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
}
_QUANTITY = re.compile(
    r"^(?P<number>[+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?$"
)


class QuantityError(ValueError):
    """A string is not a Kubernetes quantity of the expected kind."""


def parse_quantity(text: str | int | float) -> Decimal:
    """Return the value of a Kubernetes quantity in base units (cores or bytes)."""
    if isinstance(text, bool):
        raise QuantityError("not a quantity")
    if isinstance(text, int | float):
        if text < 0:
            raise QuantityError("must not be negative")
        return Decimal(str(text))
    match = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError("not a Kubernetes quantity (examples: 100m, 0.5, 128Mi, 1Gi, 2G)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as e:  # pragma: no cover - the regex admits only decimals
        raise QuantityError("not a number") from e
    if match["exponent"] is not None:
        return number * (Decimal(10) ** int(match["exponent"]))
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    return number * _DECIMAL[suffix]


def cpu_millicores(text: str | int | float) -> int:
    """Return a CPU quantity in whole millicores, rounded up like Kubernetes."""
    if isinstance(text, str) and text.strip()[-2:] in _BINARY:
        raise QuantityError("a CPU quantity takes no binary suffix (use 500m or 0.5)")
    value = parse_quantity(text) * 1000
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def memory_bytes(text: str | int | float) -> int:
    """Return a memory quantity in whole bytes, rounded up like Kubernetes."""
    if isinstance(text, str) and text.strip().endswith("m"):
        raise QuantityError("a memory quantity in millibytes is almost surely a typo (use Mi)")
    value = parse_quantity(text)
    return int(value.to_integral_value(rounding=ROUND_CEILING))
