"""Quantities parse exactly as Kubernetes reads them."""

from decimal import Decimal

import pytest

from pinnace.common.quantity import QuantityError, cpu_millis, format_bytes, parse_quantity, to_bytes


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        ("0.5", Decimal("0.5")),
        ("3Gi", Decimal(3 * 2**30)),
        ("128Mi", Decimal(128 * 2**20)),
        ("1G", Decimal(10**9)),
        ("2e3", Decimal(2000)),
        ("1k", Decimal(1000)),
    ],
)
def test_parse(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5 Gi", "3GB", "-", "1Zi"])
def test_bad(bad: str) -> None:
    with pytest.raises(QuantityError, match="not a quantity"):
        parse_quantity(bad)


def test_helpers() -> None:
    assert cpu_millis("0.5") == 500
    assert cpu_millis("250m") == 250
    assert cpu_millis("0.0001") == 1
    assert to_bytes("1Ki") == 1024
    assert format_bytes(3 * 2**30) == "3Gi"
