"""Kubernetes quantities: parsing and normalisation to millicores and bytes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.quantity import QuantityError, cpu_millicores, memory_bytes, parse_quantity


@pytest.mark.parametrize(
    ("text", "millicores"),
    [
        ("100m", 100),
        ("0.5", 500),
        ("1", 1000),
        ("2", 2000),
        (1, 1000),
        (0.25, 250),
        ("1.5", 1500),
        ("0.0001", 1),  # rounds up like Kubernetes
        ("1e-1", 100),
    ],
)
def test_cpu_millicores(text: str | int | float, millicores: int) -> None:
    assert cpu_millicores(text) == millicores


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [
        ("128Mi", 128 * 2**20),
        ("1Gi", 2**30),
        ("64Ki", 65536),
        ("1k", 1000),
        ("2M", 2_000_000),
        ("1G", 10**9),
        ("512", 512),
        (1024, 1024),
        ("1.5Gi", 3 * 2**29),
        ("1e6", 10**6),
    ],
)
def test_memory_bytes(text: str | int, nbytes: int) -> None:
    assert memory_bytes(text) == nbytes


@pytest.mark.parametrize("text", ["", "abc", "100 m", "1.2.3", "-5", "Mi", "5x", "1Gb"])
def test_not_a_quantity(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_cpu_refuses_binary_suffix() -> None:
    with pytest.raises(QuantityError, match="binary suffix"):
        cpu_millicores("1Gi")


def test_memory_refuses_millibytes() -> None:
    with pytest.raises(QuantityError, match="millibytes"):
        memory_bytes("128m")


def test_negative_number_refused() -> None:
    with pytest.raises(QuantityError):
        parse_quantity(-1)


def test_parse_keeps_exact_decimal() -> None:
    assert parse_quantity("100m") == Decimal("0.1")
